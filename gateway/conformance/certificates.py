"""``gba-gateway conformance certificate``: would the gateway accept this partner's
e-certificate (Art. 22)?

A partner that attaches e-certificates to its approvals runs this against one it made, before
it goes live. The checks, each pass / fail / skip with its reason, are the rules the decision
route applies (:mod:`gateway.web.certificate_routes`, :mod:`gateway.trust.e_certificates`):

- ``certificate-key``: the partner has a key that can sign certificates (ES256 or EdDSA; an
  RSA key signs HTTP messages only);
- ``certificate-form``: a compact JWS (``typ`` gba-certificate+jwt), or a document with a
  detached JWS (RFC 7515 appendix F, ``typ`` gba-certificate-signature+jws, ``cty``);
- ``certificate-signature``: the signature verifies with one of the partner's keys;
- ``certificate-issuer``: a JWS names the partner's agency id as ``iss`` (the gateway refuses
  a certificate whose issuer is not the deciding agency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.conformance.credentials import PartnerKeys
from gateway.trust.e_certificates import (
    CertificateRefused,
    agency_jwks,
    verify_document,
    verify_token,
)

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True, slots=True)
class CertificateVerdict:
    id: str
    outcome: str
    reason: str


def judge_certificate(
    content: bytes,
    keys: PartnerKeys,
    agency_id: str,
    *,
    signature: str | None = None,
    media_type: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[CertificateVerdict]:
    """Every check, in order; a check whose premise failed is skipped, not failed again."""
    jwks = agency_jwks(keys.keys.values())
    verdicts = [
        CertificateVerdict("certificate-key", PASS, f"{len(jwks['keys'])} key(s) can sign")
        if jwks["keys"]
        else CertificateVerdict(
            "certificate-key", FAIL, "no ES256 or EdDSA key: RSA keys sign HTTP only"
        )
    ]
    form = _form(content, signature)
    verdicts.append(form)
    if verdicts[0].outcome == FAIL or form.outcome == FAIL:
        why = "no key that can sign" if verdicts[0].outcome == FAIL else "not a certificate"
        verdicts += [
            CertificateVerdict("certificate-signature", SKIP, why),
            CertificateVerdict("certificate-issuer", SKIP, why),
        ]
        return verdicts
    try:
        if signature is not None:
            verified = verify_document(content, signature, jwks, now=now(), media_type=media_type)
        else:
            verified = verify_token(content.decode("ascii").strip(), jwks, now=now())
    except CertificateRefused as refused:
        verdicts.append(
            CertificateVerdict("certificate-signature", FAIL, f"{refused.reason}: {refused}")
        )
        verdicts.append(CertificateVerdict("certificate-issuer", SKIP, "the signature failed"))
        return verdicts
    verdicts.append(
        CertificateVerdict("certificate-signature", PASS, f"verified with {verified.kid}")
    )
    if signature is not None:
        verdicts.append(
            CertificateVerdict("certificate-issuer", SKIP, "a document: the signing key names it")
        )
    elif verified.issuer == agency_id:
        verdicts.append(CertificateVerdict("certificate-issuer", PASS, f"iss {agency_id}"))
    else:
        verdicts.append(
            CertificateVerdict(
                "certificate-issuer", FAIL, f"iss is {verified.issuer!r}, not {agency_id!r}"
            )
        )
    return verdicts


def _form(content: bytes, signature: str | None) -> CertificateVerdict:
    if signature is not None:
        parts = signature.strip().split(".")
        if len(parts) != 3 or parts[1]:
            return CertificateVerdict(
                "certificate-form", FAIL, "the signature is not a JWS with a detached payload"
            )
        return CertificateVerdict("certificate-form", PASS, "a document with a detached JWS")
    try:
        text = content.decode("ascii").strip()
    except UnicodeDecodeError:
        return CertificateVerdict(
            "certificate-form", FAIL, "not a compact JWS (a document needs --signature)"
        )
    if text.count(".") != 2:
        return CertificateVerdict("certificate-form", FAIL, "not a compact JWS (three segments)")
    return CertificateVerdict("certificate-form", PASS, "a compact JWS")
