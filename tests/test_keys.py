"""Keys: file mode, fingerprints, derivation, and that no key bytes leave the object."""

from __future__ import annotations

import pickle
import stat

import pytest

from distortion.deployment.keys import Key, KeyMismatchError, generate_key, load_key, write_key


def test_write_and_load_round_trip(tmp_path):
    key = generate_key()
    path = write_key(key, tmp_path / "k.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == key
    with pytest.raises(FileExistsError):
        write_key(generate_key(), path)


def test_fingerprint_names_the_key_and_hides_it():
    key = generate_key()
    secret = key._secret.hex()
    assert len(key.fingerprint) == 16 and key.fingerprint == Key(key._secret).fingerprint
    assert key.fingerprint != generate_key().fingerprint
    for text in (str(key), repr(key), key.fingerprint):
        assert secret not in text and secret[:16] not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_derivations_differ_by_label_and_key():
    key = generate_key()
    assert key.derive("a") != key.derive("b")
    assert key.derive("a") != generate_key().derive("a")
    assert (key.rng("a").standard_normal(4) == key.rng("a").standard_normal(4)).all()


def test_environment_and_errors(tmp_path, monkeypatch):
    key = generate_key()
    monkeypatch.delenv("DISTORTION_KEY_FILE", raising=False)
    monkeypatch.setenv("DISTORTION_KEY", key._secret.hex())
    assert load_key() == key
    monkeypatch.delenv("DISTORTION_KEY")
    with pytest.raises(ValueError, match="no key"):
        load_key()
    with pytest.raises(FileNotFoundError, match="keygen"):
        load_key(tmp_path / "missing.key")
    (tmp_path / "bad.key").write_text("not hex\n")
    with pytest.raises(ValueError, match="does not hold a key"):
        load_key(tmp_path / "bad.key")


def test_check_fails_with_both_fingerprints():
    key, other = generate_key(), generate_key()
    key.check(key.fingerprint, "this store")
    with pytest.raises(KeyMismatchError, match=other.fingerprint):
        key.check(other.fingerprint, "this store")
