"""One writer for every report: ``report.json`` and ``report.md`` from a flat or sectioned mapping.

A report maps names to numbers (``{"test/deploy/eer": 0.021}``, what a test run logs), to sections
(``{"inversion": {"ssim_reconstructed": 0.9}}``, what ``evaluate`` and ``privacy`` write), or to
strings and lists (paths, names). Sections may nest one level more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["flatten_report", "format_value", "write_report"]


def format_value(value: Any) -> str:
    """A number as a report shows it: 4 decimals, or scientific notation below 1e-3."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"


def _rows(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            rows += _rows(value, f"{prefix}{key}.")
        else:
            rows.append(f"| `{prefix}{key}` | {format_value(value)} |")
    return rows


def write_report(report: Mapping[str, Any], directory: str | Path, title: str) -> Path:
    """Write ``report.json`` and a Markdown ``report.md`` (one table for the top-level values, one per
    section) into ``directory``; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    header = ["| metric | value |", "| --- | --- |"]
    flat = {k: v for k, v in report.items() if not isinstance(v, Mapping)}
    lines = [f"# {title}", ""]
    if flat:
        lines += [*header, *_rows(flat), ""]
    for section, values in report.items():
        if isinstance(values, Mapping):
            lines += [f"## {section}", "", *header, *_rows(values), ""]
    (directory / "report.md").write_text("\n".join(lines))
    return directory


def flatten_report(report: Mapping[str, Any], numbers_only: bool = True) -> dict[str, Any]:
    """A report as ``section/key[/sub]`` entries: its numbers (e.g. for W&B), or with ``numbers_only=False``
    every value that is not a mapping (a nested section as one flat table)."""
    flat: dict[str, Any] = {}
    for key, value in report.items():
        if isinstance(value, Mapping):
            flat |= {f"{key}/{k}": v for k, v in flatten_report(value, numbers_only).items()}
        elif not numbers_only or (isinstance(value, int | float) and not isinstance(value, bool)):
            flat[key] = value
    return flat
