"""The service's benchmarks (cases of ``make bench``): a real ``distortion serve`` process on the loopback address.

- ``service/verify``: verification requests of real LFW photos against 16 enrolled people at 1, 4 and 16
  concurrent clients (10,000 requests in all, bounded loops that stop by themselves): latency p50, p95, p99,
  throughput and errors, beside the in-process rate of the same work (:meth:`BiometricSystem.verify` one photo at a
  time) and the time the process took to answer its first request after its start;
- ``service/identify_100000``: identification of real photos among 100,000 stored keyed templates (drawn from F's
  distribution as ``store/identify_*`` draws them, under the tenant's own key) plus the 16 enrolled people, one
  client: latency p50 and p95 beside the time to align and embed the same probe in process.

The model is dlib's ResNet with a keyed transform fitted on draws from F's distribution (the 32-axis whitened
rotation of ``configs/lfw_keyed_carrier.yaml``), carriers refined one step from noise: what verification and
identification cost does not depend on how the carriers were drawn.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import torch

from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_model import KeyedModel
from distortion.deployment.keys import load_key
from distortion.faces.alignment import make_aligner
from distortion.faces.lfw_protocol import first_people
from distortion.loading import ModelSource, load_model
from distortion.paths import lfw_root
from distortion.service.engine import Photo
from distortion.service.process import ServiceProcess
from distortion.service.tenants import Tenant, Tenants
from distortion.store.backends import EmbeddedStore
from distortion.store.bench import THRESHOLD, fill_store, keyed_templates, lfw_keyed_transform, synthetic_people
from distortion.store.records import StoreMeta
from distortion.store.system import BiometricSystem, align_photos, embed_chips

__all__ = ["measure_service_identify", "measure_service_verify"]

LEVELS = ((1, 500), (4, 1_500), (16, 8_000))  # (clients, requests): 10,000 requests in all
PEOPLE = 16


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = 1000 * np.asarray(seconds)
    return {f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)}


@contextmanager
def _service(tmp: Path, size: int = 0, imported: bool = False) -> Iterator[tuple[ServiceProcess, str, Tenant, Path,
                                                                                   float]]:  # fmt: skip
    """A service over one tenant whose store holds ``size`` synthetic keyed templates (and, ``imported``, the first
    16 LFW people's first photos); yields the process, the API key, the tenant, the keyed model file and the
    seconds the process took to answer its first request."""
    rng = np.random.default_rng(0)
    centres, _, _, fitting = synthetic_people(max(size, 1), 1, rng)
    transform = lfw_keyed_transform().fit(torch.from_numpy(fitting))
    keyed_file = KeyedModel(transform, "dlib", THRESHOLD).save(tmp / "keyed.pt")
    with closing(Tenants(tmp / "root")) as tenants:
        tenant, api_key = tenants.create("bench")
    if size:
        key = load_key(tenant.key_file)
        meta = StoreMeta("DlibResNet", 128, transform.identity, key.fingerprint, THRESHOLD)
        store = EmbeddedStore(tenant.store, meta)
        fill_store(store, keyed_templates(centres, transform, key), key.fingerprint)
        store.close()
    if imported:
        with closing(_system(keyed_file, tenant.store, tenant)) as system:
            people = first_people(lfw_root(), PEOPLE)
            system.enrol_many({person: photos[:1] for person, photos in people.items()}, check_duplicates=False)
    flags = ["--model.embedding", "dlib", "--model.keyed", str(keyed_file), "--refine_steps", "1", "--log_level",
             "warning"]  # fmt: skip
    service = ServiceProcess(tmp / "root", flags, tmp / "service.log")
    startup = service.start()
    try:
        yield service, api_key, tenant, keyed_file, startup
    finally:
        service.stop()


def _enrolled(service: ServiceProcess, api_key: str) -> list[tuple[str, bytes]]:
    """Enrol the first 16 LFW people with two photos (the first); their ids and second photos' bytes."""
    probes = []
    with service.client(api_key) as http:
        for person, (first, second) in list(first_people(lfw_root(), PEOPLE).items()):
            answer = http.post("/v1/people", data={"id": person}, files={"photos": (first.name, first.read_bytes())})
            if answer.status_code == 201:
                probes.append((person, second.read_bytes()))
    return probes


def _load(service: ServiceProcess, api_key: str, path_of, photos: list[bytes], clients: int, requests: int) -> dict:
    """``requests`` POSTs of ``photos`` (in turn) to ``path_of(i)`` from ``clients`` threads: latencies, errors,
    throughput."""
    seconds: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(indices: range) -> None:
        with service.client(api_key) as http:
            for i in indices:
                start = time.perf_counter()
                answer = http.post(path_of(i), files={"photo": ("probe.jpg", photos[i % len(photos)])})
                took = time.perf_counter() - start
                with lock:
                    seconds.append(took)
                    errors[0] += answer.status_code != 200

    threads = [threading.Thread(target=client, args=(range(k, requests, clients),)) for k in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {"clients": clients, "requests": len(seconds), "errors": errors[0], "per_s": len(seconds) / elapsed,
            **_percentiles(seconds)}  # fmt: skip


def _system(keyed_file: Path, store: str, tenant: Tenant) -> BiometricSystem:
    """The service's model in this process, on ``store``, under the tenant's key."""
    model = load_model(ModelSource(embedding="dlib", keyed=str(keyed_file)), torch.device("cpu"))
    distorter = model.distorter(Enrolment(1, storage="png"), key=load_key(tenant.key_file))
    return BiometricSystem(store, distorter, model.embedding_name, THRESHOLD)


def _in_process_verify(keyed_file: Path, tmp: Path, probes: list[tuple[str, bytes]], tenant: Tenant) -> float:
    """Verifications a second in this process (one photo at a time) on a copy of the people, under the same key."""
    system = _system(keyed_file, str(tmp / "in_process.db"), tenant)
    people = first_people(lfw_root(), PEOPLE)
    system.enrol_many({person: [people[person][0]] for person, _ in probes}, check_duplicates=False)
    files = {person: people[person][1] for person, _ in probes}
    start, count = time.perf_counter(), 0
    for _ in range(4):
        for person, photo in files.items():
            system.verify(person, photo)
            count += 1
    rate = count / (time.perf_counter() - start)
    system.close()
    return rate


def measure_service_verify() -> dict:
    """Verification through the service at 1, 4 and 16 clients, beside the in-process rate."""
    with tempfile.TemporaryDirectory() as tmp_name, _service(Path(tmp_name)) as (service, api_key, tenant, keyed,
                                                                               startup):  # fmt: skip
        tmp = Path(tmp_name)
        probes = _enrolled(service, api_key)
        photos = [photo for _, photo in probes]
        _load(service, api_key, lambda i: f"/v1/people/{probes[i % len(probes)][0]}/verify", photos, 4, 32)  # warm
        levels = [_load(service, api_key, lambda i: f"/v1/people/{probes[i % len(probes)][0]}/verify", photos, c, n)
                  for c, n in LEVELS]  # fmt: skip
        in_process = _in_process_verify(keyed, tmp, probes, tenant)
    return {"case": "service/verify", "levels": levels, "in_process_per_s": in_process, "startup_s": startup,
            "errors": sum(level["errors"] for level in levels), "requests": sum(level["requests"] for level in levels),
            "speedup_16_over_1": levels[-1]["per_s"] / levels[0]["per_s"]}  # fmt: skip


def measure_service_identify(size: int = 100_000, requests: int = 300) -> dict:
    """Identification through the service among ``size`` stored templates, one client, beside align + embed.

    The 16 real people are imported before the service starts (``enrol_many`` without the duplicate check): among
    100,000 people, the check at the 1:1 threshold calls most newcomers duplicates of someone (docs/service.md)."""
    with tempfile.TemporaryDirectory() as tmp_name, _service(Path(tmp_name), size, imported=True) as (
        service, api_key, _, _, _,
    ):  # fmt: skip
        people = first_people(lfw_root(), PEOPLE)
        photos = [second.read_bytes() for _, second in people.values()]
        first = _load(service, api_key, lambda i: "/v1/identify", photos, 1, 1)  # the index is built here
        served = _load(service, api_key, lambda i: "/v1/identify", photos, 1, requests)
    model = load_model(ModelSource(embedding="dlib"), torch.device("cpu"))
    aligner = make_aligner("dlib", fast=True)
    seconds = []
    for i in range(requests):
        start = time.perf_counter()
        embed_chips(model.embedding, align_photos([Photo("probe.jpg", photos[i % len(photos)]).file()], aligner))
        seconds.append(time.perf_counter() - start)
    embed = _percentiles(seconds)
    return {"case": f"service/identify_{size}", "first_request_ms": first["p50_ms"], **served,
            "align_embed_p50_ms": embed["p50_ms"], "align_embed_p95_ms": embed["p95_ms"],
            "p95_over_align_embed_ms": served["p95_ms"] - embed["p95_ms"]}  # fmt: skip
