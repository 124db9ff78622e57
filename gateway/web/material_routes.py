"""Uploads of materials: ``POST /v1/materials`` (signed agency) and ``/v1/me/materials``
(resident token). The body streams to the blob store; it is never read whole.

Both answer 201 ``{"material_id", "digest", "size", "media_type"}``. The body is bounded by
``max_material_bytes`` (413) and must arrive within ``upload_timeout`` (408); these routes
are exempt from ``body_deadline``'s whole-body read (:func:`~gateway.web.serving.streamed`).
An agency's signature covers ``content-digest``: it is verified before any byte is read, and
the digest it declares must be the one computed while the body streamed.
"""

from __future__ import annotations

import asyncio
import email.message
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.domain.commands import Caller
from gateway.domain.errors import (
    BadRequestError,
    PayloadTooLargeError,
    RequestTimeoutError,
)
from gateway.services import materials
from gateway.services.acceptance import MessageAcceptance
from gateway.services.ports import StoredBlob, StoredResponse
from gateway.trust.digest import StreamedDigest
from gateway.web.auth import idempotency_key_of, signed_write, verify_upload
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES, SETTINGS
from gateway.web.openapi import IDEMPOTENCY_KEY, operation
from gateway.web.problems import json_response
from gateway.web.serving import streamed

routes = web.RouteTableDef()

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
