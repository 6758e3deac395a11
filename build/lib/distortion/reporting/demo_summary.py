"""The demo's summary: one picture (originals, each G's images, F's verdict under each), one JSON, a few lines.

``summary.json`` holds ``f_eer`` (F alone on the demo's test pairs) and, per G, an object with its ``deploy_eer``
(the G's image enrolled, a fresh photo probed) and its content statistics beside their mismatched baseline
(:mod:`distortion.metrics.content`): what G(x) keeps of x beyond what it has of somebody else's image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

__all__ = ["GeneratorSummary", "Panel", "summary_lines", "write_summary"]

# the content statistics the terminal shows, as (key, label); every statistic is in summary.json
HEADLINE = (("content_change_pct", "content change"), ("registered_content_change_pct", "registered"),
            ("ssim", "SSIM"))  # fmt: skip


@dataclass
class Panel:
    """One row of the picture: images ``(N, C, H, W)`` in ``[0, 1]`` with a caption under each."""

    title: str
    images: Tensor
    captions: list[str]


@dataclass
class GeneratorSummary:
    """What the demo measured of one G: its deployment EER and its content statistics (with baselines)."""

    deploy_eer: float
    content: dict[str, float] = field(default_factory=dict)
    f_eer: float | None = None  # F's own EER on the same pairs, when they differ from the demo's MNIST pairs
    note: str = ""


def write_summary(out: str | Path, f_eer: float, generators: dict[str, GeneratorSummary], panels: list[Panel]) -> dict:
    """Write ``summary.json`` and ``summary.png`` to ``out``; return the JSON's content."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"f_eer": f_eer} | {
        name: {k: v for k, v in vars(g).items() if v is not None and v != ""} for name, g in generators.items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    _picture(panels, out / "summary.png")
    return summary


def _picture(panels: list[Panel], path: Path, cell: float = 1.25) -> None:
    columns = max(len(p.images) for p in panels)
    fig = plt.figure(figsize=(cell * columns, (cell + 0.55) * len(panels)))
    grid = fig.add_gridspec(len(panels), columns, left=0.01, right=0.99, top=0.97, bottom=0.02, wspace=0.08,
                            hspace=0.6)  # fmt: skip
    for r, panel in enumerate(panels):
        for k in range(len(panel.images)):
            ax = fig.add_subplot(grid[r, k])
            image = panel.images[k].detach().float().cpu().clamp(0, 1).permute(1, 2, 0)
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(panel.captions[k], fontsize=7, labelpad=2)
            if k == 0:
                ax.set_title(panel.title, fontsize=9, loc="left", pad=4)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary_lines(summary: dict) -> list[str]:
    """The terminal's summary: F's EER, then per G its deployment EER and the headline leaks."""
    lines = [f"F alone: test EER {100 * summary['f_eer']:.2f}%"]
    for name, g in summary.items():
        if name == "f_eer":
            continue
        own_f = f" (F alone on these pairs {100 * g['f_eer']:.2f}%)" if "f_eer" in g else ""
        leaks = ", ".join(
            f"{label} {g['content'][key]:.3g} vs {g['content'][key + '_mismatched']:.3g} another's "
            f"(leak {g['content'][key + '_leak']:+.3g})"
            for key, label in HEADLINE
            if key + "_leak" in g["content"]
        )
        lines.append(f"{name}: deploy EER {100 * g['deploy_eer']:.2f}%{own_f}; {leaks}")
    return lines
