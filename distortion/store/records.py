"""The records of a biometric store in SQLite (WAL): one row per enrolled carrier, one transaction each.

A row holds the id, the carrier as PNG bytes, its template F(stored) (float32), the key's fingerprint and
the enrolment time. The store's ``meta`` table says which F, transform and threshold every row was made with;
a store opened with another F fails at once. Photos are never stored. SQLite commits a row whole or not at all,
so a process killed mid-batch leaves every committed row and no half one; concurrent writers wait for each other
(busy timeout).

Revocation erases: a revoked person's rows are deleted with ``secure_delete`` on (SQLite overwrites the freed
content with zeros) and the write-ahead log is checkpointed and truncated, so that no byte of their carriers or
templates stays in the database's files; what remains is a tombstone (id, fingerprint, how many records, when).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Record", "StoreMeta", "StoreMismatchError", "open_records"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    person TEXT NOT NULL,
    carrier BLOB NOT NULL,
    template BLOB NOT NULL,
    fingerprint TEXT,
    enrolled_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS records_person ON records (person);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('revocations', 0);
CREATE TRIGGER IF NOT EXISTS count_revocations AFTER UPDATE OF revoked_at ON records
    WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'revocations'; END;
CREATE TRIGGER IF NOT EXISTS count_erasures AFTER DELETE ON records
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'revocations'; END;
CREATE TABLE IF NOT EXISTS tombstones (
    person TEXT NOT NULL, fingerprint TEXT, records INTEGER NOT NULL, revoked_at REAL NOT NULL
);
"""


class StoreMismatchError(ValueError):
    """A store opened with another F, transform or template size than it was made with."""


@dataclass(frozen=True)
class StoreMeta:
    """What every record of a store was made with; fixed when the store is created."""

    embedding: str
    dim: int
    transform: str | None
    fingerprint: str | None
    threshold: float
    tokens: bool = False  # each person's carriers under their own token (distortion.deployment.tokens)

    def check(self, other: StoreMeta) -> None:
        """Raise :class:`StoreMismatchError` if ``other`` (the caller's setup) differs in F, size or transform."""
        for name in ("embedding", "dim", "transform"):
            if getattr(self, name) != getattr(other, name):
                raise StoreMismatchError(
                    f"this store was made with {name} {getattr(self, name)!r}, not {getattr(other, name)!r}: "
                    "open it with the same F and transform, or make a new store"
                )


@dataclass(frozen=True)
class Record:
    rowid: int
    person: str
    fingerprint: str | None
    enrolled_at: float
    revoked_at: float | None


class Records:
    """The SQLite side of a store (one connection per process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # one connection per process; a caller that shares it between threads serialises its use (the service
        # holds a lock per store)
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA secure_delete=ON")
        self.db.executescript(SCHEMA)
        self._erase(self.db.execute("SELECT DISTINCT person FROM records WHERE revoked_at IS NOT NULL").fetchall())

    def close(self) -> None:
        self.db.close()

    def meta(self) -> StoreMeta | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'store'").fetchone()
        return StoreMeta(**json.loads(row[0])) if row else None

    def init_meta(self, meta: StoreMeta) -> StoreMeta:
        """Record ``meta`` for a new store; an existing store's meta is returned and checked against it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            existing = self.meta()
            if existing is None:
                self.db.execute("INSERT INTO meta VALUES ('store', ?)", (json.dumps(meta.__dict__),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        existing = existing or meta
        existing.check(meta)
        return existing

    def insert(self, person: str, carriers: list[bytes], templates: np.ndarray, fingerprint: str | None) -> list[int]:
        """Add one person's carriers in one transaction; returns their row ids."""
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                self.db.execute(
                    "INSERT INTO records (person, carrier, template, fingerprint, enrolled_at) VALUES (?, ?, ?, ?, ?)",
                    (person, png, np.asarray(t, np.float32).tobytes(), fingerprint, now),
                ).lastrowid
                for png, t in zip(carriers, templates)
            ]
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return ids

    def revoke(self, person: str) -> int:
        """Erase every record of ``person`` (a tombstone stays); returns how many live records there were."""
        return self._erase([(person,)])

    def _erase(self, people: list[tuple[str]]) -> int:
        """Delete the rows of ``people`` in one transaction, leave their tombstones, and truncate the log.

        Rows that an older store only marked revoked are erased too (at open, and with the person's live ones)."""
        if not people:
            return 0
        live = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for (person,) in people:
                groups = self.db.execute(
                    "SELECT fingerprint, SUM(revoked_at IS NULL), COUNT(*) FROM records WHERE person = ? "
                    "GROUP BY fingerprint", (person,),
                ).fetchall()  # fmt: skip
                for fingerprint, alive, total in groups:
                    self.db.execute("INSERT INTO tombstones VALUES (?, ?, ?, ?)",
                                    (person, fingerprint, total, time.time()))  # fmt: skip
                    live += alive
                self.db.execute("DELETE FROM records WHERE person = ?", (person,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return live

    def live(self, person: str | None = None, after: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Row ids, templates ``(N, D)`` float32 and ids of live records (of ``person``; row id > ``after``)."""
        query = "SELECT rowid, template, person FROM records WHERE revoked_at IS NULL AND rowid > ?"
        args: tuple = (after,)
        if person is not None:
            query, args = query + " AND person = ?", (after, person)
        rows = self.db.execute(query + " ORDER BY rowid", args).fetchall()
        dim = self.meta().dim
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        templates = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return ids, templates, [r[2] for r in rows]

    def state(self) -> tuple[int, int]:
        """``(largest row id, revocations)``: changes whenever the live set changes (the index's stamp)."""
        # both O(log n): the primary key's end (a plain MAX, which SQLite reads off the b-tree) and a trigger's counter
        top, revoked = self.db.execute(
            "SELECT (SELECT MAX(rowid) FROM records), (SELECT value FROM counters WHERE name = 'revocations')"
        ).fetchone()
        return int(top or 0), int(revoked)

    def people(self) -> list[dict]:
        """One entry per (id, fingerprint): ``records`` ever enrolled, how many of them were ``revoked``."""
        live = self.db.execute(
            "SELECT person, fingerprint, COUNT(*), MIN(enrolled_at) FROM records GROUP BY person, fingerprint"
        ).fetchall()
        revoked = self.db.execute(
            "SELECT person, fingerprint, SUM(records), MAX(revoked_at) FROM tombstones GROUP BY person, fingerprint"
        ).fetchall()
        people: dict[tuple, dict] = {}
        for person, fingerprint, n, enrolled_at in live:
            people[person, fingerprint] = {"id": person, "records": n, "enrolled_at": enrolled_at,
                                           "fingerprint": fingerprint, "revoked": 0}  # fmt: skip
        for person, fingerprint, n, revoked_at in revoked:
            entry = people.setdefault((person, fingerprint), {"id": person, "records": 0, "enrolled_at": None,
                                                             "fingerprint": fingerprint, "revoked": 0})  # fmt: skip
            entry["records"] += n
            entry["revoked"] += n
            entry["revoked_at"] = revoked_at
        return sorted(people.values(), key=lambda p: (p["id"], p["fingerprint"] or ""))

    def carriers(self, person: str) -> list[bytes]:
        """The PNG carriers of ``person``'s live records, oldest first."""
        rows = self.db.execute(
            "SELECT carrier FROM records WHERE person = ? AND revoked_at IS NULL ORDER BY rowid", (person,)
        )
        return [row[0] for row in rows.fetchall()]

    def persons_of(self, rowids: np.ndarray) -> dict[int, str]:
        if len(rowids) == 0:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = self.db.execute(f"SELECT rowid, person FROM records WHERE rowid IN ({marks})", [int(r) for r in rowids])
        return dict(rows.fetchall())

    def carrier(self, rowid: int) -> bytes:
        return self.db.execute("SELECT carrier FROM records WHERE rowid = ?", (rowid,)).fetchone()[0]


def open_records(path: str | Path) -> Records:
    """Open (or create) the SQLite records at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Records(path)
