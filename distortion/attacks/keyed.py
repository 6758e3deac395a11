"""Attacks on key-bound templates (ISO/IEC 30136), on templates as tensors: what each attacker scores.

Templates are rows of ``(N, D)`` tensors in F's space; a store's template of a person is
``F(stored image)`` (``T_k(F(x))`` up to the carrier's error). Scores are
:func:`~distortion.metrics.verification.pair_scores` (higher: more alike).

- :func:`replay_scores`: a stolen stored template presented as a probe: ``T_k(stored)`` against ``stored``.
- Linkage of two stores made under two keys (``a`` under key 1, ``b`` under key 2):
  :func:`direct_link` (F's own distance), :func:`covariance_link` (align the principal axes of the two
  stores, signs from third moments), :func:`ica_link` (independent components of each store, paired and
  signed across the stores by their marginal distributions), :func:`trained_link` (a linear map fitted
  on other people's templates under both keys). Each returns the two stores' templates in one frame, to
  be scored pair by pair.
- Linkage through what every rotation keeps: :func:`norm_link` (the norm of a template about its store's mean) and
  :func:`profile_link` (the sorted distances of a template to the rest of its store): two systems' stores of the
  same photos keep both exactly under any two keys of the same rotation.
- :func:`insider_estimate`: F(x) estimated from a stored template by ridge regression on ``n`` leaked
  (F(x), stored) pairs.
- :func:`dsys_floor`: the D_sys that unrelated score sets of the same sizes give (the estimate's floor).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key
from distortion.metrics.unlinkability import global_unlinkability
from distortion.metrics.verification import pair_scores

__all__ = [
    "covariance_link",
    "direct_link",
    "dsys_floor",
    "ica_link",
    "insider_estimate",
    "match_marginals",
    "norm_link",
    "profile_link",
    "replay_scores",
    "ridge_map",
    "trained_link",
]


def replay_scores(stored: Tensor, transform: TemplateTransform, key: Key) -> Tensor:
    """Scores of stored templates presented as probes: the matcher keys the probe, ``T_k(stored)``, and compares
    both as it compares every pair (:meth:`TemplateTransform.matched`)."""
    return pair_scores(transform.matched(stored, key), transform.matched(transform(stored, key), key))


def direct_link(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(i) The two stores as they are: F's distance between their templates."""
    return a, b


def _principal_frame(population: Tensor, t: Tensor, components: int) -> Tensor:
    """``t`` in centred coordinates on the top principal axes of ``population``, each axis signed so that
    the population's third moment along it is >= 0."""
    p = population.double()
    mean = p.mean(0)
    values, vectors = torch.linalg.eigh(torch.cov((p - mean).T))
    top = vectors[:, torch.argsort(values, descending=True)[:components]]
    signs = torch.sign((((p - mean) @ top) ** 3).mean(0) + 1e-300)
    return (t.double() - mean) @ top * signs


def covariance_link(
    a: Tensor, b: Tensor, components: int = 32, store_a: Tensor | None = None, store_b: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(ii) ``a`` and ``b`` on the principal axes of their whole stores (``store_a``, ``store_b``; default
    ``a`` and ``b``), signs fixed by third moments: when the key keeps the covariance's shape (a rotation),
    the axes of both stores are the same directions of F."""
    store_a, store_b = (a if store_a is None else store_a), (b if store_b is None else store_b)
    k = min(components, a.shape[1], len(store_a) - 1, len(store_b) - 1)
    return _principal_frame(store_a, a, k), _principal_frame(store_b, b, k)


def _independent_sources(population: Tensor, t: Tensor, components: int, seed: int) -> tuple[Tensor, Tensor]:
    """FastICA fitted on ``population``: its unit-variance sources and those of ``t``, in FastICA's order."""
    import warnings

    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    ica = FastICA(n_components=components, whiten="unit-variance", random_state=seed, max_iter=2000, tol=1e-6)
    with warnings.catch_warnings():  # an unconverged unmixing is still this attacker's best guess
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = torch.from_numpy(ica.fit_transform(population.double().cpu().numpy()))
    return fitted, torch.from_numpy(ica.transform(t.double().cpu().numpy()))


def match_marginals(sources_a: Tensor, sources_b: Tensor, levels: int = 99) -> tuple[Tensor, Tensor]:
    """Pair and sign the columns of ``sources_b`` with those of ``sources_a`` by their marginal distributions.

    ICA gives each store's sources up to order and sign. The cost of pairing column ``i`` of ``a`` with
    ``+-`` column ``j`` of ``b`` is the L2 distance of their quantile functions (a 1-D Wasserstein
    distance), and the pairing minimises the total cost (Hungarian). Returns ``(columns, signs)``: column
    ``columns[i]`` of ``b``, times ``signs[i]``, is the partner of column ``i`` of ``a``."""
    from scipy.optimize import linear_sum_assignment

    probabilities = torch.linspace(0.5 / levels, 1 - 0.5 / levels, levels, dtype=torch.float64)
    qa = torch.quantile(sources_a.double(), probabilities, dim=0).T
    qb = torch.quantile(sources_b.double(), probabilities, dim=0).T
    plus, minus = torch.cdist(qa, qb), torch.cdist(qa, -qb.flip(1))  # quantiles of -s are -q reversed
    rows, columns = linear_sum_assignment(torch.minimum(plus, minus).numpy())
    signs = torch.where(minus[rows, columns] < plus[rows, columns], -1.0, 1.0).double()
    return torch.from_numpy(columns), signs


def ica_link(
    a: Tensor, b: Tensor, components: int = 32, store_a: Tensor | None = None, store_b: Tensor | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(iii) ``a`` and ``b`` as independent components of their stores (scikit-learn's FastICA), paired and
    signed across the stores by :func:`match_marginals`: a key that mixes non-Gaussian sources linearly is
    undone up to order and sign, which the sources' own distributions fix."""
    store_a, store_b = (a if store_a is None else store_a), (b if store_b is None else store_b)
    k = min(components, a.shape[1], len(store_a) - 1, len(store_b) - 1)
    fitted_a, sources_a = _independent_sources(store_a, a, k, seed)
    fitted_b, sources_b = _independent_sources(store_b, b, k, seed)
    columns, signs = match_marginals(fitted_a, fitted_b)
    return sources_a, sources_b[:, columns] * signs


def norm_link(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Each store's templates as one number, the norm about that store's own mean: ``(N, 1)`` each."""
    return ((a.double() - a.double().mean(0)).norm(dim=1, keepdim=True),
            (b.double() - b.double().mean(0)).norm(dim=1, keepdim=True))  # fmt: skip


def _profile(t: Tensor) -> Tensor:
    distances = torch.cdist(t.double(), t.double())
    return distances.sort(dim=1).values[:, 1:]  # each row's own zero dropped


def profile_link(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Each template as the sorted distances to the rest of its store ``(N, N - 1)`` (stores of equal size)."""
    if len(a) != len(b):
        raise ValueError(f"the distance profile compares stores of one size, got {len(a)} and {len(b)}")
    return _profile(a), _profile(b)


def ridge_map(source: Tensor, target: Tensor, ridge: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Least squares ``target ~ source @ W + c`` with an L2 penalty ``ridge * trace`` scale: ``(W, c)``.

    Works for any number of pairs (one pair gives ``c`` = that target); float64."""
    x, y = source.double(), target.double()
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    penalty = ridge * max(float((xc**2).sum()) / max(len(x), 1), 1e-12)
    gram = xc.T @ xc + penalty * torch.eye(x.shape[1], dtype=x.dtype)
    weights = torch.linalg.solve(gram, xc.T @ yc)
    return weights, my - mx @ weights


def trained_link(train_a: Tensor, train_b: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(iv) A linear map from store 1's space to store 2's, fitted on other people's templates under both
    keys (``train_a[i]`` and ``train_b[i]`` of one image), applied to ``a``."""
    weights, bias = ridge_map(train_a, train_b)
    return a.double() @ weights + bias, b.double()


def insider_estimate(leaked_stored: Tensor, leaked_emb: Tensor, stored: Tensor) -> Tensor:
    """F(x) estimated from ``stored`` templates by an insider with leaked (stored, F(x)) pairs (ridge)."""
    weights, bias = ridge_map(leaked_stored, leaked_emb)
    return (stored.double() @ weights + bias).to(stored.dtype)


def dsys_floor(unrelated: Tensor, mated_count: int, non_mated_count: int, repeats: int = 5, seed: int = 0) -> float:
    """D_sys of two disjoint sets of ``unrelated`` scores (pairs of different people) of the sizes of the mated and
    non-mated sets: what the estimate gives at these sample sizes when there is nothing to link (mean over
    ``repeats`` random draws)."""
    scores = unrelated.double().flatten()
    if mated_count < 1 or non_mated_count < 1 or mated_count + non_mated_count > len(scores):
        raise ValueError(f"need {mated_count} + {non_mated_count} unrelated scores, got {len(scores)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(repeats):
        order = torch.from_numpy(rng.permutation(len(scores)))
        mated, non_mated = scores[order[:mated_count]], scores[order[mated_count : mated_count + non_mated_count]]
        values.append(float(global_unlinkability(mated, non_mated)))
    return float(np.mean(values))
