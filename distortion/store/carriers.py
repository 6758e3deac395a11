"""Where a Milvus store keeps its carrier PNGs: files on this machine, or PostgreSQL, which every service process on
every machine reaches.

Milvus holds vectors and short fields, not images; the carrier is written here first, under the SHA-256 of its
bytes, and the Milvus row names it, so that a row never points at a missing carrier. PostgreSQL rather than an
object store: these machines have the server, one transaction writes a carrier whole or not at all, and the same
server can hold the service's other state later. A revoked carrier is deleted from either; PostgreSQL keeps a
deleted row's bytes in its table files until ``VACUUM FULL`` rewrites them (docs/service.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

__all__ = ["CarrierFiles", "Carriers", "PostgresCarriers", "carrier_name", "open_carriers"]


def carrier_name(png: bytes) -> str:
    """The name a carrier is kept under: its content's hash, so that a retried write writes the same thing."""
    return hashlib.sha256(png).hexdigest()[:32] + ".png"


class Carriers(Protocol):
    def put(self, png: bytes) -> str: ...

    def get(self, name: str) -> bytes: ...

    def delete(self, names: list[str]) -> None: ...

    def close(self) -> None: ...


class CarrierFiles:
    """Carriers as files in ``folder`` (written to a temporary name, then renamed: never half a file)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, png: bytes) -> str:
        name = carrier_name(png)
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(png)
        tmp.replace(self.folder / name)
        return name

    def get(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def delete(self, names: list[str]) -> None:
        for name in names:
            (self.folder / name).unlink(missing_ok=True)

    def close(self) -> None:
        pass


class PostgresCarriers:
    """Carriers in the table ``distortion_carriers (name, png)`` of the PostgreSQL database at ``dsn``."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.db = psycopg.connect(dsn, autocommit=True)
        self.db.execute("CREATE TABLE IF NOT EXISTS distortion_carriers (name TEXT PRIMARY KEY, png BYTEA NOT NULL)")

    def put(self, png: bytes) -> str:
        name = carrier_name(png)
        self.db.execute("INSERT INTO distortion_carriers VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, png))
        return name

    def get(self, name: str) -> bytes:
        row = self.db.execute("SELECT png FROM distortion_carriers WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise FileNotFoundError(f"no carrier {name} in PostgreSQL")
        return bytes(row[0])

    def delete(self, names: list[str]) -> None:
        self.db.execute("DELETE FROM distortion_carriers WHERE name = ANY(%s)", (names,))

    def close(self) -> None:
        self.db.close()


def open_carriers(where: str) -> CarrierFiles | PostgresCarriers:
    """``postgresql://...`` (or ``postgres://``): :class:`PostgresCarriers`; anything else is a folder."""
    if where.startswith(("postgresql://", "postgres://")):
        return PostgresCarriers(where)
    return CarrierFiles(where)
