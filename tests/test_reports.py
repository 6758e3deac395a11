"""One report writer for flat and sectioned reports."""

from __future__ import annotations

import json

from distortion.reporting.reports import flatten_report, format_value, write_report


def test_flat_and_sectioned_reports_become_json_and_markdown_tables(tmp_path) -> None:
    report = {"checkpoint": "runs/g.ckpt", "test/deploy/eer": 0.0213, "inversion": {"ssim": 0.9, "tiny": 2e-5},
              "view": {"lfw": {"accuracy": 0.988}}, "flag": True}  # fmt: skip
    write_report(report, tmp_path / "out", "A report")
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.startswith("# A report")
    assert "| `test/deploy/eer` | 0.0213 |" in md and "| `checkpoint` | runs/g.ckpt |" in md
    assert "## inversion" in md and "| `tiny` | 2.00e-05 |" in md and "| `lfw.accuracy` | 0.9880 |" in md
    assert flatten_report(report) == {"test/deploy/eer": 0.0213, "inversion/ssim": 0.9, "inversion/tiny": 2e-5,
                                      "view/lfw/accuracy": 0.988}  # fmt: skip
    assert format_value(0.0) == "0.0000" and format_value(3) == "3"
