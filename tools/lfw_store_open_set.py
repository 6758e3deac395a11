"""Open-set 1:N on LFW through the biometric store itself (docs/store.md): the protocol of
``tools/lfw_open_set.py``, but every gallery person enrolled from the photo file by ``enrol_many`` (alignment,
carrier, PNG, SQLite, FAISS) and every probe photo identified by the store's search, as ``distortion identify``
does. A probe in which the store finds no face is a miss (mated) or a rejection (non-mated).

Also reported: the duplicate check, carriers against carriers at the store's duplicate threshold (calibrated on the
gallery for a search of its size, ``BiometricSystem.duplicate_threshold``) and, beside it, at the 1:1 threshold.
False alarms: each gallery person against the 839 others (the people the threshold was calibrated on), and
``duplicates`` newcomers never enrolled (non-mated probes, people outside the gallery: held out). Caught:
``duplicates`` mated probe photos enrolled under a new id, found as their own person at or above the threshold.

    python tools/lfw_store_open_set.py --model.ckpt runs/lfw_keyed_carrier_w72/checkpoints/last.ckpt \\
        --key runs/keyed/site.key --refine_steps 20 --out runs/lfw_store_open_set_w72.json
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import jsonargparse
import torch

from distortion.faces.lfw_pairs import lfw_image_path
from distortion.loading import ModelSource
from distortion.metrics.open_set import open_set_rates, open_set_split
from distortion.paths import lfw_root
from distortion.store.system import NoFaceError, open_system


def main(
    out: str = "runs/lfw_store_open_set.json", model: ModelSource = ModelSource(), refine_steps: int = 0,
    key: str | None = None, store: str | None = None, limit_gallery: int = 0, limit_probes: int = 0, seed: int = 0,
    duplicates: int = 500,
) -> None:  # fmt: skip
    """1:N on LFW through the store.

    Args:
        out: the JSON file of the results.
        model: the deployment (``--model.ckpt``, or ``--model.embedding dlib`` with ``--model.keyed``).
        refine_steps: refinement steps at enrolment.
        key: the key file of a keyed deployment.
        store: the store to make (default: a temporary folder).
        limit_gallery: only the first N gallery people (0: all).
        limit_probes: at most N mated and N non-mated probes (0: all).
        seed: seed of the split and of the noise.
        duplicates: held-out newcomers and true duplicates the duplicate check is asked about (each a carrier).
    """
    root = lfw_root()
    images = sorted((p.parent.name, int(p.stem.rsplit("_", 1)[1])) for p in (root / "lfw-deepfunneled").glob("*/*.jpg"))
    names = [name for name, _ in images]
    gallery, mated, non_mated = open_set_split(names, seed=seed)
    if limit_gallery:
        gallery = gallery[:limit_gallery]
        kept = {names[i] for i in gallery}
        mated = [i for i in mated if names[i] in kept]
    if limit_probes:
        mated, non_mated = mated[:limit_probes], non_mated[:limit_probes]
    with tempfile.TemporaryDirectory() as scratch:
        path = store or str(Path(scratch) / "lfw.db")
        system = open_system(path, model, refine_steps, key, seed=seed)
        started = time.perf_counter()
        people = {names[i]: [lfw_image_path(root, *images[i])] for i in gallery}
        enrolled = system.enrol_many(people, check_duplicates=False)
        enrol_s = time.perf_counter() - started
        refused = {r["id"]: r["refused"] for r in enrolled if "refused" in r}
        duplicate_threshold = system.duplicate_threshold()
        if duplicate_threshold is None:
            raise ValueError(f"a gallery of {len(gallery)} people is too small to calibrate the duplicate check")

        def nearest_scores(templates: list) -> torch.Tensor:
            found = [system.nearest_other("", t) for t in templates]
            return torch.tensor([n[1] if n else float("-inf") for n in found], dtype=torch.float64)

        # each enrolled person's carriers against everyone else's: what the duplicate check sees
        kept = [p for p in people if p not in refused]
        others = torch.tensor([n[1] if n else float("-inf") for n in
                               (system.nearest_other(p, system.store.templates(p)) for p in kept)],
                              dtype=torch.float64)  # fmt: skip

        def newcomers(indices: list[int]) -> tuple[list, list[str]]:
            """The carriers' templates a newcomer's enrolment would make of each photo (photos without a face left
            out), and whose photo each is."""
            templates, owners = [], []
            for i in indices:
                try:
                    x = system.align([lfw_image_path(root, *images[i])])
                except NoFaceError:
                    continue
                emb = system.embed(x)
                templates.append(system.carriers(x, system.probe(emb))[1])
                owners.append(names[i])
            return templates, owners

        rng = torch.Generator().manual_seed(seed)
        held_out, _ = newcomers([non_mated[int(i)] for i in torch.randperm(len(non_mated), generator=rng)[:duplicates]])
        copies, copy_owners = newcomers([mated[int(i)] for i in torch.randperm(len(mated), generator=rng)[:duplicates]])
        held_out_scores = nearest_scores(held_out)
        copy_hits = [system.search(t, 1)[0] for t in copies]

        def best(indices: list[int], batch: int = 32) -> tuple[torch.Tensor, list[str | None]]:
            """Each probe's best person and score, as ``identify`` finds them (probes embedded in batches)."""
            hits: list[list[tuple[str, float]]] = []
            for start in range(0, len(indices), batch):
                paths = [lfw_image_path(root, *images[i]) for i in indices[start : start + batch]]
                try:
                    hits += system.search(system.probes(paths), 1)
                except NoFaceError:  # one photo of the batch has no face: each photo alone
                    for path in paths:
                        try:
                            hits += system.search(system.probes([path]), 1)
                        except NoFaceError:
                            hits.append([])
            scores = torch.tensor([h[0][1] if h else float("-inf") for h in hits], dtype=torch.float64)
            return scores, [h[0][0] if h else None for h in hits]

        started = time.perf_counter()
        mated_scores, mated_ids = best(mated)
        non_mated_scores, _ = best(non_mated)
        identify_s = time.perf_counter() - started
        system.close()
    correct = torch.tensor([found == names[i] for found, i in zip(mated_ids, mated)])
    # The duplicate check as it is (the store's threshold) and at the threshold flagging 1% of distinct people;
    # a mated probe enrolled under a new id is a true duplicate, caught when its own person is found above it.
    strict = open_set_rates(mated_scores, correct, others, fpir=0.01)
    copy_scores = torch.tensor([h[0][1] if h else float("-inf") for h in copy_hits], dtype=torch.float64)
    copy_own = torch.tensor([bool(h) and h[0][0] == owner for h, owner in zip(copy_hits, copy_owners)])
    duplicates = {"duplicate_threshold": duplicate_threshold, "one_to_one_threshold": system.threshold,
                  "held_out_newcomers": len(held_out), "true_duplicates": len(copies)}  # fmt: skip
    for name, threshold in (("duplicate", duplicate_threshold), ("one_to_one", system.threshold)):
        duplicates |= {
            f"{name}/false_alarms_gallery": int((others >= threshold).sum()),
            f"{name}/false_alarm_rate_gallery": float((others >= threshold).double().mean()),
            f"{name}/false_alarm_rate_held_out": float((held_out_scores >= threshold).double().mean()),
            f"{name}/caught": float((copy_own & (copy_scores >= threshold)).double().mean()),
        }
    duplicates |= {"probe_vs_carrier_threshold_1pct": strict["threshold"],
                   "probe_vs_carrier_caught_1pct": strict["dir_at_fpir_0.01"]}  # fmt: skip
    result = open_set_rates(mated_scores, correct, non_mated_scores) | {
        "gallery": len(gallery) - len(refused), "refused_at_enrolment": refused, "mated_probes": len(mated),
        "non_mated_probes": len(non_mated), "probes_without_face": int(torch.isinf(mated_scores).sum()
                                                                       + torch.isinf(non_mated_scores).sum()),
        "duplicate_check": duplicates, "store_threshold": system.threshold,
        "enrol_s": round(enrol_s, 1), "identify_s": round(identify_s, 1),
        "ckpt": model.ckpt, "embedding": model.embedding, "refine_steps": refine_steps,
    }  # fmt: skip
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1))
    print(
        f"rank-1 {100 * result['rank1']:.2f}%  DIR@FPIR1% {100 * result['dir_at_fpir_0.01']:.2f}%  "
        f"(gallery {result['gallery']}, mated {len(mated)}, non-mated {len(non_mated)}, "
        f"no face {result['probes_without_face']}); duplicate check at {duplicate_threshold:.3f}: "
        f"{duplicates['duplicate/false_alarms_gallery']}/{len(others)} gallery people flagged, "
        f"{100 * duplicates['duplicate/false_alarm_rate_held_out']:.1f}% of held-out newcomers flagged, "
        f"{100 * duplicates['duplicate/caught']:.1f}% of true duplicates caught; at the 1:1 threshold "
        f"{system.threshold:.3f}: {100 * duplicates['one_to_one/false_alarm_rate_gallery']:.1f}% / "
        f"{100 * duplicates['one_to_one/false_alarm_rate_held_out']:.1f}% flagged, "
        f"{100 * duplicates['one_to_one/caught']:.1f}% caught"
    )


if __name__ == "__main__":
    jsonargparse.CLI(main, as_positional=False)
