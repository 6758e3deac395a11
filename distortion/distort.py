"""``distortion distort``: apply a trained G to a folder of photos (or one photo).

Each photo is aligned the way G's face backbone expects (into ``<out>/aligned``, resumable and
parallel like ``distortion align``), distorted in batches, and saved as a PNG under
``<out>/distorted`` at the photo's relative path. ``<out>/embeddings.json`` holds, per photo, the
embedding F(G(x)) a biometric store would keep, how far it moved from F(x), how the face was
found, and the files that were skipped with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from distortion.chip_cache import build_chip_cache, image_folder
from distortion.modules.distortion import load_distortion_module

__all__ = ["distort"]


def distort(ckpt: str, input: str, out: str, batch_size: int = 16, workers: int | None = None) -> dict:
    """Align, distort and save every photo under ``input``.

    Args:
        ckpt: a DistortionModule checkpoint (``distortion fit`` on faces).
        input: a folder of photos (searched recursively) or a single photo.
        out: the output folder.
        batch_size: photos per forward pass.
        workers: processes for alignment (default: every core).
    """
    module = load_distortion_module(ckpt)
    aligner = getattr(module.embedding, "aligner", None)
    if aligner is None:
        raise ValueError(f"{ckpt} was not trained through a face backbone; distort works on faces only")
    out_dir = Path(out)
    folder = image_folder(input)
    base = folder if folder.is_dir() else folder.parent
    cache = build_chip_cache(input, out_dir / "aligned", aligner, workers)
    aligned = [row for row in cache.index if row["row"] >= 0]
    results, skipped = {}, {}
    for row in cache.index:
        if row["row"] < 0:
            skipped[str(Path(row["path"]).relative_to(base))] = row["note"]
    with torch.no_grad():
        for start in tqdm(range(0, len(aligned), batch_size), desc="distort", unit="batch"):
            rows = aligned[start : start + batch_size]
            x = torch.from_numpy(np.stack([cache.chips[r["row"]] for r in rows])).permute(0, 3, 1, 2).float() / 255
            g = module.generator(x).float().clamp(0, 1)
            emb_x, emb_g = module.embedding(x).float(), module.embedding(g).float()
            images = g.mul(255).round().byte().permute(0, 2, 3, 1).numpy()
            for r, image, ex, eg in zip(rows, images, emb_x, emb_g):
                relative = Path(r["path"]).relative_to(base)
                target = (out_dir / "distorted" / relative).with_suffix(".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(target)
                results[str(relative)] = {
                    "distorted": str(target.relative_to(out_dir)), "face_found_by": r["method"], "note": r["note"],
                    "embedding": [round(v, 6) for v in eg.tolist()], "embedding_shift": float((ex - eg).norm()),
                }  # fmt: skip
    summary = {"checkpoint": str(ckpt), "distorted": len(results), "skipped": skipped, "images": results}
    (out_dir / "embeddings.json").write_text(json.dumps(summary, indent=1))
    centred = sum(1 for r in results.values() if r["face_found_by"] == "centre")
    print(f"{out_dir}: {len(results)} distorted ({centred} without a detected face, centred crop), "
          f"{len(skipped)} skipped")
    for path, reason in skipped.items():
        print(f"  skipped {path}: {reason}")
    return summary
