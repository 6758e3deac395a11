"""Open-set 1:N on LFW through the biometric store itself (docs/store.md): the protocol of
``tools/lfw_open_set.py``, but every gallery person enrolled from the photo file by ``enrol_many`` (alignment,
carrier, PNG, SQLite, FAISS) and every probe photo identified by the store's search, as ``distortion identify``
does. A probe in which the store finds no face is a miss (mated) or a rejection (non-mated).

Also reported: the duplicate check. How many gallery people it would refuse, each against the 839 others (a
gallery of distinct people, so every flag is a false alarm), and how many true duplicates (a mated probe
enrolled under a new id) it catches, at the store's threshold and at the threshold that flags 1% of them.

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
    """
    root = lfw_root()
    images = sorted((p.parent.name, int(p.stem.rsplit("_", 1)[1])) for p in (root / "lfw-deepfunneled").glob("*/*.jpg"))
    names = [name for name, _ in images]
    gallery, mated, non_mated = open_set_split(names, seed=seed)
    if limit_gallery:
        gallery = gallery[: limit_gallery]
        kept = {names[i] for i in gallery}
        mated = [i for i in mated if names[i] in kept]
    if limit_probes:
        mated, non_mated = mated[: limit_probes], non_mated[: limit_probes]
    with tempfile.TemporaryDirectory() as scratch:
        path = store or str(Path(scratch) / "lfw.db")
        system = open_system(path, model, refine_steps, key,
                             seed=seed)
        started = time.perf_counter()
        people = {names[i]: [lfw_image_path(root, *images[i])] for i in gallery}
        enrolled = system.enrol_many(people, check_duplicates=False)
        enrol_s = time.perf_counter() - started
        refused = {r["id"]: r["refused"] for r in enrolled if "refused" in r}
        # each enrolled person's best score against someone else: what the duplicate check sees
        nearest = [system.nearest_other(p, system.probes(photos)) for p, photos in people.items() if p not in refused]
        others = torch.tensor([n[1] if n else float("-inf") for n in nearest], dtype=torch.float64)

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
    duplicates = {
        "false_alarms": int((others >= system.threshold).sum()),
        "false_alarm_rate": float((others >= system.threshold).double().mean()),
        "caught": float((correct & (mated_scores >= system.threshold)).double().mean()),
        "threshold_1pct": strict["threshold"], "false_alarm_rate_1pct": strict["fpir"],
        "caught_1pct": strict["dir_at_fpir_0.01"],
    }  # fmt: skip
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
        f"no face {result['probes_without_face']}); duplicate check: {duplicates['false_alarms']}/{len(others)} "
        f"distinct people flagged, {100 * duplicates['caught']:.1f}% of true duplicates caught; at "
        f"{duplicates['threshold_1pct']:.3f}: {100 * duplicates['false_alarm_rate_1pct']:.1f}% flagged, "
        f"{100 * duplicates['caught_1pct']:.1f}% caught"
    )


if __name__ == "__main__":
    jsonargparse.CLI(main, as_positional=False)
