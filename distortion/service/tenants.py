"""The service's tenants: each application's store, key and API keys, and the audit log, in ``service.db``.

A service root holds ``service.db`` and ``tenants/<name>/``: the tenant's key file (mode 0600) and, unless another
URL is given, its store. An API key reads ``dst_<key id>_<secret>``: the key id finds its row, the secret's SHA-256
is compared with the stored digest in constant time (:func:`hmac.compare_digest`). The secret has 256 random bits,
so a fast hash suffices (no password stretching is needed against a guess of 2^256); it is shown once, when made,
and never stored, logged or returned again. The audit log keeps what was decided about whom, never an image, a
template or a key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from distortion.deployment.keys import generate_key, write_key

__all__ = ["AuditEntry", "Tenant", "Tenants", "TenantError"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, store TEXT, created_at REAL NOT NULL,
                                    tokens INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, tenant TEXT NOT NULL REFERENCES tenants (name), digest BLOB NOT NULL,
    created_at REAL NOT NULL, revoked_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
    at REAL NOT NULL, tenant TEXT NOT NULL, verb TEXT NOT NULL, person TEXT, decision TEXT NOT NULL
);
"""
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
API_KEY = re.compile(r"dst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_DUMMY_DIGEST = hashlib.sha256(b"no such key").digest()


class TenantError(ValueError):
    """A tenant that cannot be made or found (its name, a duplicate, an unknown name)."""


@dataclass(frozen=True)
class Tenant:
    """An application of the service: its name, its store's URL, its key file, and whether its store gives each
    person a token (:mod:`distortion.deployment.tokens`)."""

    name: str
    store: str
    key_file: Path
    tokens: bool = False


@dataclass(frozen=True)
class AuditEntry:
    at: float
    tenant: str
    verb: str
    person: str | None
    decision: str


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Tenants:
    """The tenants under a service ``root`` (created when missing). Safe to share between threads and processes."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "service.db", timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(tenants)")}
        if "tokens" not in columns:  # a root made before tenants could have tokens
            self.db.execute("ALTER TABLE tenants ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0")
        self.lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def _tenant(self, name: str, store: str | None, tokens: bool = False) -> Tenant:
        """Tenant ``name``; a store of ``None`` is the default, in the tenant's folder (it moves with the root)."""
        folder = self.root / "tenants" / name
        return Tenant(name, store or str(folder / "store.db"), folder / "site.key", tokens)

    def create(self, name: str, store: str | None = None, tokens: bool = False) -> tuple[Tenant, str]:
        """Make tenant ``name`` with a new key and store (default ``tenants/<name>/store.db``; ``tokens``: each person
        verified with their own token); returns it and its first API key, which is shown this once."""
        if not NAME.fullmatch(name):
            raise TenantError(f"a tenant's name is 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit; "
                              f"got {name!r}")  # fmt: skip
        if self.get(name) is not None:
            raise TenantError(f"tenant {name!r} exists already")
        tenant = self._tenant(name, store, tokens)
        write_key(generate_key(), tenant.key_file)
        with self.lock:
            self.db.execute("INSERT INTO tenants VALUES (?, ?, ?, ?)", (name, store, time.time(), int(tokens)))
        return tenant, self.issue_key(name)

    def get(self, name: str) -> Tenant | None:
        with self.lock:
            row = self.db.execute("SELECT store, tokens FROM tenants WHERE name = ?", (name,)).fetchone()
        return self._tenant(name, row[0], bool(row[1])) if row else None

    def names(self) -> list[str]:
        with self.lock:
            return [row[0] for row in self.db.execute("SELECT name FROM tenants ORDER BY name").fetchall()]

    def issue_key(self, name: str) -> str:
        """A new API key of tenant ``name`` (the tenant's other keys stay valid until revoked)."""
        if self.get(name) is None:
            raise TenantError(f"no tenant {name!r}; known: {self.names()}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self.lock:
            self.db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, NULL)", (key_id, name, _digest(secret),
                                                                               time.time()))  # fmt: skip
        return f"dst_{key_id}_{secret}"

    def revoke_key(self, key_id: str) -> None:
        """Stop API key ``key_id`` (the part after ``dst_``) from opening its tenant."""
        with self.lock:
            cursor = self.db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                                     (time.time(), key_id))  # fmt: skip
        if not cursor.rowcount:
            raise TenantError(f"no live API key {key_id!r}")

    def keys(self, name: str) -> list[dict]:
        """Tenant ``name``'s API keys by id and dates (never their secrets)."""
        with self.lock:
            rows = self.db.execute("SELECT key_id, created_at, revoked_at FROM api_keys WHERE tenant = ? ORDER BY "
                                   "created_at", (name,)).fetchall()  # fmt: skip
        return [{"key_id": k, "created_at": c, "revoked_at": r} for k, c, r in rows]

    def authenticate(self, api_key: str) -> Tenant | None:
        """The tenant whose live API key is ``api_key``, else ``None``; the digest is compared in constant time."""
        found = API_KEY.fullmatch(api_key or "")
        key_id, secret = found.groups() if found else ("", api_key or "")
        with self.lock:
            row = self.db.execute("SELECT tenant, digest FROM api_keys WHERE key_id = ? AND revoked_at IS NULL",
                                  (key_id,)).fetchone()  # fmt: skip
        digest = row[1] if row else _DUMMY_DIGEST
        if not hmac.compare_digest(_digest(secret), digest) or row is None:
            return None
        return self.get(row[0])

    def audit(self, tenant: str, verb: str, person: str | None, decision: str) -> None:
        """Append one line to the audit log: when, which tenant, which verb, about whom, what was decided."""
        with self.lock:
            self.db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?)", (time.time(), tenant, verb, person, decision))

    def audit_log(self, tenant: str | None = None) -> list[AuditEntry]:
        """The audit log, oldest first (of ``tenant`` alone when given)."""
        query, args = "SELECT * FROM audit", ()
        if tenant is not None:
            query, args = query + " WHERE tenant = ?", (tenant,)
        with self.lock:
            return [AuditEntry(*row) for row in self.db.execute(query + " ORDER BY rowid", args).fetchall()]
