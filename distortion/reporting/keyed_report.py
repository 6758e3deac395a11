"""The keyed sections of a privacy report: deployment at the calibrated threshold, replay, linkage across
keys (four attackers, D_sys beside its floor), the insider's curve and revocation.

Everything is computed from templates (:class:`KeyedTemplates`): F of the photos and F of what the
store keeps under two keys, for training people (calibration, the attackers' knowledge) and for test
pairs (the victims). The operating threshold is the one of FAR 0.1% among training people's carriers
against other training people's keyed probes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from distortion.attacks.keyed import (
    covariance_link,
    direct_link,
    dsys_floor,
    ica_link,
    insider_estimate,
    replay_scores,
    trained_link,
)
from distortion.deployment.calibration import operating_threshold
from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key
from distortion.metrics.unlinkability import global_unlinkability
from distortion.metrics.verification import (
    FAR,
    accept_rate,
    calibrate_threshold,
    cross_impostor_scores,
    pair_scores,
    threshold_at_far,
    view_metrics,
)

__all__ = ["INSIDER_PAIRS", "KeyedTemplates", "insider_curve", "keyed_sections"]

INSIDER_PAIRS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class KeyedTemplates:
    """Templates of one evaluation; ``stored1``/``stored2``: F of what is stored under key 1 / key 2.

    Training people: ``train_emb`` F(x), ``train_labels``, ``train_stored1``, ``train_stored2`` (one row per
    image). Test pairs: ``emb_a``, ``emb_b`` F of both photos, ``same``, ``stored1_a``, ``stored1_b``,
    ``stored2_b``; ``label_a``, ``label_b``: the identities of both photos, when known (then every impostor
    pair among the test photos is scored, :func:`_impostors`).
    """

    train_emb: Tensor
    train_labels: Tensor
    train_stored1: Tensor
    train_stored2: Tensor
    emb_a: Tensor
    emb_b: Tensor
    same: Tensor
    stored1_a: Tensor
    stored1_b: Tensor
    stored2_b: Tensor
    label_a: Tensor | None = None
    label_b: Tensor | None = None


def _link(pair: tuple[Tensor, Tensor], same: Tensor) -> dict[str, float]:
    """D_sys, its floor and the EER of one attacker's frame: pairs of the test list, and as unrelated pairs
    each enrolment against other rows' probes (different people), at the mated and non-mated sample sizes."""
    a, b = pair
    scores = pair_scores(a, b)
    mated, non_mated = scores[same], scores[~same]
    unrelated = torch.cat([pair_scores(a, b.roll(k, 0)) for k in range(1, 5)])
    return {"d_sys": float(global_unlinkability(mated, non_mated)),
            "d_sys_floor": dsys_floor(unrelated, len(mated), len(non_mated)),
            "eer": view_metrics(scores, same)["eer"]}  # fmt: skip


def _linkage(t: KeyedTemplates, components: int) -> dict[str, dict[str, float] | bool]:
    same = t.same
    section: dict = {"direct": _link(direct_link(t.stored1_a, t.stored2_b), same)}
    # the two stores the attacker holds: each system's whole population (disjoint halves of the training
    # people's images under each key) with the victims
    half = len(t.train_stored1) // 2
    stores = (torch.cat([t.train_stored1[:half], t.stored1_a]), torch.cat([t.train_stored2[half:], t.stored2_b]))
    section["covariance_alignment"] = _link(covariance_link(t.stored1_a, t.stored2_b, components, *stores), same)
    section["ica"] = _link(ica_link(t.stored1_a, t.stored2_b, components, *stores), same)
    section["trained_linker"] = _link(trained_link(t.train_stored1, t.train_stored2, t.stored1_a, t.stored2_b), same)
    section["within_floor_0.05"] = all(section[k]["d_sys"] <= section[k]["d_sys_floor"] + 0.05
                                       for k in ("direct", "covariance_alignment", "ica"))  # fmt: skip
    return section


def insider_curve(
    train_stored: Tensor, train_emb: Tensor, stored_a: Tensor, emb_b: Tensor, same: Tensor, counts: tuple[int, ...],
    seed: int,
) -> dict[str, float | int | None]:  # fmt: skip
    """The insider's EER against the number of leaked training pairs (``train_stored``, ``train_emb``), scored from the
    victims' ``stored_a`` against fresh photos ``emb_b``, and the most pairs it survives: every count up to it leaves
    the insider's EER >= 20%."""
    order = torch.randperm(len(train_emb), generator=torch.Generator().manual_seed(seed))
    curve: dict[str, float | int | None] = {}
    survives, broken = None, False
    for n in counts:
        if n > len(order):
            break
        leaked = order[:n]
        estimate = insider_estimate(train_stored[leaked], train_emb[leaked], stored_a)
        eer = view_metrics(pair_scores(estimate, emb_b), same)["eer"]
        curve[f"eer_{n}"] = eer
        broken = broken or eer < 0.2  # the first count that breaks it counts: the insider may stop there
        survives = n if not broken else survives
    curve["survives_up_to"] = survives
    return curve


def _impostors(t: KeyedTemplates, transform: TemplateTransform, key: Key, threshold: Tensor) -> dict[str, float | int]:
    """False accepts over every pair of test photos of different people (not only the pair list's), each at a
    threshold of FAR 0.1% calibrated on training people for its own comparison or, where named, at the
    deployment's; the carrier-vs-carrier threshold is calibrated on training carriers against training carriers.
    """

    def matched(e: Tensor) -> Tensor:
        return transform.matched(e, key)

    def cross(a: Tensor, b: Tensor) -> Tensor:
        return cross_impostor_scores(a, b, t.label_a, t.label_b)

    f_threshold = calibrate_threshold(t.train_emb, t.train_emb, t.train_labels)
    stored = matched(t.train_stored1)
    carrier_threshold = calibrate_threshold(stored, stored, t.train_labels)
    enrolled, stored_b, probes = matched(t.stored1_a), matched(t.stored1_b), matched(transform(t.emb_b, key))
    originals, carriers, deploy = cross(t.emb_a, t.emb_b), cross(enrolled, stored_b), cross(enrolled, probes)
    exact = cross(matched(transform(t.emb_a, key)), probes)
    genuine = pair_scores(enrolled, stored_b)[t.same]
    return {
        "impostor_pairs": len(originals),
        "original_threshold": float(f_threshold),
        "original_false_accept": accept_rate(originals, f_threshold),
        "exact_templates_false_accept": accept_rate(exact, threshold),
        "deploy_false_accept": accept_rate(deploy, threshold),
        "carrier_vs_carrier_false_accept": accept_rate(carriers, threshold),
        "carrier_threshold": float(carrier_threshold),
        "carrier_vs_carrier_false_accept_at_carrier_threshold": accept_rate(carriers, carrier_threshold),
        "carrier_vs_carrier_true_accept_at_carrier_threshold": accept_rate(genuine, carrier_threshold),
        "carrier_vs_carrier_true_accept": accept_rate(genuine, threshold),
    }


def keyed_sections(
    t: KeyedTemplates, transform: TemplateTransform, key1: Key, key2: Key, components: int | None = None,
    seed: int = 0, insider_pairs: tuple[int, ...] = INSIDER_PAIRS,
) -> dict[str, dict]:  # fmt: skip
    """``deployment``, ``impostors`` (with the test photos' identities), ``replay``, ``linkage``, ``insider`` and
    ``revocation`` for key 1 (key 2: the re-issue).

    ``components``: the axes the linkage attackers (ii) and (iii) work on; default the transform's own (an
    attacker who knows the method knows how many axes it keys).

    The system's own decisions (deployment, replay, revocation) compare templates as its matcher does
    (:meth:`TemplateTransform.matched` under the system's key); the attackers see the stored templates."""
    same = t.same

    def scores(a: Tensor, b: Tensor, key: Key) -> Tensor:
        return pair_scores(transform.matched(a, key), transform.matched(b, key))

    threshold = operating_threshold(t.train_stored1, t.train_emb, t.train_labels, transform, key1)
    deploy = scores(t.stored1_a, transform(t.emb_b, key1), key1)
    originals = pair_scores(t.emb_a, t.emb_b)
    f_threshold = threshold_at_far(originals[~same], FAR)
    deployment = {"threshold": float(threshold), "far_target": FAR}
    deployment |= {f"deploy_{k}": v for k, v in view_metrics(deploy, same).items()}
    deployment |= {f"original_{k}": v for k, v in view_metrics(originals, same).items()}
    deployment["deploy_true_accept"] = accept_rate(deploy[same], threshold)
    deployment["deploy_false_accept"] = accept_rate(deploy[~same], threshold)
    carriers = scores(t.stored1_a, t.stored1_b, key1)
    deployment["carrier_vs_carrier_false_accept"] = accept_rate(carriers[~same], threshold)
    deployment["original_false_accept_at_f_far"] = accept_rate(originals[~same], f_threshold)
    replay = replay_scores(t.stored1_a, transform, key1)
    sections = {"deployment": deployment}
    if t.label_a is not None and t.label_b is not None:
        sections["impostors"] = _impostors(t, transform, key1, threshold)
    unkeyed = accept_rate(pair_scores(t.stored1_a, t.emb_a), f_threshold)  # a matcher that does not key probes
    sections["replay"] = {"accepted": accept_rate(replay, threshold), "far_target": FAR,
                          "accepted_unkeyed_matcher": unkeyed}  # fmt: skip
    sections["linkage"] = _linkage(t, components or transform.components)
    sections["insider"] = insider_curve(t.train_stored1, t.train_emb, t.stored1_a, t.emb_b, same, insider_pairs, seed)
    sections["revocation"] = {
        "old_carrier_accepted_genuine": accept_rate(
            scores(t.stored1_a, transform(t.emb_b, key2), key2)[same], threshold
        ),  # fmt: skip
        "old_carrier_accepted_same_image": accept_rate(scores(t.stored1_a, transform(t.emb_a, key2), key2), threshold),
        "new_carrier_accepted_genuine": accept_rate(
            scores(t.stored2_b, transform(t.emb_a, key2), key2)[same], threshold
        ),  # fmt: skip
        "far_target": FAR,
    }
    return sections
