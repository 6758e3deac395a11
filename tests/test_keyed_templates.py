"""Keyed transforms on generated identity clusters: one key matches, two keys do not, replay fails."""

from __future__ import annotations

import pytest
import torch

from distortion.deployment.keyed_templates import (
    TRANSFORMS,
    DiscriminantRotation,
    KeyedRotation,
    SignProjection,
    WhitenedRotation,
)
from distortion.deployment.keys import generate_key
from distortion.metrics.verification import pair_scores, view_metrics
from tests.keys import fixed_key


def clusters(people: int = 200, per: int = 2, dim: int = 16, spread: float = 0.3, seed: int = 0):
    """``per`` noisy samples around each of ``people`` random centres, on an anisotropic scale like F's."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(2.0, 0.2, dim)
    centres = torch.randn(people, dim, generator=g) * scales
    emb = centres.repeat_interleave(per, 0) + spread * torch.randn(people * per, dim, generator=g) * scales
    return emb.double(), torch.arange(people).repeat_interleave(per)


def genuine_impostor(emb):
    a, b = emb[0::2], emb[1::2]
    return a, b.roll(1, 0), b  # (enrol, impostor probe, genuine probe)


@pytest.mark.parametrize(
    "transform",
    [
        KeyedRotation(16),
        WhitenedRotation(16, 8, "stored"),
        WhitenedRotation(16, 8, "unkeyed"),
        DiscriminantRotation(16, 8),
        SignProjection(16, 8, 16),
    ],
)
def test_same_key_matches_two_keys_do_not(transform):
    train, labels = clusters(seed=1)
    transform.fit(train, labels)
    emb, _ = clusters(seed=2)
    k1, k2 = fixed_key("site 1"), fixed_key("site 2")
    a, impostor, genuine = genuine_impostor(emb)
    same = torch.cat([torch.ones(len(a)), torch.zeros(len(a))]).bool()

    def scores(probe_key):  # the matcher of site 1 compares its stored templates with probes keyed by probe_key
        probes = transform(torch.cat([genuine, impostor]), probe_key)
        return pair_scores(transform.matched(transform(a, k1), k1).repeat(2, 1), transform.matched(probes, k1))

    keyed, cross = scores(k1), scores(k2)
    assert view_metrics(keyed, same)["eer"] < 0.1
    assert view_metrics(cross, same)["eer"] > 0.3
    assert transform(a, k1).shape == a.shape
    assert torch.equal(transform(a, k1), transform(a, k1))


def test_rotation_keeps_distances_and_whitening_is_isotropic():
    train, _ = clusters(people=500, seed=3)
    rotation, whitened = KeyedRotation(16).fit(train), WhitenedRotation(16, 16).fit(train)
    key = generate_key()
    a, b = train[:50], train[50:100]
    assert torch.allclose((rotation(a, key) - rotation(b, key)).norm(dim=1), (a - b).norm(dim=1))
    w = whitened(train, key)
    values = torch.linalg.eigvalsh(torch.cov(w.T))
    assert values.max() / values.min() < 1.01


def test_sign_projection_is_many_to_one():
    train, _ = clusters(seed=4)
    t = SignProjection(16, 8, 8).fit(train)
    codes = t(train, generate_key())
    assert len(torch.unique(codes.round(decimals=9), dim=0)) < len(train)
    assert set(torch.unique((t.coordinates(codes) / t.scale).round()).tolist()) == {-1.0, 1.0}


def test_unfitted_and_bad_sizes_fail():
    with pytest.raises(RuntimeError, match="not fitted"):
        WhitenedRotation(16, 8)(torch.zeros(2, 16), generate_key())
    with pytest.raises(ValueError, match="components"):
        WhitenedRotation(16, 32)
    with pytest.raises(ValueError, match="fit needs"):
        WhitenedRotation(16, 8).fit(torch.zeros(4, 16))
    assert set(TRANSFORMS) == {"rotation", "whitened_rotation", "discriminant_rotation", "sign_projection"}


def test_fitted_state_is_public_buffers_only():
    t = WhitenedRotation(16, 8).fit(clusters()[0])
    assert set(t.state_dict()) == {"mean", "basis", "variances", "fitted"}


def test_discriminant_rotation_is_isotropic_and_needs_labels() -> None:
    train, labels = clusters(people=400, per=3, seed=7)
    t = DiscriminantRotation(16, 8).fit(train, labels)
    keyed = t(train, generate_key())
    values = torch.linalg.eigvalsh(torch.cov(t.coordinates(keyed).T))
    assert values.max() / values.min() < 1.05  # the total covariance is isotropic on the kept axes
    with pytest.raises(ValueError, match="labelled"):
        DiscriminantRotation(16, 8).fit(train)


def test_identity_names_the_fit_not_the_key() -> None:
    a = WhitenedRotation(16, 8).fit(clusters(seed=1)[0])
    b = WhitenedRotation(16, 8).fit(clusters(seed=2)[0])
    assert a.identity.startswith("whitened_rotation:") and a.identity != b.identity
    assert a.identity == WhitenedRotation(16, 8).fit(clusters(seed=1)[0]).identity


def test_the_key_undoing_matcher_compares_with_fs_distance_on_the_kept_axes() -> None:
    train, _ = clusters(people=500, seed=3)
    key, other = fixed_key("site 1"), fixed_key("site 2")
    unkeyed = WhitenedRotation(16, 16).fit(train)  # the default matcher
    stored = WhitenedRotation(16, 16, "stored").fit(train)
    a, b = train[:50], train[50:100]
    # the stores hold the same isotropic templates either way; only the matcher differs
    assert torch.equal(unkeyed(a, key), stored(a, key))
    assert torch.equal(stored.matched(stored(a, key), key), stored(a, key))
    distance = (unkeyed.matched(unkeyed(a, key), key) - unkeyed.matched(unkeyed(b, key), key)).norm(dim=1)
    assert torch.allclose(distance, (a - b).norm(dim=1))  # all axes kept: F's own distances
    assert not torch.allclose(unkeyed.matched(unkeyed(a, key), other), a)  # the wrong key undoes nothing
    eight = WhitenedRotation(16, 8, "unkeyed").fit(train)
    kept = (eight.coordinates(a) - eight.coordinates(b)).norm(dim=1)
    assert torch.allclose((eight.matched(eight(a, key), key) - eight.matched(eight(b, key), key)).norm(dim=1), kept)
    assert unkeyed.identity != stored.identity and not unkeyed.matches_stored and stored.matches_stored
    with pytest.raises(ValueError, match="compare"):
        WhitenedRotation(16, 8, "clear")


def test_whitening_axes_f_does_not_span_is_refused_for_carriers() -> None:
    """Embeddings on a 10-dimensional subspace of 16 (turned, so the null axes are no coordinate axes), plus
    float32-sized noise off it: whitening 12 axes puts a sixth of a keyed target off the subspace F's outputs
    lie on, which no image reaches, so a carrier of it is refused; 10 axes keep the target on it."""
    turn = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64))[0]
    noise = torch.Generator().manual_seed(2)

    def on_subspace(seed: int) -> torch.Tensor:
        emb = clusters(dim=10, seed=seed)[0]
        return torch.cat([emb, 1e-5 * torch.randn(len(emb), 6, generator=noise, dtype=emb.dtype)], 1) @ turn

    emb, fresh, key = on_subspace(0), on_subspace(1), fixed_key("null axes")
    too_many, spanned = WhitenedRotation(16, 12).fit(emb), WhitenedRotation(16, 10).fit(emb)
    assert too_many.spanned == spanned.spanned == 10
    with pytest.raises(ValueError, match="span only 10.*components <= 10"):
        too_many.check_drawable()
    spanned.check_drawable()
    KeyedRotation(16).fit(emb).check_drawable()  # no whitening: null axes stay as small as F makes them

    def off_subspace(t: WhitenedRotation) -> float:
        centred = t(fresh, key) - t.mean
        return float(((centred @ turn[10:].T) ** 2).sum() / (centred**2).sum())

    assert off_subspace(too_many) > 0.1
    assert off_subspace(spanned) < 1e-6
