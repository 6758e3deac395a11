"""``distortion fit-transform``: fit a keyed transform on LFW's training people and calibrate its threshold.

The transform (:mod:`distortion.deployment.keyed_templates`) is fitted on F's embeddings of every image of the
people outside View 1's DevTest (the same split G trains on). The operating threshold is then the score
at FAR 0.1% of carriers of ``calibrate`` training images against other training people's keyed photos,
the carriers made as the deployment makes them (refined from noise with ``refine_steps``, stored as
``storage``) under a throw-away key: thresholds do not depend on which key.
"""

from __future__ import annotations

from pathlib import Path

import torch

from datamodules.lfw import identity_split
from datamodules.lfw_pairs import VIEW_FILES, read_pairs
from distortion.commands.evaluation import embed_batches, place, resolve_device
from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_model import KeyedModel, make_transform
from distortion.deployment.keyed_templates import random_key
from distortion.faces.chip_cache import ChipCache, build_chip_cache
from distortion.faces.lfw_protocol import ImageKey
from distortion.metrics.verification import calibrate_threshold
from distortion.modules.embedding import load_embedding
from distortion.paths import default_cache_dir, lfw_root
from distortion.precision import autocast

__all__ = ["cached_lfw_templates", "fit_transform", "lfw_templates", "training_keys"]


def lfw_templates(cache: ChipCache, embedding: torch.nn.Module, keys: list[ImageKey], device: torch.device,
                  batch_size: int = 64) -> torch.Tensor:  # fmt: skip
    """F of the chips of ``keys``, ``(N, D)`` float32 on the CPU."""
    rows = cache.rows()
    batches = cache.batches([rows[k] for k in keys], batch_size)
    return torch.cat([b.emb_x.cpu() for b in embed_batches(batches, embedding, device, desc="F")])


def training_keys(cache: ChipCache, root: Path) -> list[ImageKey]:
    """Every image of the people outside View 1's DevTest, sorted."""
    rows = cache.rows()
    people = set(identity_split(sorted({n for n, _ in rows}), read_pairs(root / VIEW_FILES["dev_test"])))
    return [k for k in sorted(rows) if k[0] in people]


def fit_transform(
    out: str,
    embedding: str = "dlib",
    transform: str = "whitened_rotation",
    components: int = 32,
    bits: int = 64,
    compare: str | None = None,
    enrolment: Enrolment = Enrolment(refine_steps=150, storage="png"),
    calibrate: int = 256,
    data: str | None = None,
    cache: str | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict:
    """Fit ``transform`` on LFW's training people, calibrate the threshold, and save the keyed model.

    Args:
        out: the keyed model file to write.
        embedding: F, a face backbone name (``dlib``, ``facenet``).
        transform: ``whitened_rotation``, ``discriminant_rotation``, ``rotation`` or ``sign_projection``.
        components: principal axes the transform reads.
        bits: the code length of ``sign_projection``.
        compare: the whitened rotation's matcher: ``unkeyed`` (its default: undoes the key first, F's own
            distance on the kept axes) or ``stored`` (compares stored templates as they are).
        enrolment: how the deployment makes its carriers (refinement from noise: ``refine_steps`` >= 1).
        calibrate: training images whose carriers set the threshold (0: no threshold).
        data, cache: the LFW root and the chip cache.
        device: ``auto``, ``cpu``, ``cuda``, ...
        seed: seed of the choice of calibration images and of the noise.
    """
    torch.manual_seed(seed)
    run_device = resolve_device(device)
    f = load_embedding(embedding)
    place(run_device, f)
    root = lfw_root(data)
    chips = build_chip_cache(root, cache or default_cache_dir(f.aligner), f.aligner)
    keys = training_keys(chips, root)
    emb = lfw_templates(chips, f, keys, run_device)
    people = sorted({name for name, _ in keys})
    labels = torch.tensor([people.index(name) for name, _ in keys])
    fitted = make_transform(transform, emb.shape[1], components, bits, compare).fit(emb, labels)
    fitted.check_drawable()
    threshold = None
    if calibrate:
        chosen = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed))[:calibrate].tolist()
        key = random_key()
        distorter = Distorter(f, None, enrolment, fitted.to(run_device), key)
        rows = chips.rows()
        batches = chips.batches([rows[keys[i]] for i in chosen], 32)
        stored = torch.cat([b.emb_stored.cpu() for b in embed_batches(batches, f, run_device, distorter, "calibrate")])
        probes = distorter.probe(emb[chosen].to(run_device))
        matched = distorter.matched(stored.to(run_device)).cpu(), distorter.matched(probes).cpu()
        threshold = float(calibrate_threshold(*matched, labels[chosen]))
    model = KeyedModel(fitted.cpu(), embedding, threshold)
    model.save(out)
    summary = {"out": str(out), "transform": transform, "components": components,
               "matcher": "stored" if fitted.matches_stored else "unkeyed", "images": len(keys),
               "threshold": threshold, "calibration_images": calibrate}  # fmt: skip
    print(summary)
    return summary


def cached_lfw_templates(cache_dir: Path, backbone: str, batch_size: int = 64) -> dict[ImageKey, torch.Tensor]:
    """F (bfloat16 where native, :mod:`distortion.precision`) of every chip of the cache, computed once and kept
    beside it as ``templates_<backbone>.pt`` (the studies of docs/keyed.md and docs/store.md read it)."""
    path = cache_dir / f"templates_{backbone}.pt"
    if path.is_file():
        return torch.load(path)
    cache, f = ChipCache.load(cache_dir), load_embedding(backbone)
    rows = cache.rows()
    keys = sorted(rows)
    out = {}
    with torch.no_grad():
        for s, batch in enumerate(cache.batches([rows[k] for k in keys], batch_size)):
            with autocast("cpu"):
                emb = f(batch.float()).float()
            out.update(zip(keys[s * batch_size : (s + 1) * batch_size], emb))
            print(f"\rF: {len(out)}/{len(keys)}", end="", flush=True)
    torch.save(out, path)
    print()
    return out
