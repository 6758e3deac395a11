"""The attackers on keyed templates, on generated data where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from distortion.attacks.keyed import (
    covariance_link,
    dsys_floor,
    ica_link,
    insider_estimate,
    match_marginals,
    replay_scores,
    ridge_map,
    trained_link,
)
from distortion.deployment.keyed_templates import KeyedRotation, WhitenedRotation
from distortion.metrics.verification import cross_impostor_scores, pair_scores, view_metrics
from distortion.reporting.keyed_report import KeyedTemplates, keyed_sections
from tests.keys import fixed_key
from tests.test_keyed_templates import clusters


def skewed_clusters(people: int = 400, dim: int = 8, seed: int = 0):
    """Identity centres with skewed, distinctly heavy-tailed coordinates of distinct variances, two samples each."""
    g = torch.Generator().manual_seed(seed)
    powers = torch.linspace(1.0, 3.0, dim)
    centres = torch.randn(people, dim, generator=g).abs() ** powers * torch.linspace(2.0, 0.5, dim)
    emb = centres.repeat_interleave(2, 0) + 0.05 * torch.randn(2 * people, dim, generator=g)
    return emb.double()


def pairs(emb):
    """Genuine then impostor pairs over consecutive samples: (a, b, same)."""
    a, b = emb[0::2], emb[1::2]
    same = torch.cat([torch.ones(len(a)), torch.zeros(len(a))]).bool()
    return torch.cat([a, a]), torch.cat([b, b.roll(1, 0)]), same


def link_eer(pair, same):
    return view_metrics(pair_scores(*pair), same)["eer"]


def test_covariance_alignment_links_a_plain_rotation_but_not_a_whitened_one():
    emb = skewed_clusters()
    a, b, same = pairs(emb)
    k1, k2 = fixed_key("site 1"), fixed_key("site 2")
    rotation = KeyedRotation(8).fit(emb)
    assert link_eer((rotation(a, k1), rotation(b, k2)), same) > 0.3  # direct: unlinkable
    assert link_eer(covariance_link(rotation(a, k1), rotation(b, k2), 8), same) < 0.1
    whitened = WhitenedRotation(8, 8).fit(emb)
    assert link_eer(covariance_link(whitened(a, k1), whitened(b, k2), 8), same) > 0.3


@pytest.mark.parametrize("sites", [("site 1", "site 2"), ("site 3", "site 4"), ("site 5", "site 6")])
def test_ica_undoes_a_whitened_rotation_of_non_gaussian_sources(sites):
    emb = skewed_clusters(people=1000)
    a, b, same = pairs(emb)
    whitened = WhitenedRotation(8, 8).fit(emb)
    k1, k2 = map(fixed_key, sites)
    assert link_eer(ica_link(whitened(a, k1), whitened(b, k2), 8), same) < 0.15


def test_match_marginals_recovers_a_permutation_and_signs_of_distinct_sources():
    g = torch.Generator().manual_seed(0)
    sources = torch.stack([torch.randn(4000, generator=g).abs() ** p for p in (1.0, 1.5, 2.0, 3.0)], 1).double()
    sources = (sources - sources.mean(0)) / sources.std(0)
    columns, signs = torch.tensor([2, 0, 3, 1]), torch.tensor([-1.0, 1.0, -1.0, 1.0]).double()
    other = torch.stack([torch.randn(4000, generator=g).abs() ** p for p in (1.0, 1.5, 2.0, 3.0)], 1).double()
    other = (other - other.mean(0)) / other.std(0)  # another sample of the same sources: a second store
    mixed = torch.empty_like(other)
    mixed[:, columns] = other * signs
    found, found_signs = match_marginals(sources, mixed)
    assert found.tolist() == columns.tolist() and found_signs.tolist() == signs.tolist()


def test_trained_linker_and_insider_need_enough_pairs():
    emb, _ = clusters(people=300, dim=16, seed=5)
    train, test = emb[:300], emb[300:]
    rotation = WhitenedRotation(16, 16).fit(train)
    k1, k2 = fixed_key("site 1"), fixed_key("site 2")
    a, b, same = pairs(test)
    linked = trained_link(rotation(train, k1), rotation(train, k2), rotation(a, k1), rotation(b, k2))
    assert link_eer(linked, same) < 0.1
    leaked = rotation(train, k1)
    many = insider_estimate(leaked[:200], train[:200], rotation(a, k1))
    one = insider_estimate(leaked[:1], train[:1], rotation(a, k1))
    assert view_metrics(pair_scores(many, b), same)["eer"] < 0.1
    assert view_metrics(pair_scores(one, b), same)["eer"] > 0.3


@pytest.mark.parametrize("compare", ["stored", "unkeyed"])
def test_replay_of_a_stored_template_is_far_from_it(compare):
    emb, _ = clusters(seed=6)
    t = WhitenedRotation(16, 8, compare).fit(emb)
    key = fixed_key("site 1")
    stored = t(emb, key)
    genuine = pair_scores(t.matched(stored[0::2], key), t.matched(t(emb[1::2], key), key))
    assert replay_scores(stored, t, key).median() < genuine.median() - 0.1


def test_ridge_map_is_sklearns_ridge():
    g = np.random.default_rng(0)
    x, y = g.standard_normal((50, 6)), g.standard_normal((50, 3))
    weights, bias = ridge_map(torch.from_numpy(x), torch.from_numpy(y), ridge=0.1)
    penalty = 0.1 * ((x - x.mean(0)) ** 2).sum() / len(x)
    reference = Ridge(alpha=penalty).fit(x, y)
    assert np.allclose(weights.numpy(), reference.coef_.T) and np.allclose(bias.numpy(), reference.intercept_)


def test_dsys_floor_of_unrelated_scores_is_small_and_below_linked():
    g = torch.Generator().manual_seed(0)
    unrelated = torch.rand(2000, generator=g)
    floor = dsys_floor(unrelated, 500, 500)
    assert 0 < floor < 0.3
    assert dsys_floor(unrelated, 500, 1500) < floor  # more non-mated scores: a less noisy estimate


def _report_templates(shrink: float) -> tuple[KeyedTemplates, WhitenedRotation]:
    """Training people (400) and test pairs (200 other people) under a fitted whitened rotation; the stored
    templates are the keyed targets drawn ``shrink`` times closer to the mean, as a carrier that falls short."""
    emb, labels = clusters(people=600, per=2, dim=16, spread=0.3, seed=3)
    train, test = labels < 400, labels >= 400
    transform = WhitenedRotation(16, 8).fit(emb[train], labels[train])
    key1, key2 = fixed_key("site"), fixed_key("re-issue")

    def stored(e, key):
        return transform(transform.mean + shrink * (e - transform.mean), key)

    a, b = emb[test][0::2], emb[test][1::2]
    ya, yb = labels[test][0::2], labels[test][1::2]
    a, b, ya, yb = torch.cat([a, a]), torch.cat([b, b.roll(1, 0)]), torch.cat([ya, ya]), torch.cat([yb, yb.roll(1)])
    t = KeyedTemplates(emb[train], labels[train], stored(emb[train], key1), stored(emb[train], key2), a, b, ya == yb,
                       stored(a, key1), stored(b, key1), stored(b, key2), ya, yb)  # fmt: skip
    return t, transform


def test_impostors_score_every_pair_of_different_people_and_calibrate_carriers_apart():
    exact, transform = _report_templates(shrink=1.0)
    sections = keyed_sections(exact, transform, fixed_key("site"), fixed_key("re-issue"))
    report = sections["impostors"]
    assert report["impostor_pairs"] == int((exact.label_a[:, None] != exact.label_b[None, :]).sum())
    assert report["carrier_threshold"] == pytest.approx(sections["deployment"]["threshold"])
    assert report["exact_templates_false_accept"] == report["deploy_false_accept"]
    short, transform = _report_templates(shrink=0.7)
    sections = keyed_sections(short, transform, fixed_key("site"), fixed_key("re-issue"))
    report = sections["impostors"]
    # carriers drawn towards the mean: two of them are closer than a carrier and a photo, so the deployment's
    # threshold lets more of their impostor pairs through than their own threshold does
    own = report["carrier_vs_carrier_false_accept_at_carrier_threshold"]
    assert report["carrier_vs_carrier_false_accept"] > 3 * own and own <= 0.005
    assert report["carrier_threshold"] > sections["deployment"]["threshold"]


def test_cross_impostor_scores_are_every_pair_of_different_labels():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 3, generator=g), torch.randn(5, 3, generator=g)
    la, lb = torch.tensor([0, 1, 1, 2, 3, 3, 4]), torch.tensor([1, 2, 5, 0, 3])
    pairs = [(i, j) for i in range(7) for j in range(5) if la[i] != lb[j]]
    expected = sorted(float(pair_scores(a[i : i + 1], b[j : j + 1])) for i, j in pairs)
    assert cross_impostor_scores(a, b, la, lb).sort().values.tolist() == pytest.approx(expected)


def test_tokens_close_the_insider_and_the_invariants_that_link_the_system_key_mode():
    """Exact templates of generated people: under the system key alone the insider undoes the store and the norm and
    distance profile link one photo across two systems; under each person's token none of them does."""
    from distortion.reporting.token_report import PersonKeys, TokenTemplates, by_person, token_sections

    emb, labels = clusters(people=300, per=2, dim=16, spread=0.3)
    transform = WhitenedRotation(16, 12).fit(emb[:300])
    train, test = slice(0, 300), slice(300, 600)
    key1, key2 = fixed_key("site"), fixed_key("other site")
    keys1, keys2 = PersonKeys(key1), PersonKeys(key2)
    from distortion.deployment.personal_templates import PersonalTransform

    personal = PersonalTransform(transform)

    def tokens(e, y, keys):
        return by_person(lambda rows, key: personal(rows, key), e, y, keys)

    a, b, ya = emb[test][0::2], emb[test][1::2], labels[test][0::2]
    same = torch.ones(len(a), dtype=torch.bool)
    a, b, ya, yb = torch.cat([a, a]), torch.cat([b, b.roll(1, 0)]), torch.cat([ya, ya]), torch.cat([ya, ya.roll(1)])
    same = torch.cat([same, torch.zeros_like(same)])
    e, y = emb[train], labels[train]
    t = TokenTemplates(e, y, tokens(e, y, keys1), tokens(e, y, keys2), transform(e, key1), transform(e, key2), a, b,
                       same, ya, yb, tokens(a, ya, keys1), tokens(a, ya, keys2), tokens(b, ya, keys2),
                       transform(a, key1), transform(a, key2), transform(b, key2))  # fmt: skip
    threshold = float(pair_scores(transform.matched(transform(a, key1), key1),
                                  transform.matched(transform(b, key1), key1))[~same].max()) + 1e-6  # fmt: skip
    sections = token_sections(t, transform, keys1, keys2, threshold, insider_pairs=(10, 100, 300))
    linkage = sections["linkage"]
    for attacker in ("norm", "distance_profile"):
        assert linkage["system_key_same_photo"][attacker]["d_sys"] > 0.8  # what every key keeps links one photo
        token = linkage["token_same_photo"][attacker]
        assert token["d_sys"] <= token["d_sys_floor"] + 0.1 and token["eer"] > 0.35
    assert linkage["system_key_same_photo"]["trained_linker"]["eer"] < 0.05
    assert linkage["token_same_photo"]["trained_linker"]["eer"] > 0.35
    assert sections["insider"]["eer_300"] > 0.35  # the system-key insider of the same pairs: next line
    keyed_insider = insider_estimate(t.train_stored1, t.train_emb, t.stored1_a)
    assert view_metrics(pair_scores(keyed_insider, t.emb_b), t.same)["eer"] < 0.1
    deployment = sections["deployment"]
    assert deployment["false_accept_victims_token"] == 0 and deployment["false_accept_own_token"] == 0
    assert deployment["true_accept"] > 0.9 and deployment["deploy_eer"] < 0.05
    assert sections["replay"]["accepted_victims_token"] < 0.05 and sections["replay"]["accepted_guessed_token"] < 0.05
    assert sections["revocation"]["old_carrier_accepted_genuine"] < 0.05
