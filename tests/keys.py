"""Keys for tests whose assertions are statistical: the same keys on every run, so a pass means the same thing."""

from __future__ import annotations

import hashlib

from distortion.deployment.keys import Key


def fixed_key(label: str) -> Key:
    """The key named ``label`` (SHA-256 of it): distinct labels give independent keys."""
    return Key(hashlib.sha256(f"distortion tests/{label}".encode()).digest())
