"""What the service computes, once per process: F and G loaded once, every tenant's store under its own key,
concurrent requests batched through F and through the carriers.

A request's photos are read and aligned on one thread (dlib holds the interpreter's lock, so more threads would
not align faster), F runs on batches gathered from every tenant's requests (one F serves all), carriers on batches
gathered per tenant (each tenant's key draws its own), and each store is used under its own lock. The
:class:`~distortion.store.system.BiometricSystem` of a tenant does the matching and the storing, as it does for
the command line.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from distortion.backbones import require_face_backbone
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keys import load_key
from distortion.deployment.tokens import Token, generate_token
from distortion.faces.alignment import make_aligner
from distortion.loading import ModelSource, load_model
from distortion.runtime import resolve_device
from distortion.service.batching import Batcher
from distortion.service.tenants import Tenant, Tenants
from distortion.store.system import DEFAULT_THRESHOLD, BiometricSystem, align_photos, check_id, embed_chips

__all__ = ["Batching", "Engine", "Limits", "Photo"]

Value = TypeVar("Value")


@dataclass(frozen=True)
class Limits:
    """What one request may bring (flags ``--limits.*``).

    Args:
        max_upload_mb: the largest request body, in MiB.
        max_pixels: the most pixels a photo may decode to (a decompression bomb is refused from its header).
        max_photos: the most photos of one enrolment.
        request_timeout: seconds a request may take before it is answered 503.
    """

    max_upload_mb: float = 10.0
    max_pixels: int = 40_000_000
    max_photos: int = 10
    request_timeout: float = 60.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


@dataclass(frozen=True)
class Batching:
    """How concurrent requests share F and G (flags ``--batching.*``).

    Args:
        max_size: a batch closes at this many photos...
        max_wait_ms: ... or this many milliseconds after its first photo.
    """

    max_size: int = 16
    max_wait_ms: float = 5.0


@dataclass(frozen=True)
class Photo:
    """An uploaded photo: its file name (for messages) and its bytes."""

    name: str
    data: bytes

    def file(self) -> io.BytesIO:
        stream = io.BytesIO(self.data)
        stream.name = self.name
        return stream


def _png_base64(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


class Engine:
    """The service's model and stores.

    Args:
        tenants: the tenants (:class:`~distortion.service.tenants.Tenants`).
        model: the keyed model every tenant's carriers come from (one process loads it once).
        refine_steps: refinement steps at enrolment (needed with ``model.embedding``).
        threshold: a new store's score threshold (default: the model's calibrated one); a store keeps its own.
        device: auto, cpu, cuda, ...
        batching: how concurrent requests share F and G.
        limits: the most pixels a photo may have (the rest of the limits are the app's).
        seed: seed of the carriers' noise.
        observe: called with ``(stage, batch size)`` for every batch (a metric).
    """

    def __init__(
        self, tenants: Tenants, model: ModelSource, refine_steps: int = 0, threshold: float | None = None,
        device: str = "auto", batching: Batching = Batching(), limits: Limits = Limits(), seed: int = 0,
        observe: Callable[[str, int], None] | None = None,
    ) -> None:  # fmt: skip
        torch.manual_seed(seed)
        self.tenants, self.limits = tenants, limits
        self.model = load_model(model, resolve_device(device))
        if self.model.transform is None:
            raise ValueError("the service keeps every tenant's store under the tenant's own key: give a keyed model "
                             "(a keyed carrier's --model.ckpt, or --model.keyed)")  # fmt: skip
        self.enrolment = Enrolment(refine_steps, storage="png")
        self.threshold = threshold or self.model.threshold or DEFAULT_THRESHOLD
        self.aligner = make_aligner(require_face_backbone(self.model.embedding, "the service").aligner, fast=True)
        self.systems: dict[str, tuple[BiometricSystem, threading.Lock]] = {}
        self.systems_lock = threading.Lock()
        self.align_thread = ThreadPoolExecutor(1, thread_name_prefix="align")
        self.store_threads = ThreadPoolExecutor(8, thread_name_prefix="store")
        wait = batching.max_wait_ms / 1000

        def watch(stage: str) -> Callable[[int], None] | None:
            return None if observe is None else lambda size: observe(stage, size)

        self.embedder = Batcher(self._embed, batching.max_size, wait, "embed", watch("embed"))
        self.drawer = Batcher(self._carriers, batching.max_size, wait, "carriers", watch("carriers"))

    def close(self) -> None:
        self.embedder.close()
        self.drawer.close()
        self.align_thread.shutdown()
        self.store_threads.shutdown()
        for system, lock in self.systems.values():
            with lock:
                system.close()

    def system(self, tenant: Tenant) -> tuple[BiometricSystem, threading.Lock]:
        """The tenant's store on the shared networks, under the tenant's key (opened once per process)."""
        with self.systems_lock:
            if tenant.name not in self.systems:
                distorter = self.model.distorter(self.enrolment, key=load_key(tenant.key_file))
                system = BiometricSystem(tenant.store, distorter, self.model.embedding_name, self.threshold,
                                         tenant.tokens)  # fmt: skip
                self.systems[tenant.name] = (system, threading.Lock())
            return self.systems[tenant.name]

    # the batched stages (each runs on its batcher's thread)
    def _embed(self, chips: list[torch.Tensor]) -> list[torch.Tensor]:
        emb = embed_chips(self.model.embedding, torch.cat(chips))
        return list(emb.split([len(c) for c in chips]))

    def _carriers(self, jobs: list[tuple[str, torch.Tensor, np.ndarray]]) -> list[tuple]:
        results: dict[int, tuple] = {}
        for name in {name for name, _, _ in jobs}:
            mine = [i for i, job in enumerate(jobs) if job[0] == name]
            system, _ = self.systems[name]
            stored, templates = system.carriers(torch.cat([jobs[i][1] for i in mine]),
                                                np.concatenate([jobs[i][2] for i in mine]))  # fmt: skip
            start = 0
            for i in mine:
                n = len(jobs[i][1])
                results[i] = (stored[start : start + n], templates[start : start + n])
                start += n
        return [results[i] for i in range(len(jobs))]

    # the steps of a request
    async def _on(self, pool: ThreadPoolExecutor, work: Callable[[], Value]) -> Value:
        return await asyncio.get_running_loop().run_in_executor(pool, work)

    async def _stored(self, tenant: Tenant, work: Callable[[BiometricSystem], Value]) -> Value:
        """Run ``work`` on the tenant's store under its lock, off the event loop."""
        system, lock = self.system(tenant)

        def locked() -> Value:
            with lock:
                return work(system)

        return await self._on(self.store_threads, locked)

    async def _stored_carriers(self, tenant: Tenant, person: str) -> list[str]:
        """The stored carriers of ``person`` as ``data:`` URLs of their PNG bytes."""
        return [_png_base64(png) for png in await self._stored(tenant, lambda s: s.store.carriers(person))]

    async def embed(self, photos: list[Photo]) -> tuple[torch.Tensor, torch.Tensor]:
        """The aligned chips of ``photos`` and F of them (refusals raise before any model runs)."""
        x = await self._on(self.align_thread, lambda: align_photos([p.file() for p in photos], self.aligner,
                                                                    self.limits.max_pixels))  # fmt: skip
        return x, await asyncio.wrap_future(self.embedder.submit(x))

    async def enrol(self, tenant: Tenant, person: str, photos: list[Photo], carriers: bool = False) -> dict:
        """Enrol ``person`` from ``photos`` in the tenant's store (one transaction, after the duplicate check)."""
        check_id(person)
        system, _ = self.system(tenant)
        x, emb = await self.embed(photos)
        token = generate_token() if system.tokens else None
        probes = system.probe(emb, token)
        stored, templates = await asyncio.wrap_future(self.drawer.submit((tenant.name, x, probes)))
        result = await self._stored(tenant, lambda s: s.store_person(person, stored, templates, probes, token=token))
        answer = {"id": person, "records": len(result["records"])}
        if token is not None:
            answer["token"] = token.text()  # shown once: nothing of the service keeps it
        if carriers:
            answer["carriers"] = await self._stored_carriers(tenant, person)
        return answer

    async def verify(
        self, tenant: Tenant, person: str, photo: Photo, carrier: bool = False, token: Token | None = None
    ) -> dict:
        """Whether ``photo`` is ``person``: match, score, threshold (and a stored carrier of the person); a store
        with tokens needs the person's ``token``."""
        check_id(person)
        system, _ = self.system(tenant)
        system.matcher(token)  # the token's presence checked before any model runs
        _, emb = await self.embed([photo])
        probe = system.probe(emb, token)[0]
        match, score = await self._stored(tenant, lambda s: s.verify_probe(person, probe, token))
        answer = {"id": person, "match": match, "score": score, "threshold": system.threshold}
        if carrier:
            answer["carrier"] = (await self._stored_carriers(tenant, person))[0]
        return answer

    async def identify(self, tenant: Tenant, photo: Photo, top: int = 5, carrier: bool = False) -> dict:
        """The ``top`` people of ``photo`` in the tenant's store and the match or none (and the match's carrier)."""
        system, _ = self.system(tenant)
        system._no_search("identification")
        _, emb = await self.embed([photo])
        probe = system.probe(emb)[0]
        answer = await self._stored(tenant, lambda s: s.identify_probe(probe, top))
        if carrier and answer["match"] is not None:
            answer["carrier"] = (await self._stored_carriers(tenant, answer["match"]))[0]
        return answer

    async def revoke(self, tenant: Tenant, person: str) -> int:
        """Erase ``person`` from the tenant's store; how many live records they had."""
        check_id(person)
        return await self._stored(tenant, lambda s: s.revoke(person))

    async def people(self, tenant: Tenant) -> list[dict]:
        return await self._stored(tenant, lambda s: s.people())
