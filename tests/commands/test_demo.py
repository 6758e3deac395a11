"""The demo's summary: the writer on a tiny run of real digits, and LFW carriers drawn from noise."""

from __future__ import annotations

import json

import torch
from PIL import Image

from distortion.commands.demo import _content, _digits, _lfw, _verdicts
from distortion.metrics.content import ContentMeans
from distortion.reporting.demo_summary import GeneratorSummary, Panel, summary_lines, write_summary
from tests.conftest import DATA


def test_the_summary_writer_puts_every_g_with_its_baselines_in_json_picture_and_terminal(tmp_path) -> None:
    digits, labels = _digits(DATA)
    f = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 8))
    noise = torch.rand_like(digits)
    means = ContentMeans()
    means.update(digits, noise, labels)
    panels = [Panel("digits", digits, [str(int(y)) for y in labels]),
              Panel("noise", noise, _verdicts(f, digits, noise, threshold=0.5))]  # fmt: skip
    generators = {"noise_g": GeneratorSummary(0.31, means.compute())}
    summary = write_summary(tmp_path / "demo", 0.02, generators, panels)
    saved = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert saved == summary and saved["f_eer"] == 0.02 and saved["noise_g"]["deploy_eer"] == 0.31
    assert {"content_change_pct", "content_change_pct_mismatched", "content_change_pct_leak"} <= set(
        saved["noise_g"]["content"]
    )
    with Image.open(tmp_path / "demo" / "summary.png") as picture:
        assert picture.size[0] > 600 and picture.size[1] > 300
    lines = summary_lines(summary)
    assert lines[0] == "F alone: test EER 2.00%" and lines[1].startswith("noise_g: deploy EER 31.00%")
    assert "another's (leak" in lines[1]
    assert all(v.startswith("F: ") for v in panels[1].captions)


def test_the_content_of_a_test_report_keeps_each_statistic_with_its_baseline() -> None:
    report = {"test/ssim": 0.1, "test/ssim_mismatched": 0.09, "test/ssim_leak": 0.01, "test/deploy/eer": 0.02}
    assert _content(report) == {"ssim": 0.1, "ssim_mismatched": 0.09, "ssim_leak": 0.01}


def test_lfw_carriers_from_noise_match_their_person() -> None:
    torch.manual_seed(0)
    summary, panels = _lfw(DATA / "lfw", people=3, refine_steps=40)
    assert [p.images.shape for p in panels] == [(3, 3, 150, 150)] * 2
    assert summary.f_eer <= 0.5 and summary.deploy_eer <= 0.5
    assert sum(c.startswith("F: match") for c in panels[1].captions) >= 2
    assert "content_change_pct_leak" in summary.content
