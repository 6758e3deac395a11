"""A person's token and their own template transform: the printable form, the files, the key derivation, and what
the personal transform keeps (exact matching with both secrets) and hides (the norm, without them)."""

from __future__ import annotations

import pickle
import stat

import pytest
import torch
from scipy.stats import ks_2samp

from distortion.deployment.keyed_templates import SignProjection, WhitenedRotation
from distortion.deployment.personal_templates import PersonalTransform, pad_norm, unpad_norm
from distortion.deployment.tokens import (
    Token,
    TokenFormatError,
    generate_token,
    load_token,
    person_key,
    write_token,
    write_token_qr,
)
from distortion.metrics.verification import pair_scores
from tests.keys import fixed_key


def test_printable_form_round_trips_and_refuses_typos() -> None:
    token = generate_token()
    text = token.text()
    assert text.startswith("dtk1-") and Token.parse(text) == token
    assert Token.parse(text.lower().replace("-", " ")) == token  # case, spaces and dashes are free
    position = 7
    typo = text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1 :]
    with pytest.raises(TokenFormatError, match="checksum"):
        Token.parse(typo)
    for bad in ("", "dtk1-short", text + "X", text.replace(text[6], "1", 1) if text[6] not in "1" else text + "1"):
        with pytest.raises(TokenFormatError):
            Token.parse(bad)
    assert text not in repr(token) and text not in str(token)
    with pytest.raises(TypeError):
        pickle.dumps(token)


def test_token_files(tmp_path, monkeypatch) -> None:
    token = generate_token()
    path = write_token(token, tmp_path / "ada.token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_token(path) == token
    with pytest.raises(FileExistsError):
        write_token(generate_token(), path)  # another person's token is never overwritten
    assert load_token(path) == token
    qr = write_token_qr(token, tmp_path / "ada.png")
    assert qr.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError, match="not found"):
        load_token(tmp_path / "missing.token")
    (tmp_path / "bad.token").write_text("not a token\n")
    with pytest.raises(TokenFormatError, match="bad.token"):
        load_token(tmp_path / "bad.token")
    monkeypatch.delenv("DISTORTION_TOKEN", raising=False)
    with pytest.raises(ValueError, match="no token"):
        load_token()
    monkeypatch.setenv("DISTORTION_TOKEN", token.text())
    assert load_token() == token


def test_person_key_needs_both_secrets() -> None:
    system, other_system = fixed_key("system"), fixed_key("other")
    token, other_token = generate_token(), generate_token()
    keys = {person_key(system, token), person_key(system, other_token), person_key(other_system, token)}
    assert len(keys) == 3 and system not in keys and person_key(system, token) == person_key(system, token)


def test_norm_pad_is_exact_and_hides_the_norm() -> None:
    torch.manual_seed(0)
    r = torch.tensor([5.0, 8.5, 12.0], dtype=torch.float64)
    u = torch.rand(3, dtype=torch.float64)
    assert torch.allclose(unpad_norm(pad_norm(r, u, 8.5, 0.17), u, 8.5, 0.17), r, rtol=1e-9)
    # padded under 2,000 random pads, a small and a large norm give the same distribution of stored norms
    pads = torch.rand(2000, dtype=torch.float64)
    small, large = (
        pad_norm(torch.full((2000,), 6.0), pads, 8.5, 0.17),
        pad_norm(torch.full((2000,), 11.0), pads.roll(1), 8.5, 0.17),
    )
    assert ks_2samp(small.numpy(), large.numpy()).pvalue > 0.01
    assert abs(6.0 - 11.0) > 4 * (small.median() - large.median()).abs()


def _fitted(m: int = 12) -> tuple[WhitenedRotation, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    people = torch.randn(60, 16) * torch.linspace(2, 0.5, 16)
    labels = torch.arange(60).repeat_interleave(4)
    emb = people[labels] + 0.2 * torch.randn(240, 16)
    return WhitenedRotation(16, m).fit(emb), emb, labels


def test_personal_transform_matches_exactly_with_both_secrets_and_not_without() -> None:
    transform, emb, labels = _fitted()
    personal = PersonalTransform(transform)
    system = fixed_key("system")
    own, wrong = person_key(system, generate_token()), person_key(system, generate_token())
    a, b = emb[0::4], emb[1::4]  # two images of each person
    stored = personal(a, own)
    # with the right person key the matcher compares exactly as the system transform's matcher does
    expected = pair_scores(
        transform.matched(transform(a, system), system), transform.matched(transform(b, system), system)
    )
    got = pair_scores(personal.matched(stored, own), personal.matched(personal(b, own), own))
    assert torch.allclose(got, expected, atol=1e-5)
    # a wrong token: the same genuine pairs score like strangers
    wrong_scores = pair_scores(personal.matched(stored, wrong), personal.matched(personal(b, wrong), wrong))
    strangers = pair_scores(personal.matched(stored, own), personal.matched(personal(b.roll(1, 0), own), own))
    assert wrong_scores.mean() < expected.mean() - 0.5 * (expected.mean() - strangers.mean())


def test_every_person_key_draws_from_one_distribution() -> None:
    """Stored norms about the mean do not depend on the photo (the invariant every rotation keeps, padded)."""
    transform, emb, _ = _fitted()
    personal = PersonalTransform(transform)
    system = fixed_key("system")
    near = emb[(emb - transform.mean.float()).norm(dim=1).argmin()][None]
    far = emb[(emb - transform.mean.float()).norm(dim=1).argmax()][None]

    def norms(e: torch.Tensor) -> torch.Tensor:
        stored = torch.cat([personal(e, person_key(system, generate_token())) for _ in range(400)])
        return transform.coordinates(stored).norm(dim=1)

    assert ks_2samp(norms(near).numpy(), norms(far).numpy()).pvalue > 0.01
    plain_near, plain_far = (transform.keyed(e, system).norm() for e in (near, far))
    assert plain_far > 1.5 * plain_near  # without the pad the norms alone tell the two photos apart


def test_only_rotations_take_a_token() -> None:
    transform, emb, labels = _fitted()
    with pytest.raises(ValueError, match="rotation"):
        PersonalTransform(SignProjection(16, 12, 12).fit(emb))
