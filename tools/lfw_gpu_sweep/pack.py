"""Pack what the LFW GPU sweep needs into ``.gpu/`` (at most 64 MiB travel to a lent GPU machine).

7,000 of the 10,492 training chips (people not in pairsDevTest.txt, seeded choice) as JPEG q85, the
1,549 DevTest chips as JPEG q95 with the pair list, and the dlib ResNet weights in float16.
Run from the repository root after ``distortion align``: ``python tools/lfw_gpu_sweep/pack.py``.
"""

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datamodules.lfw import identity_split
from datamodules.lfw_pairs import read_pairs
from distortion.backbones import DlibResNet
from distortion.chip_cache import ChipCache, default_cache_dir


def encode(cache: ChipCache, rows: dict, keys: list, quality: int) -> tuple[np.ndarray, np.ndarray]:
    blobs = []
    for key in keys:
        buffer = io.BytesIO()
        Image.fromarray(np.array(cache.chips[rows[key]])).save(buffer, format="JPEG", quality=quality)
        blobs.append(buffer.getvalue())
    return np.frombuffer(b"".join(blobs), np.uint8), np.cumsum([0] + [len(b) for b in blobs])


def main() -> None:
    cache = ChipCache.load(default_cache_dir("dlib"))
    rows = cache.rows()
    dev_test = read_pairs(Path("../shared/data/lfw/pairsDevTest.txt"))
    train_people = set(identity_split(sorted({name for name, _ in rows}), dev_test))
    train_keys = [key for key in sorted(rows) if key[0] in train_people]
    chosen = sorted(np.random.default_rng(0).choice(len(train_keys), 7000, replace=False))
    train, train_off = encode(cache, rows, [train_keys[i] for i in chosen], 85)
    dev_keys = sorted({key for fold in dev_test for pair in fold for key in pair.images})
    val, val_off = encode(cache, rows, dev_keys, 95)
    index = {key: i for i, key in enumerate(dev_keys)}
    pairs = [[index[p.images[0]], index[p.images[1]], int(p.same)] for fold in dev_test for p in fold]
    Path(".gpu").mkdir(exist_ok=True)
    np.savez(".gpu/data.npz", train=train, train_off=train_off, val=val, val_off=val_off, pairs=np.array(pairs))
    torch.save({k: v.half() for k, v in DlibResNet().state_dict().items()}, ".gpu/dlib_resnet_fp16.pt")


if __name__ == "__main__":
    main()
