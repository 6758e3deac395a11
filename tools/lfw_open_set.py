"""Open-set 1:N on LFW (docs/store.md): rank-1 and DIR at FPIR 1% for F alone and for stores of carriers.

Half of the people with >= 2 images are enrolled with one image (seeded), their other images are mated
probes, every image of everyone else a non-mated probe (:func:`distortion.metrics.open_set.open_set_split`).
Conditions:

- ``f``: F(x) enrolled, F(probe) probed;
- ``exact_<transform>``: ``T_k(F(x))`` enrolled (a carrier that reaches its target exactly), ``T_k(F(probe))``
  probed, for the keyed rotation, the whitened rotation (32 axes) and the discriminant rotation (48), and the
  whitened rotation of 32-96 axes compared by the key-undoing matcher (``compare="unkeyed"``);
- with ``--model.ckpt`` (a carrier G; keyed when it is a keyed carrier, with ``--key``) or ``--model.embedding dlib
  --refine_steps N`` (refinement from noise; keyed with ``--model.keyed`` and ``--key``): ``carriers``, the gallery
  made of real carriers stored as PNG, F(stored) enrolled; both compared as the carrier's matcher compares.

    python tools/lfw_open_set.py --out runs/lfw_open_set.json
    python tools/lfw_open_set.py --model.ckpt runs/lfw_keyed_carrier/checkpoints/last.ckpt --key site.key
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonargparse
import torch

from distortion.deployment.distorter import embed_batches
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_templates import DiscriminantRotation, KeyedRotation, WhitenedRotation
from distortion.deployment.keys import generate_key
from distortion.faces.chip_cache import ChipCache
from distortion.faces.lfw_pairs import training_images
from distortion.faces.templates import cached_templates
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.open_set import open_set_metrics, open_set_split
from distortion.paths import default_cache_dir, lfw_root
from distortion.precision import Precision
from distortion.runtime import resolve_device


def lfw_open_set(
    out: str = "runs/lfw_open_set.json",
    model: ModelSource = ModelSource(),
    refine_steps: int = 0,
    refine_precision: Precision = "auto",
    key: str | None = None,
    limit_gallery: int = 0,
    seed: int = 0,
) -> dict:
    """1:N on LFW for F, exact keyed templates and, with ``--model.*``, a deployment's carriers.

    Args:
        out: the JSON file of the results.
        model: the deployment whose carriers are measured (none: F and exact keyed templates only).
        refine_steps: refinement steps at enrolment.
        refine_precision: F's arithmetic while refining (auto: bfloat16 where native).
        key: the key file of a keyed deployment.
        limit_gallery: only the first N gallery people (0: all).
        seed: seed of the split and of the noise.
    """
    torch.manual_seed(seed)
    cache_dir = default_cache_dir("dlib")
    emb = cached_templates(cache_dir, "dlib")
    keys = sorted(emb)
    gallery, mated, non_mated = open_set_split([k[0] for k in keys], seed=seed)
    if limit_gallery:
        kept = {keys[i][0] for i in gallery[:limit_gallery]}
        gallery = gallery[:limit_gallery]
        mated = [i for i in mated if keys[i][0] in kept]
    ids = [k[0] for k in keys]
    e = torch.stack([emb[k] for k in keys]).double()
    results = {"f": open_set_metrics(e[gallery], [ids[i] for i in gallery], e[mated], [ids[i] for i in mated],
                                     e[non_mated])}  # fmt: skip
    # the transform is fitted as `distortion fit-transform` fits it: on the people outside View 1's DevTest
    train = set(training_images(ChipCache.load(cache_dir).rows(), lfw_root()))
    rows = [i for i, k in enumerate(keys) if k in train]
    people = sorted({ids[i] for i in rows})
    labels = torch.tensor([people.index(ids[i]) for i in rows])
    exact = {
        "rotation": KeyedRotation(128),
        "whitened_rotation_32": WhitenedRotation(128, 32, "stored"),
        "discriminant_rotation_48": DiscriminantRotation(128, 48),
        **{f"whitened_rotation_{m}_unkeyed": WhitenedRotation(128, m, "unkeyed") for m in (32, 48, 64, 72, 76, 96)},
    }
    for name, transform in exact.items():
        key = generate_key()
        t = transform.matched(transform.fit(e[rows], labels)(e, key), key)
        results[f"exact_{name}"] = open_set_metrics(t[gallery], [ids[i] for i in gallery], t[mated],
                                                    [ids[i] for i in mated], t[non_mated])  # fmt: skip
    if model.ckpt or model.embedding:
        device = resolve_device("auto")
        enrolment = Enrolment(refine_steps, storage="png", refine_precision=refine_precision, key=key)
        distorter = load_deployment(model, device, enrolment).distorter
        cache = ChipCache.load(cache_dir)
        rows = cache.rows()
        batches = cache.batches([rows[keys[i]] for i in gallery], 32)
        stored = torch.cat([b.emb_stored.cpu() for b in embed_batches(batches, distorter.embedding, device, distorter,
                                                                      desc="gallery carriers")]).double()  # fmt: skip
        stored = distorter.matched(stored.to(device)).double().cpu()
        probes = distorter.matched(distorter.probe(e.float().to(device))).double().cpu()
        results["carriers"] = open_set_metrics(stored, [ids[i] for i in gallery], probes[mated],
                                               [ids[i] for i in mated], probes[non_mated])  # fmt: skip
        results["carriers"] |= {"ckpt": model.ckpt, "embedding": model.embedding, "refine_steps": refine_steps,
                                "refine_precision": refine_precision, "keyed": distorter.keyed}  # fmt: skip
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=1))
    for name, r in results.items():
        print(
            f"{name}: rank-1 {100 * r['rank1']:.2f}%  DIR@FPIR1% {100 * r['dir_at_fpir_0.01']:.2f}%  "
            f"(gallery {r['gallery']}, mated {r['mated_probes']}, non-mated {r['non_mated_probes']})"
        )
    return results


if __name__ == "__main__":
    jsonargparse.CLI(lfw_open_set, as_positional=False)
