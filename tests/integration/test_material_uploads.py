"""Uploads end to end on the running sandbox, on both databases: an agency's signed upload
and a resident's; every refusal (too large, wrong type, type contradicted by the content,
truncated, digest not the one signed) stores nothing; a replay answers as the first time;
an upload no application names is removed by housekeeping."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gateway.store.blobs import DatabaseBlobStore, FolderBlobStore
from gateway.store.tables import blob_chunks, blob_uploads, blobs, materials
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.materials_support import jpeg, ofd, pdf, png
from tests.support import row_counts, send


def _digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


async def _stored(gateway: RunningGateway) -> dict[str, Any]:
    """What the gateway holds of materials: rows, blob keys, leftovers."""
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    store = deps.blobs
    counts = await row_counts(gateway.settings, (materials, blobs, blob_chunks, blob_uploads))
    held: dict[str, Any] = {"rows": counts, "keys": await store.keys()}
    if isinstance(store, FolderBlobStore):
        held["partial"] = store.partial_files()
    return held


async def _nothing_stored(gateway: RunningGateway) -> None:
    held = await _stored(gateway)
    assert held["keys"] == []
    assert all(count == 0 for count in held["rows"].values()), held["rows"]
    assert held.get("partial", []) == []


async def test_an_agency_uploads_a_pdf_signed_and_streamed(gateway: RunningGateway) -> None:
    body = pdf(300_000)
    answer = await send(
        gateway.settings, "POST", "/v1/materials", body=body, content_type="application/pdf"
    )
    assert answer.status == 201, answer.body
    data = answer.json()
    assert data["digest"] == _digest(body)
    assert data["size"] == len(body)
    assert data["media_type"] == "application/pdf"
    assert data["material_id"].startswith("mat_")
    assert answer.headers["Location"].endswith(f"/v1/materials/{data['material_id']}")
    assert "Signature" in answer.headers  # the answer is signed like every partner answer
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        stored = await uow.materials.get(data["material_id"])
    assert stored is not None
    assert stored.owner == "hk-ird"
    assert stored.application_id is None
    read = b"".join([chunk async for chunk in deps.blobs.open(stored.blob_key)])
    assert read == body
    assert stored.blob_key == hashlib.sha256(body).hexdigest()
