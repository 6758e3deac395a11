"""The service as real processes: killed with SIGKILL during enrolments from four clients, and two processes over
one store."""

from __future__ import annotations

import threading
import time

import httpx

from tests.lfw_fixtures import people_with_images
from tests.service.server import Server, create_tenant
from tests.service.test_api import files


def test_sigkill_during_enrolments_loses_no_answered_enrolment(keyed_model, tmp_path) -> None:
    api_key = create_tenant(tmp_path / "root", "acme")
    # five refinement steps: what is tested is what the store keeps, not how well the carriers match
    server = Server(tmp_path / "root", keyed_model, tmp_path / "service.log", "--refine_steps", "5")
    server.start()
    people = list(people_with_images(40).items())
    answered: dict[str, int] = {}
    lock = threading.Lock()

    def client(mine: list) -> None:
        with server.client(api_key) as http:
            for person, photos in mine:
                try:
                    answer = http.post("/v1/people", data={"id": person}, files=files(photos))
                except httpx.TransportError:  # the service is gone
                    return
                with lock:
                    answered[person] = answer.status_code

    threads = [threading.Thread(target=client, args=(people[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 300
    while sum(code == 201 for code in answered.values()) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    for thread in threads:
        thread.join()
    enrolled = {person for person, code in answered.items() if code == 201}
    assert len(enrolled) >= 6 and len(answered) < len(people), answered  # killed with enrolments still to come

    restart = server.start()
    try:
        assert restart < 10, f"the restarted service answered after {restart:.1f} s"
        with server.client(api_key) as http:
            stored = {p["id"]: p["records"] for p in http.get("/v1/people").json()["people"]}
            assert enrolled <= set(stored)  # every enrolment answered with success is there
            assert set(stored.values()) == {2}  # and nobody is there in part
            person = next(iter(enrolled))
            answer = http.post(f"/v1/people/{person}/verify", files=files(dict(people)[person][:1], "photo"))
            assert answer.status_code == 200 and answer.json()["id"] == person  # served from what survived
    finally:
        server.stop()


def test_two_processes_over_one_store_keep_their_indexes_in_step(keyed_model, tmp_path) -> None:
    root = tmp_path / "root"
    api_key = create_tenant(root, "acme")
    first = Server(root, keyed_model, tmp_path / "first.log")
    second = Server(root, keyed_model, tmp_path / "second.log")
    first.launch()
    second.launch()  # both load their models at once
    first.wait()
    second.wait()
    try:
        (a, photos_a), (b, photos_b) = list(people_with_images(2, min_images=3, per_person=3).items())
        with first.client(api_key) as one, second.client(api_key) as two:
            assert two.post("/v1/identify", files=files(photos_a[2:], "photo")).json()["match"] is None
            assert one.post("/v1/people", data={"id": a}, files=files(photos_a[:2])).status_code == 201
            assert two.post("/v1/people", data={"id": b}, files=files(photos_b[:2])).status_code == 201
            assert two.post("/v1/identify", files=files(photos_a[2:], "photo")).json()["match"] == a
            assert one.post("/v1/identify", files=files(photos_b[2:], "photo")).json()["match"] == b
            assert one.post("/v1/people", data={"id": "a-again"}, files=files(photos_a[2:])).status_code == 409
            assert two.delete(f"/v1/people/{a}").json()["revoked"] == 2
            assert one.post("/v1/identify", files=files(photos_a[2:], "photo")).json()["match"] != a
            assert one.post(f"/v1/people/{a}/verify", files=files(photos_a[2:], "photo")).status_code == 404
    finally:
        first.stop()
        second.stop()
