"""Biometric stores behind one interface: enrol, verify, identify, revoke, list.

- :class:`EmbeddedStore` (the default, a path or ``sqlite:///path``): SQLite records with a FAISS index.
- :class:`MilvusStore` (``milvus://host:port`` for a Milvus server or cluster, ``milvus-lite:///file.db``
  for Milvus Lite, a real Milvus in-process): templates and ids in a Milvus collection, carriers as PNG files
  beside it or in PostgreSQL (``?carriers=postgresql://...``: every machine reaches them), each written before its
  row, so that a row never points at a missing carrier.

Scores are :func:`~distortion.metrics.verification.pair_scores`, ``1 / (1 + distance)``, against the store's
threshold; a matcher that compares elsewhere than the stored space passes ``rescore`` to :meth:`Store.search`,
which then scores a shortlist of the index's nearest rows with it. Every record carries the key's
fingerprint; the caller checks it before any comparison.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from distortion.store.carriers import open_carriers
from distortion.store.faiss_index import FaissIndex
from distortion.store.records import StoreMeta, StoreMismatchError, open_records
from distortion.store.threads import single_threaded

__all__ = [
    "DuplicateError",
    "EmbeddedStore",
    "MilvusStore",
    "Store",
    "StoreMismatchError",
    "UnknownIdError",
    "open_existing_store",
    "open_store",
]


class DuplicateError(ValueError):
    """A face already enrolled under another id."""


class UnknownIdError(KeyError):
    """An id with no live record."""

    def __str__(self) -> str:
        return str(self.args[0])


SHORTLIST = 256
"""Rows of the stored space's nearest that a ``rescore`` scores: HNSW's search breadth from 500,000 templates
(``efSearch``), so that the index does no more work for them. Among 10^6 synthetic keyed templates recall@1
against exact search was 0.996 for every shortlist from 32 to 400 rows (docs/store.md)."""

Rescore = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(probe (D,), templates (N, D)) -> scores (N,)``: the matcher's own scores of stored templates."""


def _scores(distances: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + distances)


def _width(k: int, rescore: Rescore | None) -> int:
    """Rows to ask the index for: several records per person, a shortlist when rescoring."""
    return 4 * k if rescore is None else max(4 * k, SHORTLIST)


class Store(Protocol):
    meta: StoreMeta

    def enrol(
        self, person: str, carriers: list[bytes], templates: np.ndarray, fingerprint: str | None
    ) -> list[int]: ...

    def templates(self, person: str) -> np.ndarray: ...

    def carriers(self, person: str) -> list[bytes]: ...

    def search(self, probes: np.ndarray, k: int, rescore: Rescore | None = None) -> list[list[tuple[str, float]]]: ...

    def revoke(self, person: str) -> int: ...

    def people(self) -> list[dict]: ...

    def fingerprints(self) -> set[str | None]: ...


def _top_people(scores: np.ndarray, names: Callable[[np.ndarray], list[str]], k: int) -> list[tuple[str, float]]:
    """The ``k`` best people among one probe's scored rows, best first; a person scores as their best row.

    ``names`` gives the people of row positions. It is asked for the best rows first and for more only while
    they name fewer than ``k`` people, so that a store reads a few names rather than a whole shortlist's.
    """
    order = np.argsort(-scores, kind="stable")
    best: dict[str, float] = {}
    start, width = 0, 4 * k
    while len(best) < k and start < len(order):
        chunk = order[start : start + width]
        for position, person in zip(chunk, names(chunk)):
            best.setdefault(person, float(scores[position]))
            if len(best) == k:
                break
        start, width = start + width, 2 * width
    return list(best.items())


class EmbeddedStore:
    """SQLite (WAL) records and a FAISS index rebuilt or extended from them (see :mod:`distortion.store.records`)."""

    def __init__(self, path: str | Path, meta: StoreMeta, hnsw_from: int = 50_000) -> None:
        self.path = Path(path)
        self.records = open_records(self.path)
        self.meta = self.records.init_meta(meta)
        self.index = FaissIndex(self.records, self.path.with_suffix(".faiss"), hnsw_from)

    def enrol(self, person: str, carriers: list[bytes], templates: np.ndarray, fingerprint: str | None) -> list[int]:
        return self.records.insert(person, carriers, templates, fingerprint)

    def templates(self, person: str) -> np.ndarray:
        return self.records.live(person)[1]

    def search(self, probes: np.ndarray, k: int, rescore: Rescore | None = None) -> list[list[tuple[str, float]]]:
        distances, ids = self.index.search(probes, _width(k, rescore))
        out = []
        with single_threaded():  # one probe's shortlist at a time: small work
            for probe, row_ids, row_d in zip(probes, ids, distances):
                found = row_ids >= 0
                row_ids = row_ids[found]
                scores = _scores(row_d[found]) if rescore is None else rescore(probe, self.index.templates(row_ids))
                out.append(_top_people(scores, lambda chunk, rows=row_ids: self._persons(rows[chunk]), k))
        return out

    def _persons(self, row_ids: np.ndarray) -> list[str]:
        found = self.records.persons_of(row_ids)
        return [found[int(i)] for i in row_ids]

    def carriers(self, person: str) -> list[bytes]:
        return self.records.carriers(person)

    def revoke(self, person: str) -> int:
        """Erase ``person``'s records, then rewrite the index file without their templates."""
        revoked = self.records.revoke(person)
        if revoked:
            self.index.refresh()
            self.index.save()
        return revoked

    def people(self) -> list[dict]:
        return self.records.people()

    def fingerprints(self) -> set[str | None]:
        return {p["fingerprint"] for p in self.people() if p["records"] > p["revoked"]}

    def close(self) -> None:
        self.index.save()
        self.records.close()


class MilvusStore:
    """The same interface on Milvus: one collection of (id, person, template, fingerprint, times, carrier file)."""

    def __init__(self, uri: str, meta: StoreMeta, collection: str = "carriers", carriers: str | None = None):
        from pymilvus import DataType, MilvusClient

        self.client = MilvusClient(uri=uri)
        self.collection = collection
        local = not uri.startswith("http")
        self.carrier_store = open_carriers(carriers or str(Path(uri).with_suffix(".carriers") if local else "carriers"))
        if not self.client.has_collection(collection):
            schema = self.client.create_schema(auto_id=True)
            schema.add_field("rowid", DataType.INT64, is_primary=True)
            schema.add_field("person", DataType.VARCHAR, max_length=512)
            schema.add_field("template", DataType.FLOAT_VECTOR, dim=meta.dim)
            schema.add_field("fingerprint", DataType.VARCHAR, max_length=64)
            schema.add_field("enrolled_at", DataType.DOUBLE)
            schema.add_field("carrier", DataType.VARCHAR, max_length=1024)
            index = self.client.prepare_index_params()
            index.add_index("template", index_type="FLAT" if local else "HNSW", metric_type="L2")
            self.client.create_collection(collection, schema=schema, index_params=index)
        self.meta = self._meta(meta, DataType)
        self.meta.check(meta)
        self.client.load_collection(collection)  # a collection another process made starts released

    def _meta(self, meta: StoreMeta, types) -> StoreMeta:
        """The store's meta from its one-row meta collection (written when the store is made)."""
        name = f"{self.collection}_meta"
        if not self.client.has_collection(name):
            schema = self.client.create_schema(auto_id=False)
            schema.add_field("key", types.INT64, is_primary=True)
            schema.add_field("meta", types.VARCHAR, max_length=4096)
            schema.add_field("unused", types.FLOAT_VECTOR, dim=2)  # Milvus asks every collection for a vector
            index = self.client.prepare_index_params()
            index.add_index("unused", index_type="FLAT", metric_type="L2")
            self.client.create_collection(name, schema=schema, index_params=index)
            self.client.insert(name, [{"key": 0, "meta": json.dumps(meta.__dict__), "unused": [0.0, 0.0]}])
        self.client.load_collection(name)
        rows = self.client.query(name, filter="key == 0", output_fields=["meta"])
        return StoreMeta(**json.loads(rows[0]["meta"])) if rows else meta

    def enrol(self, person: str, carriers: list[bytes], templates: np.ndarray, fingerprint: str | None) -> list[int]:
        rows = []
        for png, template in zip(carriers, templates):
            rows.append({"person": person, "template": np.asarray(template, np.float32).tolist(),
                         "fingerprint": fingerprint or "", "enrolled_at": time.time(),
                         "carrier": self.carrier_store.put(png)})  # fmt: skip
        result = self.client.insert(self.collection, rows)
        return [int(i) for i in result["ids"]]

    def _query(self, expr: str, fields: list[str]) -> list[dict]:
        return self.client.query(self.collection, filter=expr, output_fields=fields, limit=16384)

    def templates(self, person: str) -> np.ndarray:
        rows = self._query(f"person == {json.dumps(person)}", ["template"])
        return np.array([r["template"] for r in rows], dtype=np.float32).reshape(len(rows), self.meta.dim)

    def search(self, probes: np.ndarray, k: int, rescore: Rescore | None = None) -> list[list[tuple[str, float]]]:
        fields = ["person"] if rescore is None else ["person", "template"]
        results = self.client.search(self.collection, data=np.asarray(probes, np.float32).tolist(),
                                     limit=_width(k, rescore), output_fields=fields,
                                     search_params={"metric_type": "L2"})  # fmt: skip
        out = []
        with single_threaded():
            for probe, hits in zip(probes, results):
                persons = [h["entity"]["person"] for h in hits]
                if rescore is None:  # Milvus reports squared L2 distances
                    scores = _scores(np.sqrt(np.maximum([h["distance"] for h in hits], 0.0)))
                else:
                    templates = np.array([h["entity"]["template"] for h in hits], np.float32).reshape(len(hits), -1)
                    scores = rescore(probe, templates)
                out.append(_top_people(scores, lambda chunk, persons=persons: [persons[i] for i in chunk], k))
        return out

    def carriers(self, person: str) -> list[bytes]:
        rows = self._query(f"person == {json.dumps(person)}", ["rowid", "carrier"])
        return [self.carrier_store.get(r["carrier"]) for r in sorted(rows, key=lambda r: r["rowid"])]

    def revoke(self, person: str) -> int:
        """Delete ``person``'s rows, then their carriers (Milvus drops the deleted rows at its compaction)."""
        rows = self._query(f"person == {json.dumps(person)}", ["rowid", "carrier"])
        if rows:
            self.client.delete(self.collection, ids=[r["rowid"] for r in rows])
            self.carrier_store.delete([r["carrier"] for r in rows])
        return len(rows)

    def people(self) -> list[dict]:
        rows = self._query("rowid >= 0", ["person", "fingerprint", "enrolled_at"])
        people: dict[tuple, dict] = {}
        for r in rows:
            entry = people.setdefault((r["person"], r["fingerprint"] or None), {
                "id": r["person"], "records": 0, "enrolled_at": r["enrolled_at"],
                "fingerprint": r["fingerprint"] or None, "revoked": 0})  # fmt: skip
            entry["records"] += 1
            entry["enrolled_at"] = min(entry["enrolled_at"], r["enrolled_at"])
        return sorted(people.values(), key=lambda p: p["id"])

    def fingerprints(self) -> set[str | None]:
        return {p["fingerprint"] for p in self.people()}

    def close(self) -> None:
        self.client.close()
        self.carrier_store.close()


def _where(url: str) -> tuple[str, str, str | None]:
    """``(backend, location, where a Milvus store's carriers go)`` of a store URL."""
    url, _, query = url.partition("?carriers=")
    if url.startswith("milvus-lite://"):
        return "milvus", url.removeprefix("milvus-lite://"), query or None
    if url.startswith("milvus://"):
        return "milvus", "http://" + url.removeprefix("milvus://"), query or None
    if query:
        raise ValueError(f"?carriers= is for a Milvus store; {url!r} keeps its carriers in SQLite")
    if "://" in url and not url.startswith("sqlite://"):
        raise ValueError(f"unknown store URL {url!r}: use a path, sqlite:///path, milvus-lite:///file.db or "
                         "milvus://host:port")  # fmt: skip
    return "sqlite", url.removeprefix("sqlite://"), None


def open_store(url: str, meta: StoreMeta) -> EmbeddedStore | MilvusStore:
    """The store at ``url`` (made with ``meta`` when new): a path or ``sqlite:///path`` (embedded),
    ``milvus-lite:///file.db``, ``milvus://host:port``; a Milvus URL may end in ``?carriers=postgresql://...`` (or a
    folder) to keep the carriers there (:mod:`distortion.store.carriers`)."""
    backend, where, carriers = _where(url)
    return MilvusStore(where, meta, carriers=carriers) if backend == "milvus" else EmbeddedStore(where, meta)


def open_existing_store(url: str) -> EmbeddedStore | MilvusStore:
    """The store at ``url`` with the meta it was made with (for revoke and list, which need no F); a missing
    store raises :class:`FileNotFoundError`."""
    backend, where, _ = _where(url)
    if backend == "sqlite":
        if not Path(where).is_file():
            raise FileNotFoundError(f"no store at {url}: enrol someone first")
        records = open_records(where)
        meta = records.meta()
        records.close()
    else:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=where)
        found = client.has_collection("carriers_meta")
        if found:
            client.load_collection("carriers_meta")
        rows = client.query("carriers_meta", filter="key == 0", output_fields=["meta"]) if found else []
        client.close()
        meta = StoreMeta(**json.loads(rows[0]["meta"])) if rows else None
    if meta is None:
        raise FileNotFoundError(f"no store at {url}: enrol someone first")
    return open_store(url, meta)
