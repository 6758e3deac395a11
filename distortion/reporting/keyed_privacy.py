"""The keyed part of ``distortion privacy``: a keyed store attacked by replay, linkage across keys, an
insider with leaked pairs, inversion without the key, and a re-enrolment under a new key.

The deployment's key is key 1; key 2 is a fresh key drawn here and never written (the re-issue, and the
second system of the linkage attacks). Training people's photos give the calibration, the insider's
leaked pairs and the trained linker's knowledge; the test pairs are the victims.

Inversion without the key: H' trained on (F(x), x), as an attacker who has F and photos but not the key,
is applied to F(stored); beside it H' trained on (F(stored), x), an attacker who holds the key (or
enough leaked pairs). Both are judged by whether F accepts the reconstruction as the person at FAR 0.1%.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from distortion.attacks.inversion import AttackBudget, TemplateInverter, train_inverter
from distortion.data.subsets import seeded_subset
from distortion.deployment.distorter import Distorter
from distortion.deployment.keys import generate_key
from distortion.metrics.verification import FAR, accept_rate, pair_scores, threshold_at_far
from distortion.reporting.keyed_report import KeyedTemplates, keyed_sections

__all__ = ["keyed_privacy"]


def _renewed(distorter: Distorter) -> Distorter:
    """The same store under a fresh key (the re-issue)."""
    renewed = copy.copy(distorter)
    renewed.key = generate_key()
    return renewed


@torch.no_grad()
def _training_side(
    distorter: Distorter, renewed: Distorter, photos: Dataset, count: int, batch_size: int, seed: int,
    device: torch.device,
) -> dict[str, Tensor]:  # fmt: skip
    photos = seeded_subset(photos, count, seed)
    cols: dict[str, list[Tensor]] = {"x": [], "emb": [], "labels": [], "stored1": [], "stored2": []}
    for batch in DataLoader(photos, batch_size=batch_size):
        first = distorter.embed(batch[0].to(device).float())
        cols["x"].append(first.x.half().cpu())
        cols["emb"].append(first.emb_x.cpu())
        cols["labels"].append(batch[1].cpu())
        cols["stored1"].append(first.emb_stored.cpu())
        cols["stored2"].append(renewed.embed(first.x, first.emb_x).emb_stored.cpu())
    return {k: torch.cat(v) for k, v in cols.items()}


@torch.no_grad()
def _test_side(
    distorter: Distorter, renewed: Distorter, pairs: Dataset, limit: int, batch_size: int, device: torch.device
) -> dict[str, Tensor]:
    cols: dict[str, list[Tensor]] = {k: [] for k in ("x_a", "emb_a", "emb_b", "same", "y_a", "y_b", "stored1_a",
                                                      "stored1_b", "stored2_b")}  # fmt: skip
    for batch in DataLoader(pairs, batch_size=batch_size):
        a = distorter.embed(batch.x_a.to(device).float())
        b = distorter.embed(batch.x_b.to(device).float())
        cols["x_a"].append(a.x.half().cpu())
        cols["emb_a"].append(a.emb_x.cpu())
        cols["emb_b"].append(b.emb_x.cpu())
        cols["same"].append(batch.same.bool())
        cols["y_a"].append(batch.y_a)
        cols["y_b"].append(batch.y_b)
        cols["stored1_a"].append(a.emb_stored.cpu())
        cols["stored1_b"].append(b.emb_stored.cpu())
        cols["stored2_b"].append(renewed.embed(b.x, b.emb_x).emb_stored.cpu())
        if limit and sum(len(s) for s in cols["same"]) >= limit:
            break
    return {k: torch.cat(v)[: limit or None] for k, v in cols.items()}


def _inverter(emb: Tensor, x: Tensor, budget: AttackBudget, seed: int, device: torch.device) -> nn.Module:
    torch.manual_seed(seed)
    inverter = TemplateInverter(emb.shape[1], tuple(x.shape[1:]), budget.depth, budget.width).to(device)
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(emb, x), budget.batch_size, shuffle=True, generator=order)
    train_inverter(inverter, loader, budget.steps, budget.lr)
    return inverter.eval()


def _inversion(
    train: dict[str, Tensor], test: dict[str, Tensor], f: nn.Module, budget: AttackBudget, seed: int,
    device: torch.device,
) -> dict[str, float]:  # fmt: skip
    """F's acceptance of H' reconstructions from F(stored): H' without the key (trained on F(x)) and with it."""
    x_train = train["x"].float()
    without_key = _inverter(train["emb"], x_train, budget, seed, device)
    with_key = _inverter(train["stored1"], x_train, budget, seed, device)
    same = test["same"]
    originals = pair_scores(test["emb_a"], test["emb_b"])
    threshold = threshold_at_far(originals[~same], FAR)
    section: dict[str, float] = {"threshold_far_1e-3": float(threshold)}
    for name, inverter in (("without_key", without_key), ("with_key", with_key)):
        with torch.no_grad():
            recon = torch.cat([inverter(s.to(device)).float().clamp(0, 1) for s in test["stored1_a"].split(64)])
            emb = torch.cat([f(r.to(device)).float().cpu() for r in recon.split(32)])
        section[f"accepted_other_image_{name}"] = accept_rate(pair_scores(emb, test["emb_b"])[same], threshold)
        section[f"accepted_same_image_{name}"] = accept_rate(pair_scores(emb, test["emb_a"]), threshold)
    return section


def keyed_privacy(
    distorter: Distorter, photos: Dataset, pairs: Dataset, budget: AttackBudget, limit_pairs: int, batch_size: int,
    seed: int, device: torch.device, components: int | None = None,
) -> dict[str, dict]:  # fmt: skip
    """The keyed sections of the privacy report for a keyed ``distorter`` (key 1: its own key)."""
    renewed = _renewed(distorter)
    train = _training_side(distorter, renewed, photos, budget.images, batch_size, seed, device)
    test = _test_side(distorter, renewed, pairs, limit_pairs, batch_size, device)
    templates = KeyedTemplates(train["emb"], train["labels"], train["stored1"], train["stored2"], test["emb_a"],
                               test["emb_b"], test["same"], test["stored1_a"], test["stored1_b"],
                               test["stored2_b"], test["y_a"], test["y_b"])  # fmt: skip
    transform = copy.deepcopy(distorter.transform).cpu()
    sections = keyed_sections(templates, transform, distorter.key, renewed.key, components, seed)
    sections["inversion_without_key"] = _inversion(train, test, distorter.embedding, budget, seed, device)
    sections["keys"] = {"fingerprint": distorter.fingerprint, "renewed_fingerprint": renewed.fingerprint,
                        "training_images": len(train["emb"]), "test_pairs": len(test["same"])}  # fmt: skip
    return sections
