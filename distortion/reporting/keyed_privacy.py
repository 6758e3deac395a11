"""The keyed part of ``distortion privacy``: a keyed store attacked by replay, linkage across keys, an
insider with leaked pairs, inversion without the key, and a re-enrolment under a new key; with ``tokens``, the same
store with each person's token beside the key (:mod:`distortion.reporting.token_report`).

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
from distortion.deployment.personal_templates import PersonalTransform
from distortion.metrics.verification import FAR, accept_rate, pair_scores, threshold_at_far
from distortion.reporting.keyed_report import KeyedTemplates, keyed_sections
from distortion.reporting.token_report import PersonKeys, TokenTemplates, by_person, token_sections

__all__ = ["keyed_privacy"]


def _renewed(distorter: Distorter) -> Distorter:
    """The same store under a fresh key (the re-issue)."""
    renewed = copy.copy(distorter)
    renewed.key = generate_key()
    return renewed


def _token_carriers(distorter: Distorter, x: Tensor, emb: Tensor, labels: Tensor, keys: PersonKeys) -> Tensor:
    """F of the carriers of photos ``x`` (F ``emb``), each drawn under its person's token of ``keys``."""
    personal = PersonalTransform(distorter.transform)
    targets = by_person(lambda rows, key: personal(rows, key), emb, labels, keys).float()
    with torch.no_grad():
        return distorter.embedding(distorter.draw(x, targets)).float().cpu()


class _Systems:
    """Two systems (key 1, key 2) and, with tokens, each person's token in each."""

    def __init__(self, distorter: Distorter, renewed: Distorter, tokens: bool) -> None:
        self.distorter, self.renewed = distorter, renewed
        self.keys = (PersonKeys(distorter.key), PersonKeys(renewed.key)) if tokens else None

    def carriers(self, x: Tensor, emb: Tensor, labels: Tensor, system: int) -> Tensor:
        return _token_carriers((self.distorter, self.renewed)[system], x, emb, labels, self.keys[system])


def _training_side(
    systems: _Systems, photos: Dataset, count: int, batch_size: int, seed: int, device: torch.device
) -> dict[str, Tensor]:  # fmt: skip
    distorter, renewed = systems.distorter, systems.renewed
    photos = seeded_subset(photos, count, seed)
    cols: dict[str, list[Tensor]] = {"x": [], "emb": [], "labels": [], "stored1": [], "stored2": []}
    if systems.keys is not None:
        cols |= {"token1": [], "token2": []}
    for batch in DataLoader(photos, batch_size=batch_size):
        first = distorter.embed(batch[0].to(device).float())
        cols["x"].append(first.x.half().cpu())
        cols["emb"].append(first.emb_x.cpu())
        cols["labels"].append(batch[1].cpu())
        cols["stored1"].append(first.emb_stored.cpu())
        cols["stored2"].append(renewed.embed(first.x, first.emb_x).emb_stored.cpu())
        if systems.keys is not None:
            for system in (0, 1):
                cols[f"token{system + 1}"].append(systems.carriers(first.x, first.emb_x, batch[1], system))
    return {k: torch.cat(v) for k, v in cols.items()}


def _test_side(
    systems: _Systems, pairs: Dataset, limit: int, batch_size: int, device: torch.device
) -> dict[str, Tensor]:
    distorter, renewed = systems.distorter, systems.renewed
    cols: dict[str, list[Tensor]] = {k: [] for k in ("x_a", "emb_a", "emb_b", "same", "y_a", "y_b", "stored1_a",
                                                      "stored1_b", "stored2_b")}  # fmt: skip
    if systems.keys is not None:
        cols |= {k: [] for k in ("stored2_a", "token1_a", "token2_a", "token2_b")}
    for batch in DataLoader(pairs, batch_size=batch_size):
        a = distorter.embed(batch.x_a.to(device).float())
        b = distorter.embed(batch.x_b.to(device).float())
        if systems.keys is not None:
            cols["stored2_a"].append(renewed.embed(a.x, a.emb_x).emb_stored.cpu())
            cols["token1_a"].append(systems.carriers(a.x, a.emb_x, batch.y_a, 0))
            cols["token2_a"].append(systems.carriers(a.x, a.emb_x, batch.y_a, 1))
            cols["token2_b"].append(systems.carriers(b.x, b.emb_x, batch.y_a, 1))  # a genuine b is a's person
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
    """F's acceptance of H' reconstructions from F(stored): H' without the key (trained on F(x)) and with it; with
    tokens, H' without the key applied to the carriers under each person's token (``token_without_key``: an attacker
    without the token, whether or not they hold the system key, which alone fixes nothing of a person's transform)."""
    x_train = train["x"].float()
    without_key = _inverter(train["emb"], x_train, budget, seed, device)
    with_key = _inverter(train["stored1"], x_train, budget, seed, device)
    same = test["same"]
    originals = pair_scores(test["emb_a"], test["emb_b"])
    threshold = threshold_at_far(originals[~same], FAR)
    section: dict[str, float] = {"threshold_far_1e-3": float(threshold)}
    attacks = [("without_key", without_key, "stored1_a"), ("with_key", with_key, "stored1_a")]
    if "token1_a" in test:
        attacks.append(("token_without_key", without_key, "token1_a"))
    for name, inverter, stored in attacks:
        with torch.no_grad():
            recon = torch.cat([inverter(s.to(device)).float().clamp(0, 1) for s in test[stored].split(64)])
            emb = torch.cat([f(r.to(device)).float().cpu() for r in recon.split(32)])
        section[f"accepted_other_image_{name}"] = accept_rate(pair_scores(emb, test["emb_b"])[same], threshold)
        section[f"accepted_same_image_{name}"] = accept_rate(pair_scores(emb, test["emb_a"]), threshold)
    return section


def keyed_privacy(
    distorter: Distorter, photos: Dataset, pairs: Dataset, budget: AttackBudget, limit_pairs: int, batch_size: int,
    seed: int, device: torch.device, components: int | None = None, tokens: bool = False,
) -> dict[str, dict]:  # fmt: skip
    """The keyed sections of the privacy report for a keyed ``distorter`` (key 1: its own key); with ``tokens`` the
    ``token_*`` sections too."""
    renewed = _renewed(distorter)
    systems = _Systems(distorter, renewed, tokens)
    with torch.no_grad():
        train = _training_side(systems, photos, budget.images, batch_size, seed, device)
        test = _test_side(systems, pairs, limit_pairs, batch_size, device)
    templates = KeyedTemplates(train["emb"], train["labels"], train["stored1"], train["stored2"], test["emb_a"],
                               test["emb_b"], test["same"], test["stored1_a"], test["stored1_b"],
                               test["stored2_b"], test["y_a"], test["y_b"])  # fmt: skip
    transform = copy.deepcopy(distorter.transform).cpu()
    sections = keyed_sections(templates, transform, distorter.key, renewed.key, components, seed)
    sections["inversion_without_key"] = _inversion(train, test, distorter.embedding, budget, seed, device)
    if tokens:
        threshold = sections["deployment"]["threshold"]
        token = TokenTemplates(train["emb"], train["labels"], train["token1"], train["token2"], train["stored1"],
                               train["stored2"], test["emb_a"], test["emb_b"], test["same"], test["y_a"],
                               test["y_b"], test["token1_a"], test["token2_a"], test["token2_b"], test["stored1_a"],
                               test["stored2_a"], test["stored2_b"])  # fmt: skip
        sections |= {f"token_{name}": s for name, s in token_sections(token, transform, *systems.keys, threshold,
                                                                       seed).items()}  # fmt: skip
    sections["keys"] = {"fingerprint": distorter.fingerprint, "renewed_fingerprint": renewed.fingerprint,
                        "training_images": len(train["emb"]), "test_pairs": len(test["same"])}  # fmt: skip
    return sections
