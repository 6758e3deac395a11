"""Says plainly when G collapsed, at the end of every validation, of fit and of test."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics import MeanMetric

from distortion.callbacks.stage_metrics import StageMetricsCallback
from distortion.callbacks.verification_metrics import VerificationMetrics
from distortion.metrics.collapse import CollapseError, collapse_reasons, output_diversity


class CollapseGuard(StageMetricsCallback):
    """Logs ``<stage>/output_diversity`` (:func:`~distortion.metrics.collapse.output_diversity`, averaged over the
    evaluation batches) and ``<stage>/collapsed`` (1 or 0) from it and the EERs that
    :class:`~callbacks.VerificationMetrics` logged before it in the same epoch.

    A collapse is warned about after each validation and at the end of fit, and written into the test
    report; with ``strict`` the end of fit and of test raise :class:`~distortion.metrics.collapse.CollapseError`
    (``distortion fit`` / ``test`` then exit with the message, after the report is written).

    Args:
        max_eer_gap: deployment EER more than this above F's own means G lost F (0.03 = 3 points).
        min_diversity: output diversity below this means G draws nearly one image for every input.
        strict: raise instead of warning.
    """

    def __init__(self, max_eer_gap: float = 0.03, min_diversity: float = 0.1, strict: bool = False) -> None:
        if max_eer_gap <= 0 or min_diversity < 0:
            raise ValueError(f"max_eer_gap must be > 0 and min_diversity >= 0, got {max_eer_gap}, {min_diversity}")
        self.max_eer_gap, self.min_diversity, self.strict = max_eer_gap, min_diversity, strict
        self.diversity = MeanMetric()
        self.reasons: dict[str, list[str]] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        names = [type(c).__name__ for c in trainer.callbacks]
        if VerificationMetrics.__name__ not in names[: names.index(type(self).__name__)]:
            raise ValueError("CollapseGuard reads the EERs of VerificationMetrics: list VerificationMetrics before it")
        self.diversity.to(pl_module.device)

    def update(self, outputs: dict[str, Any]) -> None:
        if "g_a" in outputs and len(outputs["g_a"]) > 1:
            self.diversity.update(output_diversity(outputs["x_a"], outputs["g_a"]))

    def log_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.diversity.update_count:
            return
        diversity = float(self.diversity.compute())
        self.diversity.reset()
        metrics = trainer.callback_metrics
        orig, deploy = metrics.get(f"{stage}/orig/eer"), metrics.get(f"{stage}/deploy/eer")
        if orig is None or deploy is None:
            return
        self.reasons[stage] = collapse_reasons(float(orig), float(deploy), diversity, self.max_eer_gap,
                                               self.min_diversity)  # fmt: skip
        pl_module.log(f"{stage}/output_diversity", diversity)
        pl_module.log(f"{stage}/collapsed", float(bool(self.reasons[stage])))
        if self.reasons[stage] and stage == "val" and not trainer.sanity_checking:
            rank_zero_warn(f"epoch {trainer.current_epoch}: " + "; ".join(self.reasons[stage]))

    def _verdict(self, stage: str) -> None:
        reasons = self.reasons.get(stage)
        if not reasons:
            return
        message = "G COLLAPSED (" + ("test" if stage == "test" else "end of fit") + "): " + "; ".join(reasons)
        if self.strict:
            raise CollapseError(message)
        rank_zero_warn(message)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._verdict("val")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._verdict("test")
