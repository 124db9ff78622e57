"""Materials: uploading a file, checking what an application names, removing unused uploads.

An upload streams: the bytes go chunk by chunk to the blob store (which computes SHA-256 on
the way) while :class:`~gateway.domain.materials.ContentSniffer` keeps what it needs to tell
the type by content. Only once the whole body arrived, its digest checked and its type told
is the material recorded, with its Idempotency-Key answer and its audit entry, in one unit
of work. A refused upload leaves nothing: its blob is removed unless another material names
the same bytes (content-addressed: the blob may have been there before).

:func:`check_named` is what an application naming materials calls (the per-matter
media types and the per-application total); :func:`expire_unbound` is the housekeeping step.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain import ids
from gateway.domain.commands import Caller
from gateway.domain.documents import problem
from gateway.domain.errors import (
    NotReadyError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from gateway.domain.materials import (
    ContentSniffer,
    MaterialLimits,
    StoredMaterial,
    base_media_type,
)
from gateway.services.acceptance import MessageAcceptance
from gateway.services.case_materials import NamedMaterial, check_named
from gateway.services.handlers import Dependencies, _once
from gateway.services.ports import BlobStore, StoredBlob, StoredResponse, UnitOfWork

__all__ = [  # check_named and NamedMaterial live in case_materials; kept importable here
    "NamedMaterial",
    "UploadMaterial",
    "check_named",
    "expire_unbound",
    "upload_material",
]

UPLOAD = "upload_material"  # the Idempotency-Key scope of an upload


@dataclass(frozen=True, slots=True)
class UploadMaterial:
    caller: Caller
    media_type: str  # the declared Content-Type
    idempotency_key: str
    filename: str | None = None  # display only


def _blobs(deps: Dependencies) -> BlobStore:
    if deps.blobs is None:
        raise NotReadyError("no blob store is configured")
    return deps.blobs


def declared_type(media_type: str, limits: MaterialLimits) -> str:
    """The declared type, if uploads accept it at all; else 415 before any byte is read."""
    declared = base_media_type(media_type)
    if declared not in limits.media_types:
        raise UnsupportedMediaTypeError(
            f"{declared or 'no type'} is not accepted; uploads are {', '.join(limits.media_types)}"
        )
    return declared


async def upload_material(
    cmd: UploadMaterial,
    chunks: AsyncIterable[bytes],
    deps: Dependencies,
    acceptance: MessageAcceptance | None = None,
    *,
    arrived: Callable[[StoredBlob], None] | None = None,
) -> StoredResponse:
    """Store one file and record it (201), or refuse it with nothing kept.

    ``arrived`` is called once the whole body is stored, before anything is recorded: the
    edge checks there what it must of the whole body (the signed Content-Digest), raising
    to refuse it."""
    limits = deps.material_limits
    declared = declared_type(cmd.media_type, limits)
    blobs = _blobs(deps)
    sniffer = ContentSniffer()

    async def sniffed() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            sniffer.feed(chunk)
            yield chunk

    blob = await blobs.put(sniffed(), limit=limits.file_bytes)
    try:
        if arrived is not None:
            arrived(blob)
        found = sniffer.media_type()
        if found is None:
            raise UnsupportedMediaTypeError(
                f"the content is none of {', '.join(limits.media_types)}"
            )
        if found != declared:
            raise ValidationFailedError(
                f"the content is {found}, not {declared}",
                errors=[problem("", "media_type_mismatch")],
            )

        async def work(uow: UnitOfWork) -> StoredResponse:
            now = deps.clock.now()
            material = StoredMaterial(
                material_id=ids.new_material_id(),
                digest=blob.digest,
                blob_key=blob.key,
                size=blob.size,
                media_type=found,
                owner=cmd.caller.agency_id,
                created_at=now,
                expires_at=now + timedelta(seconds=limits.expiry_seconds),
                filename=cmd.filename,
            )
            await uow.materials.add(material)
            uow.audit.record(
                "material.uploaded",
                cmd.caller.agency_id,
                material.material_id,
                {
                    "digest": material.digest,
                    "size": material.size,
                    "media_type": material.media_type,
                    "idempotency_key": cmd.idempotency_key,
                },
                now,
            )
            response = StoredResponse(
                request_digest=blob.digest,
                status=201,
                body=material.answer(),
                resource=material.material_id,
            )
            await uow.idempotency.put(
                cmd.caller.agency_id, UPLOAD, cmd.idempotency_key, response, now
            )
            return response

        return await _once(
            deps, acceptance, cmd.caller, UPLOAD, cmd.idempotency_key, blob.digest, work
        )
    except BaseException:
        if blob.created:
            await discard_blob(deps, blob.key)
        raise


async def discard_blob(deps: Dependencies, key: str) -> bool:
    """Remove a blob no material names; True when removed."""
    async with deps.uow() as uow:
        if await uow.materials.references(key):
            return False
    await _blobs(deps).delete(key)
    return True


async def expire_unbound(deps: Dependencies, now: datetime, *, limit: int = 200) -> int:
    """Remove uploads no application named in time, and their blobs when no other material
    names the same bytes; also partial blob writes a crash left (older than an hour)."""
    async with deps.uow() as uow:
        expired = await uow.materials.unbound_expired(now, limit=limit)
        for material in expired:
            await uow.materials.remove(material.material_id)
            uow.audit.record(
                "material.expired",
                "gateway",
                material.material_id,
                {"digest": material.digest, "owner": material.owner},
                now,
            )
        orphans = {m.blob_key for m in expired if not await uow.materials.references(m.blob_key)}
        await uow.commit()
    blobs = _blobs(deps)
    for key in sorted(orphans):
        await blobs.delete(key)
    await blobs.sweep(now - timedelta(hours=1))
    return len(expired)
