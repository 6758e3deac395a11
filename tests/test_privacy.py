"""The privacy evidence on real MNIST: the inversion attack learns, the report's numbers agree with
each other, and the sampler that makes resumed runs exact."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torchvision.datasets import MNIST

from datamodules.sampler import ResumableRandomSampler
from distortion.cli import main
from distortion.image_metrics import ssim
from distortion.inversion import make_inverter, train_inverter
from tests.conftest import DATA, QUICK


class Negative(nn.Module):
    """An invertible stand-in for G: the photographic negative."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - x


def test_the_inverter_learns_to_undo_an_invertible_distortion() -> None:
    x = MNIST(str(DATA), train=True).data[:512].unsqueeze(1).float() / 255
    batches = list(x.split(64))
    inverter = make_inverter(1, depth=2, width=16)
    before = ssim(x[:128], inverter(1 - x[:128]).detach()).mean()
    torch.manual_seed(0)
    result = train_inverter(Negative(), inverter, batches, steps=150, lr=1e-2, progress=False)
    after = ssim(x[:128], inverter(1 - x[:128]).detach()).mean()
    assert result["steps"] == 150 and result["final_loss"] < 0.05
    assert before < 0.2 and after > 0.9  # H(G(x)) is x again


def test_the_inverter_needs_training_data() -> None:
    with pytest.raises(ValueError, match="no training batches"):
        train_inverter(Negative(), make_inverter(1, depth=2, width=4), [], steps=1, progress=False)


def test_the_sampler_draws_one_permutation_per_epoch_and_skips_on_resume() -> None:
    sampler = ResumableRandomSampler(100, seed=5)
    first = list(sampler)
    assert sorted(first) == list(range(100)) and list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == list(range(100))
    sampler.skip(30)
    assert list(sampler) == second[30:]  # where a run killed after 30 samples of epoch 1 resumes
    assert list(sampler) == second  # the skip applies once
    with pytest.raises(ValueError, match="skip"):
        sampler.skip(101)


@pytest.fixture(scope="module")
def generator_ckpt(trained):
    main(["fit", "--config", str(trained["generator_config"]), *QUICK])
    return trained["out"] / "gen" / "checkpoints" / "last.ckpt"


def test_privacy_report_on_mnist(trained, generator_ckpt, tmp_path) -> None:
    # The same G as "renewed" G and the same F as "second" recognizer: known relations between the sections.
    main(["privacy", "--ckpt", str(generator_ckpt), "--renewed_ckpt", str(generator_ckpt),
          "--second_embedding", str(trained["embedding"]), "--reader_ckpt", str(trained["reader"]),
          "--attack_steps", "20", "--attack_width", "8", "--limit_pairs", "300", "--out", str(tmp_path),
          "--wandb", "false"])  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 300
    inversion, unlink, second = report["inversion"], report["unlinkability"], report["second_recognizer"]
    for key in ("ssim_reconstructed", "psnr_reconstructed", "accepted_same_image_reconstructed",
                "accepted_other_image_reconstructed", "reader_acc_original", "reader_acc_reconstructed"):  # fmt: skip
        assert key in inversion
    rates = [v for k, v in inversion.items() if k.startswith(("accepted_", "false_accept_", "reader_acc_"))]
    assert rates and all(0 <= v <= 1 for v in rates)
    assert inversion["false_accept_distorted"] <= 1e-3 + 1 / 150  # the threshold's FAR, up to one pair
    assert 0 <= unlink["d_sys"] <= 1 and unlink["mated_scores"] + unlink["non_mated_scores"] == 300
    # the same F as second recognizer reproduces F's own deployment numbers
    assert second["deploy_eer"] == pytest.approx(unlink["same_generator_deploy_eer"], abs=1e-6)
    for name in ("report.md", "grid.png", "unlinkability.png"):
        assert (tmp_path / name).is_file()
