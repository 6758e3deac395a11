"""The collapse guard: a G that draws one image for every input, or loses F, is named as such."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from distortion.callbacks import CollapseGuard, TestReport, VerificationMetrics
from distortion.datamodules import MNISTDataModule
from distortion.metrics.collapse import CollapseError, collapse_reasons, output_diversity
from distortion.models import Generator
from distortion.modules import GeneratorModule
from distortion.objective import Budget
from tests.conftest import DATA


def test_output_diversity_of_the_identity_a_constant_and_noise() -> None:
    x = torch.rand(16, 1, 28, 28)
    assert float(output_diversity(x, x)) == pytest.approx(1.0)
    assert float(output_diversity(x, torch.full_like(x, 0.3))) == 0.0
    assert float(output_diversity(x, torch.rand_like(x) * 0.05)) < 0.1
    with pytest.raises(ValueError, match="2 images or more"):
        output_diversity(x[:1], x[:1])


def test_collapse_reasons_name_what_went_wrong() -> None:
    assert collapse_reasons(0.02, 0.025, 0.8) == []
    lost, same = collapse_reasons(0.019, 0.128, 0.02)
    assert "G lost F: deployment EER 12.80% against F's own 1.90%" in lost
    assert "nearly the same image for every input: output diversity 0.020" in same


class Constant(Generator):
    """The collapsed G of the issue: one grey image with a bright blob, whatever the input."""

    def forward(self, x: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(x, 0.1)
        out[..., 20:26, 2:8] = 0.9
        return out


def test_a_strict_guard_fails_the_test_run_after_writing_the_report(trained, tmp_path) -> None:
    module = GeneratorModule(Constant(), trained["embedding"], budget=Budget(tau=0.1, beta=10.0))
    datamodule = MNISTDataModule(str(DATA), batch_size=64, limit_eval=256)
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        callbacks=[TestReport(), VerificationMetrics(), CollapseGuard(strict=True)])  # fmt: skip
    with pytest.raises(CollapseError, match="G COLLAPSED \\(test\\).*lost F.*same image"):
        trainer.test(module, datamodule=datamodule)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["test/collapsed"] == 1.0 and report["test/output_diversity"] == 0.0
    assert report["test/deploy/eer"] > report["test/orig/eer"] + 0.03


def test_the_guard_needs_the_verification_metrics_before_it(trained, tmp_path) -> None:
    module = GeneratorModule(Constant(), trained["embedding"])
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        callbacks=[CollapseGuard(), VerificationMetrics()])  # fmt: skip
    with pytest.raises(ValueError, match="list VerificationMetrics before it"):
        trainer.test(module, datamodule=MNISTDataModule(str(DATA), limit_eval=256))
