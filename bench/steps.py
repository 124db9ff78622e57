"""Micro-benchmarks of the accept path's steps, each against a baseline run alongside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

import adapters.hk
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import hk_individual_business
from gateway.settings import REPO_ROOT
from gateway.trust.digest import content_digest
from gateway.trust.httpsig import HttpMessage
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_request, sign_response, verify_request
from gateway.trust.receipts import JwsReceiptIssuer

BUDGET = 1.5  # seconds per measurement


def rate(fn: Callable[[], object], budget: float = BUDGET) -> float:
    """Operations per second of ``fn``, best of three rounds within the budget."""
    best = 0.0
    for _ in range(3):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < budget / 3:
            for _ in range(20):
                fn()
            count += 20
        best = max(best, count / elapsed)
    return best


def translation() -> dict[str, float]:
    document = hk_individual_business(persona("chan-tai-man"))
    codec = adapters.hk.codec(REPO_ROOT / "mappings")
    schema = etree.XMLSchema(etree.parse(str(REPO_ROOT / "mappings/schemas/hk-application.xsd")))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

    def baseline() -> None:
        schema.assertValid(etree.fromstring(document, parser))

    base = rate(baseline)
    ours = rate(lambda: codec.decode(document))
    return {
        "translate_hk_to_canonical_per_s": ours,
        "baseline_parse_validate_per_s": base,
        "ratio": ours / base,
    }


def trust() -> dict[str, float]:
    key = SigningKey("bench", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
    body = hk_individual_business(persona("chan-tai-man"))
    url = "http://127.0.0.1:8080/v1/applications"
    headers = sign_request(
        method="POST",
        url=url,
        key=key,
        now=datetime.now(UTC),
        body=body,
        content_type="application/xml",
        idempotency_key="bench-key-1",
    )
    message = HttpMessage.request("POST", url, headers)
    now = datetime.now(UTC)
    public = key.private_key.public_key()
    signature = key.private_key.sign(body, ec.ECDSA(hashes.SHA256()))
    assert isinstance(public, ec.EllipticCurvePublicKey)

    def baseline() -> None:
        public.verify(signature, body, ec.ECDSA(hashes.SHA256()))

    seal = JwsReceiptIssuer(
        SigningKey("seal", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
    )
    answer = b'{"application_id": "app_01", "status": "accepted", "receipt": "..."}'

    def trust_layer() -> None:
        """What the gateway's trust layer does per signed submission."""
        verify_request(message, body, resolve_key=lambda _: key.public, now=now)
        seal.issue(
            {
                "iss": "gw",
                "sub": "app_01",
                "iat": 0,
                "jti": "rcp_01",
                "content_digest": content_digest(body),
            }
        )
        sign_response(
            status=202,
            body=answer,
            content_type="application/json",
            request=message,
            key=key,
            now=now,
        )

    base = rate(baseline)
    verify = rate(lambda: verify_request(message, body, resolve_key=lambda _: key.public, now=now))
    layer = rate(trust_layer)
    return {
        "trust_layer_per_s": layer,
        "baseline_two_p256_verifies_per_s": base / 2,
        "ratio": layer / (base / 2),
        "verify_request_per_s": verify,
        "verify_cost_in_p256_verifies": base / verify,
    }
