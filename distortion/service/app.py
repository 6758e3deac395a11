"""The HTTP API of the service (FastAPI): enrol, verify, identify, revoke and list, per tenant, with a web page,
health, Prometheus metrics and OpenAPI documentation (``/docs``, ``/openapi.json``).

Every request of ``/v1`` carries a tenant's API key (``Authorization: Bearer dst_...``) and sees that tenant's
store alone: another tenant's id is unknown to it. Every user error is a 4xx answer with one line of JSON,
``{"error": "..."}``; nothing of a refused request is stored. Keys and API keys appear in no answer and no log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from collections.abc import Awaitable
from importlib import resources
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException

from distortion.deployment.keys import KeyMismatchError
from distortion.deployment.tokens import Token
from distortion.faces.alignment import ImageReadError, ImageTooLargeError, NoFaceError
from distortion.loading import ModelSource
from distortion.service.engine import Batching, Engine, Limits, Photo
from distortion.service.tenants import Tenant, Tenants
from distortion.store.backends import DuplicateError, StoreMismatchError, UnknownIdError

__all__ = ["ServiceSettings", "create_app", "create_app_from_environment"]

SETTINGS_ENV = "DISTORTION_SERVICE_SETTINGS"
log = logging.getLogger("distortion.service")
Value = TypeVar("Value")


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """Everything a service process is made from (no secret: keys stay in the tenants' key files)."""

    root: str
    model: ModelSource
    refine_steps: int = 0
    threshold: float | None = None
    device: str = "auto"
    batching: Batching = Batching()
    limits: Limits = Limits()
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        raw = json.loads(text)
        groups = {"model": ModelSource, "batching": Batching, "limits": Limits}
        return cls(**{k: groups[k](**v) if k in groups else v for k, v in raw.items()})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request is larger than {limit / 2**20:g} MiB")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes: at once from Content-Length, else while they stream in."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            error = BodyTooLarge(self.limit) if length.isdigit() else HTTPException(400, "a malformed Content-Length")
            return await JSONResponse({"error": error.detail}, error.status_code)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


ERRORS: list[tuple[type[Exception], int]] = [
    (ImageTooLargeError, 413),
    (ImageReadError, 400),
    (NoFaceError, 422),
    (UnknownIdError, 404),
    (DuplicateError, 409),
    (KeyMismatchError, 409),
    (StoreMismatchError, 409),
    (ValueError, 422),
]
"""Library errors and the status each is answered with (the first that matches, in this order: subclasses first)."""


def _one_line(error: RequestValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    return f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid request")


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("distortion_requests", "Requests answered", ["route", "status"], registry=self.registry)
        self.seconds = Histogram("distortion_request_seconds", "Time to answer a request", ["route"],
                                 registry=self.registry,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))  # fmt: skip
        self.batch = Histogram("distortion_batch_size", "Photos per batch", ["stage"], registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64))  # fmt: skip

    def observe_batch(self, stage: str, size: int) -> None:
        self.batch.labels(stage).observe(size)


bearer = HTTPBearer(auto_error=False, description="a tenant's API key: Authorization: Bearer dst_...")


def tenant_of(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Tenant:
    """The tenant of the request's API key; 401 without one or with one no tenant holds."""
    if credentials is None:
        raise HTTPException(401, "no API key: send Authorization: Bearer <a tenant's API key>")
    tenant = request.app.state.tenants.authenticate(credentials.credentials)
    if tenant is None:
        raise HTTPException(401, "the API key is not recognised")
    return tenant


Authed = Annotated[Tenant, Depends(tenant_of)]


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service on ``settings``: F and G are loaded here, before the first request is accepted."""
    tenants = Tenants(settings.root)
    metrics = Metrics()
    limits = settings.limits
    engine = Engine(tenants, settings.model, settings.refine_steps, settings.threshold, settings.device,
                    settings.batching, limits, settings.seed, metrics.observe_batch)  # fmt: skip
    app = FastAPI(title="distortion", version="1", summary="A biometric store of keyed carriers, per tenant.")
    app.state.engine, app.state.tenants = engine, tenants
    app.add_middleware(BodyLimit, limit=limits.max_upload_bytes)

    async def within(work: Awaitable[Value]) -> Value:
        try:
            return await asyncio.wait_for(work, limits.request_timeout)
        except TimeoutError:
            raise HTTPException(503, f"the request took longer than {limits.request_timeout:g} s") from None

    async def photo_of(upload: UploadFile) -> Photo:
        return Photo(upload.filename or "photo", await upload.read())

    @app.middleware("http")
    async def measure(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.seconds.labels(route).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _one_line(error)}, 422)

    async def library_error(request: Request, error: Exception) -> JSONResponse:
        status = next(status for kind, status in ERRORS if isinstance(error, kind))
        return JSONResponse({"error": str(error).splitlines()[0] if str(error) else type(error).__name__}, status)

    for kind, _ in ERRORS:  # each error's nearest class in this list answers it
        app.add_exception_handler(kind, library_error)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error"}, 500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("distortion.service").joinpath("page.html").read_text()

    @app.get("/health")
    def health() -> dict:
        """Whether the service answers; F's name."""
        return {"status": "ok", "embedding": engine.model.embedding_name}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/people", status_code=201)
    async def enrol(
        tenant: Authed, id: Annotated[str, Form(min_length=1, max_length=512)],
        photos: Annotated[list[UploadFile], File(description="the person's photos")],
        carriers: Annotated[bool, Query(description="answer with the stored carriers (PNG, base64)")] = False,
    ) -> dict:  # fmt: skip
        """Enrol a person from one or more photos: their carriers and templates, in one transaction."""
        if len(photos) > limits.max_photos:
            raise HTTPException(413, f"at most {limits.max_photos} photos per enrolment, got {len(photos)}")
        uploads = [await photo_of(p) for p in photos]
        try:
            answer = await within(engine.enrol(tenant, id, uploads, carriers))
        except DuplicateError:
            tenants.audit(tenant.name, "enrol", id, "refused: duplicate")
            raise
        tenants.audit(tenant.name, "enrol", id, f"enrolled {answer['records']}")
        return answer

    @app.post("/v1/people/{id}/verify")
    async def verify(
        tenant: Authed, id: str, photo: Annotated[UploadFile, File(description="the probe photo")],
        carrier: Annotated[bool, Query(description="answer with a stored carrier of the person")] = False,
        token: Annotated[str | None, Form(description="the person's token (a tenant with tokens)")] = None,
    ) -> dict:  # fmt: skip
        """Whether a photo is the enrolled person: match, score and threshold; a tenant with tokens needs the
        person's token (issued once by the enrolment)."""
        person_token = Token.parse(token) if token is not None else None
        answer = await within(engine.verify(tenant, id, await photo_of(photo), carrier, person_token))
        tenants.audit(tenant.name, "verify", id, "match" if answer["match"] else "no match")
        return answer

    @app.post("/v1/identify")
    async def identify(
        tenant: Authed, photo: Annotated[UploadFile, File(description="the probe photo")],
        top: Annotated[int, Query(ge=1, le=100)] = 5,
        carrier: Annotated[bool, Query(description="answer with a stored carrier of the match")] = False,
    ) -> dict:  # fmt: skip
        """The best-matching people of a photo, and the match or none."""
        answer = await within(engine.identify(tenant, await photo_of(photo), top, carrier))
        tenants.audit(tenant.name, "identify", answer["match"], "match" if answer["match"] else "no match")
        return answer

    @app.delete("/v1/people/{id}")
    async def revoke(tenant: Authed, id: str) -> dict:
        """Revoke a person: their carriers and templates are erased from the store's files."""
        revoked = await within(engine.revoke(tenant, id))
        tenants.audit(tenant.name, "revoke", id, f"revoked {revoked}")
        return {"id": id, "revoked": revoked}

    @app.get("/v1/people")
    async def people(tenant: Authed) -> dict:
        """The tenant's people: records enrolled and revoked."""
        return {"people": await within(engine.people(tenant))}

    return app


def create_app_from_environment() -> FastAPI:
    """:func:`create_app` on the settings in ``$DISTORTION_SERVICE_SETTINGS`` (how each worker process starts)."""
    return create_app(ServiceSettings.from_json(os.environ[SETTINGS_ENV]))
