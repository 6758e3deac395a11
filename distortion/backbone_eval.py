"""``distortion evaluate-backbone``: a face backbone alone on LFW (the baseline every G is held to).

Aligns LFW into the chip cache (built on demand), embeds every chip, and writes View 1 / View 2
numbers to ``<out>/report.json`` and ``report.md``, plus the embeddings (``embeddings.npy`` and
``embedding_keys.json``). With ``reference=True`` (dlib backbone only) it also runs dlib's own
pipeline on the same images (detector, shape predictor, ``compute_face_descriptor``) and reports
its numbers and the largest difference between the two sets of embeddings.
"""

from __future__ import annotations

import json
import os
import platform
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from datamodules.data_root import resolve_data_root
from datamodules.lfw_pairs import VIEW_FILES, lfw_image_path, read_pairs
from distortion.alignment import DlibAligner, ImageReadError, read_rgb
from distortion.backbones import create_backbone
from distortion.backbones.dlib_resnet import DLIB_RESNET_FILE, dlib_model_path
from distortion.chip_cache import build_chip_cache, default_cache_dir
from distortion.lfw_eval import embed_chips, lfw_report, write_report

__all__ = ["evaluate_backbone", "lfw_protocol_images"]


def lfw_protocol_images(lfw_root: Path) -> list[tuple[str, int]]:
    """Every image named in View 2 and View 1 (DevTrain and DevTest), sorted."""
    folds = [fold for name in VIEW_FILES.values() for fold in read_pairs(lfw_root / name)]
    return sorted({key for fold in folds for pair in fold for key in pair.images})


_REFERENCE = None


def _init_reference() -> None:
    global _REFERENCE
    import dlib

    _REFERENCE = DlibAligner(), dlib.face_recognition_model_v1(str(dlib_model_path(DLIB_RESNET_FILE)))


def _reference_descriptor(path: str) -> np.ndarray | None:
    """dlib's own pipeline on one photo: detect, 5 landmarks, ``compute_face_descriptor``."""
    aligner, recognizer = _REFERENCE
    try:
        image, _ = read_rgb(path)
    except ImageReadError:
        return None
    _, box = aligner.detect(image)
    return np.asarray(recognizer.compute_face_descriptor(image, aligner.shape(image, box)), dtype=np.float32)


def dlib_reference_embeddings(lfw_root: Path, keys: list[tuple[str, int]], workers: int) -> dict:
    """``(name, number) -> (128,)`` descriptors from dlib itself, computed by ``workers`` processes."""
    paths = [str(lfw_image_path(lfw_root, *key)) for key in keys]
    with get_context("spawn").Pool(workers, initializer=_init_reference) as pool:
        results = list(tqdm(pool.imap(_reference_descriptor, paths, chunksize=16), total=len(paths), desc="dlib"))
    return {key: torch.from_numpy(r) for key, r in zip(keys, results) if r is not None}


def evaluate_backbone(
    backbone: str = "dlib",
    data: str | None = None,
    cache: str | None = None,
    out: str | None = None,
    batch_size: int = 32,
    reference: bool = False,
    workers: int | None = None,
    weights_path: str | None = None,
) -> dict:
    """Score a face backbone alone on LFW's protocol and write the report.

    Args:
        backbone: a registered backbone: ``dlib`` or ``facenet``.
        data: the LFW root (holding ``lfw-deepfunneled`` and the pair lists); default
            ``$DISTORTION_DATA/lfw``.
        cache: the aligned-chip cache; default ``$DISTORTION_CACHE/lfw_<aligner>`` (``./cache``).
        out: the report folder; default ``runs/lfw_backbone_<backbone>``.
        batch_size: chips per forward pass.
        reference: also run dlib's own pipeline on the same images (dlib backbone only).
        workers: processes for alignment and the reference (default: every core).
        weights_path: a local weights file for the backbone.
    """
    kwargs = {} if weights_path is None else {"weights_path": weights_path}
    model = create_backbone(backbone, **kwargs).eval().to(memory_format=torch.channels_last)
    if reference and backbone != "dlib":
        raise ValueError("reference=True compares with dlib's own pipeline, so it needs backbone='dlib'")
    lfw_root = Path(data) if data else resolve_data_root(None, "lfw") / "lfw"
    for name in VIEW_FILES.values():
        if not (lfw_root / name).is_file():
            raise FileNotFoundError(f"{lfw_root / name} not found: data must be an LFW root with the pair lists")
    workers = workers or os.cpu_count() or 1
    out_dir = Path(out or f"runs/lfw_backbone_{backbone}")
    chip_cache = build_chip_cache(lfw_root, cache or default_cache_dir(model.aligner), model.aligner, workers=workers)

    start = time.perf_counter()
    embeddings = embed_chips(model, chip_cache.chips, batch_size)
    embed_seconds = time.perf_counter() - start
    rows = chip_cache.rows()
    keyed = {key: embeddings[row] for key, row in rows.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "embeddings.npy", embeddings.numpy())
    (out_dir / "embedding_keys.json").write_text(json.dumps([[k[0], k[1], r] for k, r in rows.items()]))

    report = {"backbone": backbone, **lfw_report(lfw_root, keyed)}
    report["alignment"] = dict(chip_cache.meta, cache=str(chip_cache.root))
    report["timing"] = dict(embed_seconds=embed_seconds, embed_images_per_s=len(embeddings) / embed_seconds)
    if reference:
        start = time.perf_counter()
        keys = lfw_protocol_images(lfw_root)
        ours = {key: keyed[key] for key in keys if key in keyed}
        theirs = dlib_reference_embeddings(lfw_root, keys, workers)
        report["dlib_reference"] = lfw_report(lfw_root, theirs)
        common = sorted(set(ours) & set(theirs))
        diff = torch.stack([(ours[k] - theirs[k]).abs().max() for k in common])
        report["dlib_reference"]["agreement"] = dict(
            images=len(common), max_abs_diff=float(diff.max()), images_over_1e_4=int((diff > 1e-4).sum()),
            view2_accuracy_diff_points=100 * (report["view2"]["accuracy_mean"]
                                              - report["dlib_reference"]["view2"]["accuracy_mean"]),
        )
        report["timing"]["reference_seconds"] = time.perf_counter() - start
    report["machine"] = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                             torch=torch.__version__)
    write_report(report, out_dir, f"LFW baseline: {backbone} backbone")
    return report
