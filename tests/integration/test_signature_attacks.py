"""Attacks on the partner API's signatures (identity_security.md §3.4, §3.6).

Each test sends the attack over real HTTP and asserts two things: the refusal is the right
problem, and nothing was stored — no application, timeline event, outbox row, idempotency
key, and no nonce either (a refused signature consumes nothing).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.domain.errors import SignatureInvalidError
from gateway.sandbox.samples import legal_basis_headers
from gateway.store.tables import nonces
from gateway.trust.digest import content_digest
from gateway.trust.httpsig import HttpMessage, SignatureParams, components, sign
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.web.keys import STORE
from tests.conftest import RunningGateway
from tests.support import agency_key, row_counts, sample_xml

XML = "application/xml"
PATH = "/v1/applications"


async def _nonce_count(gateway: RunningGateway) -> int:
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        conn = uow.applications._conn  # the same transaction's connection
        return (await conn.execute(sa.select(sa.func.count()).select_from(nonces))).scalar_one()


async def _nothing_stored(gateway: RunningGateway) -> None:
    assert await row_counts(gateway.settings) == {
        "applications": 0,
        "timeline_events": 0,
        "outbox": 0,
        "idempotency_keys": 0,
    }
    assert await _nonce_count(gateway) == 0


def _headers(
    url: str,
    body: bytes,
    key: SigningKey,
    *,
    covered: tuple[str, ...] = (
        "@method",
        "@target-uri",
        "content-digest",
        "content-type",
        "idempotency-key",
        "gba-legal-basis",
    ),
    created: datetime | None = None,
    expires: datetime | None = None,
    nonce: str | None = "fresh",
    alg: str | None = None,
    tag: str | None = "gba-gateway",
    label: str = "sig1",
    digest_body: bytes | None = None,
) -> dict[str, str]:
    headers = {
        "Content-Type": XML,
        "Content-Digest": content_digest(body if digest_body is None else digest_body),
        "Idempotency-Key": "attack-" + secrets.token_hex(6),
        **legal_basis_headers(),  # an agency's submission declares its basis
    }
    params = SignatureParams(
        components=components(*covered),
        created=int((created or datetime.now(UTC)).timestamp()),
        keyid=key.kid,
        nonce=secrets.token_urlsafe(12) if nonce == "fresh" else nonce,
        expires=int(expires.timestamp()) if expires else None,
        alg=alg,
        tag=tag,
    )
    headers.update(sign(HttpMessage.request("POST", url, headers), key, params, label=label))
    return headers


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, json.loads(await response.read())


def _expect(status: int, problem: dict, code: int, slug: str) -> None:
    assert status == code, problem
    assert problem["type"].endswith(f"/problems/{slug}"), problem


Mutation = Callable[[str, bytes, SigningKey], tuple[str, bytes, dict[str, str]]]


def _tampered_body(url: str, body: bytes, key: SigningKey) -> tuple[str, bytes, dict[str, str]]:
    headers = _headers(url, body, key)
    return url, body.replace(b"CHAN", b"CHEN"), headers


def _digest_not_covered(url: str, body: bytes, key: SigningKey):
    headers = _headers(url, body, key, covered=("@method", "@target-uri", "content-type"))
    return url, body, headers


def _other_target(url: str, body: bytes, key: SigningKey):
    headers = _headers(url.replace("/v1/applications", "/v1/applications?x=1"), body, key)
    return url, body, headers


def _other_query(url: str, body: bytes, key: SigningKey):
    headers = _headers(url, body, key)
    return url + "?matter=other", body, headers


def _other_authority(url: str, body: bytes, key: SigningKey):
    headers = _headers(url.replace("127.0.0.1", "partner.example"), body, key)
    return url, body, headers


def _stale(url: str, body: bytes, key: SigningKey):
    return url, body, _headers(url, body, key, created=datetime.now(UTC) - timedelta(minutes=10))


def _future(url: str, body: bytes, key: SigningKey):
    return url, body, _headers(url, body, key, created=datetime.now(UTC) + timedelta(minutes=10))


def _expired(url: str, body: bytes, key: SigningKey):
    now = datetime.now(UTC)
    headers = _headers(
        url, body, key, created=now - timedelta(seconds=60), expires=now - timedelta(seconds=1)
    )
    return url, body, headers


def _no_nonce(url: str, body: bytes, key: SigningKey):
    return url, body, _headers(url, body, key, nonce=None)


def _wrong_tag(url: str, body: bytes, key: SigningKey):
    return url, body, _headers(url, body, key, tag="other-profile")


def _other_label(url: str, body: bytes, key: SigningKey):
    return url, body, _headers(url, body, key, label="sig2")


def _no_signature(url: str, body: bytes, key: SigningKey):
    headers = _headers(url, body, key)
    del headers["Signature"], headers["Signature-Input"]
    return url, body, headers


def _digest_of_other_body(url: str, body: bytes, key: SigningKey):
    return url, body, _headers(url, body, key, digest_body=b"<other/>")


def _long_nonce(url: str, body: bytes, key: SigningKey):
    """Longer than the nonce store's column: PostgreSQL used to answer 500."""
    return url, body, _headers(url, body, key, nonce="n" * 201)


def _long_tag(url: str, body: bytes, key: SigningKey):
    return url, body, _headers(url, body, key, tag="gba-gateway" + "x" * 200)


ATTACKS: list[tuple[str, Mutation, int, str]] = [
    ("tampered body, old digest", _tampered_body, 400, "digest-mismatch"),
    ("digest dropped from covered components", _digest_not_covered, 401, "signature-invalid"),
    ("signed for another target URI", _other_target, 401, "signature-invalid"),
    ("query added after signing", _other_query, 401, "signature-invalid"),
    ("signed for another authority", _other_authority, 401, "signature-invalid"),
    ("stale created", _stale, 401, "signature-invalid"),
    ("created in the future", _future, 401, "signature-invalid"),
    ("expired", _expired, 401, "signature-invalid"),
    ("no nonce", _no_nonce, 401, "signature-invalid"),
    ("wrong tag", _wrong_tag, 401, "signature-invalid"),
    ("signature under another label", _other_label, 401, "signature-missing"),
    ("no signature", _no_signature, 401, "signature-missing"),
    ("digest of another body, signed", _digest_of_other_body, 400, "digest-mismatch"),
    ("nonce of 201 characters", _long_nonce, 401, "signature-invalid"),
    ("tag of 211 characters", _long_tag, 401, "signature-invalid"),
]


@pytest.mark.parametrize(("name", "attack", "status", "slug"), ATTACKS, ids=[a[0] for a in ATTACKS])
async def test_signature_attacks_are_refused_and_store_nothing(
    gateway: RunningGateway, name: str, attack: Mutation, status: int, slug: str
) -> None:
    url, body, headers = attack(
        gateway.url + PATH, sample_xml(), agency_key(gateway.settings, "hk-ird")
    )
    answer_status, problem = await _post(url, body, headers)
    _expect(answer_status, problem, status, slug)
    await _nothing_stored(gateway)


UNAUTHENTICATED = ["no signature", "stale created", "wrong tag", "tampered body, old digest"]


@pytest.mark.parametrize("name", UNAUTHENTICATED)
async def test_the_refusal_of_an_unauthenticated_request_is_not_signed(
    gateway: RunningGateway, name: str
) -> None:
    """Signing it would bind nothing and hand out signatures for free (issue 13, item 8)."""
    attack = next(a for a in ATTACKS if a[0] == name)[1]
    url, body, headers = attack(
        gateway.url + PATH, sample_xml(), agency_key(gateway.settings, "hk-ird")
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        assert response.status in (400, 401)
        assert "Signature" not in response.headers
        assert "Signature-Input" not in response.headers
    await _nothing_stored(gateway)


async def test_the_answer_to_a_signed_request_is_bound_to_its_signature(
    gateway: RunningGateway,
) -> None:
    """It verifies with the request it answers, not with another request to the same URL."""
    from gateway.trust.profile import verify_response
    from gateway.web.keys import KEYRING

    key = agency_key(gateway.settings, "hk-ird")
    url, body = gateway.url + PATH, sample_xml()
    headers, other = _headers(url, body, key), _headers(url, body, key)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        answer = await response.read()
        message = HttpMessage.response(response.status, list(response.headers.items()))
    assert response.status == 202
    assert '"signature";req;key="sig1"' in (message.header("signature-input") or "")
    ring = gateway.app[KEYRING]  # type: ignore[index]
    verify = {"resolve_key": ring.resolve, "now": datetime.now(UTC)}
    request = HttpMessage.request("POST", url, headers)
    assert verify_response(message, answer, request=request, **verify).keyid
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        verify_response(message, answer, request=HttpMessage.request("POST", url, other), **verify)


async def test_a_replayed_nonce_is_refused(gateway: RunningGateway) -> None:
    url, body = gateway.url + PATH, sample_xml()
    headers = _headers(url, body, agency_key(gateway.settings, "hk-ird"))
    first, _ = await _post(url, body, headers)
    again, problem = await _post(url, body, headers)
    assert first == 202
    _expect(again, problem, 401, "replayed-request")
    assert (await row_counts(gateway.settings))["applications"] == 1


async def test_an_unknown_key_is_refused(gateway: RunningGateway) -> None:
    stranger = SigningKey("sandbox-stranger-1", generate_private_key("ed25519"), "ed25519")
    url, body = gateway.url + PATH, sample_xml()
    status, problem = await _post(url, body, _headers(url, body, stranger))
    _expect(status, problem, 401, "unknown-key")
    await _nothing_stored(gateway)


async def test_an_attacker_key_under_a_registered_kid_is_refused(gateway: RunningGateway) -> None:
    real = agency_key(gateway.settings, "hk-ird")
    forged = SigningKey(real.kid, generate_private_key(real.alg), real.alg)
    url, body = gateway.url + PATH, sample_xml()
    status, problem = await _post(url, body, _headers(url, body, forged))
    _expect(status, problem, 401, "signature-invalid")
    await _nothing_stored(gateway)


@pytest.mark.parametrize("claimed", ["ecdsa-p256-sha256", "hmac-sha256"])
async def test_an_alg_that_does_not_match_the_key_is_refused(
    gateway: RunningGateway, claimed: str
) -> None:
    key = agency_key(gateway.settings, "hk-ird")  # an Ed25519 key
    url, body = gateway.url + PATH, sample_xml()
    headers = _headers(url, body, key)
    headers["Signature-Input"] = headers["Signature-Input"].replace(
        'tag="gba-gateway"', f'tag="gba-gateway";alg="{claimed}"'
    )
    status, problem = await _post(url, body, headers)
    _expect(status, problem, 401, "signature-invalid")
    await _nothing_stored(gateway)


async def _register(gateway: RunningGateway, key: SigningKey, **key_fields: str) -> None:
    registration = {
        "agency_id": "tester-hk",
        "jurisdiction": "HK",
        "names": {"en": "Tester"},
        "keys": [{"jwk": key.jwk(), "kid": key.kid, **key_fields}],
        "matters": ["*"],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/sandbox/v1/agencies", json=registration) as response,
    ):
        assert response.status == 201, await response.text()


async def test_a_revoked_key_is_refused_at_once(gateway: RunningGateway) -> None:
    key = SigningKey("tester-hk-1", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
    await _register(gateway, key)
    url, body = gateway.url + PATH, sample_xml()
    status, _ = await _post(url, body, _headers(url, body, key))
    assert status == 202
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        assert await uow.agencies.revoke(key.kid, datetime.now(UTC) - timedelta(seconds=1))
        await uow.commit()
    status, problem = await _post(url, body, _headers(url, body, key))
    _expect(status, problem, 401, "unknown-key")
    assert (await row_counts(gateway.settings))["applications"] == 1


async def test_a_key_not_yet_valid_is_refused(gateway: RunningGateway) -> None:
    key = SigningKey("tester-hk-2", generate_private_key("ed25519"), "ed25519")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    await _register(gateway, key, not_before=later)
    url, body = gateway.url + PATH, sample_xml()
    status, problem = await _post(url, body, _headers(url, body, key))
    _expect(status, problem, 401, "unknown-key")
    await _nothing_stored(gateway)


@pytest.mark.parametrize(
    "kid",
    ["../../../etc/passwd", "sandbox-hk-ird-1' OR '1'='1", "*)(uid=*))(|(uid=*", "x" * 500],
)
async def test_a_keyid_is_only_ever_an_exact_lookup(gateway: RunningGateway, kid: str) -> None:
    key = agency_key(gateway.settings, "hk-ird")
    impostor = SigningKey(kid, key.private_key, key.alg)
    url, body = gateway.url + PATH, sample_xml()
    status, problem = await _post(url, body, _headers(url, body, impostor))
    _expect(status, problem, 401, "unknown-key")
    await _nothing_stored(gateway)
