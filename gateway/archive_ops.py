"""Operator commands for case archives (Art. 23): ``gba-gateway archive export|verify``.

``export`` reads one closed case from the configured database, signs its bundle with the
gateway's seal key, checks the bundle against the gateway's own key set before writing it,
and writes it atomically. ``verify`` needs no database and no network: the bundle and the
JWKS the gateway publishes at ``/.well-known/jwks.json``, saved to a file. The format is in
``docs/archive.md``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.bootstrap import blob_store, database_url, load_keyring
from gateway.domain.errors import ConflictError, NotFoundError
from gateway.settings import Settings
from gateway.store.archive import GatheredCase, gather_case
from gateway.store.audit import write_checkpoint
from gateway.store.database import create_engine, create_schema
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.archive import (
    MAX_BUNDLE_BYTES,
    ArchiveInvalidError,
    MaterialFile,
    build_bundle,
    verify_bundle,
)
from gateway.trust.keys import SEAL

Say = Callable[[str], None]

# Statuses after which nothing more happens to a case (``result_delivered`` follows approval).
CLOSED = frozenset({"approved", "rejected", "not_accepted", "withdrawn", "result_delivered"})
_MAX_JWKS_BYTES = 1024 * 1024


async def archive_export(settings: Settings, application_id: str, out_path: Path, say: Say) -> Path:
    """Write the signed archive bundle of a closed case to ``out_path``; the path written.

    :raises NotFoundError: no such application.
    :raises ConflictError: the case is not closed, or its audit entries cannot be proved.
    """
    ring = load_keyring(settings)
    seal_key = ring.current(SEAL)
    engine = create_engine(database_url(settings), schema=settings.database_schema or None)
    try:
        await create_schema(engine)
        gathered = await _gathered(engine, application_id)
        if gathered.record is None:  # no checkpoint covers the case's last entry yet
            seq = await write_checkpoint(SqlUnitOfWorkFactory(engine), seal_key, _now())
            say(f"signed a new audit checkpoint at seq {seq}")
            gathered = await _gathered(engine, application_id)
        files = await _material_files(settings, engine, application_id)
    finally:
        await engine.dispose()
    if gathered.record is None:
        raise ConflictError("the case's audit entries are not covered by a signed checkpoint")
    record = dataclasses.replace(gathered.record, files=files)
    bundle = await asyncio.to_thread(
        build_bundle, record, seal_key, issuer=settings.base_url, now=_now()
    )
    try:
        checked = await asyncio.to_thread(verify_bundle, bundle, ring.jwks())
    except ArchiveInvalidError as exc:
        raise ConflictError(f"the bundle does not verify, nothing written: {exc.detail}") from exc
    await asyncio.to_thread(_write_atomically, out_path, bundle)
    say(
        f"archived {application_id} ({checked.status}) to {out_path}: {checked.members} "
        f"members, {checked.vouchers} voucher(s), {checked.messages} signed request(s), "
        f"{checked.deliveries} delivery record(s), {checked.files} file(s), audit entries "
        f"{checked.audit_first}"
        f"..{checked.checkpoint.seq} (checkpoint signed {checked.checkpoint.at.isoformat()})"
    )
    return out_path


async def _material_files(
    settings: Settings, engine: AsyncEngine, application_id: str
) -> list[MaterialFile]:
    """The bytes of every material bound to the case (uploads, replaced ones, evidence
    obtained by data sharing), once per content, each checked against its recorded digest."""
    uow = SqlUnitOfWorkFactory(engine)
    async with uow() as tx:
        bound = await tx.materials.of_application(application_id)
    if not bound:
        return []
    blobs = blob_store(settings, uow)
    files = []
    for key in dict.fromkeys(m.blob_key for m in bound):
        same = [m for m in bound if m.blob_key == key]
        body = b"".join([chunk async for chunk in blobs.open(key)])
        digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
        if any(m.digest != digest for m in same):
            raise ConflictError(f"the stored bytes of {same[0].material_id} lost their digest")
        ids = tuple(m.material_id for m in same)
        files.append(MaterialFile(digest, same[0].media_type, body, ids))
    return files


async def _gathered(engine: AsyncEngine, application_id: str) -> GatheredCase:
    gathered = await gather_case(engine, application_id)
    if gathered is None:
        raise NotFoundError(f"no application {application_id!r}")
    if gathered.status not in CLOSED:
        raise ConflictError(
            f"the case is {gathered.status}, not closed ({', '.join(sorted(CLOSED))})"
        )
    return gathered


def archive_verify(bundle_path: Path, jwks_path: Path, say: Say) -> bool:
    """Verify a bundle offline against a saved JWKS; True when every byte checks.

    A file that cannot be read raises :class:`OSError`.
    """
    jwks_data = _read_bounded(jwks_path, _MAX_JWKS_BYTES)
    try:
        jwks = json.loads(jwks_data)
    except ValueError:
        say(f"archive NOT verified: {jwks_path} is not a JSON key set")
        return False
    data = _read_bounded(bundle_path, MAX_BUNDLE_BYTES)
    try:
        checked = verify_bundle(data, jwks)
    except ArchiveInvalidError as exc:
        say(f"archive NOT verified ({exc.reason}): {exc.detail}")
        return False
    say(
        f"archive verified: application {checked.application_id} ({checked.status}), "
        f"{checked.members} members, {checked.vouchers} voucher(s), {checked.messages} signed "
        f"request(s), {checked.deliveries} delivery record(s); audit entries "
        f"{checked.audit_first}..{checked.checkpoint.seq} chain to the checkpoint signed by "
        f"{checked.checkpoint.kid} at {checked.checkpoint.at.isoformat()}"
    )
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def _read_bounded(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path} is larger than {limit} bytes")
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
