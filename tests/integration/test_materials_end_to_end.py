"""Issue 16's "done when" for materials, on the running sandbox and on both databases: an HK
agency uploads two PDFs and submits a joint matter naming them; the Guangdong lead and the
HK and Macau reviewers receive forwards listing each file (material id, digest, size, type,
href) in their own formats; the Guangdong handler fetches both with signed GETs and the
digests match (so do the sandbox agencies, on their own); a third agency gets 404 like an
unknown id, and the attempt is on the audit trail. The archive of the closed case holds
each file's bytes and ``archive verify`` refuses a file that is not what the record says.

The refusals of uploads themselves (oversized, wrong type, truncated, digest not the signed
one — nothing stored) are tested in tests/integration/test_material_uploads.py; here, the
refusals of an application naming materials: every problem in one answer, nothing stored,
nothing bound.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import sqlalchemy as sa

from gateway.archive_ops import archive_export, archive_verify
from gateway.bootstrap import load_keyring
from gateway.mapping.xml import parse_xml
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.routes import PARTNERS
from gateway.sandbox.samples import INDIVIDUAL_BUSINESS
from gateway.services.materials import expire_unbound
from gateway.store.archive import gather_case
from gateway.store.database import create_engine
from gateway.store.tables import applications, audit_log, outbox
from gateway.trust.archive import (
    ArchiveInvalidError,
    MaterialFile,
    build_bundle,
    file_member,
    verify_bundle,
)
from gateway.trust.keys import SEAL
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.materials_support import pdf
from tests.support import FIXTURES, row_counts, send

HK = "{urn:gba:hk:application:1}"
MO = "{urn:gba:mo:requerimento:1}"


def _digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def _deps(gateway: RunningGateway) -> Any:
    return gateway.app[DEPENDENCIES]  # type: ignore[index]


async def _route(
    gateway: RunningGateway,
    lead: str,
    reviewers: list[str],
    fields: dict[str, list[str]] | None = None,
) -> None:
    url = f"{gateway.url}/sandbox/v1/routes/{INDIVIDUAL_BUSINESS}"
    # the reviewers are sent the files (data minimisation: a matter declares what each needs)
    if fields is None:
        fields = {r: ["/materials"] for r in reviewers}
    body = {"lead": lead, "reviewers": reviewers, "fields": fields}
    async with aiohttp.ClientSession() as session, session.put(url, json=body) as response:
        assert response.status == 200, await response.text()


async def _upload(gateway: RunningGateway, body: bytes, agency: str = "hk-ird") -> str:
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/materials",
        body=body,
        content_type="application/pdf",
        agency=agency,
    )
    assert answer.status == 201, answer.body
    assert answer.json()["digest"] == _digest(body)
    return str(answer.json()["material_id"])


def _application(materials: list[dict[str, Any]]) -> bytes:
    document = json.loads(
        (FIXTURES / "documents" / "hk-individual-business.canonical.json").read_text("utf-8")
    )
    document["materials"] = materials
    document["commitments"] = []  # the premises proof is sent as a file instead
    return json.dumps(document, ensure_ascii=False).encode()


async def _submit(gateway: RunningGateway, materials: list[dict[str, Any]]) -> Any:
    return await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=_application(materials),
        content_type="application/json",
    )


async def _case(gateway: RunningGateway, application_id: str) -> Any:
    return (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()


async def _until_delivered(gateway: RunningGateway, application_id: str, agencies: set[str]) -> Any:
    for _ in range(500):
        case = await _case(gateway, application_id)
        delivered = {e["actor"] for e in case["timeline"] if e["type"] == "message.delivered"}
        if agencies <= delivered:
            return case
        await asyncio.sleep(0.02)
    raise AssertionError(f"not delivered to {agencies - delivered}: {case['timeline']}")


async def _sent(gateway: RunningGateway, application_id: str) -> dict[str, Any]:
    async with _deps(gateway).uow() as uow:
        rows = await uow._conn.execute(
            sa.select(outbox).where(outbox.c.application_id == application_id)
        )
        return {row.destination: row for row in rows}


async def _audit(gateway: RunningGateway, kind: str) -> list[tuple[str, str]]:
    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(audit_log.c.actor, audit_log.c.subject).where(audit_log.c.kind == kind)
            )
            return [(row.actor, row.subject) for row in rows]
    finally:
        await engine.dispose()


def _path(gateway: RunningGateway, href: str) -> str:
    assert href.startswith(gateway.url + "/")
    return href[len(gateway.url) :]


def _receipt_claims(receipt: str) -> dict[str, Any]:
    payload = receipt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_two_pdfs_travel_with_a_joint_case_and_only_its_handlers_fetch_them(
    gateway: RunningGateway,
) -> None:
    await _route(gateway, "gd-hq-csb", ["hk-cr", "mo-dsat"])
    form, premises = pdf(70_000), pdf(123_457)
    form_id, premises_id = await _upload(gateway, form), await _upload(gateway, premises)

    answer = await _submit(
        gateway,
        [
            {"code": "APPLICATION_FORM", "material_id": form_id, "filename": "form.pdf"},
            {"code": "PREMISES_PROOF", "material_id": premises_id},
        ],
    )
    assert answer.status == 202, answer.body
    application_id = answer.json()["application_id"]
    assert answer.json()["status"] == "accepted"
    # the signed receipt binds each file: code, material id, digest
    assert _receipt_claims(answer.json()["receipt"])["materials"] == [
        {"code": "APPLICATION_FORM", "material_id": form_id, "digest": _digest(form)},
        {"code": "PREMISES_PROOF", "material_id": premises_id, "digest": _digest(premises)},
    ]
    files = {form_id: form, premises_id: premises}
    hrefs = {m: f"{gateway.url}/v1/applications/{application_id}/materials/{m}" for m in files}

    case = await _until_delivered(gateway, application_id, {"gd-hq-csb", "hk-cr", "mo-dsat"})
    [received] = [e for e in case["timeline"] if e["type"] == "application.received"]
    assert [m["material_id"] for m in received["materials"]] == [form_id, premises_id]

    # every format lists each file with its id, digest, size, type and href
    sent = await _sent(gateway, application_id)
    listed = json.loads(sent["gd-hq-csb"].body)["application"]["materials"]
    assert listed == [
        {
            "code": "APPLICATION_FORM",
            "material_id": form_id,
            "digest": _digest(form),
            "size": len(form),
            "media_type": "application/pdf",
            "href": hrefs[form_id],
            "filename": "form.pdf",
        },
        {
            "code": "PREMISES_PROOF",
            "material_id": premises_id,
            "digest": _digest(premises),
            "size": len(premises),
            "media_type": "application/pdf",
            "href": hrefs[premises_id],
        },
    ]
    hk = parse_xml(sent["hk-cr"].body).findall(f".//{HK}Materials/{HK}Material")
    assert [(m.get("materialId"), m.get("digest"), m.get("size"), m.get("href")) for m in hk] == [
        (m, _digest(files[m]), str(len(files[m])), hrefs[m]) for m in files
    ]
    macau = parse_xml(sent["mo-dsat"].body).findall(f".//{MO}Anexos/{MO}Anexo")
    assert [(m.get("identificador"), m.get("resumo"), m.get("endereco")) for m in macau] == [
        (m, _digest(files[m]), hrefs[m]) for m in files
    ]

    # the Guangdong handler fetches both, signed; bytes, digest, type and length hold
    for material_id, data in files.items():
        got = await send(
            gateway.settings, "GET", _path(gateway, hrefs[material_id]), agency="gd-hq-csb"
        )
        assert got.status == 200, got.body
        assert got.body == data
        assert got.headers["Content-Digest"] == _digest(data) == _digest(got.body)
        assert got.headers["Content-Type"] == "application/pdf"
        assert got.headers["Content-Length"] == str(len(data))
        assert "Signature" in got.headers

    # so did each sandbox agency on receiving its forward (signed GET, digest checked)
    inboxes = gateway.app[PARTNERS].inboxes  # type: ignore[index]
    for _ in range(500):
        if all(len(inboxes[a].fetched) == 2 for a in ("gd-hq-csb", "hk-cr", "mo-dsat")):
            break
        await asyncio.sleep(0.02)
    for agency in ("gd-hq-csb", "hk-cr", "mo-dsat"):
        fetched = inboxes[agency].fetched
        assert {m: (f.status, f.digest_ok) for m, f in fetched.items()} == {
            form_id: (200, True),
            premises_id: (200, True),
        }

    # a third agency: 404, the same answer as for an id that does not exist; audited
    unknown = f"/v1/applications/{application_id}/materials/mat_00000000000000000000000000"
    refused = await send(gateway.settings, "GET", _path(gateway, hrefs[form_id]), agency="mo-fss")
    missing = await send(gateway.settings, "GET", unknown, agency="mo-fss")
    plain = await send(gateway.settings, "GET", f"/v1/materials/{form_id}", agency="mo-fss")
    assert refused.status == missing.status == plain.status == 404
    for answer_ in (refused, missing, plain):
        body = answer_.json()
        assert (body["type"], body["title"], body["detail"]) == (
            missing.json()["type"],
            missing.json()["title"],
            missing.json()["detail"],
        )
    refusals = await _audit(gateway, "material.fetch_refused")
    assert ("mo-fss", form_id) in refusals
    assert ("mo-fss", "mat_00000000000000000000000000") in refusals
    assert ("gd-hq-csb", form_id) in await _audit(gateway, "material.fetched")

    # the uploader still reads its own; bound materials outlive the expiry sweep
    own = await send(gateway.settings, "GET", f"/v1/materials/{premises_id}")
    assert own.status == 200
    assert own.body == premises
    deps = _deps(gateway)
    later = deps.clock.now() + timedelta(days=30)
    assert await expire_unbound(deps, later) == 0
    async with deps.uow() as uow:
        stored = await uow.materials.get_many([form_id, premises_id])
    assert {m: (s.application_id, s.code) for m, s in stored.items()} == {
        form_id: (application_id, "APPLICATION_FORM"),
        premises_id: (application_id, "PREMISES_PROOF"),
    }


async def test_naming_materials_wrongly_lists_every_problem_and_stores_nothing(
    gateway: RunningGateway,
) -> None:
    await _route(gateway, "gd-hq-csb", [])
    mine, used = await _upload(gateway, pdf(5000)), await _upload(gateway, pdf(6000))
    theirs = await _upload(gateway, pdf(7000), agency="mo-dsat")
    first = await _submit(gateway, [{"code": "APPLICATION_FORM", "material_id": used}])
    assert first.status == 202, first.body
    before = await row_counts(gateway.settings, (applications, outbox))

    answer = await _submit(
        gateway,
        [
            {"code": "APPLICATION_FORM", "material_id": theirs},  # another agency's upload
            {"code": "NOT_A_MATERIAL", "material_id": mine},  # a code the matter lacks
            {"code": "PREMISES_PROOF", "material_id": used},  # bound to another case
            {"code": "PREMISES_PROOF", "material_id": "mat_00000000000000000000000000"},
            {"code": "APPLICATION_FORM", "material_id": mine, "digest": _digest(b"other")},
            {"code": "APPLICATION_FORM"},  # neither an upload nor a digest
        ],
    )

    assert answer.status == 422, answer.body
    found = {(e["pointer"], e["code"]) for e in answer.json()["errors"]}
    assert found == {
        ("/materials/0/material_id", "unknown_material_id"),
        ("/materials/1/code", "unknown_material"),
        ("/materials/2/material_id", "material_in_use"),
        ("/materials/3/material_id", "unknown_material_id"),
        ("/materials/4/material_id", "duplicate_material_id"),
        ("/materials/4/digest", "material_digest_mismatch"),
        ("/materials/5/digest", "invalid_digest"),
    }
    assert await row_counts(gateway.settings, (applications, outbox)) == before
    async with _deps(gateway).uow() as uow:
        stored = await uow.materials.get_many([mine, theirs])
    assert all(s.application_id is None for s in stored.values())


async def _until_status(gateway: RunningGateway, application_id: str, status: str) -> Any:
    for _ in range(500):
        case = await _case(gateway, application_id)
        if case["status"] == status:
            return case
        await asyncio.sleep(0.02)
    raise AssertionError(f"not {status}: {case['status']}")


async def test_the_archive_bundles_each_file_and_a_tampered_file_fails_verification(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    await _route(gateway, "gd-hq-csb", [])  # the sandbox lead approves on its own
    form, premises = pdf(9000), pdf(11_000)
    form_id, premises_id = await _upload(gateway, form), await _upload(gateway, premises)
    answer = await _submit(
        gateway,
        [
            {"code": "APPLICATION_FORM", "material_id": form_id},
            {"code": "PREMISES_PROOF", "material_id": premises_id},
        ],
    )
    assert answer.status == 202, answer.body
    application_id = answer.json()["application_id"]
    await _until_status(gateway, application_id, "approved")
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        jwks_data = await response.read()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_bytes(jwks_data)
    out = tmp_path / "case.json"
    said: list[str] = []

    await archive_export(gateway.settings, application_id, out, said.append)

    assert archive_verify(out, jwks_file, said.append), said
    document = json.loads(out.read_bytes())
    claims = jwt.decode(document["manifest"], options={"verify_signature": False})
    members = {name: base64.b64decode(value) for name, value in document["members"].items()}
    assert {f["member"]: f["material_ids"] for f in claims["files"]} == {
        file_member(_digest(form)): [form_id],
        file_member(_digest(premises)): [premises_id],
    }
    assert members[file_member(_digest(form))] == form
    assert members[file_member(_digest(premises))] == premises

    # A changed byte of a file: refused
    data = bytearray(out.read_bytes())
    encoded = document["members"][file_member(_digest(form))].encode()
    data[data.index(encoded) + 100] ^= 0x01
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bytes(data))
    said.clear()
    assert not archive_verify(tampered, jwks_file, said.append)
    assert said[0].startswith("archive NOT verified (member-digest): member files/")

    # Other bytes under the material's digest, even in a bundle signed with the gateway's
    # own seal key, do not have the digest the application record gives: refused
    engine = create_engine(
        gateway.settings.database_url, schema=gateway.settings.database_schema or None
    )
    try:
        gathered = await gather_case(engine, application_id)
    finally:
        await engine.dispose()
    assert gathered is not None
    assert gathered.record is not None
    swapped = dataclasses.replace(
        gathered.record,
        files=[
            MaterialFile(_digest(form), "application/pdf", pdf(9001), (form_id,)),
            MaterialFile(_digest(premises), "application/pdf", premises, (premises_id,)),
        ],
    )
    seal = load_keyring(gateway.settings).current(SEAL)
    bundle = build_bundle(swapped, seal, issuer=gateway.url, now=datetime.now(UTC))
    with pytest.raises(ArchiveInvalidError) as refused:
        verify_bundle(bundle, json.loads(jwks_data))
    assert refused.value.reason == "material-file"
    # ... and so is a bundle leaving out the file of a material the application names
    partial = dataclasses.replace(swapped, files=swapped.files[1:])
    bundle = build_bundle(partial, seal, issuer=gateway.url, now=datetime.now(UTC))
    with pytest.raises(ArchiveInvalidError, match="file of material 0 is not in the bundle"):
        verify_bundle(bundle, json.loads(jwks_data))


async def test_a_supplement_adds_a_file_by_material_id_and_its_handler_fetches_it(
    gateway: RunningGateway,
) -> None:
    await _route(gateway, "gd-hq-csb", [])
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=_application([]),  # no form, no commitment: awaiting both
        content_type="application/json",
    )
    assert answer.json()["status"] == "awaiting_supplement", answer.body
    application_id = answer.json()["application_id"]
    form, premises = pdf(4000), pdf(4100)
    form_id, premises_id = await _upload(gateway, form), await _upload(gateway, premises)
    theirs = await _upload(gateway, pdf(4200), agency="mo-dsat")
    path = f"/v1/applications/{application_id}/supplements"

    refused = await send(
        gateway.settings,
        "POST",
        path,
        body=json.dumps(
            {"materials": [{"code": "APPLICATION_FORM", "material_id": theirs}]}
        ).encode(),
        content_type="application/json",
    )
    assert refused.status == 422, refused.body
    assert [(e["pointer"], e["code"]) for e in refused.json()["errors"]] == [
        ("/materials/0/material_id", "unknown_material_id")
    ]

    supplied = await send(
        gateway.settings,
        "POST",
        path,
        body=json.dumps(
            {
                "materials": [
                    {"code": "APPLICATION_FORM", "material_id": form_id},
                    {"code": "PREMISES_PROOF", "material_id": premises_id},
                ]
            }
        ).encode(),
        content_type="application/json",
    )
    assert supplied.status == 200, supplied.body
    assert supplied.json()["status"] == "accepted"
    case = await _until_delivered(gateway, application_id, {"gd-hq-csb"})
    [provided] = [e for e in case["timeline"] if e["type"] == "application.supplement_provided"]
    assert [m["material_id"] for m in provided["materials"]] == [form_id, premises_id]
    listed = json.loads((await _sent(gateway, application_id))["gd-hq-csb"].body)
    hrefs = [m["href"] for m in listed["application"]["materials"]]
    assert [h.rsplit("/", 1)[1] for h in hrefs] == [form_id, premises_id]
    got = await send(gateway.settings, "GET", _path(gateway, hrefs[0]), agency="gd-hq-csb")
    assert got.status == 200
    assert got.body == form
    async with _deps(gateway).uow() as uow:
        stored = await uow.materials.get_many([form_id, premises_id, theirs])
    assert {m: s.application_id for m, s in stored.items()} == {
        form_id: application_id,
        premises_id: application_id,
        theirs: None,
    }


async def _as_resident(
    gateway: RunningGateway,
    method: str,
    path: str,
    token: str,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"}
    if method == "POST":
        headers["Idempotency-Key"] = secrets.token_urlsafe(12)
    if content_type:
        headers["Content-Type"] = content_type
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, data=body, headers=headers) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


async def test_a_resident_names_their_own_upload_and_reads_it_back_but_not_anothers(
    gateway: RunningGateway,
) -> None:
    portal = await SandboxPortal.register(gateway.url)
    token = (await portal.login("hk", "chan-tai-man")).access_token
    other = (await portal.login("macau", "lei-sio-meng")).access_token
    form = pdf(3000)
    status, raw, _ = await _as_resident(
        gateway, "POST", "/v1/me/materials", token, body=form, content_type="application/pdf"
    )
    assert status == 201, raw
    form_id = json.loads(raw)["material_id"]
    hk_upload = await _upload(gateway, pdf(3100))  # an agency's: not the resident's to name
    application = {k: v for k, v in json.loads(_application([])).items() if k != "applicant"}
    application["materials"] = [
        {"code": "APPLICATION_FORM", "material_id": form_id},
        {"code": "PREMISES_PROOF", "material_id": hk_upload},
    ]
    request = {
        "application": application,
        "consent": {
            "categories": ["identity", "contact", "address", "application", "materials"],
            "destinations": ["GD"],
        },
    }
    status, raw, _ = await _as_resident(
        gateway,
        "POST",
        "/v1/me/applications",
        token,
        body=json.dumps(request).encode(),
        content_type="application/json",
    )
    assert status == 422, raw
    assert [(e["pointer"], e["code"]) for e in json.loads(raw)["errors"]] == [
        ("/materials/1/material_id", "unknown_material_id")
    ]

    application["materials"] = application["materials"][:1]
    application["commitments"] = [{"material": "PREMISES_PROOF"}]
    status, raw, _ = await _as_resident(
        gateway,
        "POST",
        "/v1/me/applications",
        token,
        body=json.dumps(request).encode(),
        content_type="application/json",
    )
    assert status == 202, raw
    application_id = json.loads(raw)["application_id"]
    async with _deps(gateway).uow() as uow:
        stored = await uow.materials.get(form_id)
    assert stored is not None
    assert (stored.application_id, stored.code) == (application_id, "APPLICATION_FORM")

    status, data, headers = await _as_resident(gateway, "GET", f"/v1/me/materials/{form_id}", token)
    assert (status, data, headers["Content-Digest"]) == (200, form, _digest(form))
    status, _, _ = await _as_resident(gateway, "GET", f"/v1/me/materials/{form_id}", other)
    assert status == 404
    status, _, _ = await _as_resident(gateway, "GET", f"/v1/me/materials/{hk_upload}", token)
    assert status == 404


async def test_two_submissions_racing_for_one_upload_bind_it_once(
    gateway: RunningGateway,
) -> None:
    await _route(gateway, "gd-hq-csb", [])
    form_id = await _upload(gateway, pdf(5000))
    before = await row_counts(gateway.settings, (applications,))

    answers = await asyncio.gather(
        *[_submit(gateway, [{"code": "APPLICATION_FORM", "material_id": form_id}]) for _ in "ab"]
    )

    statuses = sorted(a.status for a in answers)
    assert statuses in ([202, 409], [202, 422]), [a.body for a in answers]
    [won] = [a for a in answers if a.status == 202]
    [lost] = [a for a in answers if a.status != 202]
    if lost.status == 422:
        assert [e["code"] for e in lost.json()["errors"]] == ["material_in_use"]
    after = await row_counts(gateway.settings, (applications,))
    assert after["applications"] == before["applications"] + 1
    async with _deps(gateway).uow() as uow:
        stored = await uow.materials.get(form_id)
    assert stored is not None
    assert stored.application_id == won.json()["application_id"]


async def test_a_reviewer_fetches_only_the_files_its_declared_fields_name(
    gateway: RunningGateway,
) -> None:
    # hk-cr needs the application form only; mo-dsat no file at all (data minimisation)
    await _route(
        gateway,
        "gd-hq-csb",
        ["hk-cr", "mo-dsat"],
        {"hk-cr": ["/materials/APPLICATION_FORM"], "mo-dsat": ["/particulars"]},
    )
    form, premises = pdf(10_000), pdf(20_000)
    form_id, premises_id = await _upload(gateway, form), await _upload(gateway, premises)
    answer = await _submit(
        gateway,
        [
            {"code": "APPLICATION_FORM", "material_id": form_id},
            {"code": "PREMISES_PROOF", "material_id": premises_id},
        ],
    )
    assert answer.status == 202, answer.body
    application_id = answer.json()["application_id"]
    await _until_delivered(gateway, application_id, {"gd-hq-csb", "hk-cr", "mo-dsat"})
    sent = await _sent(gateway, application_id)
    hk = parse_xml(sent["hk-cr"].body).findall(f".//{HK}Materials/{HK}Material")
    assert [m.get("materialId") for m in hk] == [form_id]
    assert premises_id.encode() not in sent["mo-dsat"].body
    assert form_id.encode() not in sent["mo-dsat"].body

    def path(material_id: str) -> str:
        return f"/v1/applications/{application_id}/materials/{material_id}"

    answers = {
        (agency, material_id): (
            await send(gateway.settings, "GET", path(material_id), agency=agency)
        ).status
        for agency in ("gd-hq-csb", "hk-cr", "mo-dsat")
        for material_id in (form_id, premises_id)
    }
    assert answers == {
        ("gd-hq-csb", form_id): 200,
        ("gd-hq-csb", premises_id): 200,
        ("hk-cr", form_id): 200,
        ("hk-cr", premises_id): 404,  # never sent its address: guessing it gets nothing
        ("mo-dsat", form_id): 404,
        ("mo-dsat", premises_id): 404,
    }
    refused = await _audit(gateway, "material.fetch_refused")
    assert {("hk-cr", premises_id), ("mo-dsat", form_id), ("mo-dsat", premises_id)} <= set(refused)
