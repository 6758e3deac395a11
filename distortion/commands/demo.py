"""``distortion demo`` (``make demo``): the point of the project in minutes on a CPU.

On MNIST it trains F (the paper's MLP, triplet loss), two evaluation readers, the perceptual network P, the
paper's G at the demo's budget and the carrier (G sees a digit only through F(x)), and tests both Gs on the
10,000 test pairs; on LFW it draws carriers of a few faces by refinement from noise against dlib's ResNet
(no training). It ends with ``<out>/summary.png`` (originals, each G's stored images, F's verdict under
each), ``<out>/summary.json`` (``f_eer``; per G its ``deploy_eer`` and content statistics beside their
mismatched baseline) and a few lines in the terminal, and fails with the reason if a G collapsed.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import wandb
from torchvision.datasets import MNIST

from distortion.backbones import DlibResNet
from distortion.cli import main as cli
from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.faces.alignment import align_photo, make_aligner
from distortion.faces.lfw_protocol import first_people
from distortion.imaging.image_io import chips_to_tensor
from distortion.metrics.collapse import collapse_reasons
from distortion.metrics.content import CONTENT_STATISTICS, ContentMeans
from distortion.metrics.verification import best_threshold, pair_scores, view_metrics
from distortion.modules.embedding import load_embedding
from distortion.modules.generator import load_generator_module
from distortion.paths import resolve_data_root
from distortion.precision import native_bfloat16, trainer_precision
from distortion.reporting.demo_summary import GeneratorSummary, Panel, summary_lines, write_summary

__all__ = ["demo"]

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DLIB_THRESHOLD = 1 / (1 + 0.6)  # dlib's "same person" distance 0.6, as a score
# (config, extra arguments): the demo's budget, each run under its config's name in runs/. It is one budget for
# every machine, sized to finish within 10 minutes (environment included) on a 2-core CPU without native
# bfloat16, where every run is float32 (docs/demo.md): F 2 epochs, the readers one epoch of 40,000 digits and P of
# 20,000, the paper's G at width 32 and the carrier one epoch of 20,000 digits each, validated on 1,280 pairs (the
# tests score all 10,000).
READERS = ("--trainer.max_epochs", "1", "--data.init_args.limit_train", "40000")
SEED_OFFSETS = {"mnist_reader2.yaml": 3}  # the second reader: the first's recipe under another seed
G_BUDGET = ("--trainer.max_epochs", "1", "--data.init_args.limit_train", "20000", "--trainer.limit_val_batches", "20")
MODEL_ARGS = {"mnist_generator": ("--model.init_args.generator.init_args.width", "32")}  # fit and test alike
FITS = (
    ("mnist_embedding_mlp.yaml", ("--trainer.max_epochs", "2")),
    ("mnist_reader.yaml", READERS),
    ("mnist_reader2.yaml", READERS),
    ("mnist_perceptual.yaml", ("--trainer.max_epochs", "1", "--data.init_args.limit_train", "20000")),
    ("mnist_generator.yaml", (*G_BUDGET, *MODEL_ARGS["mnist_generator"])),
    ("mnist_carrier.yaml", G_BUDGET),
)
TESTED = {"paper_g": "mnist_generator", "mnist_carrier": "mnist_carrier"}


def demo(out: str = "runs/demo", faces: int = 12, refine_steps: int = 150, data: str | None = None,
         seed: int = 0) -> dict:  # fmt: skip
    """Train and test the demo's Gs on MNIST, draw LFW carriers from noise, write the summary.

    Args:
        out: the summary's folder (``summary.png``, ``summary.json``).
        faces: LFW people (two photos each: one enrolled, one probed) whose carriers are drawn.
        refine_steps: refinement steps from noise against dlib's ResNet, per face.
        data: the data root (``$DISTORTION_DATA``).
        seed: seed of every run and of the noise.
    """
    root = resolve_data_root(data, "MNIST/raw")
    faces_root = resolve_data_root(data, "lfw/lfw-deepfunneled") / "lfw"  # both checked before any training
    precision = trainer_precision()
    print(f"precision: {precision} (bfloat16 {'is' if native_bfloat16() else 'is not'} native on this CPU)")
    for config, extra in FITS:
        _fit(config, extra, root, seed)
    reports = {name: _test(run, root, seed) for name, run in TESTED.items()}
    digits, labels = _digits(root)
    f = load_embedding(str(Path("runs/mnist_embedding_mlp/checkpoints/best.ckpt")))
    threshold = _mnist_threshold(f, root)
    panels = [Panel("MNIST test digits", digits, [f"digit {int(y)}" for y in labels])]
    generators = {}
    for name, run in TESTED.items():
        module = load_generator_module(f"runs/{run}/checkpoints/last.ckpt")
        stored = Distorter(module.embedding, module.generator, Enrolment(storage="png"))(digits)
        panels.append(Panel(f"{name}: stored as PNG", stored, _verdicts(f, digits, stored, threshold)))
        report = reports[name]
        generators[name] = GeneratorSummary(report["test/deploy/eer"], _content(report))
    torch.manual_seed(seed)
    generators["lfw_refined_carrier"], lfw_panels = _lfw(faces_root, faces, refine_steps)
    panels += lfw_panels
    f_eer = reports["paper_g"]["test/orig/eer"]
    summary = write_summary(out, f_eer, generators, panels)
    print("\n".join(["", f"demo summary ({out}/summary.png, {out}/summary.json):", *summary_lines(summary)]))
    collapsed = {name: collapse_reasons(r["test/orig/eer"], r["test/deploy/eer"], r["test/output_diversity"])
                 for name, r in reports.items()}  # fmt: skip
    if any(collapsed.values()):  # a collapsed G is a failed demo, never a result
        reasons = "; ".join(f"{name} COLLAPSED: {', '.join(r)}" for name, r in collapsed.items() if r)
        raise SystemExit(f"demo FAILED: {reasons}")
    return summary


def _run(args: list[str]) -> None:
    """One LightningCLI run in this process, with the demo's quiet settings: no model summary, and Lightning's
    notices (devices found, seeds, tips) at WARNING; progress bars stay. Each run ends its own W&B run, so
    the next one does not log into it."""
    quiet = ["--trainer.enable_model_summary", "false"]
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    argv, sys.argv = sys.argv, sys.argv[:1]  # the arguments are ``args``, not the demo's own command line
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        cli([*args, *quiet])
    finally:
        wandb.finish()
        sys.argv = argv
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _fit(config: str, extra: tuple[str, ...], root: Path, seed: int) -> None:
    print(f"\n== distortion fit --config configs/{config} {' '.join(extra)}")
    _run(["fit", "--config", str(CONFIGS / config), *extra, "--data.init_args.data_dir", str(root),
          "--seed_everything", str(seed + SEED_OFFSETS.get(config, 0))])  # fmt: skip


def _test(run: str, root: Path, seed: int) -> dict:
    """Test ``run``'s last checkpoint on the MNIST test pairs; the test report's numbers."""
    ckpt, extra = f"runs/{run}/checkpoints/last.ckpt", MODEL_ARGS.get(run, ())
    print(f"\n== distortion test --config configs/{run}.yaml --ckpt_path {ckpt} {' '.join(extra)}")
    _run(["test", "--config", str(CONFIGS / f"{run}.yaml"), "--ckpt_path", ckpt, *extra,
          "--data.init_args.data_dir", str(root), "--seed_everything", str(seed)])  # fmt: skip
    latest = max(Path("runs", run).glob("version_*/report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(latest.read_text())


def _content(report: dict) -> dict[str, float]:
    """The content statistics of a test report (each with its mismatched baseline and leak)."""
    names = [f"{s}{suffix}" for s in CONTENT_STATISTICS for suffix in ("", "_mismatched", "_leak")]
    return {name: report[f"test/{name}"] for name in names if f"test/{name}" in report}


def _digits(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The first test image of each digit."""
    test = MNIST(str(root), train=False)
    first = [int((test.targets == c).nonzero()[0]) for c in range(10)]
    return test.data[first].unsqueeze(1).float() / 255, test.targets[first]


@torch.no_grad()
def _mnist_threshold(f: torch.nn.Module, root: Path, images: int = 2000) -> float:
    """F's best threshold on all pairs of the first ``images`` test digits (originals)."""
    test = MNIST(str(root), train=False)
    emb = f(test.data[:images].unsqueeze(1).float() / 255)
    i, j = torch.triu_indices(images, images, 1)
    return float(best_threshold(pair_scores(emb[i], emb[j]), test.targets[i] == test.targets[j]))


@torch.no_grad()
def _verdicts(f: torch.nn.Module, x: torch.Tensor, stored: torch.Tensor, threshold: float) -> list[str]:
    """F's verdict on each stored image against its own original: ``F: match`` or ``F: no match``, with the score."""
    scores = pair_scores(f(x), f(stored))
    return [f"F: {'match' if s >= threshold else 'NO match'} {s:.2f}" for s in scores.tolist()]


def _lfw(root: Path, people: int, refine_steps: int) -> tuple[GeneratorSummary, list[Panel]]:
    """Carriers of the first photo of ``people`` LFW people, refined from noise against dlib's ResNet and stored
    as PNG; probed with each person's second photo."""
    chosen = first_people(root, people)
    names, photos = list(chosen), list(chosen.values())
    aligner = make_aligner("dlib", fast=True)
    chips = [[align_photo(p, aligner).chip for p in pair] for pair in photos]
    enrolled, probes = (chips_to_tensor(np.stack([c[k] for c in chips])) for k in (0, 1))
    f = DlibResNet().eval().requires_grad_(False)
    enrolment = Enrolment(refine_steps=refine_steps, storage="png")
    print(f"\n== carriers of {people} LFW faces: refinement from noise, {refine_steps} steps against dlib's ResNet")
    stored = Distorter(f, None, enrolment)(enrolled)
    with torch.no_grad():
        e_stored, e_probe, e_enrolled = f(stored), f(probes), f(enrolled)
    i, j = torch.meshgrid(torch.arange(people), torch.arange(people), indexing="ij")
    same = (i == j).flatten()
    deploy = view_metrics(pair_scores(e_stored[i.flatten()], e_probe[j.flatten()]), same)["eer"]
    own = view_metrics(pair_scores(e_enrolled[i.flatten()], e_probe[j.flatten()]), same)["eer"]
    means = ContentMeans()
    means.update(enrolled, stored, torch.arange(people))
    genuine = pair_scores(e_stored, e_probe).tolist()
    summary = GeneratorSummary(
        deploy,
        means.compute(),
        f_eer=own,
        note=f"{people} people, {people} genuine and {people * (people - 1)} impostor pairs",
    )
    panels = [
        Panel("LFW photos (enrolled)", enrolled, [n.replace("_", " ")[:18] for n in names]),
        Panel("LFW carriers, refined from noise, PNG; F vs the person's other photo", stored,
              [f"F: {'match' if s >= DLIB_THRESHOLD else 'NO match'} {s:.2f}" for s in genuine]),
    ]  # fmt: skip
    return summary, panels
