"""``distortion privacy``: the privacy evidence for what a deployment stores, on MNIST or LFW
(ISO/IEC 24745 and 30136).

- Irreversibility: two attacks (:mod:`distortion.attacks.inversion`) trained on the same photos of the
  training identities, with the same network, steps and loss: H on (stored image, x), and the template
  inverter H' on (F(x), x), the floor no stored image can go below. Reported on the test pairs: SSIM
  and PSNR to x, whether the stand-in for a person (the digit reader; the face detectors) recognises
  the reconstruction, and the share of reconstructions F accepts as the person at the threshold for
  FAR 0.1% (against the same image and against another image of the person); the stored image itself
  is scored the same way, and the ``bound`` section says how far H is above H'.
- Renewability and unlinkability: with a second G trained with another seed ("re-issued"), mated
  scores compare F(stored1(a)) with F(stored2(b)) for the genuine test pairs, non-mated scores for the
  impostor pairs; D_sys and D(s) of Gomez-Barrero et al. (:mod:`distortion.metrics.unlinkability`) and the EER
  of cross-generator matching.
- A second recognizer: whether another embedding network still matches the stored image to x.

What is stored is a G's output (``ckpt``) or F's refinement from noise (``embedding`` with
``enrolment.refine_steps``), optionally refined and passed through a storage format. Everything runs on the GPU
when there is one. Writes ``report.json``, ``report.md``, ``grid.png`` (originals, stored, H, H'),
``unlinkability.png`` and its scores ``unlinkability_scores.npz`` into ``out``, and logs them to an
(offline by default) W&B run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.utils import save_image

from distortion.attacks.inversion import AttackBudget, TemplateInverter, make_inverter, train_inverter
from distortion.backbones import FaceBackbone
from distortion.data.subsets import seeded_subset
from distortion.datamodules import LFWDataModule, MNISTDataModule
from distortion.datamodules.base import SplitDataModule
from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.faces.detection import FaceDetectionRates, FaceDetectors
from distortion.imaging.statistics import psnr, ssim
from distortion.loading import ModelSource, load_deployment
from distortion.metrics.content import MismatchedPartners, leak
from distortion.metrics.unlinkability import global_unlinkability
from distortion.metrics.verification import (
    accept_rate,
    accuracy_at_threshold,
    best_threshold,
    pair_scores,
    threshold_at_far,
    view_metrics,
)
from distortion.modules.base import load_frozen
from distortion.modules.embedding import load_embedding
from distortion.modules.reader import ReaderModule
from distortion.paths import default_out
from distortion.reporting.grids import pair_grid
from distortion.reporting.keyed_privacy import keyed_privacy
from distortion.reporting.plots import plot_unlinkability
from distortion.reporting.reports import flatten_report, write_report
from distortion.reporting.wandb_report import log_report_to_wandb
from distortion.runtime import Timer, place, resolve_device

__all__ = ["privacy"]

FAR = 1e-3  # the operating point of the attack success rate
# what each kind of image is, in the columns and the report
KINDS = {"distorted": "g_a", "reconstructed": "r_a", "template_reconstructed": "t_a"}


@dataclass
class Attackers:
    """The two trained attackers and what their training reported."""

    inverse: nn.Module
    template: nn.Module
    inverse_training: dict[str, float]
    template_training: dict[str, float]


def privacy(
    model: ModelSource = ModelSource(),
    renewed_ckpt: str | None = None,
    second_embedding: str | None = None,
    reader_ckpt: str | None = None,
    data: str | None = None,
    cache: str | None = None,
    out: str | None = None,
    device: str = "auto",
    enrolment: Enrolment = Enrolment(),
    attack: AttackBudget = AttackBudget(),
    limit_pairs: int = 0,
    faces: FaceDetectors = FaceDetectors(images=500, cnn_images=100),
    batch_size: int = 64,
    seed: int = 0,
    wandb: bool = True,
    tokens: bool = False,
) -> dict:
    """Write the privacy report of the G in ``model.ckpt`` (or of F's refinement from noise), MNIST or faces.

    Args:
        model: the model under attack (:class:`~distortion.loading.ModelSource`): a G (``--model.ckpt``), or F
            alone (``--model.embedding``: a checkpoint or a backbone name) refined from noise; ``--model.keyed``
            keys it (a keyed carrier's checkpoint has its own transform).
        renewed_ckpt: a G trained like ``model.ckpt`` with another seed, for renewability and unlinkability.
        second_embedding: another recognizer: a checkpoint (MNIST) or a backbone name (``facenet``).
        reader_ckpt: MNIST: the evaluation reader, which reads originals, stored images and reconstructions.
        data, cache: the data root (``$DISTORTION_DATA``); faces: the chip cache (``$DISTORTION_CACHE/lfw_<aligner>``).
        out: the report folder; default ``<folder of the checkpoints>/../privacy``.
        device: ``auto`` (the GPU when there is one), ``cpu``, ``cuda``, ...
        enrolment: how each stored image is made (see ``evaluate``): the attackers and the scores see the images
            as stored (``--enrolment.storage png``); a keyed store's key file (``--enrolment.key``, or
            ``$DISTORTION_KEY_FILE``) adds the ``keyed`` sections (replay, linkage across keys, the insider,
            inversion without the key, revocation; docs/keyed.md).
        attack: the attackers' training: photos, steps, batch size, lr and U-Net size.
        limit_pairs: score only the first N test pairs (0 = all: MNIST 10,000, LFW View 2 6,000).
        faces: the face detectors (LFW only), on the first N test images of each kind.
        batch_size: evaluation batch size.
        seed: seed of the noise, the attackers' initialisation and their data order.
        wandb: also log the numbers and images to a W&B run.
        tokens: a keyed store: also the ``keyed_token_*`` sections, the same store with each person's token beside
            the key, attacked with each secret stolen, and linkage across two systems in both modes (docs/keyed.md).
    """
    torch.manual_seed(seed)
    run_device = resolve_device(device)
    distorter = load_deployment(model, run_device, enrolment).distorter
    if tokens and not distorter.keyed:
        raise ValueError("--tokens: a person's token keys a keyed store; give a keyed model and its key")
    renewed = load_deployment(ModelSource(renewed_ckpt), run_device, enrolment).distorter if renewed_ckpt else None
    second, reader = _judges(second_embedding, reader_ckpt, run_device)  # inputs checked before training
    face = distorter.embedding if isinstance(distorter.embedding, FaceBackbone) else None
    datamodule = _datamodule(face, data, cache, batch_size, seed)
    out_dir = Path(out) if out else default_out(model.ckpt, model.embedding, "privacy")
    timer = Timer(run_device)
    attackers = _train_attackers(distorter, datamodule, attack, seed, run_device)
    found = faces.counter() if face else None
    table, grid = _score(distorter, attackers, renewed, second, reader, found, datamodule, batch_size, limit_pairs)
    report: dict = {"checkpoint": model.ckpt, "embedding": model.embedding, "renewed_checkpoint": renewed_ckpt,
                    "refine_steps": enrolment.refine_steps, "storage": enrolment.storage,
                    "pairs": len(table["same"])}  # fmt: skip
    report |= _sections(table, attackers, found, out_dir, renewed is not None, second_embedding)
    if distorter.keyed:  # one report section per attack: keyed_replay, keyed_linkage, ...
        keyed_sections = keyed_privacy(distorter, datamodule.datasets["train"], datamodule.datasets["test"], attack,
                                       limit_pairs, batch_size, seed, run_device, tokens=tokens)  # fmt: skip
        report |= {f"keyed_{name}": flatten_report(s, numbers_only=False) for name, s in keyed_sections.items()}
    report["timing"] = timer.section(len(table["same"]))
    _write(report, grid, out_dir, 1 if face else 3, wandb)
    return report


def _judges(second_embedding: str | None, reader_ckpt: str | None, device: torch.device) -> tuple:
    """The second recognizer and the MNIST reader, when given, frozen on ``device``."""
    second = load_embedding(second_embedding) if second_embedding else None
    reader = load_frozen(ReaderModule, reader_ckpt, "net") if reader_ckpt else None
    place(device, second, reader)
    return second, reader


def _write(report: dict, grid: list[Tensor], out_dir: Path, scale: int, wandb: bool) -> None:
    """``report.json``, ``report.md`` and ``grid.png`` (originals, stored, H, H'); the W&B run."""
    write_report(report, out_dir, "Privacy report")
    save_image(pair_grid(*grid, per_row=8, scale=scale), out_dir / "grid.png")
    if wandb:
        log_report_to_wandb(report, out_dir, f"privacy_{out_dir.parent.name}", "privacy", ["grid", "unlinkability"])


def _sections(
    table: dict[str, Tensor], attackers: Attackers, faces: FaceDetectionRates | None, out_dir: Path, renewed: bool,
    second: str | None,
) -> dict[str, dict]:  # fmt: skip
    """The report's sections: both attacks, the bound, and unlinkability and the second recognizer when given."""
    sections: dict[str, dict] = {}
    seen = {"x_a": "original", "g_a": "distorted", "r_a": "reconstructed"}
    sections["inversion"] = _attack_section(table, "r_a", attackers.inverse_training, stored=True)
    sections["inversion"] |= _recognised(table, faces, seen)
    sections["template_inversion"] = _attack_section(table, "t_a", attackers.template_training, stored=False)
    sections["template_inversion"] |= _recognised(table, faces, {"t_a": "template_reconstructed"})
    sections["bound"] = _bound(sections["inversion"], sections["template_inversion"])
    if renewed:
        sections["unlinkability"] = _unlinkability_section(table, out_dir)
    if second is not None:
        sections["second_recognizer"] = {"name": second} | _second_section(table)
    return sections


def _datamodule(face: FaceBackbone | None, data: str | None, cache: str | None, batch_size: int,
                seed: int) -> SplitDataModule:  # fmt: skip
    """The training photos and test pairs of F's kind of data: LFW for a face backbone, else MNIST."""
    if face is not None:
        datamodule = LFWDataModule(data, cache, face.aligner, batch_size=batch_size, seed=seed)
    else:
        datamodule = MNISTDataModule(data_dir=data, batch_size=batch_size, seed=seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    return datamodule


def _attack_pool(
    distorter: Distorter, photos: Dataset, count: int, batch_size: int, seed: int, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """``count`` training photos (0 = all, a seeded choice), what is stored of them and their F(x), on the CPU
    (images in float16)."""
    photos = seeded_subset(photos, count, seed)
    xs, stored, embs = [], [], []
    for batch in DataLoader(photos, batch_size=batch_size):
        embedded = distorter.embed(batch[0].to(device).float())
        xs.append(embedded.x.half().cpu())
        stored.append(embedded.stored.half().cpu())
        embs.append(embedded.emb_x.cpu())
    return torch.cat(xs), torch.cat(stored), torch.cat(embs)


def _train_attackers(
    distorter: Distorter, datamodule: SplitDataModule, budget: AttackBudget, seed: int, device: torch.device
) -> Attackers:
    """H on (stored, x) and H' on (F(x), x), the same photos, steps, order and loss."""
    b = budget
    x, stored, emb = _attack_pool(distorter, datamodule.datasets["train"], b.images, b.batch_size, seed, device)
    order = torch.Generator().manual_seed(seed)
    inverse = make_inverter(x.shape[1], b.depth, b.width).to(device)
    inverse_training = train_inverter(inverse, DataLoader(TensorDataset(stored, x), b.batch_size, shuffle=True,
                                                          generator=order), b.steps, b.lr)  # fmt: skip
    order.manual_seed(seed)
    template = TemplateInverter(emb.shape[1], tuple(x.shape[1:]), b.depth, b.width).to(device)
    template_training = train_inverter(template, DataLoader(TensorDataset(emb, x), b.batch_size, shuffle=True,
                                                            generator=order), b.steps, b.lr)  # fmt: skip
    return Attackers(inverse.eval(), template.eval(), inverse_training, template_training)


@torch.no_grad()
def _score(
    distorter: Distorter, attackers: Attackers, renewed: Distorter | None, second: nn.Module | None,
    reader: nn.Module | None, faces: FaceDetectionRates | None, datamodule: SplitDataModule, batch_size: int,
    limit: int,
) -> tuple[dict[str, Tensor], list[Tensor]]:  # fmt: skip
    """One pass over the test pairs: every embedding, image statistic and verdict, as columns."""
    f, device = distorter.embedding, next(distorter.embedding.parameters()).device
    cols: dict[str, list[Tensor]] = defaultdict(list)
    grid: list[list[Tensor]] = [[], [], [], []]
    partners = MismatchedPartners()  # the baseline: each image's statistics against another person's photo
    for batch in DataLoader(datamodule.datasets["test"], batch_size=batch_size):
        x_a, x_b = batch.x_a.to(device), batch.x_b.to(device)
        other, found = partners(x_a, batch.y_a.to(device))
        a = distorter.embed(x_a)
        emb_a = a.emb_x
        images = {"x_a": x_a, "g_a": a.stored}
        images["r_a"] = attackers.inverse(images["g_a"]).float().clamp(0, 1)
        images["t_a"] = attackers.template(emb_a).float().clamp(0, 1)
        cols["same"].append(batch.same.bool())
        cols["emb_x_a"].append(emb_a.cpu())
        emb_b = f(x_b).float()
        cols["emb_x_b"].append(emb_b.cpu())
        for key in KINDS.values():
            emb = a.emb_stored if key == "g_a" else f(images[key]).float()
            cols[f"emb_{key}"].append(emb.cpu())
            for name, statistic in (("ssim", ssim), ("psnr", psnr)):
                cols[f"{name}_{key}"].append(statistic(x_a, images[key]).cpu())
                mismatched = statistic(other, images[key]).double()
                cols[f"{name}_{key}_mismatched"].append(torch.where(found, mismatched, float("nan")).cpu())
        if renewed is not None:
            cols["emb_renewed_b"].append(renewed.embed(x_b, emb_b).emb_stored.cpu())
        if second is not None:
            for key, image in (("x_a", x_a), ("x_b", x_b), ("g_a", images["g_a"])):
                cols[f"second_{key}"].append(second(image).float().cpu())
        if reader is not None:
            for key in ("x_a", *KINDS.values()):
                cols[f"read_{key}"].append((reader(images[key]).argmax(1) == batch.y_a.to(device)).cpu())
        if faces is not None:
            faces.update("original", x_a)
            for kind, key in KINDS.items():
                faces.update(kind, images[key])
        for column, key in zip(grid, ("x_a", *KINDS.values())):
            column += list(images[key][: 16 - len(column)].cpu())
        if limit and sum(len(s) for s in cols["same"]) >= limit:
            break
    table = {k: torch.cat(v)[: limit or None] for k, v in cols.items()}
    return table, [torch.stack(column) for column in grid]


def _attack_section(t: dict[str, Tensor], key: str, training: dict[str, float], stored: bool) -> dict[str, float]:
    """Image similarity of an attack's reconstructions (column ``key``) to x and how often F accepts them
    as the original person at the FAR-0.1% threshold of original pairs; with ``stored``, the same for
    the stored image itself."""
    same = t["same"]
    originals = pair_scores(t["emb_x_a"], t["emb_x_b"])
    threshold = threshold_at_far(originals[~same], FAR)
    section: dict[str, float] = {"threshold_far_1e-3": float(threshold)}
    if stored:
        section["accepted_other_image_original"] = accept_rate(originals[same], threshold)
    for column, name in ((("g_a", "distorted"),) if stored else ()) + ((key, "reconstructed"),):
        for statistic in ("ssim", "psnr"):  # beside the same statistic against another person's photo
            own = float(t[f"{statistic}_{column}"].mean())
            mismatched = float(t[f"{statistic}_{column}_mismatched"].nanmean())
            section |= {f"{statistic}_{name}": own, f"{statistic}_{name}_mismatched": mismatched,
                        f"{statistic}_{name}_leak": leak(statistic, own, mismatched)}  # fmt: skip
        section[f"accepted_same_image_{name}"] = accept_rate(pair_scores(t[f"emb_{column}"], t["emb_x_a"]), threshold)
        other = pair_scores(t[f"emb_{column}"], t["emb_x_b"])
        section[f"accepted_other_image_{name}"] = accept_rate(other[same], threshold)
        section[f"false_accept_{name}"] = accept_rate(other[~same], threshold)
    return section | {f"attack_{k}": v for k, v in training.items()}


def _recognised(t: dict[str, Tensor], faces: FaceDetectionRates | None, kinds: dict[str, str]) -> dict[str, float]:
    """The stand-in for a person on the ``kinds`` (column -> name) of images: reader accuracy, or the
    face-detection rates (with each detector's image count)."""
    section = {f"reader_acc_{name}": float(t[f"read_{key}"].float().mean()) for key, name in kinds.items()
               if f"read_{key}" in t}  # fmt: skip
    if faces is not None:
        rates = faces.rates()
        section |= {f"face_detected/{k}": v for k, v in rates.items() if k.split("/")[-2] in kinds.values()}
        section |= {f"face_detected/{k}": v for k, v in rates.items() if k.startswith("images/")}
    return section


def _bound(inversion: dict[str, float], template: dict[str, float]) -> dict[str, float | bool]:
    """How far the attack on the stored image gets beyond the attack on the template alone."""
    ssim_gap = inversion["ssim_reconstructed"] - template["ssim_reconstructed"]
    key = "accepted_other_image_reconstructed"
    accept_gap = 100 * (inversion[key] - template[key])
    return {"ssim_gap": ssim_gap, "accepted_other_image_gap_points": accept_gap,
            "reached": bool(ssim_gap <= 0.02 and accept_gap <= 2.0)}  # fmt: skip


def _unlinkability_section(t: dict[str, Tensor], out_dir: Path) -> dict[str, float]:
    """Mated / non-mated scores across the two generators, D_sys, the cross-generator EER, and the plot."""
    same = t["same"]
    cross = pair_scores(t["emb_g_a"], t["emb_renewed_b"])
    mated, non_mated = cross[same], cross[~same]
    section = {"d_sys": float(global_unlinkability(mated, non_mated))}
    section |= {f"cross_generator_{k}": v for k, v in view_metrics(cross, same).items()}
    deploy = view_metrics(pair_scores(t["emb_g_a"], t["emb_x_b"]), same)
    section |= {f"same_generator_deploy_{k}": v for k, v in deploy.items()}
    section |= {"mated_scores": int(same.sum()), "non_mated_scores": int((~same).sum())}
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "unlinkability_scores.npz", mated=mated.numpy(), non_mated=non_mated.numpy())
    plot_unlinkability(mated, non_mated, out_dir / "unlinkability.png", section["d_sys"])
    return section


def _second_section(t: dict[str, Tensor]) -> dict[str, float]:
    """The second recognizer at its own operating point (best threshold on original pairs)."""
    same = t["same"]
    originals = pair_scores(t["second_x_a"], t["second_x_b"])
    deploy = pair_scores(t["second_g_a"], t["second_x_b"])
    threshold = best_threshold(originals, same)
    section = {
        "accuracy_original": accuracy_at_threshold(originals, same, threshold),
        "accuracy_deploy": accuracy_at_threshold(deploy, same, threshold),
    }
    section |= {f"original_{k}": v for k, v in view_metrics(originals, same).items()}
    section |= {f"deploy_{k}": v for k, v in view_metrics(deploy, same).items()}
    far_threshold = threshold_at_far(originals[~same], FAR)
    same_image = pair_scores(t["second_g_a"], t["second_x_a"])
    section["accepted_same_image_distorted"] = accept_rate(same_image, far_threshold)
    return section
