"""Stored materials in SQL: the upload records (their bytes are in the blob store)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.errors import ConflictError
from gateway.domain.materials import StoredMaterial
from gateway.store.tables import materials


def material_row(material: StoredMaterial) -> dict[str, Any]:
    return {
        "id": material.material_id,
        "blob_key": material.blob_key,
        "digest": material.digest,
        "size": material.size,
        "media_type": material.media_type,
        "filename": material.filename,
        "owner": material.owner,
        "application_id": material.application_id,
        "code": material.code,
        "provenance": dict(material.provenance) if material.provenance is not None else None,
        "created_at": material.created_at,
        "expires_at": material.expires_at,
    }


def _material(row: Any) -> StoredMaterial:
    return StoredMaterial(
        material_id=row.id,
        digest=row.digest,
        blob_key=row.blob_key,
        size=row.size,
        media_type=row.media_type,
        owner=row.owner,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        application_id=row.application_id,
        code=row.code,
        provenance=row.provenance,
    )


class SqlMaterials:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, material: StoredMaterial) -> None:
        await self._conn.execute(materials.insert().values(**material_row(material)))

    async def get(self, material_id: str) -> StoredMaterial | None:
        row = (
            await self._conn.execute(materials.select().where(materials.c.id == material_id))
        ).one_or_none()
        return None if row is None else _material(row)

    async def get_many(self, material_ids: Sequence[str]) -> dict[str, StoredMaterial]:
        if not material_ids:
            return {}
        rows = await self._conn.execute(
            materials.select().where(materials.c.id.in_(list(material_ids)))
        )
        return {row.id: _material(row) for row in rows}

    async def bind(self, material_id: str, application_id: str, code: str) -> None:
        done = await self._conn.execute(
            materials.update()
            .where(materials.c.id == material_id, materials.c.application_id.is_(None))
            .values(application_id=application_id, code=code)
        )
        if done.rowcount != 1:
            raise ConflictError("the material is bound to another application, or gone")

    async def of_application(self, application_id: str) -> list[StoredMaterial]:
        rows = await self._conn.execute(
            materials.select()
            .where(materials.c.application_id == application_id)
            .order_by(materials.c.created_at, materials.c.id)
        )
        return [_material(r) for r in rows]

    async def unbound_expired(self, now: Any, *, limit: int) -> list[StoredMaterial]:
        rows = await self._conn.execute(
            materials.select()
            .where(materials.c.application_id.is_(None), materials.c.expires_at <= now)
            .order_by(materials.c.expires_at, materials.c.id)
            .limit(limit)
        )
        return [_material(r) for r in rows]

    async def remove(self, material_id: str) -> None:
        await self._conn.execute(materials.delete().where(materials.c.id == material_id))

    async def references(self, blob_key: str) -> int:
        count = await self._conn.scalar(
            sa.select(sa.func.count())
            .select_from(materials)
            .where(materials.c.blob_key == blob_key)
        )
        return int(count or 0)
