"""``distortion sweep``: one fit and test per setting, the table, the plot and the Pareto front."""

from __future__ import annotations

import csv

import yaml


def test_sweep_writes_one_row_per_run_a_table_and_a_plot(trained, tmp_path) -> None:

    from distortion.commands.sweep import sweep_main

    out = tmp_path / "sweep"
    rows = sweep_main(
        ["--config", str(trained["generator_config"]), "--alphas", "[0.5,2]", "--betas", "[10]", "--out", str(out),
         "--grid", '{"model.init_args.budget.tau": [0.05]}',
         "--", "--trainer.max_epochs", "1", "--data.init_args.limit_train", "256", "--data.init_args.limit_eval", "256"]
    )  # fmt: skip
    assert [(r["alpha"], r["beta"], r["tau"]) for r in rows] == [(0.5, 10.0, 0.05), (2.0, 10.0, 0.05)]
    with open(out / "sweep.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2
    assert {"tau", "test/deploy/eer", "test/d_mse_pct", "test/reader_acc_distorted"} <= table[0].keys()
    assert (out / "sweep.md").read_text().splitlines()[0].startswith("| # | alpha | beta | tau |")
    assert (out / "sweep.png").stat().st_size > 1000
    hparams = yaml.safe_load((out / "alpha0.5_beta10_tau0.05" / "version_0" / "hparams.yaml").read_text())
    assert hparams["budget"]["tau"] == 0.05  # the grid's value reached the run
    assert (out / "alpha0.5_beta10_tau0.05" / "checkpoints" / "last.ckpt").is_file()

    (out / "alpha2_beta10_tau0.05" / "version_0" / "report.json").unlink()  # as if killed before its test
    again = sweep_main(
        ["--config", str(trained["generator_config"]), "--alphas", "[0.5,2]", "--betas", "[10]", "--out", str(out),
         "--grid", '{"model.init_args.budget.tau": [0.05]}',
         "--", "--trainer.max_epochs", "1", "--data.init_args.limit_train", "256", "--data.init_args.limit_eval", "256"]
    )  # fmt: skip
    assert again[0] == rows[0]  # the finished run's report is reused ...
    assert not (out / "alpha0.5_beta10_tau0.05" / "version_1").exists()  # ... not run again
    assert (out / "alpha2_beta10_tau0.05" / "version_1" / "report.json").is_file()  # the unfinished one runs


def test_pareto_front_keeps_the_undominated_runs() -> None:
    from distortion.commands.sweep import pareto_front

    points = [(1.0, 60.0), (2.0, 70.0), (1.5, 55.0), (3.0, 70.0), (0.5, 40.0)]  # (EER, content change)
    assert pareto_front(points, maximize_y=True) == [4, 0, 1]
    assert pareto_front([(1.0, 0.9), (2.0, 0.2), (2.5, 0.5)], maximize_y=False) == [0, 1]
