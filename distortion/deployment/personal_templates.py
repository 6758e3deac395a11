"""A person's own template transform ``T_{k,t}``: the system's rotation under the person's key (system key and token,
:func:`~distortion.deployment.tokens.person_key`), with the norm hidden by a one-time pad.

Under one system key every stored template is a rotation of the same function of F(x): whoever learns which photo
belongs to which template (an insider who enrolled people of their own) fits that function by regression, and two
systems' stores of one photo keep what every rotation keeps, the norm about the mean and the distances within a
store. Under a key of each person's own, the rotation of one person says nothing of another's, and distances
between stored templates are those of independent random rotations. What a rotation still keeps, the norm, is
padded: with ``r`` the norm of the keyed coordinates and ``P`` a fixed reference distribution of norms (log-normal
about F's mean norm), the stored norm is ``P^-1((P(r) + u) mod 1)`` for a keyed ``u`` uniform in [0, 1), which is
distributed as ``P`` whatever ``r`` is. Without the person's key the stored template is then an isotropic draw that
does not depend on the photo; the matcher, who holds both secrets, undoes pad and rotation exactly, so matching is
the system transform's own (:meth:`PersonalTransform.matched`). Any rotation of the system transforms
(``rotates``) can be made personal; one carrier generator draws every person's template, as it draws every key's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key

__all__ = ["PersonalTransform", "pad_norm", "unpad_norm"]

TAIL = 1e-12  # quantiles kept this far inside (0, 1)


def _quantile(r: Tensor, centre: float, spread: float) -> Tensor:
    return torch.special.ndtr((r.clamp_min(1e-300).log() - math.log(centre)) / spread)


def _norm_at(q: Tensor, centre: float, spread: float) -> Tensor:
    return centre * torch.exp(spread * torch.special.ndtri(q.clamp(TAIL, 1 - TAIL)))


def pad_norm(r: Tensor, u: Tensor, centre: float, spread: float) -> Tensor:
    """Norms ``r`` one-time padded by ``u`` in [0, 1): ``P^-1((P(r) + u) mod 1)`` for ``P`` log-normal (median
    ``centre``, log-spread ``spread``); distributed as ``P`` for ``u`` uniform, whatever ``r`` is."""
    return _norm_at(torch.remainder(_quantile(r, centre, spread) + u, 1.0), centre, spread)


def unpad_norm(rho: Tensor, u: Tensor, centre: float, spread: float) -> Tensor:
    """The inverse of :func:`pad_norm` for the same ``u``."""
    return _norm_at(torch.remainder(_quantile(rho, centre, spread) - u, 1.0), centre, spread)


class PersonalTransform(nn.Module):
    """``T_{k,t}``: ``transform`` keyed by a person's key, its keyed coordinates' norm padded (module docstring).

    Args:
        transform: a fitted rotation of :mod:`~distortion.deployment.keyed_templates` (``rotates``).
        norm_spread: the reference's log-spread; default ``sqrt(2 / m)``, twice the relative spread of the norm of
            ``m`` Gaussian axes, so that people with uncommon norms are still padded into the reference's bulk.
    """

    def __init__(self, transform: TemplateTransform, norm_spread: float | None = None) -> None:
        super().__init__()
        if not getattr(transform, "rotates", False):
            raise ValueError(f"a person's token keys a rotation of F's space, not {type(transform).__name__}: use "
                             "a keyed model whose transform is a (whitened or discriminant) rotation")  # fmt: skip
        transform.check_fitted()
        self.transform = transform
        m = transform.components
        self.spread = norm_spread if norm_spread is not None else math.sqrt(2 / m)
        self.centre = float(transform.variances[:m].sum().sqrt())

    @property
    def components(self) -> int:
        return self.transform.components

    @property
    def identity(self) -> str:
        """The system transform's identity with the pad's: a store of personal templates refuses another."""
        return f"{self.transform.identity}+personal:{self.spread:.6g}"

    def _pad(self, key: Key) -> float:
        return float(key.rng("norm_pad").random())

    def keyed(self, emb: Tensor, key: Key) -> Tensor:
        """``(B, D)`` -> padded keyed coordinates ``(B, m)`` under the person's ``key`` (float64)."""
        y = self.transform.keyed(emb, key)
        r = y.norm(dim=1, keepdim=True)
        return y * pad_norm(r, torch.tensor(self._pad(key), dtype=y.dtype), self.centre, self.spread) / r

    def forward(self, emb: Tensor, key: Key) -> Tensor:
        """``T_{k,t}(emb)``: ``(B, D)`` embeddings -> ``(B, D)`` personal templates in F's space."""
        return self.transform.place(self.keyed(emb, key), emb)

    matches_stored = False

    def matched(self, templates: Tensor, key: Key) -> Tensor:
        """Personal templates (stored ones, probes) as the matcher under the person's ``key`` compares them: the
        pad undone, then the system transform's own :meth:`~TemplateTransform.matched`."""
        rho_y = self.transform.coordinates(templates)
        rho = rho_y.norm(dim=1, keepdim=True).clamp_min(1e-300)
        r = unpad_norm(rho, torch.tensor(self._pad(key), dtype=rho.dtype), self.centre, self.spread)
        return self.transform.matched(self.transform.place(rho_y * r / rho, templates), key)
