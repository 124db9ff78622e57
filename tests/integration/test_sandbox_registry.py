"""Testers register their own agency in the sandbox and can sign calls at once."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from gateway.sandbox.pki import generate_test_pki, issue_agency_certificate
from gateway.sandbox.samples import legal_basis_headers
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_request
from tests.conftest import RunningGateway
from tests.support import FIXTURES, sample_xml


async def _register(gateway: RunningGateway, body: object) -> tuple[int, dict, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/sandbox/v1/agencies", json=body) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def _submit(gateway: RunningGateway, key: SigningKey, body: bytes | None = None) -> int:
    """Submit a native application: an HK agency sends HK XML, a Macau agency Macau XML."""
    url, body = gateway.url + "/v1/applications", body or sample_xml()
    headers = sign_request(
        method="POST",
        url=url,
        key=key,
        now=datetime.now(UTC),
        body=body,
        content_type="application/xml",
        idempotency_key="tester-submit-1",
        extra_headers=legal_basis_headers(),
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_a_bare_jwk_registration_signs_at_once(gateway: RunningGateway) -> None:
    key = SigningKey("tester-hk-key-1", generate_private_key("ed25519"), "ed25519")
    status, stored, headers = await _register(
        gateway,
        {
            "agency_id": "tester-hk",
            "jurisdiction": "HK",
            "names": {"en": "Tester"},
            "keys": [key.jwk()],
            "matters": ["*"],
        },
    )
    assert status == 201
    assert stored["keys"][0]["kid"] == "tester-hk-key-1"
    assert stored["receives"] == "HK"  # by default, its jurisdiction's own format
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + headers["Location"]) as response,
    ):
        assert response.status == 200
        assert (await response.json())["agency_id"] == "tester-hk"
    assert await _submit(gateway, key) == 202

    again, problem, _ = await _register(
        gateway, {"agency_id": "tester-hk", "jurisdiction": "HK", "keys": [key.jwk()]}
    )
    assert again == 409
    assert problem["type"].endswith("/problems/conflict")


async def test_a_certificate_chained_to_the_sandbox_anchor_is_accepted(
    gateway: RunningGateway,
) -> None:
    pki = generate_test_pki(gateway.settings.sandbox_dir / "pki")
    private = generate_private_key("ecdsa-p256-sha256")
    certificate = issue_agency_certificate(pki, "MO", "tester-mo", private.public_key())
    status, stored, _ = await _register(
        gateway,
        {
            "agency_id": "tester-mo",
            "jurisdiction": "MO",
            "keys": [{"certificate": certificate.decode(), "kid": "tester-mo-x509"}],
            "matters": ["*"],
        },
    )
    assert status == 201, stored
    key = SigningKey("tester-mo-x509", private, "ecdsa-p256-sha256")
    macau = (FIXTURES / "documents" / "macau-individual-business.xml").read_bytes()
    assert await _submit(gateway, key, macau) == 202


@pytest.mark.parametrize(
    ("registration", "pointer", "code"),
    [
        ({"agency_id": "t", "jurisdiction": "HK", "keys": ["abc"]}, "/keys/0", "invalid_key"),
        ({"agency_id": "t", "jurisdiction": "XX", "keys": []}, "/jurisdiction", "wrong_type"),
        ({"agency_id": "Not Valid", "jurisdiction": "HK", "keys": []}, "/agency_id", "wrong_type"),
        (
            {"agency_id": "t", "jurisdiction": "HK", "keys": [], "receives": "PDF"},
            "/receives",
            "unknown_code",
        ),
        (
            {
                "agency_id": "t",
                "jurisdiction": "HK",
                "keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}],
            },
            "/keys/0",
            "invalid_key",
        ),
    ],
)
async def test_bad_registrations_list_their_problems(
    gateway: RunningGateway, registration: dict, pointer: str, code: str
) -> None:
    status, problem, _ = await _register(gateway, registration)
    assert status == 422
    assert (pointer, code) in {(e["pointer"], e["code"]) for e in problem["errors"]}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/sandbox/v1/agencies/{registration['agency_id']}") as response,
    ):
        assert response.status == 404  # nothing stored


async def test_a_certificate_of_another_jurisdiction_is_untrusted(
    gateway: RunningGateway,
) -> None:
    pki = generate_test_pki(gateway.settings.sandbox_dir / "pki")
    private = generate_private_key("ecdsa-p256-sha256")
    certificate = issue_agency_certificate(pki, "GD", "tester-hk", private.public_key())
    status, problem, _ = await _register(
        gateway,
        {
            "agency_id": "tester-hk",
            "jurisdiction": "HK",
            "keys": [{"certificate": certificate.decode(), "kid": "tester-hk-x509"}],
        },
    )
    assert status == 422
    assert problem["errors"][0]["code"] == "untrusted_certificate"


async def test_a_certificate_naming_another_agency_is_untrusted_and_nothing_is_stored(
    gateway: RunningGateway,
) -> None:
    """A chain valid for its jurisdiction does not register a key for any agency but its own."""
    pki = generate_test_pki(gateway.settings.sandbox_dir / "pki")
    private = generate_private_key("ecdsa-p256-sha256")
    victim = issue_agency_certificate(pki, "HK", "hk-ird", private.public_key())
    status, problem, _ = await _register(
        gateway,
        {
            "agency_id": "tester-hk",
            "jurisdiction": "HK",
            "keys": [{"certificate": victim.decode(), "kid": "tester-hk-x509"}],
            "matters": ["*"],
        },
    )
    assert status == 422
    assert problem["errors"][0] == {**problem["errors"][0], "pointer": "/keys/0"}
    assert problem["errors"][0]["code"] == "untrusted_certificate"
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/sandbox/v1/agencies/tester-hk") as response,
    ):
        assert response.status == 404
    key = SigningKey("tester-hk-x509", private, "ecdsa-p256-sha256")
    assert await _submit(gateway, key) == 401
