"""Residents apply themselves, end to end over real HTTP (issue 5's "done when").

A portal registers with the gateway (RFC 7591, sandbox), sends a persona of each jurisdiction
to the gateway's authorization endpoint with ``idp_hint`` and ``login_hint``; the gateway logs
them in at their sandbox identity provider (real OIDC), links the identity and returns tokens;
the portal then submits with the access token. The application carries the canonical identity
from the login, the receipt verifies against the JWKS, the forward names the consent, and a
low-assurance login is refused for a matter that needs substantial, with nothing stored.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import jwt
import pytest

from gateway import cli
from gateway.domain.values import local_date
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.samples import canonical_sample
from gateway.store.tables import outbox
from gateway.trust.receipts import verify_receipt
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.support import CASE_TABLES, row_counts, send

HENGQIN_BUSINESS = "11440400MB2C00081P4440120002000"  # min_assurance: substantial
CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}


async def _call(
    gateway: RunningGateway, method: str, path: str, token: str, body: Any = None, key: str = ""
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, json=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None), dict(response.headers)


def _application(gateway: RunningGateway, persona_id: str) -> dict[str, Any]:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN_BUSINESS, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona(persona_id))
    return {k: v for k, v in sample.items() if k != "applicant"}


async def _jwks(gateway: RunningGateway) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        return await response.json()


@pytest.mark.parametrize(
    ("persona_id", "idp", "documents", "consent"),
    [
        ("chan-tai-man", "hk", ["HKID"], CONSENT),
        ("lei-sio-meng", "macau", ["MO_BIR", "HRP", "RESIDENCE_PERMIT"], CONSENT),
        ("zhang-wei", "guangdong", ["CN_RIC"], None),  # stays in Guangdong: no transfer
    ],
)
async def test_a_persona_of_each_jurisdiction_logs_in_and_applies_with_its_identity(
    gateway: RunningGateway,
    persona_id: str,
    idp: str,
    documents: list[str],
    consent: dict[str, Any] | None,
) -> None:
    portal = await SandboxPortal.register(gateway.url, identity_documents=True)
    tokens = await portal.login(idp, persona_id)

    jwks = await _jwks(gateway)
    id_claims = jwt.decode(
        tokens.id_token,
        _key_for(jwks, tokens.id_token),
        algorithms=["ES256"],
        audience=portal.client_id,
        issuer=gateway.url,
    )
    expected_acr = f"urn:gba:loa:{persona(persona_id).assurance}"
    assert id_claims["acr"] == expected_acr
    assert [d["type"] for d in id_claims["gba_documents"]] == documents

    body: dict[str, Any] = {"application": _application(gateway, persona_id)}
    if consent:
        body["consent"] = consent
    status, answer, headers = await _call(
        gateway, "POST", "/v1/me/applications", tokens.access_token, body, key="e2e-" + persona_id
    )

    assert status == 202, answer
    assert headers["Location"].endswith(f"/v1/me/applications/{answer['application_id']}")
    receipt = verify_receipt(answer["receipt"], jwks)
    assert receipt["sub"] == answer["application_id"]
    status, view, _ = await _call(
        gateway, "GET", f"/v1/me/applications/{answer['application_id']}", tokens.access_token
    )
    assert status == 200
    assert view["timeline"][0]["type"] == "application.received"
    assert view["timeline"][0]["channel"] == "online"
    status, mine, _ = await _call(gateway, "GET", "/v1/me/applications", tokens.access_token)
    assert [a["application_id"] for a in mine["items"]] == [answer["application_id"]]

    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        app = await uow.applications.get(answer["application_id"])
        row = (
            await uow._conn.execute(  # the forward, as the relay signs and sends it
                outbox.select().where(outbox.c.application_id == app.id)  # type: ignore[union-attr]
            )
        ).first()
    assert app is not None
    applicant = app.document["applicant"]
    assert [d["type"] for d in applicant["documents"]] == documents
    assert applicant["birth_date"] == persona(persona_id).birth_date
    assert applicant["names"]["original"] == persona(persona_id).name_original
    forwarded = json.loads(row.body)
    assert forwarded["consent_id"] == app.consent_id
    assert (app.consent_id is not None) == (consent is not None)
    # Handling agencies never see the gateway's internal person id (it would link the
    # resident across agencies); they see that a resident applied.
    assert b"per_" not in row.body
    assert forwarded["submitted_by"] == "resident"
    handler = await send(
        gateway.settings, "GET", f"/v1/applications/{app.id}", agency=app.handlers[0].agency_id
    )
    assert handler.status == 200
    assert b"per_" not in handler.body
    assert handler.json()["timeline"][0]["actor"] == "resident"


def _key_for(jwks: dict[str, Any], token: str) -> Any:
    kid = jwt.get_unverified_header(token)["kid"]
    (match,) = [k for k in jwks["keys"] if k["kid"] == kid]
    return jwt.PyJWK.from_dict(match).key


async def test_a_low_assurance_persona_is_refused_for_a_substantial_matter(
    gateway: RunningGateway,
) -> None:
    portal = await SandboxPortal.register(gateway.url)
    tokens = await portal.login("hk", "wong-siu-ming")
    before = await row_counts(gateway.settings, CASE_TABLES)

    status, problem, _ = await _call(
        gateway,
        "POST",
        "/v1/me/applications",
        tokens.access_token,
        {"application": _application(gateway, "wong-siu-ming"), "consent": CONSENT},
        key="e2e-wong-1",
    )

    assert status == 403
    assert problem["type"].endswith("/problems/insufficient-assurance")
    assert "substantial" in problem["detail"]
    assert await row_counts(gateway.settings, CASE_TABLES) == before
    status, mine, _ = await _call(gateway, "GET", "/v1/me/applications", tokens.access_token)
    assert mine["items"] == []


async def test_the_resident_sees_identity_links_and_consents_and_can_withdraw(
    gateway: RunningGateway,
) -> None:
    portal = await SandboxPortal.register(gateway.url)
    await portal.login("hk", "chan-tai-man")
    tokens = await portal.login("guangdong", "chan-tai-man")  # bound to the HKID

    status, given, _ = await _call(gateway, "POST", "/v1/me/consents", tokens.access_token, CONSENT)
    assert status == 201
    status, me, _ = await _call(gateway, "GET", "/v1/me", tokens.access_token)

    assert status == 200
    assert {(x["type"], x["source"]) for x in me["links"]} == {
        ("HKID", "hk"),
        ("RESIDENCE_PERMIT", "guangdong"),
        ("HRP", "guangdong"),
    }
    assert me["identity"]["gba_idp"] == "guangdong"
    assert [c["consent_id"] for c in me["consents"]] == [given["consent_id"]]
    status, withdrawn, _ = await _call(
        gateway, "POST", f"/v1/me/consents/{given['consent_id']}/withdraw", tokens.access_token
    )
    assert status == 200
    assert withdrawn["withdrawn_at"] is not None


async def test_sandbox_login_prints_a_token_the_applicant_api_accepts(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(
        cli.main, ["sandbox", "login", "lei-sio-meng", "--url", gateway.url]
    )

    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["idp"] == "macau"
    assert printed["id_token_claims"]["acr"] == "urn:gba:loa:substantial"
    status, me, _ = await _call(gateway, "GET", "/v1/me", printed["access_token"])
    assert status == 200
    assert me["identity"]["gba_documents"][0]["type"] == "MO_BIR"


async def test_sandbox_login_refuses_an_unknown_persona(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(cli.main, ["sandbox", "login", "nobody", "--url", gateway.url])

    assert code == 2
    assert "no persona 'nobody'" in capsys.readouterr().err
