"""Offline sweep over the loss weights: one fit + test per setting, a table and trade-off plots.

``distortion sweep --config configs/mnist_generator.yaml --alphas [0.5,1,2] --betas [1,10]``
runs the grid of alpha and beta; ``--grid`` adds any other config values, e.g.
``--grid '{"model.init_args.perceptual.gamma": [0.5, 2], "model.init_args.image.distance": [{"decorrelation": 1}]}'``
(the full product of all lists is run). It writes ``sweep.csv``, ``sweep.md`` and ``sweep.png``
(distortion and reader accuracy against the deployment EER, one point per run, with the Pareto front)
into ``--out``; a run whose folder already holds a test report is not run again, so a killed sweep
restarted with the same command goes on where it stopped. Every run also logs to the W&B and CSV
loggers of its config. Arguments after ``--`` go to every run (e.g. ``-- --trainer.max_epochs 1``).
For online sweeps use the W&B definition in ``configs/sweep_wandb.yaml``.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jsonargparse import ArgumentParser  # noqa: E402

from distortion.lightning_cli import DistortionCLI  # noqa: E402
from distortion.metrics.collapse import CollapseError  # noqa: E402

COLUMNS = (
    "test/orig/eer",
    "test/deploy/eer",
    "test/distorted/eer",
    "test/collapsed",
    "test/output_diversity",
    "test/d_mse_pct",
    "test/content_change_pct",
    "test/reader_acc_distorted",
    "test/reader_acc_distorted_stretched",
    "test/reader_acc_distorted_local_contrast",
    "test/reader2_acc_distorted",
    "test/reader2_acc_distorted_stretched",
    "test/reader2_acc_distorted_local_contrast",
)


class SweepRunCLI(DistortionCLI):
    """A LightningCLI for one sweep run, named after its setting: its logs and checkpoints go to ``run_dir``."""

    def __init__(self, run_dir: Path, **kwargs) -> None:
        self.run_dir = run_dir
        super().__init__(run=False, **kwargs)

    def before_instantiate_classes(self) -> None:
        config = self.config
        config.name = self.run_dir.name
        for logger in config.trainer.logger or []:
            logger.init_args.save_dir = str(self.run_dir.parent)
        for callback in config.trainer.callbacks or []:
            if callback.class_path.endswith("ModelCheckpoint"):
                callback.init_args.dirpath = None
        super().before_instantiate_classes()


def short_key(key: str) -> str:
    """The column and folder name of a swept config key: its last part
    (``model.init_args.perceptual.gamma`` -> ``gamma``)."""
    return key.rsplit(".", 1)[-1]


def setting_name(setting: dict[str, Any]) -> str:
    """A folder name for one setting: ``alpha2_gamma0.5``, nested values flattened."""
    parts = []
    for key, value in setting.items():
        text = (
            json.dumps(value)
            if isinstance(value, dict | list)
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )
        parts.append(short_key(key) + re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-"))
    return "_".join(parts)


def run_one(config: str, setting: dict[str, Any], out: Path, extra: list[str]) -> dict[str, Any]:
    """Fit and test one generator with the config values ``setting`` (``{"model.init_args.image.alpha": 2.0}``);
    return its test report with the setting's values added under their last key part."""
    run_dir = out / setting_name(setting)
    summary = {**{short_key(key): value for key, value in setting.items()}, "run": run_dir.name}
    finished = finished_report(run_dir)
    if finished is not None:  # a sweep that was killed goes on where it stopped
        print(f"{run_dir.name}: finished before, its report is reused ({finished})")
        return {**summary, **json.loads(finished.read_text())}
    overrides = [arg for key, value in setting.items() for arg in (f"--{key}", _cli_value(value))]
    cli = SweepRunCLI(run_dir, args=["--config", config, *overrides, *extra])
    for stage in (cli.trainer.fit, cli.trainer.test):
        try:
            stage(cli.model, datamodule=cli.datamodule)
        except CollapseError as error:  # a collapsed G is a result of the sweep, not the end of it
            print(f"{run_dir.name}: {error}")
    report = json.loads((Path(cli.trainer.log_dir) / "report.json").read_text())
    return {**summary, **report}


def finished_report(run_dir: Path) -> Path | None:
    """The test report of the newest finished version of a run folder, or None when no version finished."""
    reports = sorted(run_dir.glob("version_*/report.json"), key=lambda p: int(p.parent.name.split("_")[1]))
    return reports[-1] if reports else None


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def pareto_front(points: list[tuple[float, float]], maximize_y: bool) -> list[int]:
    """Indices of the points not dominated by another, for a low x (the EER) and a high or low y,
    ordered by x: the best trade-offs a sweep found."""
    sign = 1 if maximize_y else -1
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 <= x and sign * y2 >= sign * y) and (x2 < x or sign * y2 > sign * y) for x2, y2 in points)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def write_table(rows: list[dict[str, Any]], out: Path, settings: list[str]) -> None:
    """``sweep.csv`` with every metric and ``sweep.md`` with the settings and main metrics, one row per run."""
    columns = [*settings, *(k for k in COLUMNS if k not in settings and any(k in row for row in rows))]
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k not in columns, k))
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| # | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    lines += [f"| {i} | " + " | ".join(_cell(row.get(k)) for k in columns) + " |" for i, row in enumerate(rows, 1)]
    (out / "sweep.md").write_text("\n".join(lines) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else json.dumps(value) if isinstance(value, dict | list) else str(value)


def plot_tradeoff(rows: list[dict[str, Any]], path: Path) -> None:
    """Content change, 100 * d_MSE and reader accuracy on G(x) against the deployment EER, one point per
    run (labelled with its row number in ``sweep.md``), each panel with its Pareto front (low EER with high
    distortion, or with low reader accuracy)."""
    panels = [("test/content_change_pct", True), ("test/d_mse_pct", True), ("test/reader_acc_distorted", False)]
    panels = [(key, up) for key, up in panels if all(key in r for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), dpi=120, squeeze=False)
    eer = [100 * r["test/deploy/eer"] for r in rows]
    for ax, (key, maximize) in zip(axes[0], panels):
        values = [r[key] * (100 if key.startswith("test/reader") else 1) for r in rows]
        ax.scatter(eer, values, s=18)
        front = pareto_front(list(zip(eer, values)), maximize)
        ax.plot([eer[i] for i in front], [values[i] for i in front], "r-", lw=1, label="Pareto front")
        for i, (x, y) in enumerate(zip(eer, values), 1):
            ax.annotate(str(i), (x, y), fontsize=7)  # the row number in sweep.md
        ax.set(xlabel="deployment EER (%)", ylabel=key.removeprefix("test/") + (" (%)" if "reader" in key else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sweep(
    config: str, alphas: tuple[float, ...] = (), betas: tuple[float, ...] = (),
    grid: dict[str, list[Any]] | None = None, out: str = "runs/sweep", run_args: tuple[str, ...] = (),
) -> list[dict[str, Any]]:  # fmt: skip
    """Run the grid of settings, one fit + test each, and write the table and the plot.

    Args:
        config: the generator config to sweep.
        alphas: weights of the image distance (default: the config's).
        betas: weights of the threshold loss (default: the config's).
        grid: other config keys and their values.
        out: folder for the runs, the table and the plot.
        run_args: arguments for every run (what follows ``--`` on the command line).
    """
    if any(a < 0 for a in alphas) or any(b < 0 for b in betas):
        raise ValueError(f"alphas and betas must be >= 0, got {list(alphas)} and {list(betas)}")
    grid = grid or {}
    if any(not values for values in grid.values()):
        raise ValueError(f"every --grid key needs at least one value, got {grid}")
    grid = {"model.init_args.image.alpha": list(alphas), "model.init_args.budget.beta": list(betas), **grid}
    grid = {key: values for key, values in grid.items() if values}
    if not grid:
        raise ValueError("nothing to sweep: give --alphas, --betas or --grid")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    rows = [run_one(config, setting, folder, list(run_args)) for setting in settings]
    write_table(rows, folder, [short_key(key) for key in grid])
    plot_tradeoff(rows, folder / "sweep.png")
    print(f"sweep of {len(rows)} runs written to {folder}/sweep.csv, sweep.md, sweep.png")
    return rows


def sweep_main(argv: list[str]) -> list[dict[str, Any]]:
    """``distortion sweep``: the flags of :func:`sweep`, and what follows ``--`` as its ``run_args``."""
    split = argv.index("--") if "--" in argv else len(argv)
    args = argv[:split] + (["--run_args", json.dumps(argv[split + 1 :])] if split < len(argv) else [])
    parser = ArgumentParser(prog="distortion sweep", description=__doc__.split("\n")[0])
    parser.add_function_arguments(sweep)
    arguments = parser.parse_args(args).as_dict()
    try:
        return sweep(**arguments)
    except ValueError as error:  # a setting the sweep cannot run: one line, exit 2
        parser.error(str(error))
