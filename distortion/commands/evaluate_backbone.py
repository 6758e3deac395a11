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

from distortion.backbones import create_backbone
from distortion.backbones.dlib_resnet import DLIB_RESNET_FILE, dlib_model_path
from distortion.deployment.distorter import embed_batches
from distortion.faces.alignment import DlibAligner, ImageReadError, read_rgb
from distortion.faces.chip_cache import ChipCache, build_chip_cache
from distortion.faces.lfw_pairs import lfw_image_path
from distortion.faces.lfw_protocol import LFWProtocol
from distortion.paths import default_cache_dir, lfw_root
from distortion.reporting.reports import write_report
from distortion.runtime import Timer, place, resolve_device

__all__ = ["evaluate_backbone"]


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


def dlib_reference_embeddings(root: Path, keys: list[tuple[str, int]], workers: int) -> dict:
    """``(name, number) -> (128,)`` descriptors from dlib itself, computed by ``workers`` processes."""
    paths = [str(lfw_image_path(root, *key)) for key in keys]
    with get_context("spawn").Pool(workers, initializer=_init_reference) as pool:
        results = list(tqdm(pool.imap(_reference_descriptor, paths, chunksize=16), total=len(paths), desc="dlib"))
    return {key: torch.from_numpy(r) for key, r in zip(keys, results) if r is not None}


def _embed_cache(model: torch.nn.Module, cache: ChipCache, batch_size: int, device: torch.device) -> torch.Tensor:
    """F of every chip of the cache, ``(N, D)`` on the CPU."""
    batches = cache.batches(range(len(cache.chips)), batch_size)
    return torch.cat([b.emb_x.cpu() for b in embed_batches(batches, model, device, desc="embed")])


def _reference(protocol: LFWProtocol, ours: dict, workers: int) -> dict:
    """dlib's own pipeline on the protocol images: its LFW numbers and how far its embeddings are from ours."""
    keys = protocol.images()
    theirs = dlib_reference_embeddings(protocol.root, keys, workers)
    section = protocol.report(theirs)
    common = sorted(set(ours) & set(theirs))
    diff = torch.stack([(ours[k] - theirs[k]).abs().max() for k in common])
    section["agreement"] = dict(images=len(common), max_abs_diff=float(diff.max()),
                                images_over_1e_4=int((diff > 1e-4).sum()))  # fmt: skip
    return section


def evaluate_backbone(
    backbone: str = "dlib",
    data: str | None = None,
    cache: str | None = None,
    out: str | None = None,
    batch_size: int = 32,
    device: str = "auto",
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
        device: ``auto`` (the GPU when there is one), ``cpu``, ``cuda``, ...
        reference: also run dlib's own pipeline on the same images (dlib backbone only).
        workers: processes for alignment and the reference (default: every core).
        weights_path: a local weights file for the backbone.
    """
    if reference and backbone != "dlib":
        raise ValueError("reference=True compares with dlib's own pipeline, so it needs backbone='dlib'")
    model = create_backbone(backbone, **({} if weights_path is None else {"weights_path": weights_path}))
    run_device = resolve_device(device)
    place(run_device, model)
    protocol = LFWProtocol.load(lfw_root(data))
    workers = workers or os.cpu_count() or 1
    out_dir = Path(out or f"runs/lfw_backbone_{backbone}")
    chip_cache = build_chip_cache(protocol.root, cache or default_cache_dir(model.aligner), model.aligner,
                                  workers=workers)  # fmt: skip
    timer = Timer(run_device)
    embeddings = _embed_cache(model, chip_cache, batch_size, run_device)
    timing = timer.section(len(embeddings))
    rows = chip_cache.rows()
    keyed = {key: embeddings[row] for key, row in rows.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "embeddings.npy", embeddings.numpy())
    (out_dir / "embedding_keys.json").write_text(json.dumps([[k[0], k[1], r] for k, r in rows.items()]))
    report = {"backbone": backbone, **protocol.report(keyed)}
    report["alignment"] = dict(chip_cache.meta, cache=str(chip_cache.root))
    report["timing"] = timing
    if reference:
        start = time.perf_counter()
        report["dlib_reference"] = _reference(protocol, keyed, workers)
        report["dlib_reference"]["agreement"]["view2_accuracy_diff_points"] = 100 * (
            report["view2"]["accuracy_mean"] - report["dlib_reference"]["view2"]["accuracy_mean"]
        )
        report["timing"]["reference_seconds"] = time.perf_counter() - start
    report["machine"] = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                             torch=torch.__version__)  # fmt: skip
    write_report(report, out_dir, f"LFW baseline: {backbone} backbone")
    return report
