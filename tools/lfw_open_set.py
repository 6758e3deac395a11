"""Open-set 1:N on LFW (docs/store.md): rank-1 and DIR at FPIR 1% for F alone and for stores of carriers.

Half of the people with >= 2 images are enrolled with one image (seeded), their other images are mated
probes, every image of everyone else a non-mated probe (:func:`distortion.metrics.open_set.open_set_split`).
Conditions:

- ``f``: F(x) enrolled, F(probe) probed;
- ``exact_<transform>``: ``T_k(F(x))`` enrolled (a carrier that reaches its target exactly), ``T_k(F(probe))``
  probed, for the keyed rotation, the whitened rotation (32 axes) and the discriminant rotation (48), and the
  whitened rotation of 32-96 axes compared by the key-undoing matcher (``compare="unkeyed"``);
- with ``--ckpt`` (a carrier G; keyed when it is a keyed carrier, with ``--key``) or ``--embedding dlib
  --refine_steps N`` (refinement from noise; keyed with ``--keyed`` and ``--key``): ``carriers``, the gallery
  made of real carriers stored as PNG, F(stored) enrolled; both compared as the carrier's matcher compares.

    python tools/lfw_open_set.py --out runs/lfw_open_set.json
    python tools/lfw_open_set.py --ckpt runs/lfw_keyed_carrier/checkpoints/last.ckpt --key site.key
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from distortion.commands.evaluation import embed_batches, load_distorter, resolve_device
from distortion.commands.fit_transform import cached_lfw_templates, training_keys
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_templates import DiscriminantRotation, KeyedRotation, WhitenedRotation
from distortion.deployment.keys import generate_key
from distortion.faces.chip_cache import ChipCache
from distortion.metrics.open_set import open_set_metrics, open_set_split
from distortion.paths import default_cache_dir, lfw_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/lfw_open_set.json")
    parser.add_argument("--ckpt")
    parser.add_argument("--embedding")
    parser.add_argument("--refine_steps", type=int, default=0)
    parser.add_argument("--refine_precision", default="auto", choices=("auto", "bf16", "32"),
                        help="F's arithmetic while refining (auto: bfloat16 where native)")
    parser.add_argument("--keyed")
    parser.add_argument("--key")
    parser.add_argument("--limit_gallery", type=int, default=0, help="only the first N gallery people (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    cache_dir = default_cache_dir("dlib")
    emb = cached_lfw_templates(cache_dir, "dlib")
    keys = sorted(emb)
    gallery, mated, non_mated = open_set_split([k[0] for k in keys], seed=args.seed)
    if args.limit_gallery:
        kept = {keys[i][0] for i in gallery[: args.limit_gallery]}
        gallery = gallery[: args.limit_gallery]
        mated = [i for i in mated if keys[i][0] in kept]
    ids = [k[0] for k in keys]
    e = torch.stack([emb[k] for k in keys]).double()
    results = {"f": open_set_metrics(e[gallery], [ids[i] for i in gallery], e[mated], [ids[i] for i in mated],
                                     e[non_mated])}  # fmt: skip
    # the transform is fitted as `distortion fit-transform` fits it: on the people outside View 1's DevTest
    train = set(training_keys(ChipCache.load(cache_dir), lfw_root()))
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
    if args.ckpt or args.embedding:
        device = resolve_device("auto")
        enrolment = Enrolment(args.refine_steps, storage="png", refine_precision=args.refine_precision, key=args.key)
        distorter = load_distorter(args.ckpt, args.embedding, device, enrolment, args.keyed)
        cache = ChipCache.load(cache_dir)
        rows = cache.rows()
        batches = cache.batches([rows[keys[i]] for i in gallery], 32)
        stored = torch.cat([b.emb_stored.cpu() for b in embed_batches(batches, distorter.embedding, device, distorter,
                                                                      desc="gallery carriers")]).double()  # fmt: skip
        stored = distorter.matched(stored.to(device)).double().cpu()
        probes = distorter.matched(distorter.probe(e.float().to(device))).double().cpu()
        results["carriers"] = open_set_metrics(stored, [ids[i] for i in gallery], probes[mated],
                                               [ids[i] for i in mated], probes[non_mated])  # fmt: skip
        results["carriers"] |= {"ckpt": args.ckpt, "embedding": args.embedding, "refine_steps": args.refine_steps,
                                "refine_precision": args.refine_precision, "keyed": distorter.keyed}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    for name, r in results.items():
        print(
            f"{name}: rank-1 {100 * r['rank1']:.2f}%  DIR@FPIR1% {100 * r['dir_at_fpir_0.01']:.2f}%  "
            f"(gallery {r['gallery']}, mated {r['mated_probes']}, non-mated {r['non_mated_probes']})"
        )


if __name__ == "__main__":
    main()
