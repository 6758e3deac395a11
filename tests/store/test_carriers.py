"""Where a Milvus store keeps its carriers: files, or a real PostgreSQL server started for the test, which a second
process (standing for a second machine, without the first one's files) reads from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from distortion.service.process import free_port
from distortion.store.backends import open_store
from distortion.store.carriers import CarrierFiles, carrier_name
from tests.store.test_backends import META


@pytest.fixture(scope="module")
def postgres() -> str:
    """A PostgreSQL server of this machine in a fresh folder, on a free loopback port; its DSN."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("no PostgreSQL server here (initdb, pg_ctl)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # postgres refuses to run as root
    # root's pytest folders are closed to other users: the server's folder is one of its own under /tmp
    folder = Path(tempfile.mkdtemp(prefix="distortion-postgres-"))
    if as_user:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run([*as_user, "initdb", "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
                   check=True, capture_output=True)  # fmt: skip
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_files_keep_each_carrier_whole_under_its_hash(tmp_path) -> None:
    files = CarrierFiles(tmp_path / "c")
    name = files.put(b"png bytes")
    assert name == carrier_name(b"png bytes") and files.get(name) == b"png bytes"
    assert [p.name for p in (tmp_path / "c").iterdir()] == [name]  # no temporary file left
    files.delete([name])
    assert not list((tmp_path / "c").iterdir())


PROCESS = """
import sys, json, numpy as np
from distortion.store.backends import open_existing_store, open_store
from distortion.store.records import StoreMeta
url, action = sys.argv[1], sys.argv[2]
if action == "write":
    store = open_store(url, StoreMeta("dlib", 16, "whitened_rotation", "fp0", 0.7))
    t = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    store.enrol("a", [b"\\x89PNG first carrier", b"\\x89PNG second carrier"], t[:2], "fp0")
    store.enrol("b", [b"\\x89PNG b"], t[2:], "fp0")
else:
    store = open_existing_store(url)
found = {"carriers": [c.hex() for c in store.carriers("a")], "people": [p["id"] for p in store.people()]}
if action == "revoke":
    found["revoked"] = store.revoke("a")
store.close()
print(json.dumps(found))
"""


def test_a_milvus_store_keeps_its_carriers_in_postgres_for_every_process(postgres, tmp_path) -> None:
    """One process writes; another, in another folder and without the first one's files, reads and revokes (Milvus
    Lite lets one process at a time hold its file)."""
    import psycopg

    url = f"milvus-lite://{tmp_path / 'm.db'}?carriers={postgres}"
    pngs = [b"\x89PNG first carrier", b"\x89PNG second carrier"]
    seen = {}
    for action, folder in (("write", tmp_path), ("read", tmp_path.parent), ("revoke", tmp_path.parent)):
        done = subprocess.run([sys.executable, "-c", PROCESS, url, action], capture_output=True, text=True,
                              timeout=300, cwd=folder)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        seen[action] = json.loads(done.stdout.strip().splitlines()[-1])
        assert not (tmp_path / "m.carriers").exists()  # nothing on this machine's disk
    assert [bytes.fromhex(c) for c in seen["read"]["carriers"]] == pngs and seen["read"]["people"] == ["a", "b"]
    assert seen["revoke"]["revoked"] == 2
    with psycopg.connect(postgres) as db:
        kept = [bytes(row[0]) for row in db.execute("SELECT png FROM distortion_carriers")]
    assert kept == [b"\x89PNG b"]  # a's carriers are gone from PostgreSQL, b's stay


def test_a_carriers_location_on_a_sqlite_store_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="for a Milvus store"):
        open_store(f"{tmp_path / 's.db'}?carriers=postgresql://x", META)
