"""Materials named by an application (gateway.services.case_materials): resolved from the
uploads, a digest that is not the upload's, items by digest alone when those are refused,
filled in with what the upload holds and the href, and what the receipt binds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.domain.commands import Caller
from gateway.domain.materials import PDF, MaterialLimits, StoredMaterial
from gateway.domain.matters import Material, MaterialRule, Names
from gateway.services import case_materials

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HK = Caller("hk-ird", "HK", "hk-ird-key")
ID = "mat_01J0000000000000000000000A"
DIGEST = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
OTHER = "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"


class _Matter:
    materials = (Material("LEASE", Names("租约", "租約", "Lease"), MaterialRule.REQUIRED),)


STORED = StoredMaterial(
    material_id=ID,
    digest=DIGEST,
    blob_key="5f" * 32,
    size=1234,
    media_type=PDF,
    owner="hk-ird",
    created_at=AT,
    expires_at=AT + timedelta(days=1),
    filename="lease.pdf",
)


class _Materials:
    def __init__(self, *held: StoredMaterial) -> None:
        self.held = {m.material_id: m for m in held}
        self.bound: list[tuple[str, str, str]] = []

    async def get_many(self, ids: list[str]) -> dict[str, StoredMaterial]:
        return {i: self.held[i] for i in ids if i in self.held}

    async def bind(self, material_id: str, application_id: str, code: str) -> None:
        self.bound.append((material_id, application_id, code))


class _Uow:
    def __init__(self, *held: StoredMaterial) -> None:
        self.materials = _Materials(*held)


async def _problems(items: list[Any], limits: MaterialLimits | None = None) -> list[tuple]:
    resolved = await case_materials.resolve(
        _Uow(STORED),  # type: ignore[arg-type]
        items,
        _Matter(),  # type: ignore[arg-type]
        HK,
        limits or MaterialLimits(),
    )
    return [(p.pointer, p.code) for p in resolved.problems]


async def test_an_upload_named_with_its_own_digest_is_fine_and_another_digest_is_not() -> None:
    assert await _problems([{"code": "LEASE", "material_id": ID, "digest": DIGEST}]) == []
    assert await _problems([{"code": "LEASE", "material_id": ID, "digest": OTHER}]) == [
        ("/materials/0/digest", "material_digest_mismatch")
    ]


async def test_items_by_digest_alone_are_refused_only_when_the_setting_says_so() -> None:
    items = [{"code": "LEASE", "digest": OTHER}, {"code": "LEASE", "material_id": ID}]
    assert await _problems(items) == []
    assert await _problems(items, MaterialLimits(digest_only=False)) == [
        ("/materials/0/material_id", "material_not_uploaded")
    ]


async def test_an_upload_is_filled_in_from_the_stored_one_with_its_href() -> None:
    items = [
        {"code": "LEASE", "material_id": ID, "digest": OTHER, "size": 1, "media_type": "x/y"},
        {"code": "LEASE", "digest": OTHER},
    ]
    filled = case_materials.filled(items, {ID: STORED}, "app_1", "https://gw.example/")
    assert filled == [
        {
            "code": "LEASE",
            "material_id": ID,
            "digest": DIGEST,
            "size": 1234,
            "media_type": PDF,
            "href": f"https://gw.example/v1/applications/app_1/materials/{ID}",
            "filename": "lease.pdf",
        },
        {"code": "LEASE", "digest": OTHER},  # nothing to fetch: as it came
    ]
    assert case_materials.receipt_claim({"materials": filled}) == [
        {"code": "LEASE", "material_id": ID, "digest": DIGEST},
        {"code": "LEASE", "digest": OTHER},
    ]
    assert [m["material_id"] for m in case_materials.listed({"materials": filled})] == [ID]


async def test_only_materials_not_yet_bound_to_the_case_are_bound() -> None:
    uow = _Uow()
    already = replace(STORED, material_id="mat_B", application_id="app_1", code="LEASE")
    items = [{"code": "LEASE", "material_id": ID}, {"code": "LEASE", "material_id": "mat_B"}]
    await case_materials.bind(uow, items, {ID: STORED, "mat_B": already}, "app_1")  # type: ignore[arg-type]
    assert uow.materials.bound == [(ID, "app_1", "LEASE")]
