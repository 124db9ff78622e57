"""E-certificates signed by agencies: made (sandbox, tests, the conformance kit) and verified
(the decision route, ``gba-gateway certificates verify``) through the one strict JWS verifier.

Two forms (see :mod:`gateway.domain.certificates`):

- a compact JWS, header ``{"alg", "kid", "typ": "gba-certificate+jwt"}``, claims at least
  ``iss`` (the agency id), ``iat`` and ``jti``;
- a document with a detached JWS (RFC 7515 appendix F), header ``{"alg", "kid", "typ":
  "gba-certificate-signature+jws", "cty": <the document's media type>}``, empty payload
  segment; the signature covers the document's bytes.

Keys are the agency's registered keys as a JWKS (:func:`agency_jwks`): ES256 (P-256) and
EdDSA (Ed25519) keys sign certificates; an RSA key of an agency signs HTTP messages only.
A refusal is :class:`CertificateRefused` with the JWS refusal's reason code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.trust.jws import JwsPolicy, JwsRefused, sign, unverified, verify
from gateway.trust.jws_codec import b64encode, compact
from gateway.trust.keys import KeyMisuseError, SigningKey, VerificationKey, public_jwk

CERTIFICATE_TYP = "gba-certificate+jwt"
SIGNATURE_TYP = "gba-certificate-signature+jws"
MAX_DOCUMENT = 2 * 1024 * 1024  # bytes of a signed document carried in a decision

_TOKEN = JwsPolicy(
    name="e-certificate",
    typs=frozenset({CERTIFICATE_TYP}),
    algs=frozenset({"ES256", "EdDSA"}),
    required_claims=("iss", "iat", "jti"),
    leeway=300,
    max_token=64 * 1024,
)
_DETACHED = JwsPolicy(
    name="e-certificate signature",
    typs=frozenset({SIGNATURE_TYP}),
    algs=frozenset({"ES256", "EdDSA"}),
    extra_header=frozenset({"cty"}),
)


class CertificateRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedCertificate:
    kid: str
    issuer: str | None  # the ``iss`` claim (jws form); the key's owner otherwise
    subject: str | None  # the ``sub`` claim, when the token names one
    digest: str  # SHA-256 hex of what was signed: the JWS or the document
    claims: dict[str, Any]


def agency_jwks(keys: Iterable[VerificationKey]) -> dict[str, Any]:
    """A JWKS of the registered keys that may sign certificates (RSA keys left out)."""
    out = []
    for key in keys:
        try:
            jwk = public_jwk(key.public_key, kid=key.kid)
        except KeyMisuseError:
            continue
        if jwk.get("alg") in ("ES256", "EdDSA"):
            out.append(jwk)
    return {"keys": out}


def key_id(token_or_signature: str) -> str:
    """The ``kid`` a certificate or a detached signature names (NOT verified: only to pick
    the registered key to verify with)."""
    try:
        text = token_or_signature
        if text.count(".") == 2 and text.split(".")[1] == "":  # detached: fill a dummy payload
            head, _, tail = text.split(".")
            text = f"{head}.e30.{tail}"
        kid = unverified(text, max_token=_TOKEN.max_token).header.get("kid")
    except JwsRefused as refused:
        raise CertificateRefused(refused.reason, str(refused)) from None
    if not isinstance(kid, str) or not kid:
        raise CertificateRefused("unknown-kid", "the certificate names no key (kid)")
    return kid


def verify_token(token: str, jwks: Mapping[str, Any], *, now: datetime) -> VerifiedCertificate:
    try:
        verified = verify(token, jwks, _TOKEN, now=now)
    except JwsRefused as refused:
        raise CertificateRefused(refused.reason, str(refused)) from None
    claims = verified.claims
    sub = claims.get("sub")
    return VerifiedCertificate(
        kid=verified.header["kid"],
        issuer=claims.get("iss"),
        subject=sub if isinstance(sub, str) else None,
        digest=hashlib.sha256(token.encode("ascii")).hexdigest(),
        claims=claims,
    )


def verify_document(
    document: bytes,
    signature: str,
    jwks: Mapping[str, Any],
    *,
    now: datetime,
    media_type: str | None = None,
) -> VerifiedCertificate:
    """A document's detached signature; ``media_type``, when given, must be the signed
    ``cty`` (so a signed PDF is not passed off as another type)."""
    try:
        verified = verify(signature, jwks, _DETACHED, now=now, detached=document)
    except JwsRefused as refused:
        raise CertificateRefused(refused.reason, str(refused)) from None
    if media_type is not None and verified.header.get("cty") != media_type:
        raise CertificateRefused("cty", "the signed media type (cty) is not the document's")
    return VerifiedCertificate(
        kid=verified.header["kid"],
        issuer=None,
        subject=None,
        digest=hashlib.sha256(document).hexdigest(),
        claims={},
    )


def sign_certificate(key: SigningKey, claims: Mapping[str, Any]) -> str:
    """A certificate in the jws form (sandbox agencies, tests, the conformance kit)."""
    return sign(key, claims, typ=CERTIFICATE_TYP)


def sign_document(key: SigningKey, document: bytes, media_type: str) -> str:
    """A detached signature over ``document`` (RFC 7515 appendix F): ``header..signature``."""
    alg = {"ecdsa-p256-sha256": "ES256", "ed25519": "EdDSA"}.get(key.alg)
    if alg is None:
        raise KeyMisuseError(f"certificates are signed with ES256 or EdDSA keys, not {key.alg}")
    header = b64encode(
        compact({"alg": alg, "kid": key.kid, "typ": SIGNATURE_TYP, "cty": media_type})
    )
    signature = key.sign(f"{header}.{b64encode(document)}".encode("ascii"))
    return f"{header}..{b64encode(signature)}"


def decode_document(text: object) -> bytes:
    """The bytes of a base64 (standard or url-safe, padded or not) document; ValueError."""
    if not isinstance(text, str) or not text:
        raise ValueError("not a base64 text")
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        data = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except binascii.Error:
        raise ValueError("not a base64 text") from None
    if not data or len(data) > MAX_DOCUMENT:
        raise ValueError("empty or too large")
    return data
