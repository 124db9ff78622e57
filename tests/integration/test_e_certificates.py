"""E-certificates as results (Art. 22) end to end, on SQLite and on PostgreSQL: an approval
with an e-certificate reaches the resident only under an ``e_certificate`` consent, verifies
offline with the CLI, and reads revoked after its issuer revoked it; forged signatures are
refused with nothing stored; another agency cannot revoke; the public status carries no
personal data."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.cli import main as cli
from gateway.domain.values import local_date
from gateway.operations import mappings_sample
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.routes import PARTNERS
from gateway.sandbox.samples import canonical_sample
from gateway.store.tables import audit_log, certificates, timeline
from gateway.trust.e_certificates import sign_certificate, sign_document
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.web.keys import DEPENDENCIES, STORE
from tests.conftest import RunningGateway
from tests.support import agency_key, row_counts, sample_xml, send

HENGQIN = "11440400MB2C00081P4440120002000"  # automatic acceptance; handler gd-hq-csb
JSON = "application/json"
XML = "application/xml"
CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}
PDF = b"%PDF-1.7\n1 0 obj <</Type /Catalog>> endobj\n%%EOF\n"


async def _call(
    gateway: RunningGateway, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST":
        headers["Idempotency-Key"] = secrets.token_urlsafe(12)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, json=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None), dict(response.headers)


async def _decide(gateway: RunningGateway, app_id: str, agency: str, body: Any) -> Any:
    return await send(
        gateway.settings,
        "POST",
        f"/v1/applications/{app_id}/decisions",
        agency=agency,
        body=json.dumps(body).encode(),
        content_type=JSON,
    )


async def _under_review(gateway: RunningGateway, app_id: str) -> None:
    for _ in range(150):
        view = await send(gateway.settings, "GET", f"/v1/applications/{app_id}", agency="gd-hq-csb")
        if view.status == 200 and view.json()["status"] == "under_review":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the case never reached under_review")


async def _rows(gateway: RunningGateway, table: sa.Table) -> list[Any]:
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        return list((await uow.connection.execute(table.select())).all())


async def _timeline_types(gateway: RunningGateway, app_id: str) -> list[str]:
    rows = await _rows(gateway, timeline)
    return [r.type for r in rows if r.application_id == app_id and r.type.startswith("cert")]


async def _resident_case(gateway: RunningGateway) -> tuple[str, str]:
    """A resident's case held by gd-hq-csb, under review (its automatic decision off)."""
    gateway.app[PARTNERS].auto_decide = False  # type: ignore[index]
    portal = await SandboxPortal.register(gateway.url)
    token = (await portal.login("hk", "chan-tai-man")).access_token
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona("chan-tai-man"))
    application = {k: v for k, v in sample.items() if k != "applicant"}
    status, submitted, _ = await _call(
        gateway,
        "POST",
        "/v1/me/applications",
        token,
        {"application": application, "consent": CONSENT},
    )
    assert status == 202, submitted
    await _under_review(gateway, submitted["application_id"])
    return submitted["application_id"], token


def _claims(app_id: str, issuer: str = "gd-hq-csb") -> dict[str, Any]:
    return {
        "iss": issuer,
        "sub": "HKID:A1234563",
        "iat": 1_790_000_000,
        "jti": secrets.token_hex(8),
        "kind": "business_licence",
        "application_id": app_id,
    }


async def test_an_approval_with_an_e_certificate_reaches_the_resident_under_consent_only(
    gateway: RunningGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_id, token = await _resident_case(gateway)
    key = agency_key(gateway.settings, "gd-hq-csb")

    # Forged: the agency's kid, another key; and another agency's real registered key.
    impostor = SigningKey(key.kid, generate_private_key(key.alg), key.alg, sandbox=True)
    other = agency_key(gateway.settings, "hk-ird")
    for forged in (
        sign_certificate(impostor, _claims(app_id)),
        sign_certificate(other, _claims(app_id)),
    ):
        refused = await _decide(
            gateway, app_id, "gd-hq-csb", {"decision": "approved", "certificate": {"jws": forged}}
        )
        assert refused.status == 422, refused.body
        assert [e["pointer"] for e in refused.json()["errors"]] == ["/certificate/jws"]
    assert (await row_counts(gateway.settings, (certificates,)))["certificates"] == 0
    await _under_review(gateway, app_id)  # the refused decisions changed nothing

    token_jws = sign_certificate(key, _claims(app_id))
    decided = await _decide(
        gateway, app_id, "gd-hq-csb", {"decision": "approved", "certificate": {"jws": token_jws}}
    )
    assert decided.status == 200, decided.body
    assert decided.json()["status"] == "approved"
    certificate_id = decided.json()["certificate"]["certificate_id"]
    assert decided.json()["certificate"]["status"] == "valid"

    # Listed, but not delivered without an e_certificate consent: 403, audited.
    status, listed, _ = await _call(gateway, "GET", "/v1/me/certificates", token)
    assert status == 200
    (item,) = listed["items"]
    assert (item["certificate_id"], item["consent_in_force"]) == (certificate_id, False)
    assert "certificate" not in item
    assert "subject" not in item
    status, refused_fetch, _ = await _call(
        gateway, "GET", f"/v1/me/certificates/{certificate_id}", token
    )
    assert status == 403, refused_fetch
    assert token_jws not in json.dumps(refused_fetch)
    (row,) = await _rows(gateway, certificates)
    assert row.delivered_at is None
    assert await _timeline_types(gateway, app_id) == ["certificate.issued"]
    audited = [(r.kind, r.subject) for r in await _rows(gateway, audit_log)]
    assert ("certificate.refused", certificate_id) in audited
    assert ("certificate.delivered", certificate_id) not in audited

    status, consent, _ = await _call(
        gateway,
        "POST",
        "/v1/me/consents",
        token,
        {"purpose": "e_certificate", "categories": ["application"], "destinations": []},
    )
    assert status == 201, consent
    status, fetched, headers = await _call(
        gateway, "GET", f"/v1/me/certificates/{certificate_id}", token
    )
    assert status == 200, fetched
    assert fetched["certificate"] == token_jws
    assert headers["Cache-Control"] == "no-store"
    assert await _timeline_types(gateway, app_id) == ["certificate.issued", "certificate.delivered"]
    (row,) = await _rows(gateway, certificates)
    assert row.delivered_at is not None

    # Offline: the issuer's keys from the gateway's registry, the CLI verifies.
    status, jwks, _ = await _call(gateway, "GET", "/v1/agencies/gd-hq-csb/jwks.json")
    assert status == 200
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "cert.jws").write_text(token_jws)
    (tmp_path / "fetched.json").write_text(json.dumps(fetched))
    capsys.readouterr()
    assert (
        cli(
            [
                "certificates",
                "verify",
                str(tmp_path / "cert.jws"),
                "--jwks",
                str(tmp_path / "jwks.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "issuer:          gd-hq-csb" in printed
    assert f"kid:             {key.kid}" in printed
    assert "A1234563" not in printed  # the subject only as a digest
    assert (
        cli(
            [
                "certificates",
                "verify",
                str(tmp_path / "fetched.json"),
                "--jwks",
                str(tmp_path / "jwks.json"),
            ]
        )
        == 0
    )
    head, payload, signature = token_jws.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["kind"] = "something_else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(tampered).encode()).rstrip(b"=")
    (tmp_path / "forged.jws").write_text(f"{head}.{forged_payload.decode()}.{signature}")
    assert (
        cli(
            [
                "certificates",
                "verify",
                str(tmp_path / "forged.jws"),
                "--jwks",
                str(tmp_path / "jwks.json"),
            ]
        )
        == 1
    )

    # The public status: no personal data; another agency's revocation is a 404.
    status_path = f"/v1/certificates/{certificate_id}/status"
    status, public, headers = await _call(gateway, "GET", status_path)
    assert status == 200
    assert public == {"certificate_id": certificate_id, "status": "valid", "issuer": "gd-hq-csb"}
    assert "max-age=60" in headers["Cache-Control"]
    revocation = f"/v1/certificates/{certificate_id}/revocation"
    body = json.dumps({"reason": "issued in error"}).encode()
    stranger = await send(
        gateway.settings, "POST", revocation, agency="hk-ird", body=body, content_type=JSON
    )
    assert stranger.status == 404
    assert (await _call(gateway, "GET", status_path))[1]["status"] == "valid"
    assert await _timeline_types(gateway, app_id) == ["certificate.issued", "certificate.delivered"]

    revoked = await send(
        gateway.settings, "POST", revocation, agency="gd-hq-csb", body=body, content_type=JSON
    )
    assert revoked.status == 200, revoked.body
    status, public, _ = await _call(gateway, "GET", status_path)
    assert set(public) == {"certificate_id", "status", "revoked_at", "issuer"}
    assert public["status"] == "revoked"
    again = await send(
        gateway.settings, "POST", revocation, agency="gd-hq-csb", body=body, content_type=JSON
    )
    assert again.status == 409
    assert await _timeline_types(gateway, app_id) == [
        "certificate.issued",
        "certificate.delivered",
        "certificate.revoked",
    ]
    assert (await _call(gateway, "GET", "/v1/certificates/crt_NOSUCHTHING/status"))[0] == 404


async def test_a_signed_document_with_a_detached_signature_is_kept_and_verifies_offline(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    gateway.app[PARTNERS].auto_decide = False  # type: ignore[index]
    created = await send(
        gateway.settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML
    )
    app_id = created.json()["application_id"]
    await _under_review(gateway, app_id)
    key = agency_key(gateway.settings, "gd-hq-csb")
    signature = sign_document(key, PDF, "application/pdf")
    document = base64.b64encode(PDF).decode()

    tampered = base64.b64encode(PDF + b"% changed\n").decode()
    for wrong in (
        {"document": tampered, "media_type": "application/pdf", "signature": signature},
        {"document": document, "media_type": "image/png", "signature": signature},
    ):
        refused = await _decide(
            gateway, app_id, "gd-hq-csb", {"decision": "approved", "certificate": wrong}
        )
        assert refused.status == 422, refused.body
        assert [e["pointer"] for e in refused.json()["errors"]] == ["/certificate/signature"]
    # a rejection cannot carry a certificate, and every problem is listed at once
    both = await _decide(
        gateway, app_id, "gd-hq-csb", {"decision": "rejected", "certificate": {"jws": "x"}}
    )
    assert both.status == 422
    assert [e["pointer"] for e in both.json()["errors"]] == ["/reasons", "/certificate"]
    assert (await row_counts(gateway.settings, (certificates,)))["certificates"] == 0

    good = {"document": document, "media_type": "application/pdf", "signature": signature}
    decided = await _decide(
        gateway, app_id, "gd-hq-csb", {"decision": "approved", "certificate": good}
    )
    assert decided.status == 200, decided.body
    (row,) = await _rows(gateway, certificates)
    assert (bytes(row.content), row.form, row.issuer) == (PDF, "document", "gd-hq-csb")
    assert row.subject == "document:HKID:A1234563"  # the applicant's document reference
    status, public, _ = await _call(gateway, "GET", f"/v1/certificates/{row.id}/status")
    assert status == 200
    assert "A1234563" not in json.dumps(public)

    status, jwks, _ = await _call(gateway, "GET", "/v1/agencies/gd-hq-csb/jwks.json")
    assert (status, jwks["issuer"]) == (200, "gd-hq-csb")
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "licence.pdf").write_bytes(PDF)
    (tmp_path / "licence.sig").write_text(signature)
    args = ["--jwks", str(tmp_path / "jwks.json"), "--signature", str(tmp_path / "licence.sig")]
    assert cli(["certificates", "verify", str(tmp_path / "licence.pdf"), *args]) == 0
    (tmp_path / "other.pdf").write_bytes(PDF.replace(b"Catalog", b"Catalos"))
    assert cli(["certificates", "verify", str(tmp_path / "other.pdf"), *args]) == 1


async def test_a_sandbox_agency_attaches_certificates_and_a_forged_one_is_refused(
    gateway: RunningGateway,
) -> None:
    partners = gateway.app[PARTNERS]  # type: ignore[index]
    partners.faults.update("gd-hq-csb", {"e_certificate": "document"})
    created = await send(
        gateway.settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML
    )
    app_id = created.json()["application_id"]
    for _ in range(150):
        view = await send(gateway.settings, "GET", f"/v1/applications/{app_id}", agency="gd-hq-csb")
        if view.json()["status"] == "approved":
            break
        await asyncio.sleep(0.05)
    assert view.json()["status"] == "approved"
    (row,) = await _rows(gateway, certificates)
    assert (row.application_id, row.form, row.media_type) == (app_id, "document", "application/pdf")
    assert bytes(row.content).startswith(b"%PDF-")

    partners.faults.update("gd-hq-csb", {"e_certificate": "forged"})
    forged = await send(
        gateway.settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML
    )
    forged_id = forged.json()["application_id"]
    await _under_review(gateway, forged_id)
    target = f"/v1/applications/{forged_id}/decisions"
    for _ in range(100):  # until the sandbox agency's decision was received (and refused)
        if any(target.encode() in bytes(r.entry) for r in await _rows(gateway, audit_log)):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the sandbox agency never posted its decision")
    view = await send(
        gateway.settings, "GET", target.removesuffix("/decisions"), agency="gd-hq-csb"
    )
    assert view.json()["status"] == "under_review"
    assert "decision.recorded" not in [e["type"] for e in view.json()["timeline"]]
    assert [r.application_id for r in await _rows(gateway, certificates)] == [app_id]


async def _agency_case(gateway: RunningGateway, who: str) -> str:
    """An agency's case naming ``who``'s document, held by gd-hq-csb under review."""
    gateway.app[PARTNERS].auto_decide = False  # type: ignore[index]
    document = mappings_sample(gateway.settings, HENGQIN, "canonical", who)
    answer = await send(
        gateway.settings, "POST", "/v1/applications", body=document, content_type=JSON
    )
    assert answer.status == 202, answer.body
    app_id = str(answer.json()["application_id"])
    await _under_review(gateway, app_id)
    return app_id


async def test_a_certificate_of_an_agency_submitted_case_reaches_the_resident_it_names(
    gateway: RunningGateway,
) -> None:
    key = agency_key(gateway.settings, "gd-hq-csb")
    issued, theirs = {}, {}
    for who in ("zhang-wei", "wong-siu-ming"):
        app_id = await _agency_case(gateway, who)
        jws = sign_certificate(key, _claims(app_id))
        decided = await _decide(
            gateway, app_id, "gd-hq-csb", {"decision": "approved", "certificate": {"jws": jws}}
        )
        assert decided.status == 200, decided.body
        issued[who], theirs[who] = jws, decided.json()["certificate"]["certificate_id"]
    consent = {"purpose": "e_certificate", "categories": ["application"], "destinations": []}

    # zhang-wei's Guangdong login (high) links the document the agency named: his certificate
    # is his, under his consent; the other one is not.
    portal = await SandboxPortal.register(gateway.url)
    zhang = (await portal.login("guangdong", "zhang-wei")).access_token
    status, _, _ = await _call(gateway, "POST", "/v1/me/consents", zhang, consent)
    assert status == 201
    status, listed, _ = await _call(gateway, "GET", "/v1/me/certificates", zhang)
    assert status == 200
    assert [i["certificate_id"] for i in listed["items"]] == [theirs["zhang-wei"]]
    status, fetched, _ = await _call(
        gateway, "GET", f"/v1/me/certificates/{theirs['zhang-wei']}", zhang
    )
    assert (status, fetched["certificate"]) == (200, issued["zhang-wei"])
    status, _, _ = await _call(
        gateway, "GET", f"/v1/me/certificates/{theirs['wong-siu-ming']}", zhang
    )
    assert status == 404

    # wong-siu-ming's HK login is low: his document links no one, nothing is his to fetch.
    wong = (await portal.login("hk", "wong-siu-ming")).access_token
    status, _, _ = await _call(gateway, "POST", "/v1/me/consents", wong, consent)
    assert status == 201
    status, listed, _ = await _call(gateway, "GET", "/v1/me/certificates", wong)
    assert (status, listed["items"]) == (200, [])
    status, _, _ = await _call(
        gateway, "GET", f"/v1/me/certificates/{theirs['wong-siu-ming']}", wong
    )
    assert status == 404
    delivered = [r for r in await _rows(gateway, certificates) if r.delivered_at is not None]
    assert [r.id for r in delivered] == [theirs["zhang-wei"]]
