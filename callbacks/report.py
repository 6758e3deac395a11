"""Writes the test report: every logged test metric as ``report.json`` and ``report.md``, plus a summary."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from distortion.callbacks.run_dir import run_dir
from distortion.reporting.reports import write_report

SUMMARY_KEYS = (
    "test/orig/eer",
    "test/deploy/eer",
    "test/distorted/eer",
    "test/d_mse_pct",
    "test/content_change_pct",
    "test/output_diversity",
    "test/reader_acc_original",
    "test/reader_acc_distorted",
    "test/reader_acc_distorted_stretched",
    "test/reader2_acc_distorted",
)


class TestReport(L.Callback):
    """After ``test``: collect ``test/*`` metrics from all callbacks, write the report, print a summary."""

    __test__ = False  # not a pytest test class

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        directory = run_dir(trainer)
        if not trainer.is_global_zero or directory is None:
            return
        metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("test/")}
        write_report(metrics, directory, f"Test report: {type(pl_module).__name__}")
        summary = ", ".join(f"{k.removeprefix('test/')}={metrics[k]:.4f}" for k in SUMMARY_KEYS if k in metrics)
        rank_zero_info(f"test report written to {directory}: {summary}")
