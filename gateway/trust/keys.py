"""Keys and the signature algorithms the gateway allows.

A key's algorithm is part of its metadata, never taken from a message. The allow-list is
the one of DESIGN.md: ``ed25519``, ``ecdsa-p256-sha256`` and ``rsa-pss-sha512`` for HTTP
message signatures (RFC 9421 names), and ``ES256`` / ``EdDSA`` for JWS. HMAC is not an
algorithm here at all, so no key can ever verify as a shared secret.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

HttpSigAlg = Literal["ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512"]
HTTP_SIG_ALGS: frozenset[str] = frozenset({"ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512"})

PURPOSE_MEMBER = "gba_use"  # a private JWK member: what the gateway uses a key for
SEAL = "seal"  # receipts, vouchers, checkpoints
HTTP = "http"  # RFC 9421 message signatures

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class KeyMisuseError(ValueError):
    """A key cannot be used for the requested algorithm."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def alg_for_public_key(public_key: PublicKey) -> str:
    """The one HTTP signature algorithm a public key may be used with."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return "ecdsa-p256-sha256"
        raise KeyMisuseError(f"EC curve {public_key.curve.name} is not allowed")
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise KeyMisuseError("RSA keys shorter than 2048 bits are not allowed")
        return "rsa-pss-sha512"
    raise KeyMisuseError(f"{type(public_key).__name__} is not an allowed key type")


def _check_alg(alg: str, key: PublicKey) -> None:
    if alg not in HTTP_SIG_ALGS:
        raise KeyMisuseError(f"algorithm {alg!r} is not allowed")
    if alg_for_public_key(key) != alg:
        raise KeyMisuseError(f"algorithm {alg!r} does not match the key type")


def sign_bytes(alg: str, private_key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data`` with the RFC 9421 algorithm ``alg`` (ECDSA output is raw r||s)."""
    _check_alg(alg, private_key.public_key())
    if alg == "ed25519":
        assert isinstance(private_key, ed25519.Ed25519PrivateKey)
        return private_key.sign(data)
    if alg == "ecdsa-p256-sha256":
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert isinstance(private_key, rsa.RSAPrivateKey)
    return private_key.sign(
        data, padding.PSS(padding.MGF1(hashes.SHA512()), salt_length=64), hashes.SHA512()
    )


def verify_bytes(alg: str, public_key: PublicKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies; False on any mismatch."""
    try:
        _check_alg(alg, public_key)
    except KeyMisuseError:
        return False
    try:
        if alg == "ed25519":
            assert isinstance(public_key, ed25519.Ed25519PublicKey)
            public_key.verify(signature, data)
        elif alg == "ecdsa-p256-sha256":
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            if len(signature) != 64:
                return False
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
                return False  # psychic-signature defence: r, s in [1, n-1]
            public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(
                signature,
                data,
                padding.PSS(padding.MGF1(hashes.SHA512()), salt_length=64),
                hashes.SHA512(),
            )
    except InvalidSignature:
        return False
    return True


def public_jwk(public_key: PublicKey, *, kid: str, use: str = "sig") -> dict[str, str]:
    """The RFC 7517 JWK of a public key, with ``kid``, ``use`` and its JWS ``alg``."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(raw),
            "kid": kid,
            "use": use,
            "alg": "EdDSA",
        }
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        alg_for_public_key(public_key)
        numbers = public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
            "kid": kid,
            "use": use,
            "alg": "ES256",
        }
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {
            "kty": "RSA",
            "n": _b64url(n),
            "e": _b64url(e),
            "kid": kid,
            "use": use,
            "alg": "PS512",
        }
    raise KeyMisuseError(f"{type(public_key).__name__} is not an allowed key type")


def public_key_from_jwk(jwk: dict[str, object]) -> PublicKey:
    """Load a public JWK; private members (``d``, ``p`` ...) and symmetric keys are refused."""
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise KeyMisuseError("a JWK with private or symmetric members is not a public key")
    kty = jwk.get("kty")
    try:
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(_b64url_decode(str(jwk["x"])))
        if kty == "EC" and jwk.get("crv") == "P-256":
            x = int.from_bytes(_b64url_decode(str(jwk["x"])), "big")
            y = int.from_bytes(_b64url_decode(str(jwk["y"])), "big")
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        if kty == "RSA":
            n = int.from_bytes(_b64url_decode(str(jwk["n"])), "big")
            e = int.from_bytes(_b64url_decode(str(jwk["e"])), "big")
            key = rsa.RSAPublicNumbers(e, n).public_key()
            alg_for_public_key(key)
            return key
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyMisuseError(f"malformed {kty} JWK") from exc
    raise KeyMisuseError(f"JWK type {kty!r} with curve {jwk.get('crv')!r} is not allowed")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A registered public key: who owns it, how it may be used, when it is valid."""

    kid: str
    owner: str
    public_key: PublicKey
    alg: str
    not_before: datetime | None = None
    not_after: datetime | None = None
    revoked_at: datetime | None = None
    sandbox: bool = False

    def valid_at(self, when: datetime) -> bool:
        if self.revoked_at is not None and when >= self.revoked_at:
            return False
        if self.not_before is not None and when < self.not_before:
            return False
        return self.not_after is None or when < self.not_after


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key held by this process, with its ``kid`` and algorithm."""

    kid: str
    private_key: PrivateKey
    alg: str
    sandbox: bool = False
    purpose: str = "http"
    public: VerificationKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_alg(self.alg, self.private_key.public_key())
        object.__setattr__(
            self,
            "public",
            VerificationKey(
                kid=self.kid,
                owner="self",
                public_key=self.private_key.public_key(),
                alg=self.alg,
                sandbox=self.sandbox,
            ),
        )

    def sign(self, data: bytes) -> bytes:
        return sign_bytes(self.alg, self.private_key, data)

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key(), kid=self.kid)


def generate_private_key(alg: str) -> PrivateKey:
    if alg == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ecdsa-p256-sha256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "rsa-pss-sha512":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise KeyMisuseError(f"algorithm {alg!r} is not allowed")


def private_key_pem(private_key: PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise KeyMisuseError(f"{path.name}: unsupported private key type")
    return key


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of a public JWK."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
        "RSA": ("e", "kty", "n"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical)
    return _b64url(digest.finalize())
