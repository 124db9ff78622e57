"""Receipts and vouchers (Art. 19(4)): compact JWS, verifiable offline against the JWKS.

Header ``{"alg": "ES256" | "EdDSA", "kid", "typ": "gba-receipt+jwt"}``; claims as in
DESIGN.md. Verification takes the algorithm from the key (the JWK in the published set whose
``kid`` matches exactly), never from the token header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from gateway.domain.errors import SignatureInvalidError
from gateway.trust.keys import SigningKey

RECEIPT_TYP = "gba-receipt+jwt"
_JWS_ALG = {"ecdsa-p256-sha256": "ES256", "ed25519": "EdDSA"}
_MAX_TOKEN = 16 * 1024


class JwsReceiptIssuer:
    """:class:`~gateway.services.ports.ReceiptIssuer` with the gateway's seal key."""

    def __init__(self, key: SigningKey) -> None:
        if key.alg not in _JWS_ALG:
            raise ValueError(f"a seal key must be ES256 or EdDSA, not {key.alg}")
        self._key = key
        self._alg = _JWS_ALG[key.alg]

    def issue(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims),
            self._key.private_key,
            algorithm=self._alg,
            headers={"kid": self._key.kid, "typ": RECEIPT_TYP},
        )


def verify_receipt(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The claims of a receipt that verifies against ``jwks``; SignatureInvalidError if not."""
    if len(token) > _MAX_TOKEN:
        raise SignatureInvalidError("the receipt is too large")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SignatureInvalidError("the receipt is not a compact JWS") from None
    if header.get("typ") != RECEIPT_TYP:
        raise SignatureInvalidError("the token is not a receipt")
    if set(header) - {"alg", "kid", "typ"}:
        raise SignatureInvalidError("the receipt header carries unexpected parameters")
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if jwk is None or jwk.get("alg") not in ("ES256", "EdDSA"):
        raise SignatureInvalidError("the receipt's key is not in the key set")
    algorithm = ECAlgorithm(ECAlgorithm.SHA256) if jwk["alg"] == "ES256" else OKPAlgorithm()
    try:
        key = algorithm.from_jwk(jwk)
        return jwt.decode(
            token,
            key,
            algorithms=[jwk["alg"]],
            options={"require": ["iss", "sub", "iat", "jti"], "verify_aud": False},
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise SignatureInvalidError("the receipt signature does not verify") from exc
