"""Scoring a face backbone on LFW's protocol: View 1 (DevTest) and View 2 (10 folds).

- View 2 (``pairs.txt``): accuracy mean and std over the 10 folds, each with the threshold chosen on
  the other 9; EER, ROC AUC and TAR at FAR 1% and 0.1% over all 6,000 pairs.
- View 1 (``pairsDevTest.txt``): accuracy with the threshold chosen on ``pairsDevTrain.txt``; EER,
  AUROC, TAR at FAR over its 1,000 pairs.

A pair whose image could not be read scores as the least alike (a rejection), and is counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from datamodules.lfw_pairs import VIEW_FILES, LFWPair, read_pairs
from distortion.verification import best_threshold, kfold_accuracy, pair_scores, verification_metrics

__all__ = ["embed_chips", "lfw_report", "pair_table", "view_metrics"]

ImageKey = tuple[str, int]


@torch.no_grad()
def embed_chips(
    model: nn.Module,
    chips: np.ndarray,
    batch_size: int = 32,
    transform: Callable[[Tensor], Tensor] | None = None,
    progress: bool = True,
) -> Tensor:
    """Embed ``(N, S, S, 3)`` uint8 chips in batches: ``-> (N, D)`` float32 on the CPU.

    ``transform`` maps a ``(B, 3, S, S)`` batch in [0, 1] before the model (e.g. a generator G).
    """
    model.eval()
    out = []
    for start in tqdm(range(0, len(chips), batch_size), desc="embed", unit="batch", disable=not progress):
        x = torch.from_numpy(np.array(chips[start : start + batch_size])).permute(0, 3, 1, 2)
        x = x.float().div_(255).contiguous(memory_format=torch.channels_last)
        if transform is not None:
            x = transform(x)
        out.append(model(x).float())
    return torch.cat(out)


def pair_table(
    folds: list[list[LFWPair]], enrol: Mapping[ImageKey, Tensor], probe: Mapping[ImageKey, Tensor]
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Scores, labels and fold numbers of every pair (first image from ``enrol``, second from ``probe``).

    Returns ``(scores, same, fold, missing)``; a pair with an image missing from either mapping
    scores 0 (least alike) and is counted in ``missing``.
    """
    scores, same, fold_ids, missing = [], [], [], 0
    for f, fold in enumerate(folds):
        for pair in fold:
            a, b = pair.images
            if a in enrol and b in probe:
                scores.append(pair_scores(enrol[a][None], probe[b][None])[0])
            else:
                scores.append(torch.zeros(()))
                missing += 1
            same.append(pair.same)
            fold_ids.append(f)
    return torch.stack(scores), torch.tensor(same), torch.tensor(fold_ids), missing


def view_metrics(scores: Tensor, same: Tensor) -> dict[str, float]:
    """EER, ROC AUC, TAR at FAR 1% and 0.1% of one set of pairs (torchmetrics)."""
    metrics = verification_metrics()
    metrics.update(scores.float(), same.long())
    return {k: float(v) for k, v in metrics.compute().items()}


def lfw_report(
    lfw_root: str | Path, enrol: Mapping[ImageKey, Tensor], probe: Mapping[ImageKey, Tensor] | None = None
) -> dict[str, dict[str, float]]:
    """LFW View 2 and View 1 numbers for embeddings keyed by ``(name, number)``.

    ``probe`` defaults to ``enrol``; pass different mappings to score, e.g., distorted enrolment
    images against original probes.
    """
    lfw_root = Path(lfw_root)
    probe = enrol if probe is None else probe
    report = {}
    scores, same, folds, missing = pair_table(read_pairs(lfw_root / VIEW_FILES["view2"]), enrol, probe)
    accuracies = kfold_accuracy(scores, same, folds)
    report["view2"] = dict(
        accuracy_mean=float(accuracies.mean()), accuracy_std=float(accuracies.std(unbiased=False)),
        pairs=len(scores), pairs_missing=missing, **view_metrics(scores, same),
    )
    train_scores, train_same, _, _ = pair_table(read_pairs(lfw_root / VIEW_FILES["dev_train"]), enrol, probe)
    scores, same, _, missing = pair_table(read_pairs(lfw_root / VIEW_FILES["dev_test"]), enrol, probe)
    threshold = best_threshold(train_scores, train_same)
    report["view1"] = dict(
        accuracy=float(((scores.double() >= threshold) == same).double().mean()),
        pairs=len(scores), pairs_missing=missing, **view_metrics(scores, same),
    )
    return report


def write_report(report: dict, out: Path, title: str) -> None:
    """``report.json`` and a Markdown table ``report.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lines = [f"# {title}", ""]
    for section, values in report.items():
        if isinstance(values, dict):
            lines += [f"## {section}", "", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in values.items() if not isinstance(v, dict)]
            for sub, sub_values in ((k, v) for k, v in values.items() if isinstance(v, dict)):
                lines += [f"| {sub}.{k} | {_fmt(v)} |" for k, v in sub_values.items()]
            lines.append("")
        else:
            lines.append(f"- {section}: {_fmt(values)}")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def _fmt(value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"
