"""Offline sweep over the loss weights: one fit + test per (alpha, beta), a table and a trade-off plot.

``distortion sweep --config configs/mnist_generator.yaml --alphas [0.5,1,2] --betas [1,10]``
writes ``sweep.csv``, ``sweep.md`` and ``sweep.png`` (distortion against deployment EER, one point
per run) into ``--out``. Arguments after ``--`` go to every run (e.g. ``-- --trainer.max_epochs 1``).
For online sweeps use the W&B definition in ``configs/sweep_wandb.yaml``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jsonargparse import ArgumentParser  # noqa: E402

from distortion.cli import DistortionCLI  # noqa: E402

COLUMNS = (
    "alpha",
    "beta",
    "test/orig/eer",
    "test/deploy/eer",
    "test/distorted/eer",
    "test/d_mse_pct",
    "test/content_change_pct",
    "test/reader_acc_distorted",
    "test/reader2_acc_distorted",
)


class SweepRunCLI(DistortionCLI):
    """A LightningCLI for one sweep run: its loggers and checkpoints are redirected into ``run_dir``."""

    def __init__(self, run_dir: Path, **kwargs) -> None:
        self.run_dir = run_dir
        super().__init__(run=False, **kwargs)

    def before_instantiate_classes(self) -> None:
        trainer = self.config.trainer
        for logger in trainer.logger or []:
            logger.init_args.save_dir = str(self.run_dir.parent)
            logger.init_args.name = self.run_dir.name
        for callback in trainer.callbacks or []:
            if callback.class_path.endswith("ModelCheckpoint"):
                callback.init_args.dirpath = str(self.run_dir / "checkpoints")


def run_one(config: str, alpha: float, beta: float, out: Path, extra: list[str]) -> dict[str, float]:
    """Fit and test one generator; return its test report with ``alpha`` and ``beta`` added."""
    run_dir = out / f"alpha{alpha:g}_beta{beta:g}"
    args = ["--config", config, "--model.init_args.alpha", str(alpha), "--model.init_args.beta", str(beta), *extra]
    cli = SweepRunCLI(run_dir, args=args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(cli.model, datamodule=cli.datamodule)
    report = json.loads((Path(cli.trainer.log_dir) / "report.json").read_text())
    return {"alpha": alpha, "beta": beta, **report}


def write_table(rows: list[dict[str, float]], out: Path) -> None:
    """``sweep.csv`` with every metric and ``sweep.md`` with the main ones, one row per run."""
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k not in COLUMNS, k))
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(f"{row.get(k, float('nan')):.4g}" for k in COLUMNS) + " |" for row in rows]
    (out / "sweep.md").write_text("\n".join(lines) + "\n")


def plot_tradeoff(rows: list[dict[str, float]], path: Path) -> None:
    """Distortion (100 * d_MSE and content change) against the deployment EER, one point per run."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    eer = [100 * r["test/deploy/eer"] for r in rows]
    for key, marker in (("test/d_mse_pct", "o"), ("test/content_change_pct", "s")):
        ax.scatter(eer, [r[key] for r in rows], marker=marker, label=key.removeprefix("test/"))
    for r, e in zip(rows, eer):
        ax.annotate(f"a={r['alpha']:g}, b={r['beta']:g}", (e, r["test/d_mse_pct"]), fontsize=7)
    ax.set(xlabel="deployment EER (%)", ylabel="distortion (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sweep_main(argv: list[str]) -> list[dict[str, float]]:
    """Parse the sweep's arguments, run the grid, write the table and the plot."""
    parser = ArgumentParser(prog="distortion sweep", description=__doc__)
    parser.add_argument("--config", required=True, help="generator config to sweep")
    parser.add_argument("--alphas", type=list[float], default=[1.0], help="weights of the image distance")
    parser.add_argument("--betas", type=list[float], default=[10.0], help="weights of the threshold loss")
    parser.add_argument("--out", default="runs/sweep", help="folder for the runs, the table and the plot")
    split = argv.index("--") if "--" in argv else len(argv)
    cfg, extra = parser.parse_args(argv[:split]), argv[split + 1 :]
    if any(a < 0 for a in cfg.alphas) or any(b < 0 for b in cfg.betas):
        parser.error(f"alphas and betas must be >= 0, got {cfg.alphas} and {cfg.betas}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_one(cfg.config, a, b, out, extra) for a in cfg.alphas for b in cfg.betas]
    write_table(rows, out)
    plot_tradeoff(rows, out / "sweep.png")
    print(f"sweep of {len(rows)} runs written to {out}/sweep.csv, sweep.md, sweep.png")
    return rows
