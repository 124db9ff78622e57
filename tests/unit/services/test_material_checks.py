"""What an application naming materials is checked against (check_named): the matter's
material codes and per-material media types, the uploader, binding, the total size."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.domain.commands import Caller
from gateway.domain.materials import JPEG, PDF, MaterialLimits, StoredMaterial
from gateway.domain.matters import Material, MaterialRule, Names
from gateway.services.materials import NamedMaterial, check_named

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HK = Caller("hk-ird", "HK", "hk-ird-key")


def _stored(
    material_id: str, media_type: str = PDF, size: int = 1000, **changes: object
) -> StoredMaterial:
    base = StoredMaterial(
        material_id=material_id,
        digest="sha-256=:AAAA:",
        blob_key="0" * 64,
        size=size,
        media_type=media_type,
        owner="hk-ird",
        created_at=AT,
        expires_at=AT + timedelta(days=1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class _Matter:
    """The part of a Matter check_named reads."""

    materials = (
        Material("LEASE", Names("租约", "租約", "Lease"), MaterialRule.REQUIRED, (PDF,)),
        Material("PHOTO", Names("相片", "相片", "Photo"), MaterialRule.REQUIRED),
    )


def _codes(problems: list) -> list[tuple[str | None, str]]:
    return [(p.pointer, p.code) for p in problems]


def test_materials_that_fit_have_no_problem() -> None:
    found = {"mat_1": _stored("mat_1"), "mat_2": _stored("mat_2", JPEG)}
    named = [
        NamedMaterial("/materials/0", "LEASE", "mat_1"),
        NamedMaterial("/materials/1", "PHOTO", "mat_2"),
    ]
    assert check_named(_Matter(), named, found, HK, MaterialLimits()) == []  # type: ignore[arg-type]


def test_every_problem_is_reported_at_once() -> None:
    found = {
        "mat_jpeg": _stored("mat_jpeg", JPEG),
        "mat_theirs": _stored("mat_theirs", owner="mo-dsaj"),
        "mat_bound": _stored("mat_bound", application_id="app_OTHER", code="LEASE"),
        "mat_big": _stored("mat_big", size=90),
    }
    named = [
        NamedMaterial("/materials/0", "LEASE", "mat_jpeg"),  # the lease must be a PDF
        NamedMaterial("/materials/1", "PHOTO", "mat_theirs"),  # another agency's upload
        NamedMaterial("/materials/2", "PHOTO", "mat_bound"),  # named by another application
        NamedMaterial("/materials/3", "NOT_ASKED", "mat_big"),  # not a material of the matter
        NamedMaterial("/materials/4", "PHOTO", "mat_missing"),
    ]
    limits = MaterialLimits(application_bytes=1500)
    problems = check_named(_Matter(), named, found, HK, limits)  # type: ignore[arg-type]
    assert _codes(problems) == [
        ("/materials/0/material_id", "media_type_not_allowed"),
        ("/materials/1/material_id", "unknown_material_id"),
        ("/materials/2/material_id", "material_in_use"),
        ("/materials/3/code", "unknown_material"),
        ("/materials/4/material_id", "unknown_material_id"),
        ("/materials", "materials_too_large"),  # 1000 + 1000 + 90 > 1500
    ]


def test_a_material_bound_to_this_application_may_be_named_again() -> None:
    found = {"mat_1": _stored("mat_1", application_id="app_1", code="LEASE")}
    named = [NamedMaterial("/materials/0", "LEASE", "mat_1")]
    problems = check_named(_Matter(), named, found, HK, MaterialLimits(), application_id="app_1")  # type: ignore[arg-type]
    assert problems == []
