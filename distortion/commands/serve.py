"""``distortion serve`` (the store as an HTTP service) and ``distortion tenant`` (its tenants and API keys).

    distortion tenant --root service create --name acme          # prints acme's API key, once
    distortion serve --root service --model.embedding dlib --model.keyed keyed.pt --refine_steps 10 --port 8000

docs/service.md says how to run it, what each key protects and what was measured.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager

from distortion.loading import ModelSource
from distortion.service.app import SETTINGS_ENV, ServiceSettings
from distortion.service.engine import Batching, Limits
from distortion.service.tenants import TenantError, Tenants

__all__ = ["Tenant", "serve"]


def serve(
    root: str, model: ModelSource = ModelSource(), refine_steps: int = 0, threshold: float | None = None,
    device: str = "auto",
    host: str = "127.0.0.1", port: int = 8000, workers: int = 1, batching: Batching = Batching(),
    limits: Limits = Limits(), seed: int = 0, log_level: str = "info",
) -> None:  # fmt: skip
    """Serve the tenants of a service root over HTTP (uvicorn): enrol, verify, identify, revoke, list, a web page.

    Args:
        root: the service's folder (service.db, the tenants' keys and stores); make tenants with `distortion tenant`.
        model: the keyed model every tenant's carriers come from.
        refine_steps: refinement steps at enrolment (needed with --model.embedding).
        threshold: a new store's score threshold (default: the model's calibrated one); a store keeps its own.
        device: auto, cpu, cuda, ...
        host: the address to listen on (put TLS in a reverse proxy in front).
        port: the port.
        workers: service processes sharing the port, each with its own F and G, over the same stores.
        batching: how concurrent requests share F and G.
        limits: what one request may bring.
        seed: seed of the carriers' noise.
        log_level: uvicorn's log level.
    """
    import uvicorn

    settings = ServiceSettings(root, model, refine_steps, threshold, device, batching, limits, seed)
    model.check()
    os.environ[SETTINGS_ENV] = settings.to_json()  # every worker builds its app from it (paths, never key bytes)
    uvicorn.run("distortion.service.app:create_app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, timeout_graceful_shutdown=5)  # fmt: skip


@contextmanager
def _tenants(root: str) -> Iterator[Tenants]:
    """The tenants of ``root``; a refusal prints one line and exits 2."""
    try:
        with closing(Tenants(root)) as tenants:
            yield tenants
    except (TenantError, FileExistsError) as error:
        print(f"distortion tenant: {error}", file=sys.stderr)
        sys.exit(2)


class Tenant:
    """The tenants of a service root: each has its own store, key and API keys.

    Args:
        root: the service's folder.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def create(self, name: str, store: str | None = None, tokens: bool = False) -> None:
        """Make a tenant with a new key and store, and print its first API key (shown this once).

        Args:
            name: the tenant's name (a-z, 0-9, '_', '-').
            store: its store's URL (default: tenants/<name>/store.db under the root; milvus://host:port for Milvus).
            tokens: give each enrolled person a token that their verification needs (docs/keyed.md); no identify.
        """
        with _tenants(self.root) as tenants:
            tenant, api_key = tenants.create(name, store, tokens)
        print(json.dumps({"tenant": tenant.name, "store": tenant.store, "tokens": tenant.tokens, "api_key": api_key}))

    def key(self, name: str) -> None:
        """Print a new API key of a tenant (shown this once; the tenant's other keys stay valid).

        Args:
            name: the tenant.
        """
        with _tenants(self.root) as tenants:
            print(json.dumps({"tenant": name, "api_key": tenants.issue_key(name)}))

    def revoke_key(self, key_id: str) -> None:
        """Stop an API key from opening its tenant.

        Args:
            key_id: the 12 hex characters after dst_ in the key.
        """
        with _tenants(self.root) as tenants:
            tenants.revoke_key(key_id)
        print(json.dumps({"revoked": key_id}))

    def list(self) -> None:
        """Print the tenants, their stores and their API keys' ids (never the keys)."""
        with _tenants(self.root) as tenants:
            print(json.dumps([{"tenant": n, "store": tenants.get(n).store, "api_keys": tenants.keys(n)}
                              for n in tenants.names()], indent=1))  # fmt: skip
