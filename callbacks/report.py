"""Writes the test report: every logged test metric as ``report.json`` and ``report.md``, plus a summary."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from callbacks.run_dir import run_dir

SUMMARY_KEYS = (
    "test/orig/eer",
    "test/deploy/eer",
    "test/distorted/eer",
    "test/d_mse_pct",
    "test/content_change_pct",
    "test/reader_acc_original",
    "test/reader_acc_distorted",
    "test/reader_acc_distorted_stretched",
    "test/reader2_acc_distorted",
)


def write_report(metrics: dict[str, float], directory: Path, title: str) -> dict[str, float]:
    """Write ``report.json`` and a Markdown table ``report.md`` of ``metrics`` into ``directory``."""
    metrics = dict(sorted(metrics.items()))
    (directory / "report.json").write_text(json.dumps(metrics, indent=2) + "\n")
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| `{key}` | {value:.4f} |" for key, value in metrics.items()]
    (directory / "report.md").write_text("\n".join(lines) + "\n")
    return metrics


class TestReport(L.Callback):
    """After ``test``: collect ``test/*`` metrics from all callbacks, write the report, print a summary."""

    __test__ = False  # not a pytest test class

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        directory = run_dir(trainer)
        if not trainer.is_global_zero or directory is None:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        write_report(metrics, directory, f"Test report: {type(pl_module).__name__}")
        summary = ", ".join(f"{k.removeprefix('test/')}={metrics[k]:.4f}" for k in SUMMARY_KEYS if k in metrics)
        rank_zero_info(f"test report written to {directory}: {summary}")
