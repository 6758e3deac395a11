"""The store backends on generated templates: the same interface on SQLite + FAISS and on Milvus Lite,
exact and HNSW search, revocation, and a store opened with another F."""

from __future__ import annotations

import numpy as np
import pytest

from distortion.store.backends import EmbeddedStore, MilvusStore, _top_people, open_store
from distortion.store.records import StoreMeta, StoreMismatchError

META = StoreMeta("dlib", 16, "whitened_rotation", "fp0", 0.7)


def templates(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)


@pytest.fixture(params=["sqlite", "milvus-lite"])
def store(request, tmp_path):
    url = str(tmp_path / "s.db") if request.param == "sqlite" else f"milvus-lite://{tmp_path / 'm.db'}"
    s = open_store(url, META)
    yield s
    s.close()


def test_enrol_search_revoke_list(store) -> None:
    t = templates(20)
    for i in range(10):
        assert len(store.enrol(f"p{i}", [b"carrier-a", b"carrier-b"], t[2 * i : 2 * i + 2], "fp0")) == 2
    hits = store.search(t[[0, 5]] + 0.01, 3)
    assert [h[0][0] for h in hits] == ["p0", "p2"]
    assert hits[0][0][1] > 0.9 and len({p for p, _ in hits[0]}) == 3  # one entry per person
    assert store.templates("p3").shape == (2, 16)
    assert store.revoke("p0") == 2
    assert all(p != "p0" for p, _ in store.search(t[:1], 5)[0])
    assert store.templates("p0").shape == (0, 16)
    people = {p["id"]: p for p in store.people()}
    assert set(people) >= {f"p{i}" for i in range(1, 10)} and people["p1"]["fingerprint"] == "fp0"


def test_rescore_scores_the_shortlist_with_the_matchers_own_scores(store) -> None:
    """A matcher that compares elsewhere (here: on the first axis only) reorders what the index found, over the
    stored templates themselves, one entry per person."""
    t = templates(40, seed=3)
    for i in range(20):
        store.enrol(f"p{i}", [b"a", b"b"], t[2 * i : 2 * i + 2], "fp0")
    probe = t[7] + 0.01

    def first_axis(p: np.ndarray, stored: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.abs(stored[:, 0] - p[0]))

    plain = store.search(probe[None], 3)[0]
    rescored = store.search(probe[None], 3, first_axis)[0]
    people = [f"p{i}" for i in range(20)]
    expected = sorted(people, key=lambda person: -first_axis(probe, store.templates(person)).max())[:3]
    assert [p for p, _ in rescored] == expected and plain[0][0] == "p3"
    assert rescored[0][1] == pytest.approx(first_axis(probe, store.templates(expected[0])).max(), rel=1e-5)


def test_top_people_reads_names_of_the_best_rows_only() -> None:
    """The k best people of a shortlist, as a brute-force best row per person gives them, while the names of
    rows far down the shortlist are never read; a shortlist whose best rows are one person's reads further."""
    rng = np.random.default_rng(0)
    persons = [f"p{i}" for i in rng.integers(0, 60, 400)]
    persons[:12] = ["p0"] * 12  # the best rows (scores sorted below) all one person's
    scores = np.sort(rng.random(400))[::-1].copy()
    read: list[int] = []

    def names(positions: np.ndarray) -> list[str]:
        read.extend(int(i) for i in positions)
        return [persons[i] for i in positions]

    best: dict[str, float] = {}
    for person, score in zip(persons, scores):
        best[person] = max(score, best.get(person, -1.0))
    for k in (1, 3, 5):
        read.clear()
        expected = sorted(best.items(), key=lambda item: -item[1])[:k]
        assert _top_people(scores, names, k) == expected
        assert len(read) < 100 and (k != 3 or len(read) > 12)  # k = 3 reads past its first 12 rows (all p0)
    assert len(_top_people(scores[:5], lambda pos: [persons[i] for i in pos], 3)) == 1  # fewer people than k


def test_another_f_is_refused(tmp_path) -> None:
    open_store(str(tmp_path / "s.db"), META).close()
    other = StoreMeta("facenet", 512, "whitened_rotation", "fp0", 0.7)
    with pytest.raises(StoreMismatchError, match="facenet"):
        open_store(str(tmp_path / "s.db"), other)
    MilvusStore(str(tmp_path / "m.db"), META).close()
    with pytest.raises(StoreMismatchError, match="embedding"):
        MilvusStore(str(tmp_path / "m.db"), other)


def test_hnsw_agrees_with_exact_search(tmp_path) -> None:
    t = templates(3000, seed=1)
    exact, hnsw = EmbeddedStore(tmp_path / "e.db", META), EmbeddedStore(tmp_path / "h.db", META, hnsw_from=1000)
    for s in (exact, hnsw):
        for i in range(0, 3000, 100):
            for j in range(i, i + 100):
                s.records.insert(f"p{j}", [b"c"], t[j : j + 1], "fp0")
    probes = t[:200] + 0.3 * templates(200, seed=2)
    top_exact = [h[0][0] for h in exact.search(probes, 1)]
    top_hnsw = [h[0][0] for h in hnsw.search(probes, 1)]
    assert hnsw.index.index.ntotal == 3000 and hnsw.index.kind == "hnsw" and exact.index.kind == "exact"
    assert np.mean([a == b for a, b in zip(top_exact, top_hnsw)]) >= 0.95


def test_index_is_a_cache_rebuilt_from_sqlite(tmp_path) -> None:
    path = tmp_path / "s.db"
    s = EmbeddedStore(path, META)
    t = templates(4)
    s.enrol("a", [b"c"], t[:1], "fp0")
    assert s.search(t[:1], 1)[0][0][0] == "a"
    s.close()
    s = EmbeddedStore(path, META)  # new rows written by another process: added to the saved index
    s.records.insert("b", [b"c"], t[1:2], "fp0")
    assert s.search(t[1:2], 1)[0][0][0] == "b"
    s.revoke("a")  # a revocation: rebuilt
    assert all(p != "a" for p, _ in s.search(t[:1], 2)[0])
    s.close()
    path.with_suffix(".faiss").unlink()  # the index gone: rebuilt from SQLite
    s = EmbeddedStore(path, META)
    assert s.search(t[1:2], 1)[0][0][0] == "b"
    s.close()


@pytest.mark.parametrize("kind", ["sqlite", "milvus-lite"])
def test_an_existing_store_opens_with_its_own_meta(kind, tmp_path) -> None:
    from distortion.store.backends import open_existing_store

    url = str(tmp_path / "s.db") if kind == "sqlite" else f"milvus-lite://{tmp_path / 'm.db'}"
    with pytest.raises(FileNotFoundError, match="no store"):
        open_existing_store(url)
    made = open_store(url, META)
    made.enrol("a", [b"c"], templates(1), "fp0")
    made.close()
    store = open_existing_store(url)
    assert store.meta == META and [p["id"] for p in store.people()] == ["a"]
    store.close()


OTHER_PROCESS = """
import sys, json, numpy as np
from distortion.store.backends import open_existing_store, open_store
from distortion.store.records import StoreMeta
url, person, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta = StoreMeta("dlib", 16, "whitened_rotation", "fp0", 0.7)
t = np.random.default_rng(seed).standard_normal((2, 16)).astype(np.float32)
store = open_store(url, meta)
store.enrol(person, [b"carrier-" + person.encode(), b"second"], t, "fp0")
found = store.search(t[:1], 1)[0][0][0]
store.close()
existing = open_existing_store(url)  # as revoke and list open it
people = [p["id"] for p in existing.people()]
existing.revoke(person) if person == "revoked" else None
existing.close()
print(json.dumps({"found": found, "people": people}))
"""


@pytest.mark.parametrize("kind", ["sqlite", "milvus-lite"])
def test_every_backend_is_reopened_by_a_second_process(kind, tmp_path) -> None:
    """Each process enrols, searches and lists a store another process made (a Milvus collection another process
    made starts released: it must be loaded before any search)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    url = str(tmp_path / "s.db") if kind == "sqlite" else f"milvus-lite://{tmp_path / 'm.db'}"
    seen = []
    for seed, person in enumerate(["first", "revoked", "third"]):
        out = subprocess.run([sys.executable, "-c", OTHER_PROCESS, url, person, str(seed)], capture_output=True,
                             text=True, env=dict(os.environ, PYTHONPATH=str(root)), timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        seen.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [s["found"] for s in seen] == ["first", "revoked", "third"]
    tombstone = ["revoked"] if kind == "sqlite" else []  # SQLite lists a revoked person's tombstone
    assert seen[-1]["people"] == ["first", *tombstone, "third"]
