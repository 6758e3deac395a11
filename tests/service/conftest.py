"""A service root with two tenants and a real service process over it, shared by the API tests."""

from __future__ import annotations

import pytest

from tests.lfw_fixtures import people_with_images
from tests.service.server import Server, create_tenant


@pytest.fixture(scope="session")
def service(keyed_model, tmp_path_factory) -> dict:
    """Tenants ``acme``, ``other`` and ``cards`` (with tokens; API keys from ``distortion tenant create``) and the
    service over them, with limits small enough to reach: 1 MiB a request, 1,000,000 pixels a photo, 3 photos an
    enrolment."""
    root = tmp_path_factory.mktemp("service")
    keys = {name: create_tenant(root, name) for name in ("acme", "other")}
    keys["cards"] = create_tenant(root, "cards", "--tokens", "true")
    server = Server(root, keyed_model, root.parent / f"{root.name}.log", "--limits.max_upload_mb", "1",
                    "--limits.max_pixels", "1000000", "--limits.max_photos", "3")  # fmt: skip
    server.start()
    people = people_with_images(5, min_images=3, per_person=3)
    yield {"root": root, "keys": keys, "server": server, "people": list(people.items())}
    server.stop()
