"""A person's secret beside the system's key: a token issued at enrolment, kept by the person (a card, a phone),
never by the store (ISO/IEC 24745: auxiliary data that depends on the subject).

A token is 128 random bits. It prints as 26 base32 letters and digits in groups, with a 4-character checksum
(``dtk1-XXXXXX-XXXXXX-XXXXXX-XXXXXXXX-CCCC``) so that a typo is refused instead of read as another token, and
is kept in a file (mode 0600) or the environment (``$DISTORTION_TOKEN``). Like a
:class:`~distortion.deployment.keys.Key` it prints, and refuses to pickle, as nothing but a placeholder.

A person's template key is ``HMAC(system key, token)`` (:func:`person_key`): the token alone lacks the system's
256 bits, the system key alone lacks the token's 128 bits, so neither alone fixes anything of the person's
transform.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from distortion.deployment.keys import Key

__all__ = ["TOKEN_BYTES", "Token", "TokenFormatError", "generate_token", "load_token", "person_key", "write_token",
           "write_token_qr"]  # fmt: skip

TOKEN_BYTES = 16
TOKEN_ENV = "DISTORTION_TOKEN"
PREFIX = "dtk1"
GROUPS = (6, 6, 6, 8)  # 26 base32 characters hold the 128 bits


class TokenFormatError(ValueError):
    """A string that is not a token (wrong length, letters, or checksum)."""


def _checksum(secret: bytes) -> str:
    return base64.b32encode(hashlib.sha256(b"distortion/token-check/v1\0" + secret).digest())[:4].decode()


class Token:
    """A person's 128-bit secret. ``str``/``repr`` hide it; :meth:`text` is the printable form, shown once."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != TOKEN_BYTES:
            raise ValueError(f"a token is {TOKEN_BYTES} bytes ({TOKEN_BYTES * 8} bits)")
        self._secret = secret

    def text(self) -> str:
        """The printable token: ``dtk1-`` 26 base32 characters in groups, then a 4-character checksum."""
        letters = base64.b32encode(self._secret).decode().rstrip("=")
        groups, start = [], 0
        for size in GROUPS:
            groups.append(letters[start : start + size])
            start += size
        return "-".join([PREFIX, *groups, _checksum(self._secret)])

    @classmethod
    def parse(cls, text: str) -> Token:
        """A token from its printable form (case, spaces and dashes are free); a typo fails the checksum."""
        compact = "".join(text.split()).replace("-", "").upper()
        if not compact.startswith(PREFIX.upper()) or len(compact) != len(PREFIX) + sum(GROUPS) + 4:
            raise TokenFormatError(f"not a token: expected {PREFIX}- then {sum(GROUPS)} letters and digits and a "
                                   "4-character checksum, as enrolment printed it")  # fmt: skip
        body, check = compact[len(PREFIX) : -4], compact[-4:]
        try:
            secret = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError:
            raise TokenFormatError("not a token: it holds characters other than A-Z and 2-7") from None
        if len(secret) != TOKEN_BYTES or not hmac.compare_digest(_checksum(secret), check):
            raise TokenFormatError("not a token: its checksum does not match (a mistyped character?)")
        return cls(secret)

    def __repr__(self) -> str:
        return "Token(<secret>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._secret).digest())

    def __reduce__(self):
        raise TypeError("a Token is not pickled: the person keeps it, nothing else does")


def generate_token() -> Token:
    """A fresh token from the operating system's random source."""
    return Token(secrets.token_bytes(TOKEN_BYTES))


def person_key(key: Key, token: Token) -> Key:
    """The key of one person's template transform: HMAC-SHA256 of the token under the system key."""
    return Key(key.derive("distortion/person/v1\0" + token._secret.hex()))


def write_token(token: Token, path: str | Path) -> Path:
    """Write ``token``'s printable form to a new file readable by its owner only (0600); never overwrites."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # an existing file is another person's token
    with os.fdopen(fd, "w") as f:
        f.write(token.text() + "\n")
    return path


def write_token_qr(token: Token, path: str | Path) -> Path:
    """A QR code (PNG) of the printable token, for a phone or a printed card; never overwrites."""
    import segno

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: a token's QR code is never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    segno.make(token.text(), error="m").save(path, scale=8)
    os.chmod(path, 0o600)
    return path


def load_token(path: str | Path | None = None) -> Token:
    """The token in file ``path`` (its printable form); without one, ``$DISTORTION_TOKEN``'s."""
    if path is None:
        if os.environ.get(TOKEN_ENV):
            return Token.parse(os.environ[TOKEN_ENV])
        raise ValueError(f"no token: this store verifies a person with the token issued at enrolment (--token FILE "
                         f"or ${TOKEN_ENV})")  # fmt: skip
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file {str(path)!r} not found")
    try:
        return Token.parse(path.read_text())
    except TokenFormatError as error:
        raise TokenFormatError(f"token file {str(path)!r}: {error}") from None
