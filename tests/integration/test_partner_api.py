"""The partner API over real HTTP on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from jwcrypto import jwk, jws

from gateway.trust.httpsig import HttpMessage
from gateway.trust.profile import verify_response
from gateway.trust.receipts import verify_receipt
from tests.conftest import RunningGateway
from tests.support import FIXTURES, row_counts, sample_xml, send

XML = "application/xml"
JSON = "application/json"
MATTER = "11440400MB2C00081P4440120002000"


async def _jwks(gateway: RunningGateway) -> dict:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        return await response.json()


async def test_hk_xml_submission_is_stored_and_answered_with_a_verifiable_receipt(
    gateway: RunningGateway,
) -> None:
    answer = await send(
        gateway.settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML
    )

    assert answer.status == 202
    body = answer.json()
    assert body["status"] == "accepted"
    assert answer.headers["Location"] == f"{gateway.url}/v1/applications/{body['application_id']}"
    jwks = await _jwks(gateway)
    claims = verify_receipt(body["receipt"], jwks)
    assert claims["sub"] == body["application_id"]
    assert claims["matter"] == MATTER
    assert claims["status"] == "accepted"
    assert claims["missing"] == []
    assert claims["content_digest"].startswith("sha-256=:")
    # An independent JOSE implementation agrees.
    token = jws.JWS()
    token.deserialize(body["receipt"])
    header = token.jose_header
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    token.verify(jwk.JWK(**key), alg="ES256")
    assert json.loads(token.payload)["jti"] == claims["jti"]
    assert header["typ"] == "gba-receipt+jwt"


async def test_every_answer_to_a_partner_is_signed_and_bound_to_the_request(
    gateway: RunningGateway,
) -> None:
    from datetime import UTC, datetime

    from gateway.trust.keys import VerificationKey, alg_for_public_key, public_key_from_jwk
    from gateway.trust.profile import sign_request
    from tests.support import agency_key

    jwks = await _jwks(gateway)

    def resolve(kid: str) -> VerificationKey:
        spec = next(k for k in jwks["keys"] if k["kid"] == kid)
        public = public_key_from_jwk(spec)
        return VerificationKey(kid, "gateway", public, alg_for_public_key(public))

    url = gateway.url + "/v1/applications/app_doesnotexist"
    headers = sign_request(
        method="GET", url=url, key=agency_key(gateway.settings, "hk-ird"), now=datetime.now(UTC)
    )
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        raw = await response.read()
        message = HttpMessage.response(response.status, list(response.headers.items()))
    assert message.status == 404
    assert message.header("content-type") == "application/problem+json"
    verified = verify_response(
        message,
        raw,
        request=HttpMessage.request("GET", url, headers),
        resolve_key=resolve,
        now=datetime.now(UTC),
    )
    assert verified.keyid.startswith("sandbox-gw-http-")


async def test_canonical_json_submission_with_missing_material_awaits_supplement(
    gateway: RunningGateway,
) -> None:
    document = json.loads(
        (FIXTURES / "documents" / "hk-individual-business.canonical.json").read_text("utf-8")
    )
    document["commitments"] = []  # the premises proof is neither given nor committed to
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document).encode(),
        content_type=JSON,
    )

    assert answer.status == 202, answer.body
    assert answer.json()["status"] == "awaiting_supplement"
    claims = verify_receipt(answer.json()["receipt"], await _jwks(gateway))
    assert claims["missing"] == ["PREMISES_PROOF"]
    assert claims["deadline"] is None
    counts = await row_counts(gateway.settings)
    assert counts["applications"] == 1
    assert counts["outbox"] == 0  # nothing is forwarded before the application is complete


async def test_same_idempotency_key_and_body_returns_the_same_result(
    gateway: RunningGateway,
) -> None:
    body = sample_xml()
    first = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=body,
        content_type=XML,
        idempotency_key="same-key-0001",
    )
    again = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=body,
        content_type=XML,
        idempotency_key="same-key-0001",
    )
    other = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=body.replace("大文茶餐廳".encode(), "大文冰室".encode()),
        content_type=XML,
        idempotency_key="same-key-0001",
    )

    assert first.status == again.status == 202
    assert again.json() == first.json()
    assert other.status == 422
    assert other.json()["type"].endswith("/problems/idempotency-conflict")
    assert (await row_counts(gateway.settings))["applications"] == 1


async def test_concurrent_retries_with_one_key_store_one_application(
    gateway: RunningGateway,
) -> None:
    body = sample_xml()
    answers = await asyncio.gather(
        *(
            send(
                gateway.settings,
                "POST",
                "/v1/applications",
                body=body,
                content_type=XML,
                idempotency_key="racing-key-0001",
            )
            for _ in range(4)
        )
    )

    assert {a.status for a in answers} == {202}
    assert len({a.json()["application_id"] for a in answers}) == 1
    assert (await row_counts(gateway.settings))["applications"] == 1


async def test_a_case_is_visible_to_its_parties_only(gateway: RunningGateway) -> None:
    created = await send(
        gateway.settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML
    )
    path = f"/v1/applications/{created.json()['application_id']}"

    own = await send(gateway.settings, "GET", path, agency="hk-ird")
    handler = await send(gateway.settings, "GET", path, agency="gd-hq-csb")
    stranger = await send(gateway.settings, "GET", path, agency="mo-dsf")

    assert own.status == handler.status == 200
    assert own.json()["timeline"][0]["type"] == "application.received"
    assert stranger.status == 404
    work = await send(gateway.settings, "GET", "/v1/applications", agency="gd-hq-csb")
    assert [i["application_id"] for i in work.json()["items"]] == [created.json()["application_id"]]
    assert (await send(gateway.settings, "GET", "/v1/applications", agency="mo-dsf")).json()[
        "items"
    ] == []


async def _accepted_and_delivered(gateway: RunningGateway) -> str:
    """A case the GD sandbox agency holds; its automatic decision is switched off."""
    from gateway.sandbox.routes import PARTNERS

    partners = gateway.app[PARTNERS]  # type: ignore[index]
    partners.auto_decide = False
    created = await send(
        gateway.settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML
    )
    application_id = created.json()["application_id"]
    for _ in range(100):
        view = await send(gateway.settings, "GET", f"/v1/applications/{application_id}")
        if view.json()["status"] == "under_review":
            return application_id
        await asyncio.sleep(0.05)
    raise AssertionError("the case never reached under_review")


async def test_a_rejection_needs_reasons_and_only_handlers_decide(
    gateway: RunningGateway,
) -> None:
    application_id = await _accepted_and_delivered(gateway)
    path = f"/v1/applications/{application_id}/decisions"

    no_reasons = await send(
        gateway.settings,
        "POST",
        path,
        agency="gd-hq-csb",
        body=b'{"decision": "rejected"}',
        content_type=JSON,
    )
    assert no_reasons.status == 422
    assert [e["pointer"] for e in no_reasons.json()["errors"]] == ["/reasons"]

    by_submitter = await send(
        gateway.settings,
        "POST",
        path,
        agency="hk-ird",
        body=b'{"decision": "approved"}',
        content_type=JSON,
    )
    assert by_submitter.status == 403

    rejected = await send(
        gateway.settings,
        "POST",
        path,
        agency="gd-hq-csb",
        body='{"decision": "rejected", "reasons": ["經營範圍不符"]}'.encode(),
        content_type=JSON,
    )
    assert rejected.status == 200
    assert rejected.json()["status"] == "rejected"

    again = await send(
        gateway.settings,
        "POST",
        path,
        agency="gd-hq-csb",
        body=b'{"decision": "approved"}',
        content_type=JSON,
    )
    assert again.status == 409
    assert again.json()["type"].endswith("/problems/illegal-transition")
    view = (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()
    assert view["handlers"][0]["reasons"] == ["經營範圍不符"]
    rejection, voucher = view["timeline"][-2:]
    assert rejection["type"] == "application.rejected"
    assert rejection["reasons"] == {"gd-hq-csb": ["經營範圍不符"]}
    # Art. 21: the routes of redress of the refusing agency's jurisdiction, with last days
    routes = [r["route"] for r in rejection["appeal"]["GD"]]
    assert routes == ["complaint", "administrative_review", "litigation"]
    assert rejection["appeal"]["GD"][1]["last_day"] is not None
    assert (voucher["type"], voucher["kind"]) == ("voucher.issued", "decision")
