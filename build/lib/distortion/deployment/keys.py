"""Secret keys of keyed templates: 256 random bits in a file (or an environment variable), a public
fingerprint that names them, and the randomness they derive.

A key never leaves this module as bytes: :class:`Key` prints and serialises as its fingerprint only,
checkpoints hold the fitted (public) part of a transform and never a key, and every record made
under a key carries its fingerprint, so that a store opened with another key fails at once
(:class:`KeyMismatchError`) instead of scoring everyone as an impostor.

Key file: the key as 64 hexadecimal characters on one line, mode 0600 (``distortion keygen``).
``$DISTORTION_KEY_FILE`` names a key file, ``$DISTORTION_KEY`` holds the hex itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np

__all__ = ["KEY_BYTES", "Key", "KeyMismatchError", "generate_key", "load_key", "write_key"]

KEY_BYTES = 32
KEY_FILE_ENV, KEY_ENV = "DISTORTION_KEY_FILE", "DISTORTION_KEY"


class KeyMismatchError(ValueError):
    """A key whose fingerprint is not the one a carrier, store or model was made with."""


class Key:
    """A 256-bit secret. ``str``, ``repr`` and pickling show only :attr:`fingerprint`."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != KEY_BYTES:
            raise ValueError(f"a key is {KEY_BYTES} bytes ({KEY_BYTES * 8} bits)")
        self._secret = secret

    @property
    def fingerprint(self) -> str:
        """16 hex characters that name the key (a one-way hash: the key cannot be had from it)."""
        return hashlib.sha256(b"distortion/fingerprint/v1\0" + self._secret).hexdigest()[:16]

    def derive(self, label: str) -> bytes:
        """32 bytes for the purpose ``label`` (HMAC-SHA256): independent secrets for independent uses."""
        return hmac.new(self._secret, label.encode(), hashlib.sha256).digest()

    def rng(self, label: str) -> np.random.Generator:
        """A numpy generator seeded with :meth:`derive` (all 256 bits enter its seed sequence)."""
        return np.random.default_rng(int.from_bytes(self.derive(label), "big"))

    def check(self, fingerprint: str, what: str) -> None:
        """Raise :class:`KeyMismatchError` unless ``fingerprint`` is this key's."""
        if fingerprint != self.fingerprint:
            raise KeyMismatchError(
                f"{what} was made with the key {fingerprint}, not with this key ({self.fingerprint}): "
                "use the key it was made with"
            )

    def __repr__(self) -> str:
        return f"Key(fingerprint={self.fingerprint})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self):
        raise TypeError("a Key is not pickled: pass its file, not its bytes")


def generate_key() -> Key:
    """A fresh key from the operating system's random source."""
    return Key(secrets.token_bytes(KEY_BYTES))


def write_key(key: Key, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``key`` to a new file readable by its owner only (0600); an existing file is kept unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: a key file is never overwritten silently (remove it first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key._secret.hex() + "\n")
    os.chmod(path, 0o600)
    return path


def _parse(text: str, where: str) -> Key:
    value = text.strip()
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise ValueError(f"{where} does not hold a key: expected {KEY_BYTES * 2} hex characters (distortion keygen)")
    return Key(secret)


def load_key(path: str | Path | None = None) -> Key:
    """The key in file ``path``; without one, from ``$DISTORTION_KEY_FILE`` or ``$DISTORTION_KEY``."""
    if path is None and os.environ.get(KEY_FILE_ENV):
        path = os.environ[KEY_FILE_ENV]
    if path is None:
        if os.environ.get(KEY_ENV):
            return _parse(os.environ[KEY_ENV], f"${KEY_ENV}")
        raise ValueError(f"no key: pass a key file (distortion keygen --out FILE) or set ${KEY_FILE_ENV}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"key file {str(path)!r} not found (make one with `distortion keygen --out {path}`)")
    return _parse(path.read_text(), f"key file {str(path)!r}")
