"""``distortion fit-transform``: fit a keyed transform on LFW's training people and calibrate its threshold.

The transform (:mod:`distortion.deployment.keyed_templates`) is fitted on F's embeddings of every image of the
people outside View 1's DevTest (the same split G trains on). The operating threshold is then the score
at FAR 0.1% of carriers of ``calibrate`` training images against other training people's keyed photos,
the carriers made as the deployment makes them (refined from noise with ``refine_steps``, stored as
``storage``) under a throw-away key: thresholds do not depend on which key.
"""

from __future__ import annotations

import torch

from distortion.deployment.calibration import calibrate_distorter
from distortion.deployment.distorter import Distorter, embed_batches
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_model import KeyedModel
from distortion.deployment.keyed_templates import make_transform, random_key
from distortion.faces.chip_cache import build_chip_cache
from distortion.faces.lfw_pairs import training_images
from distortion.modules.embedding import load_embedding
from distortion.paths import default_cache_dir, lfw_root
from distortion.runtime import place, resolve_device

__all__ = ["fit_transform"]


def fit_transform(
    out: str,
    embedding: str = "dlib",
    transform: str = "whitened_rotation",
    components: int = 32,
    bits: int | None = None,
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
        bits: the code length of ``sign_projection`` (default its own, 64).
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
    rows = chips.rows()
    keys = training_images(rows, root)
    batches = chips.batches([rows[k] for k in keys], 64)
    emb = torch.cat([b.emb_x.cpu() for b in embed_batches(batches, f, run_device, desc="F")])
    people = sorted({name for name, _ in keys})
    labels = torch.tensor([people.index(name) for name, _ in keys])
    fitted = make_transform(transform, emb.shape[1], components=components, bits=bits, compare=compare)
    fitted.fit(emb, labels)
    fitted.check_drawable()
    threshold = None
    if calibrate:  # carriers made as the deployment makes them, under a throw-away key
        chosen = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed))[:calibrate].tolist()
        distorter = Distorter(f, None, enrolment, fitted.to(run_device), random_key())
        photos = chips.batches([rows[keys[i]] for i in chosen], 32)
        threshold = calibrate_distorter(distorter, zip(photos, labels[chosen].split(32)), calibrate)
    model = KeyedModel(fitted.cpu(), embedding, threshold)
    model.save(out)
    summary = {"out": str(out), "transform": transform, "components": components,
               "matcher": "stored" if fitted.matches_stored else "unkeyed", "images": len(keys),
               "threshold": threshold, "calibration_images": calibrate}  # fmt: skip
    print(summary)
    return summary
