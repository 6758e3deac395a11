"""The store under real faults: a writer killed with SIGKILL mid-batch, and four writers at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from distortion.store.backends import EmbeddedStore
from tests.store.test_backends import META

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys, numpy as np
from distortion.store.backends import EmbeddedStore
from distortion.store.records import StoreMeta
meta = StoreMeta("dlib", 16, "whitened_rotation", "fp0", 0.7)
store = EmbeddedStore(sys.argv[1], meta)
prefix, count = sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
for i in range(count):
    # three records per person, one transaction; a large carrier keeps each commit busy
    store.enrol(f"{prefix}{i}", [rng.bytes(200_000) for _ in range(3)], rng.standard_normal((3, 16)), "fp0")
    print(f"{prefix}{i}", flush=True)
"""


def _writer(db: Path, prefix: str, count: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), prefix, str(count)], stdout=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip


def _rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(con.execute("SELECT person, COUNT(*) FROM records GROUP BY person").fetchall())


def test_sigkill_mid_batch_loses_nothing_committed_and_leaves_no_half_record(tmp_path) -> None:
    db = tmp_path / "s.db"
    EmbeddedStore(db, META).close()
    writer = _writer(db, "p", 10_000)
    committed = [writer.stdout.readline().strip() for _ in range(25)]
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    rows = _rows(db)
    assert set(committed) <= set(rows)  # every committed person survived
    assert set(rows.values()) == {3}  # and nobody is there by halves
    store = EmbeddedStore(db, META)  # the store opens and serves after the crash
    assert len(store.search(store.templates("p0")[:1], 1)[0]) == 1
    store.close()


def test_four_writers_at_once_lose_nothing(tmp_path) -> None:
    db = tmp_path / "s.db"
    EmbeddedStore(db, META).close()
    started = time.time()
    writers = [_writer(db, f"w{k}_", 15) for k in range(4)]
    outputs = [w.communicate(timeout=300)[0].split() for w in writers]
    assert all(w.returncode == 0 for w in writers), time.time() - started
    rows = _rows(db)
    assert set(rows) == {name for out in outputs for name in out} and len(rows) == 60
    assert set(rows.values()) == {3}
