"""``distortion evaluate``: the LFW report of a G, or of F alone with refinement from noise (faces).

For every image named in LFW's pair lists it computes what a deployment stores (G(x), optionally
refined against F and passed through a storage format), F(x) and F(stored) once, on the GPU when there
is one, then scores:

- verification on View 2 (10-fold accuracy, EER, ROC AUC, TAR at FAR) and View 1 (DevTest, with the
  threshold from DevTrain) for the three comparisons of :data:`~distortion.metrics.verification.COMPARISONS`;
- distortion over View 2's images: :data:`~distortion.metrics.content.CONTENT_STATISTICS`;
- whether a stored image still looks like a face: the share of images in which each face detector
  finds one, for originals and stored images (detectors G saw in training listed apart);
- the distance ``||F(x) - F(stored)||`` per image against the genuine and impostor distances of originals.

Writes ``report.json``, ``report.md``, ``roc.png``, ``grid.png`` and ``distances.png`` into ``out`` and,
unless disabled, logs the same to an (offline by default) W&B run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_roc
from torchvision.utils import save_image

from distortion.backbones import require_face_backbone
from distortion.deployment.distorter import Distorter, embed_batches
from distortion.deployment.enrolment import Enrolment
from distortion.faces.chip_cache import ChipCache, build_chip_cache
from distortion.faces.detection import FaceDetectionRates, FaceDetectors
from distortion.faces.lfw_protocol import ImageKey, LFWProtocol, pair_table
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.content import ContentMeans
from distortion.metrics.verification import COMPARISONS
from distortion.paths import default_cache_dir, default_out, lfw_root
from distortion.reporting.grids import pair_grid
from distortion.reporting.plots import plot_distances, plot_roc
from distortion.reporting.reports import write_report
from distortion.reporting.wandb_report import log_report_to_wandb
from distortion.runtime import Timer, resolve_device

__all__ = ["evaluate"]


@dataclass
class _Pass:
    """What one pass over the protocol images gathers."""

    embeddings: dict[str, dict[ImageKey, Tensor]] = field(default_factory=lambda: {"orig": {}, "distorted": {}})
    shift: list[Tensor] = field(default_factory=list)
    grid: list[tuple[Tensor, Tensor]] = field(default_factory=list)


def _run(
    distorter: Distorter, cache: ChipCache, keys: list[ImageKey], test: set[ImageKey], batch_size: int,
    device: torch.device, means: ContentMeans | None, faces: FaceDetectionRates,
) -> _Pass:  # fmt: skip
    """Distort and embed every image of ``keys``; the statistics (``means`` when given) only on the ``test``
    images."""
    gathered = _Pass()
    people = {name: i for i, name in enumerate(sorted({name for name, _ in keys}))}
    rows = cache.rows()
    batches = cache.batches([rows[k] for k in keys], batch_size)
    for s, batch in enumerate(embed_batches(batches, distorter.embedding, device, distorter, desc="evaluate")):
        batch_keys = keys[s * batch_size : (s + 1) * batch_size]
        for k, ex, eg in zip(batch_keys, batch.emb_x.cpu(), batch.emb_stored.cpu()):
            gathered.embeddings["orig"][k], gathered.embeddings["distorted"][k] = ex, eg
        chosen = torch.tensor([k in test for k in batch_keys], device=device)
        if not chosen.any():
            continue
        x, g = batch.x[chosen], batch.stored[chosen]
        if means is not None:  # beside the same statistics against another person's photo
            labels = torch.tensor([people[k[0]] for k, c in zip(batch_keys, chosen.tolist()) if c])
            means.update(x, g, labels)
        gathered.shift.append((batch.emb_x[chosen] - batch.emb_stored[chosen]).norm(dim=1).cpu())
        gathered.grid += list(zip(x.cpu(), g.cpu()))[: 16 - len(gathered.grid)]
        faces.update("original", x)
        faces.update("distorted", g)
    return gathered


def evaluate(
    model: ModelSource = ModelSource(),
    data: str | None = None,
    cache: str | None = None,
    out: str | None = None,
    batch_size: int = 32,
    device: str = "auto",
    enrolment: Enrolment = Enrolment(),
    faces: FaceDetectors = FaceDetectors(),
    image_metrics: bool = True,
    limit: int = 0,
    seed: int = 0,
    wandb: bool = True,
) -> dict:
    """Write the LFW report of the G in ``model.ckpt`` (or of F alone, refining from noise).

    Args:
        model: the model (:class:`~distortion.loading.ModelSource`): a G trained on faces (``--model.ckpt``), or
            F alone (``--model.embedding dlib``, with ``--enrolment.refine_steps``), keyed by ``--model.keyed``.
        data, cache: the LFW root (``$DISTORTION_DATA/lfw``) and chip cache (``$DISTORTION_CACHE/lfw_<aligner>``).
        out: the report folder; default ``<checkpoints>/../lfw_report`` (F alone: ``runs/<F>_refined/lfw_report``).
        batch_size: images per forward pass.
        device: ``auto`` (the GPU when there is one), ``cpu``, ``cuda``, ``cuda:1``, ...
        enrolment: how each stored image is made (:class:`~distortion.deployment.enrolment.Enrolment`): refined
            against F (``--enrolment.refine_steps``), stored (``--enrolment.storage png``, ``jpeg75``, ...), and
            for a keyed store the key file (``--enrolment.key``, or ``$DISTORTION_KEY_FILE``): the deployment then
            compares carriers with keyed photos, ``T_k(F(probe))``.
        faces: the face detectors, on the first N View 2 images, originals and stored (0 = all 7,701).
        image_metrics: the change of content and other image statistics (false skips them, the slowest
            part on a CPU, where only verification matters, e.g. storage variants).
        limit: evaluate only the first N protocol images (0 = all), for quick looks and tests;
            pairs with a missing image then count as rejections.
        seed: seed of the noise (carriers, refinement from noise).
        wandb: also log the numbers and images to a W&B run (offline unless WANDB_MODE says otherwise).
    """
    torch.manual_seed(seed)
    run_device = resolve_device(device)
    distorter = load_deployment(model, run_device, enrolment).distorter
    face = require_face_backbone(distorter.embedding, "distortion evaluate")
    protocol = LFWProtocol.load(lfw_root(data))
    chips = build_chip_cache(protocol.root, cache or default_cache_dir(face.aligner), face.aligner)
    keys = [k for k in protocol.images() if k in chips.rows()][: limit or None]
    out_dir = Path(out) if out else default_out(model.ckpt, model.embedding, "lfw_report")
    found, means = faces.counter(), ContentMeans().to(run_device) if image_metrics else None
    timer = Timer(run_device)
    gathered = _run(distorter, chips, keys, protocol.view2_images(), batch_size, run_device, means, found)
    report: dict = {"checkpoint": model.ckpt, "embedding": model.embedding or type(face).__name__,
                    "refine_steps": enrolment.refine_steps, "storage": enrolment.storage,
                    "key_fingerprint": distorter.fingerprint}  # fmt: skip
    for name, sides in _comparisons(gathered, distorter).items():
        report[name] = protocol.report(*sides)
    report["content"] = (means.compute() if means else {}) | {"images": sum(len(s) for s in gathered.shift)}
    report["face_detected"] = found.rates()
    report["embedding_shift"] = _distribution(torch.cat(gathered.shift)) if gathered.shift else {}
    report["timing"] = timer.section(len(keys))
    _write(report, out_dir, protocol, gathered, distorter, wandb)
    return report


def _comparisons(gathered: _Pass, distorter: Distorter) -> dict[str, tuple[dict, dict]]:
    """(enrolment, probe) embeddings of each comparison; a keyed store's deployment probes are keyed photos,
    and its carriers and probes are compared as its matcher compares them."""
    orig, distorted = gathered.embeddings["orig"], gathered.embeddings["distorted"]
    probes = orig
    if distorter.keyed:
        device = distorter.transform.mean.device

        def matched(templates: dict, photos: bool) -> dict:
            stacked = torch.stack(list(templates.values())).to(device)
            stacked = distorter.probe(stacked) if photos else stacked
            return dict(zip(templates, distorter.matched(stacked).cpu()))

        probes, distorted = matched(orig, photos=True), matched(distorted, photos=False)
    return {name: (orig, orig) if name == "orig" else comparison.sides((orig, probes), (distorted, distorted))
            for name, comparison in COMPARISONS.items()}  # fmt: skip


def _distribution(values: Tensor) -> dict[str, float]:
    q = torch.quantile(values, torch.tensor([0.5, 0.95, 0.99]))
    return {"mean": float(values.mean()), "median": float(q[0]), "p95": float(q[1]), "p99": float(q[2])}


def _write(report: dict, out_dir: Path, protocol: LFWProtocol, gathered: _Pass, distorter: Distorter,
           wandb: bool) -> None:  # fmt: skip
    """The report, the grid (16 View 2 originals over what is stored), the ROC and the distances plot."""
    write_report(report, out_dir, "LFW report: distorted faces")
    x, g = (torch.stack(t) for t in zip(*gathered.grid))
    save_image(pair_grid(x, g, per_row=8, scale=1), out_dir / "grid.png")
    curves = {}
    orig = gathered.embeddings["orig"]
    for name, sides in _comparisons(gathered, distorter).items():
        scores, same, _, _ = pair_table(protocol.view2, *sides)
        fpr, tpr, _ = binary_roc(scores.float(), same.long())
        curves[name] = (fpr, tpr)
    plot_roc(curves, out_dir / "roc.png", min_far=1e-3, title="LFW View 2")
    scores, same, _, _ = pair_table(protocol.view2, orig, orig)
    distances = 1 / scores.clamp_min(1e-6) - 1
    shift = torch.cat(gathered.shift)
    plot_distances(shift, distances[same], distances[~same], out_dir / "distances.png", "LFW View 2")
    if wandb:
        images = ["grid", "roc", "distances"]
        log_report_to_wandb(report, out_dir, f"lfw_report_{out_dir.parent.name}", "evaluate", images)
