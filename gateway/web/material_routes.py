"""Uploads of materials: ``POST /v1/materials`` (signed agency) and ``/v1/me/materials``
(resident token). The body streams to the blob store; it is never read whole. And fetches:
``GET /v1/applications/{id}/materials/{material_id}`` (the ``href`` every forward lists) and
``GET /v1/materials/{material_id}``, signed; ``GET /v1/me/materials/{material_id}``, a
resident's own upload. The bytes stream from the blob store with ``Content-Digest``.

Both answer 201 ``{"material_id", "digest", "size", "media_type"}``. The body is bounded by
``max_material_bytes`` (413) and must arrive within ``upload_timeout`` (408); these routes
are exempt from ``body_deadline``'s whole-body read (:func:`~gateway.web.serving.streamed`).
An agency's signature covers ``content-digest``: it is verified before any byte is read, and
the digest it declares must be the one computed while the body streamed.
"""

from __future__ import annotations

import asyncio
import base64
import email.message
import hashlib
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.domain.commands import Caller
from gateway.domain.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
)
from gateway.domain.materials import StoredMaterial
from gateway.services import case_materials, materials
from gateway.services.acceptance import MessageAcceptance
from gateway.services.handlers import in_one_unit
from gateway.services.ports import StoredBlob, StoredResponse, UnitOfWork
from gateway.trust.digest import StreamedDigest
from gateway.trust.profile import sign_response
from gateway.web.auth import idempotency_key_of, signed_write, verify, verify_upload
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES, KEYRING, SETTINGS, VERIFIED_KEYID
from gateway.web.messages import request_message
from gateway.web.openapi import IDEMPOTENCY_KEY, operation
from gateway.web.problems import json_response
from gateway.web.serving import streamed

routes = web.RouteTableDef()
log = structlog.get_logger("gateway.web.materials")

_READ = 256 * 1024
_UPLOADED = {
    "type": "object",
    "required": ["material_id", "digest", "size", "media_type"],
    "properties": {
        "material_id": {"type": "string"},
        "digest": {"type": "string", "description": "RFC 9530 form: sha-256=:<base64>:"},
        "size": {"type": "integer"},
        "media_type": {
            "type": "string",
            "enum": ["application/pdf", "image/jpeg", "image/png", "application/ofd"],
        },
    },
}
_FILE = {"type": "string", "format": "binary"}
_BODY = {
    "application/pdf": _FILE,
    "image/jpeg": _FILE,
    "image/png": _FILE,
    "application/ofd": _FILE,
}
_DISPOSITION = {
    "name": "Content-Disposition",
    "in": "header",
    "required": False,
    "description": 'attachment; filename="...": the file\'s name, for display only',
    "schema": {"type": "string"},
}
_REFUSALS = {
    408: "The body did not arrive within upload_timeout",
    413: "The file is larger than max_material_bytes",
    415: "A media type other than PDF, JPEG, PNG or OFD, or content that is none of them",
    422: "The content contradicts the declared media type, or Idempotency-Key reuse",
}


def _filename(request: web.Request) -> str | None:
    header = request.headers.get("Content-Disposition")
    if not header:
        return None
    message = email.message.Message()
    try:
        message["Content-Disposition"] = header
        name = message.get_filename()
    except (ValueError, TypeError, IndexError):  # a header beyond repair names no file
        return None
    return name[:255] if isinstance(name, str) and name else None


async def _chunks(request: web.Request, digest: StreamedDigest | None) -> AsyncIterator[bytes]:
    """The body as it arrives; a body that ends early (the client went away, fewer bytes
    than its Content-Length) is a 400 and nothing of it is kept."""
    try:
        async for chunk in request.content.iter_chunked(_READ):
            if digest is not None:
                digest.update(chunk)
            yield chunk
    except (HttpProcessingError, ConnectionError) as error:
        raise BadRequestError("the body ended before it was complete") from error
    if request.content_length is not None and request.content.total_bytes != request.content_length:
        raise BadRequestError("the body ended before it was complete")


async def _upload(
    request: web.Request,
    cmd: materials.UploadMaterial,
    digest: StreamedDigest | None,
    acceptance: MessageAcceptance | None,
) -> StoredResponse:
    settings = request.app[SETTINGS]
    materials.declared_type(cmd.media_type, request.app[DEPENDENCIES].material_limits)
    limit = settings.max_material_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the file is larger than {limit} bytes")
    arrived: Callable[[StoredBlob], None] | None = None
    if digest is not None:
        declared = digest
        declared.computed_elsewhere("sha-256")  # the blob store hashes it on the way

        def arrived(blob: StoredBlob) -> None:
            declared.check({"sha-256": bytes.fromhex(blob.key)})

    try:
        async with asyncio.timeout(settings.upload_timeout):
            return await materials.upload_material(
                cmd,
                _chunks(request, digest),
                request.app[DEPENDENCIES],
                acceptance,
                arrived=arrived,
            )
    except TimeoutError:
        raise RequestTimeoutError(
            f"the body did not arrive within {settings.upload_timeout:g} s",
            headers={"Connection": "close"},
        ) from None


def _answer(request: web.Request, stored: StoredResponse, prefix: str) -> web.Response:
    headers = {}
    if stored.status == 201 and stored.resource:
        headers["Location"] = f"{request.app[SETTINGS].base_url}{prefix}/{stored.resource}"
    return json_response(stored.body, status=stored.status, headers=headers)


@routes.post("/v1/materials")
@operation(
    summary="Upload one material (a file) for an application to name by material_id",
    tag="materials",
    request=_BODY,
    parameters=[_DISPOSITION],
    responses={201: ("Stored", _UPLOADED), **_REFUSALS},
    signed=True,
)
@streamed
async def upload(request: web.Request) -> web.Response:
    verified = await verify_upload(request)  # before any byte of the body is read
    async with signed_write(request, verified.signed) as signed:
        assert signed.idempotency_key is not None
        stored = await _upload(
            request,
            materials.UploadMaterial(
                caller=signed.caller,
                media_type=request.content_type,
                idempotency_key=signed.idempotency_key,
                filename=_filename(request),
            ),
            verified.digest,
            signed.acceptance,
        )
    return _answer(request, stored, "/v1/materials")


@routes.post("/v1/me/materials")
@operation(
    summary="Upload one material as the resident, for their application to name",
    tag="applicant",
    request=_BODY,
    parameters=[IDEMPOTENCY_KEY, _DISPOSITION],
    responses={
        201: ("Stored", _UPLOADED),
        401: "Access token missing, invalid or expired",
        **_REFUSALS,
    },
)
@streamed
async def upload_mine(request: web.Request) -> web.Response:
    grant = await authenticate_resident(request)
    key = idempotency_key_of(request)
    header = request.headers.get("Content-Digest")  # optional: checked when sent
    digest = StreamedDigest(header) if header is not None else None
    stored = await _upload(
        request,
        materials.UploadMaterial(
            caller=Caller.resident(grant.person_id, grant.login_id),
            media_type=request.content_type,
            idempotency_key=key,
            filename=_filename(request),
        ),
        digest,
        None,
    )
    return _answer(request, stored, "/v1/me/materials")


# ---- fetching a material ------------------------------------------------------------------

_FETCHED = {
    200: (
        "The file: Content-Digest (RFC 9530, sha-256), Content-Type, Content-Length",
        _FILE,
        "application/octet-stream",
    ),
    404: "No such material for this caller (the same answer whether it exists or not)",
}


async def _fetch(
    request: web.Request,
    caller: Caller,
    acceptance: MessageAcceptance | None,
    application_id: str | None = None,
) -> web.StreamResponse:
    """Stream the material if ``caller`` may read it, else 404; the attempt is audited in
    the same transaction as the signed request's acceptance."""
    deps = request.app[DEPENDENCIES]
    material_id = request.match_info["material_id"]

    async def work(uow: UnitOfWork) -> StoredMaterial | None:
        return await case_materials.readable(
            uow,
            caller,
            material_id,
            deps.clock.now(),
            application_id=application_id,
            catalog=deps.catalog,
        )

    material = await in_one_unit(deps, acceptance, work)
    blobs = deps.blobs
    if material is None or blobs is None or not await blobs.exists(material.blob_key):
        if material is not None:
            log.error("material.blob_missing", material_id=material_id, key=material.blob_key)
        raise NotFoundError("no such material")
    headers = {"Content-Type": material.media_type, "Content-Digest": material.digest}
    if request.get(VERIFIED_KEYID) is not None:  # the answer to a signed request is signed
        headers = sign_response(
            status=200,
            body=b"",
            content_type=material.media_type,
            request=request_message(request, request.app[SETTINGS].base_url),
            key=request.app[KEYRING].current("http"),
            now=deps.clock.now(),
            digest=material.digest,
        )
    response = web.StreamResponse(status=200, headers=headers)
    response.content_length = material.size
    await response.prepare(request)
    sha256, held = hashlib.sha256(), b""
    async for chunk in blobs.open(material.blob_key):
        sha256.update(chunk)
        if held:
            await response.write(held)
        held = chunk  # the last chunk goes only once the whole file's digest holds
    if "sha-256=:" + base64.b64encode(sha256.digest()).decode() + ":" != material.digest:
        # The stored bytes changed: cut the answer short of its Content-Length instead of
        # ending it as if it were whole.
        log.error("material.blob_corrupt", material_id=material_id, key=material.blob_key)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write(held)
    await response.write_eof()
    return response


@routes.get("/v1/applications/{application_id}/materials/{material_id}")
@operation(
    summary="Fetch a material of a case: the href a forward lists (a handling agency whose "
    "forward of the case was queued, or the uploader)",
    tag="materials",
    responses=_FETCHED,
    signed=True,
)
async def fetch_of_case(request: web.Request) -> web.StreamResponse:
    signed = await verify(request, require_idempotency=False)
    return await _fetch(
        request, signed.caller, signed.acceptance, request.match_info["application_id"]
    )


@routes.get("/v1/materials/{material_id}")
@operation(
    summary="Fetch a material: the uploader its own, a handling agency of the case it is bound to",
    tag="materials",
    responses=_FETCHED,
    signed=True,
)
async def fetch(request: web.Request) -> web.StreamResponse:
    signed = await verify(request, require_idempotency=False)
    return await _fetch(request, signed.caller, signed.acceptance)


@routes.get("/v1/me/materials/{material_id}")
@operation(
    summary="Fetch one of the resident's own uploads",
    tag="applicant",
    responses={**_FETCHED, 401: "Access token missing, invalid or expired"},
)
async def fetch_mine(request: web.Request) -> web.StreamResponse:
    grant = await authenticate_resident(request)
    return await _fetch(request, Caller.resident(grant.person_id, grant.login_id), None)
