"""A sandbox identity provider's signing key and the compact JWS it signs ID tokens with.

Keys are generated at start and live only in memory. :func:`sign_compact` also produces the
deliberately broken tokens of the tamper seam: ``alg: none``, HS256 keyed with the public key
PEM (the classic algorithm-confusion attack), a fresh unpublished key with the same kid
(``foreign-key``), a fresh unpublished key under a kid of its own (``unpublished-key``), or
the key the provider used before its last rotation (``previous-key``, see
:meth:`SandboxProvider.rotate_key`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

Signing = Literal[
    "normal", "none", "hs256-public-key", "foreign-key", "unpublished-key", "previous-key"
]
SIGNING_MODES: tuple[str, ...] = (
    "normal",
    "none",
    "hs256-public-key",
    "foreign-key",
    "unpublished-key",
    "previous-key",
)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _generate(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "PS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported ID token algorithm {alg}")


@dataclass(frozen=True)
class ProviderKey:
    """One signing key of one provider: ES256 on P-256 or PS256 on RSA 2048."""

    alg: str
    kid: str
    private: PrivateKey

    @classmethod
    def generate(cls, alg: str, name: str) -> ProviderKey:
        return cls(alg, f"sandbox-{name}-{secrets.token_hex(6)}", _generate(alg))

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        return jwt.get_algorithm_by_name(self.alg).sign(message, self.private)


def sign_compact(
    key: ProviderKey,
    claims: dict[str, Any],
    *,
    signing: str = "normal",
    header_overrides: dict[str, Any] | None = None,
    previous: ProviderKey | None = None,
) -> str:
    """A compact JWS of ``claims``; header ``{"alg", "kid", "typ": "JWT"}`` unless overridden
    (an override of None removes the member)."""
    if signing == "unpublished-key":
        key, signing = ProviderKey.generate(key.alg, "unpublished"), "normal"
    elif signing == "previous-key":
        if previous is None:
            raise ValueError("previous-key signing needs a key rotated out (rotate-key first)")
        key, signing = previous, "normal"
    alg = {"none": "none", "hs256-public-key": "HS256"}.get(signing, key.alg)
    header: dict[str, Any] = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    for name, value in (header_overrides or {}).items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}".encode("ascii")
    if signing == "none":
        signature = b""
    elif signing == "hs256-public-key":
        signature = hmac.new(key.public_pem(), signing_input, hashlib.sha256).digest()
    elif signing == "foreign-key":
        signature = ProviderKey.generate(key.alg, "foreign").sign(signing_input)
    else:
        signature = key.sign(signing_input)
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
