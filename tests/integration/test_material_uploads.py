"""Uploads end to end on the running sandbox, on both databases: an agency's signed upload
and a resident's; every refusal (too large, wrong type, type contradicted by the content,
truncated, digest not the one signed) stores nothing; a replay answers as the first time;
an upload no application names is removed by housekeeping."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.bootstrap import Overrides, create_app, housekeeping_round
from gateway.domain.materials import StoredMaterial
from gateway.sandbox.portal import SandboxPortal
from gateway.services.materials import expire_unbound
from gateway.store.blobs import DatabaseBlobStore, FolderBlobStore
from gateway.store.tables import audit_log, blob_chunks, blob_uploads, blobs, materials
from gateway.trust.profile import sign_request
from gateway.web.keys import DEPENDENCIES
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.materials_support import jpeg, ofd, pdf, png
from tests.support import agency_key, row_counts, send

SMALL = 64 * 1024  # max_material_bytes of the ``small`` gateway


def _digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


@pytest.fixture
async def small(
    tmp_path: Path, database: Database, aiohttp_server: object
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway taking files of at most 64 KiB."""
    settings = sandbox_settings(tmp_path, database, max_material_bytes=SMALL)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)  # type: ignore[operator]
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


def _deps(gateway: RunningGateway) -> Any:
    return gateway.app[DEPENDENCIES]  # type: ignore[index]


async def _stored(gateway: RunningGateway) -> dict[str, Any]:
    """What the gateway holds of materials: rows, blob keys, partial writes."""
    store = _deps(gateway).blobs
    counts = await row_counts(gateway.settings, (materials, blobs, blob_chunks, blob_uploads))
    held: dict[str, Any] = {"rows": counts, "keys": await store.keys()}
    held["partial"] = store.partial_files() if isinstance(store, FolderBlobStore) else []
    return held


async def _nothing_stored(gateway: RunningGateway) -> None:
    held = await _stored(gateway)
    assert held["keys"] == []
    assert all(count == 0 for count in held["rows"].values()), held["rows"]
    assert held["partial"] == []
    folder = gateway.settings.blob_folder
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert files == []


async def _upload(gateway: RunningGateway, body: bytes, media_type: str, **kwargs: Any) -> Any:
    return await send(
        gateway.settings, "POST", "/v1/materials", body=body, content_type=media_type, **kwargs
    )


async def test_an_agency_uploads_a_pdf_signed_and_streamed(gateway: RunningGateway) -> None:
    body = pdf(300_000)
    answer = await _upload(
        gateway,
        body,
        "application/pdf",
        headers={"Content-Disposition": 'attachment; filename="lease.pdf"'},
    )
    assert answer.status == 201, answer.body
    data = answer.json()
    assert data["digest"] == _digest(body)
    assert data["size"] == len(body)
    assert data["media_type"] == "application/pdf"
    assert data["material_id"].startswith("mat_")
    assert answer.headers["Location"].endswith(f"/v1/materials/{data['material_id']}")
    assert "Signature" in answer.headers  # the answer is signed like every partner answer
    deps = _deps(gateway)
    async with deps.uow() as uow:
        stored = await uow.materials.get(data["material_id"])
    assert stored is not None
    assert (stored.owner, stored.filename, stored.application_id) == ("hk-ird", "lease.pdf", None)
    assert stored.blob_key == hashlib.sha256(body).hexdigest()
    read = b"".join([chunk async for chunk in deps.blobs.open(stored.blob_key)])
    assert read == body
    store = deps.blobs
    if gateway.settings.database_url.startswith("sqlite"):
        assert isinstance(store, FolderBlobStore)
        assert store.path(stored.blob_key).read_bytes() == body
    else:
        assert isinstance(store, DatabaseBlobStore)
    engine_rows = await _audit_kinds(gateway)
    assert "material.uploaded" in engine_rows
    assert "message.accepted" in engine_rows


async def _audit_kinds(gateway: RunningGateway) -> list[str]:
    from gateway.store.database import create_engine

    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            return list((await conn.scalars(sa.select(audit_log.c.kind))).all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("make", "media_type"),
    [(png, "image/png"), (jpeg, "image/jpeg"), (ofd, "application/ofd")],
)
async def test_each_accepted_type_is_told_by_its_content(
    gateway: RunningGateway, make: Any, media_type: str
) -> None:
    body = make()
    answer = await _upload(gateway, body, media_type)
    assert answer.status == 201, answer.body
    assert answer.json()["media_type"] == media_type


async def test_a_resident_uploads_with_their_token(gateway: RunningGateway) -> None:
    portal = await SandboxPortal.register(gateway.url)
    token = (await portal.login("hk", "chan-tai-man")).access_token
    body = png()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "image/png",
        "Idempotency-Key": "resident-upload-1",
    }
    url = f"{gateway.url}/v1/me/materials"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 201, await response.text()
            first = await response.json()
            assert response.headers["Location"].endswith(f"/v1/me/materials/{first['material_id']}")
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 201
            assert await response.json() == first  # a replay answers as the first time
        anonymous = {k: v for k, v in headers.items() if k != "Authorization"}
        async with session.post(url, data=body, headers=anonymous) as response:
            assert response.status == 401
    assert first["digest"] == _digest(body)
    async with _deps(gateway).uow() as uow:
        stored = await uow.materials.get(first["material_id"])
    assert stored is not None
    assert stored.owner.startswith("resident:per_")
    assert (await _stored(gateway))["rows"]["materials"] == 1


async def test_a_replay_answers_as_the_first_time_and_a_reused_key_stores_nothing_new(
    gateway: RunningGateway,
) -> None:
    body = pdf()
    first = await _upload(gateway, body, "application/pdf", idempotency_key="upload-key-1")
    again = await _upload(gateway, body, "application/pdf", idempotency_key="upload-key-1")
    assert (first.status, again.status) == (201, 201)
    assert again.json() == first.json()
    other = pdf(4096)
    reused = await _upload(gateway, other, "application/pdf", idempotency_key="upload-key-1")
    assert reused.status == 422, reused.body
    assert reused.json()["type"].endswith("/idempotency-conflict")
    held = await _stored(gateway)
    assert held["keys"] == [hashlib.sha256(body).hexdigest()]  # the other file was removed
    assert held["rows"]["materials"] == 1
    assert held["partial"] == []


async def test_an_oversized_upload_is_refused_and_nothing_kept(small: RunningGateway) -> None:
    big = pdf(SMALL + 1)
    declared = await _upload(small, big, "application/pdf")  # Content-Length says it at once
    assert declared.status == 413, declared.body
    assert declared.json()["type"].endswith("/payload-too-large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: found while streaming
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    url = small.settings.base_url + "/v1/materials"
    headers = sign_request(
        method="POST",
        url=url,
        key=agency_key(small.settings, "hk-ird"),
        now=datetime.now(UTC),
        body=big,
        content_type="application/pdf",
        idempotency_key="chunked-upload-1",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=chunked(), headers=headers) as response,
    ):
        assert response.status == 413, await response.text()
    await _nothing_stored(small)


@pytest.mark.parametrize(
    ("body", "media_type", "status", "slug"),
    [
        (pdf(), "text/plain", 415, "unsupported-media-type"),  # not an accepted type at all
        (b"MZ\x90\x00" + b"\x00" * 4000, "application/pdf", 415, "unsupported-media-type"),
        (png(), "application/pdf", 422, "validation-failed"),  # the content contradicts it
        (ofd()[:-30], "application/ofd", 415, "unsupported-media-type"),  # a ZIP cut short
        (pdf()[:-10], "application/pdf", 415, "unsupported-media-type"),  # a PDF cut short
    ],
)
async def test_a_wrong_type_is_refused_and_nothing_kept(
    gateway: RunningGateway, body: bytes, media_type: str, status: int, slug: str
) -> None:
    answer = await _upload(gateway, body, media_type)
    assert answer.status == status, answer.body
    problem = answer.json()
    assert problem["type"].endswith(f"/{slug}")
    if status == 422:
        assert [e["code"] for e in problem["errors"]] == ["media_type_mismatch"]
    await _nothing_stored(gateway)


async def test_a_zip_without_ofd_xml_is_not_an_ofd(gateway: RunningGateway) -> None:
    from tests.materials_support import zip_of

    answer = await _upload(gateway, zip_of("Doc_0/OFD.xml", "other.xml"), "application/ofd")
    assert answer.status == 415, answer.body
    await _nothing_stored(gateway)


async def test_a_body_not_the_one_signed_is_refused_and_nothing_kept(
    gateway: RunningGateway,
) -> None:
    signed_body, sent_body = pdf(200_000), pdf(200_001)
    url = gateway.settings.base_url + "/v1/materials"
    headers = sign_request(
        method="POST",
        url=url,
        key=agency_key(gateway.settings, "hk-ird"),
        now=datetime.now(UTC),
        body=signed_body,
        content_type="application/pdf",
        idempotency_key="mismatched-1",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=sent_body, headers=headers) as response,
    ):
        assert response.status == 400, await response.text()
        assert (await response.json())["type"].endswith("/digest-mismatch")
    await _nothing_stored(gateway)


async def test_an_unsigned_upload_is_refused_before_any_byte_is_stored(
    gateway: RunningGateway,
) -> None:
    answer = await _upload(gateway, pdf(), "application/pdf", sign=False)
    assert answer.status == 401, answer.body
    await _nothing_stored(gateway)


async def _in_progress(gateway: RunningGateway) -> bool:
    held = await _stored(gateway)
    return bool(held["partial"]) or held["rows"]["blob_uploads"] > 0


async def test_a_truncated_upload_leaves_nothing(gateway: RunningGateway) -> None:
    body = pdf(1_000_000)
    url = gateway.settings.base_url + "/v1/materials"
    headers = sign_request(
        method="POST",
        url=url,
        key=agency_key(gateway.settings, "hk-ird"),
        now=datetime.now(UTC),
        body=body,
        content_type="application/pdf",
        idempotency_key="truncated-" + secrets.token_hex(4),
    )
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /v1/materials HTTP/1.1\r\nHost: {gateway.settings.host}:{gateway.settings.port}\r\n"
        f"{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    _reader, writer = await asyncio.open_connection(gateway.settings.host, gateway.settings.port)
    writer.write(request + body[: len(body) // 2])
    await writer.drain()
    for _ in range(200):  # the gateway has started writing the blob
        if await _in_progress(gateway):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the upload never started")
    writer.close()  # the client goes away with half the body sent
    for _ in range(250):
        held = await _stored(gateway)
        if not held["partial"] and held["rows"]["blob_uploads"] == 0:
            break
        await asyncio.sleep(0.02)
    await _nothing_stored(gateway)


async def test_an_unused_upload_expires_and_a_shared_blob_stays_while_named(
    gateway: RunningGateway,
) -> None:
    kept, lost, alone = pdf(), pdf(), jpeg()
    first = (await _upload(gateway, kept, "application/pdf")).json()
    second = (await _upload(gateway, lost, "application/pdf")).json()  # same bytes, 2nd record
    third = (await _upload(gateway, alone, "image/jpeg")).json()
    deps = _deps(gateway)
    async with deps.uow() as uow:
        await uow.materials.bind(first["material_id"], "app_TEST", "IDENTITY_PROOF")
        await uow.commit()
    assert await housekeeping_round(gateway.app) is not None  # nothing due yet
    assert (await _stored(gateway))["rows"]["materials"] == 3

    later = datetime.now(UTC) + timedelta(seconds=gateway.settings.material_expiry_seconds + 60)
    assert await expire_unbound(deps, later) == 2
    held = await _stored(gateway)
    assert held["rows"]["materials"] == 1
    assert held["keys"] == [hashlib.sha256(kept).hexdigest()]  # still named by the bound one
    async with deps.uow() as uow:
        assert await uow.materials.get(second["material_id"]) is None
        assert await uow.materials.get(third["material_id"]) is None
        assert (await uow.materials.get(first["material_id"])) is not None
    assert "material.expired" in await _audit_kinds(gateway)


@pytest.fixture
async def impatient(
    tmp_path: Path, database: Database, aiohttp_server: object
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway giving a whole upload one second."""
    settings = sandbox_settings(tmp_path, database, upload_timeout=1.0)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)  # type: ignore[operator]
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def test_an_upload_trickling_in_past_upload_timeout_is_refused_and_nothing_kept(
    impatient: RunningGateway,
) -> None:
    body = pdf(200_000)
    settings = impatient.settings
    url = settings.base_url + "/v1/materials"
    headers = sign_request(
        method="POST",
        url=url,
        key=agency_key(settings, "hk-ird"),
        now=datetime.now(UTC),
        body=body,
        content_type="application/pdf",
        idempotency_key="slow-upload-1",
    )
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /v1/materials HTTP/1.1\r\nHost: {settings.host}:{settings.port}\r\n"
        f"{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(settings.host, settings.port)

    async def trickle() -> None:  # 1 KB every 0.2 s: a slowloris
        with contextlib.suppress(ConnectionError):
            for offset in range(0, len(body), 1000):
                writer.write(body[offset : offset + 1000])
                await writer.drain()
                await asyncio.sleep(0.2)

    writer.write(request)
    started = asyncio.get_running_loop().time()
    sending = asyncio.create_task(trickle())
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        assert b" 408 " in status_line, status_line
        assert asyncio.get_running_loop().time() - started < 4
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        writer.close()
    await _nothing_stored(impatient)


async def test_the_batched_unit_of_work_records_a_material_and_refuses_reads(
    gateway: RunningGateway,
) -> None:
    deps = _deps(gateway)
    now = datetime.now(UTC)
    material = StoredMaterial(
        material_id="mat_BATCHED",
        digest=_digest(b"x"),
        blob_key=hashlib.sha256(b"x").hexdigest(),
        size=1,
        media_type="application/pdf",
        owner="hk-ird",
        created_at=now,
        expires_at=now + timedelta(days=1),
        provenance={"issuer": "gd-hq-csb", "request_id": "evr_1"},
    )
    async with deps.uow.batched() as uow:
        await uow.materials.add(material)
        with pytest.raises(RuntimeError, match="batched"):
            await uow.materials.get("mat_BATCHED")
        await uow.commit()
    async with deps.uow() as uow:
        assert await uow.materials.get("mat_BATCHED") == material
