"""The token sections of a privacy report: a keyed store in which each person's carriers are drawn under their own
token beside the system key (:mod:`distortion.deployment.personal_templates`), judged with each secret stolen
(Rathgeb and Uhl's practice), and linkage across two systems for both modes.

Every person (an LFW identity) gets one token per system. Templates are F of carriers as stored
(:class:`TokenTemplates`); the system's threshold is the keyed deployment's (the store uses one threshold for both
modes). Sections:

- ``deployment``: genuine pairs with the person's token; impostors holding the victim's token (a stolen card:
  the face decides) and impostors with their own;
- ``replay``: a stolen stored template presented with the victim's token, and with a guessed one;
- ``insider``: F(x) regressed from leaked (F(x), stored) pairs of other people, each under their own token, applied to
  the victim's stored template; the tokens of the leaked people add nothing without the system key, and the system
  key adds nothing without the victim's token, so the one curve answers (a) and both halves of (b);
- ``linkage``: two systems (two keys, two tokens of each person), from the same enrolment photo and from another,
  with the attackers of the keyed report and two on what every rotation keeps, the norm about the store's mean and
  the sorted distances to the rest of the store (:func:`~distortion.attacks.keyed.norm_link`,
  :func:`~distortion.attacks.keyed.profile_link`); the system-key mode's stores attacked the same way beside it;
- ``revocation``: the old carrier matched under a new token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from distortion.attacks.keyed import (
    covariance_link,
    direct_link,
    dsys_floor,
    ica_link,
    norm_link,
    profile_link,
    trained_link,
)
from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key
from distortion.deployment.personal_templates import PersonalTransform
from distortion.deployment.tokens import Token, generate_token, person_key
from distortion.metrics.unlinkability import global_unlinkability
from distortion.metrics.verification import FAR, accept_rate, pair_scores, view_metrics
from distortion.reporting.keyed_report import INSIDER_PAIRS, insider_curve

__all__ = ["PersonKeys", "TokenTemplates", "token_sections"]


class PersonKeys:
    """One token per person (an identity label) under one system key, drawn when first asked for; their keys."""

    def __init__(self, key: Key) -> None:
        self.key, self.tokens = key, {}

    def token(self, label: int) -> Token:
        if label not in self.tokens:
            self.tokens[label] = generate_token()
        return self.tokens[label]

    def of(self, label: int) -> Key:
        return person_key(self.key, self.token(label))


def by_person(function: Callable[[Tensor, Key], Tensor], templates: Tensor, labels: Tensor,
              keys: PersonKeys | list[Key]) -> Tensor:  # fmt: skip
    """``function(rows, key)`` applied to the rows of each person under their key (``keys``: per label, or per row)."""
    out = None
    groups = [(labels == label).nonzero().flatten() for label in labels.unique()] if isinstance(keys, PersonKeys) \
        else [torch.tensor([i]) for i in range(len(templates))]  # fmt: skip
    for rows in groups:
        key = keys.of(int(labels[rows[0]])) if isinstance(keys, PersonKeys) else keys[int(rows[0])]
        result = function(templates[rows], key)
        if out is None:
            out = torch.empty(len(templates), *result.shape[1:], dtype=result.dtype, device=result.device)
        out[rows] = result
    return out


@dataclass
class TokenTemplates:
    """F of photos and of what two systems store, in both modes. ``train_*``: training people, one row per image
    (``train_token1``/``train_token2``: their carriers under each system's tokens, ``train_stored1``/``train_stored2``
    under each system's key alone). Test pairs: ``emb_a``, ``emb_b``,
    ``same``, ``label_a``, ``label_b``; ``token1_a``/``token1_b``/``token2_a``/``token2_b``: carriers of photos a and
    b under system 1's and system 2's tokens of their person; ``stored1_a``/``stored2_a``/``stored2_b``: the
    system-key mode's carriers under key 1 and key 2."""

    train_emb: Tensor
    train_labels: Tensor
    train_token1: Tensor
    train_token2: Tensor
    train_stored1: Tensor
    train_stored2: Tensor
    emb_a: Tensor
    emb_b: Tensor
    same: Tensor
    label_a: Tensor
    label_b: Tensor
    token1_a: Tensor
    token2_a: Tensor
    token2_b: Tensor
    stored1_a: Tensor
    stored2_a: Tensor
    stored2_b: Tensor


def _floor_and_eer(scores: Tensor, mated: Tensor, unrelated: Tensor) -> dict[str, float]:
    return {"d_sys": float(global_unlinkability(scores[mated], scores[~mated])),
            "d_sys_floor": dsys_floor(unrelated, int(mated.sum()), int((~mated).sum())),
            "eer": view_metrics(scores, mated)["eer"]}  # fmt: skip


def _linked(a: Tensor, b: Tensor, labels: Tensor) -> dict[str, float]:
    """Row ``i`` of ``a`` (system 1) and of ``b`` (system 2) are one person: mated pairs ``(i, i)``, non-mated pairs
    ``(i, i + k)`` of other people (k = 1..4); the floor from pairs ``(i, i + k)``, k = 5..12, of other people."""
    shifts, spare = range(1, 5), range(5, 13)
    pairs = [(torch.arange(len(a)), torch.arange(len(a)))]
    pairs += [(torch.arange(len(a)), torch.arange(len(a)).roll(k)) for k in shifts]
    rows = torch.cat([p[0] for p in pairs])
    cols = torch.cat([p[1] for p in pairs])
    mated = rows == cols
    keep = mated | (labels[rows] != labels[cols])
    rows, cols, mated = rows[keep], cols[keep], mated[keep]
    scores = pair_scores(a[rows], b[cols])
    others = [(torch.arange(len(a)), torch.arange(len(a)).roll(k)) for k in spare]
    r, c = torch.cat([o[0] for o in others]), torch.cat([o[1] for o in others])
    unrelated = pair_scores(a[r], b[c])[labels[r] != labels[c]]
    return _floor_and_eer(scores, mated, unrelated)


def _first_rows(t: Tensor) -> Tensor:
    """The index of the first of each group of identical rows (a photo in several pairs of the list), in order."""
    _, inverse = torch.unique(t, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(t), dtype=torch.long).scatter_reduce(
        0, inverse, torch.arange(len(t)), "amin"
    )  # fmt: skip
    return first.sort().values


def _attackers(
    a: Tensor, b: Tensor, labels: Tensor, train1: Tensor, train2: Tensor, components: int
) -> dict[str, dict[str, float]]:
    """Every linkage attacker on two systems' stores of the same people (rows of ``a`` and ``b``; a photo that is in
    several pairs of the list counts once, as each store holds it once)."""
    rows = _first_rows(a)
    a, b, labels = a[rows], b[rows], labels[rows]
    half = len(train1) // 2
    stores = (torch.cat([train1[:half], a]), torch.cat([train2[half:], b]))
    found = {
        "direct": _linked(*direct_link(a, b), labels),
        "covariance_alignment": _linked(*covariance_link(a, b, components, *stores), labels),
        "ica": _linked(*ica_link(a, b, components, *stores), labels),
        "trained_linker": _linked(*trained_link(train1, train2, a, b), labels),
        "norm": _linked(*norm_link(a, b), labels),
        "distance_profile": _linked(*profile_link(a, b), labels),
    }
    found["within_floor_0.05"] = all(v["d_sys"] <= v["d_sys_floor"] + 0.05 for v in found.values())
    return found


def token_sections(
    t: TokenTemplates, transform: TemplateTransform, keys1: PersonKeys, keys2: PersonKeys, threshold: float,
    seed: int = 0, insider_pairs: tuple[int, ...] = INSIDER_PAIRS,
) -> dict[str, dict]:  # fmt: skip
    """The token sections (module docstring) for system 1's person keys ``keys1`` (system 2: ``keys2``), at the
    deployment's ``threshold``."""
    personal = PersonalTransform(transform)
    same, la, lb = t.same, t.label_a, t.label_b

    def probe(emb: Tensor, labels: Tensor, keys) -> Tensor:
        return by_person(lambda rows, key: personal(rows, key), emb, labels, keys)

    def matched(templates: Tensor, labels: Tensor, keys) -> Tensor:
        return by_person(lambda rows, key: personal.matched(rows, key), templates, labels, keys)

    def scores(stored: Tensor, probes: Tensor, keys) -> Tensor:
        return pair_scores(matched(stored, la, keys), matched(probes, la, keys))

    own = probe(t.emb_b, la, keys1)  # the probe under the claimed person's token: genuine, or an impostor holding it
    deploy = scores(t.token1_a, own, keys1)
    impostor_own_token = pair_scores(matched(t.token1_a, la, keys1), matched(probe(t.emb_b, lb, keys1), lb, keys1))
    deployment = {"threshold": threshold, "far_target": FAR}
    deployment |= {f"deploy_{k}": v for k, v in view_metrics(deploy, same).items()}
    deployment |= {f"original_{k}": v for k, v in view_metrics(pair_scores(t.emb_a, t.emb_b), same).items()}
    deployment["true_accept"] = accept_rate(deploy[same], threshold)
    deployment["false_accept_victims_token"] = accept_rate(deploy[~same], threshold)
    deployment["false_accept_own_token"] = accept_rate(impostor_own_token[~same], threshold)

    guessed = [person_key(keys1.key, generate_token()) for _ in range(len(t.token1_a))]
    replay_own = scores(t.token1_a, probe(t.token1_a, la, keys1), keys1)
    replay_guess = pair_scores(
        by_person(lambda r, k: personal.matched(r, k), t.token1_a, la, guessed),
        by_person(lambda r, k: personal.matched(personal(r, k), k), t.token1_a, la, guessed),
    )
    sections = {"deployment": deployment}
    sections["replay"] = {
        "accepted_victims_token": accept_rate(replay_own, threshold),
        "accepted_guessed_token": accept_rate(replay_guess, threshold),
        "far_target": FAR,
    }
    sections["insider"] = insider_curve(t.train_token1, t.train_emb, t.token1_a, t.emb_b, same, insider_pairs, seed)
    m, g = transform.components, same  # g: rows whose photo b is of the person of photo a
    tokens, keyed = (t.train_token1, t.train_token2), (t.train_stored1, t.train_stored2)
    sections["linkage"] = {
        "token_same_photo": _attackers(t.token1_a, t.token2_a, la, *tokens, m),
        "token_other_photo": _attackers(t.token1_a[g], t.token2_b[g], la[g], *tokens, m),
        "system_key_same_photo": _attackers(t.stored1_a, t.stored2_a, la, *keyed, m),
        "system_key_other_photo": _attackers(t.stored1_a[g], t.stored2_b[g], la[g], *keyed, m),
    }
    fresh = PersonKeys(keys1.key)  # every person re-enrolled under a new token
    revoked = pair_scores(matched(t.token1_a, la, fresh), matched(probe(t.emb_b, la, fresh), la, fresh))
    revoked_same = pair_scores(matched(t.token1_a, la, fresh), matched(probe(t.emb_a, la, fresh), la, fresh))
    sections["revocation"] = {"old_carrier_accepted_genuine": accept_rate(revoked[same], threshold),
                              "old_carrier_accepted_same_image": accept_rate(revoked_same, threshold),
                              "far_target": FAR}  # fmt: skip
    return sections
