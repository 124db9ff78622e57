"""Gateway receipts: the JWT/JOSE attack checklist (identity_security.md §3.3, C1–C15).

Every key and every attack token is made here at run time. Each refusal must be the same
``SignatureInvalidError`` with the same short detail, carrying no token content; the reason
code chained as ``__cause__`` shows which check refused it, so a test cannot pass by accident.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import io
import json
import os
import re
import socket
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from gateway.domain.errors import SignatureInvalidError
from gateway.trust.keys import SigningKey, generate_private_key, public_jwk
from gateway.trust.receipts import (
    RECEIPT_TYP,
    JwsReceiptIssuer,
    ReceiptRefused,
    verify_receipt,
    verify_receipt_file,
)

DETAIL = "the receipt does not verify"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
TEN_MB = 10 * 1024 * 1024
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
REASON = re.compile(r"[a-z0-9-]+")

# ---------------------------------------------------------------------------
# Keys, tokens and the refusal check
# ---------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def as_json(value: Mapping[str, Any] | bytes) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def receipt_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "https://gateway.test",
        "sub": "app-0001",
        "iat": int(time.time()),
        "jti": "rcpt-0001",
        "matter": "HK-BR-001",
        "status": "accepted",
        "content_digest": "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        "missing": [],
        "deadline": None,
    }
    claims.update(overrides)
    return claims


def forge(
    header: Mapping[str, Any] | bytes,
    claims: Mapping[str, Any] | bytes,
    sign: Callable[[bytes], bytes] | None,
) -> str:
    """A compact JWS over exactly these header and claim bytes."""
    signing_input = f"{b64(as_json(header))}.{b64(as_json(claims))}"
    signature = b"" if sign is None else sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64(signature)}"


@dataclass(frozen=True)
class Seal:
    """A gateway seal key as the tests use it: its JWS alg, JWKS and a well-formed signer."""

    key: SigningKey
    jws_alg: str

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk()]}

    def header(self, **members: Any) -> dict[str, Any]:
        return {"alg": self.jws_alg, "kid": self.key.kid, "typ": RECEIPT_TYP, **members}

    def issue(self, **claims: Any) -> str:
        return JwsReceiptIssuer(self.key).issue(receipt_claims(**claims))

    def forge(
        self,
        header: Mapping[str, Any] | bytes | None = None,
        claims: Mapping[str, Any] | bytes | None = None,
    ) -> str:
        """Correctly signed with the seal key, so only the tampered part can be refused."""
        return forge(
            self.header() if header is None else header,
            receipt_claims() if claims is None else claims,
            self.key.sign,
        )


def make_seal(alg: str) -> Seal:
    key = SigningKey(
        kid=f"gw-seal-test-{alg}-{os.urandom(4).hex()}",
        private_key=generate_private_key(alg),
        alg=alg,
        purpose="seal",
    )
    return Seal(key, {"ecdsa-p256-sha256": "ES256", "ed25519": "EdDSA"}[alg])


@pytest.fixture(scope="module")
def es256() -> Seal:
    return make_seal("ecdsa-p256-sha256")


@pytest.fixture(scope="module")
def eddsa() -> Seal:
    return make_seal("ed25519")


@pytest.fixture(scope="module", params=["ecdsa-p256-sha256", "ed25519"], ids=["ES256", "EdDSA"])
def seal(request: pytest.FixtureRequest) -> Seal:
    return make_seal(request.param)


def refused(
    token: Any,
    jwks: Mapping[str, Any],
    reason: str | None = None,
    *,
    secrets: Iterable[str] = (),
) -> str:
    """Assert the uniform refusal; return its reason code."""
    with pytest.raises(SignatureInvalidError) as info:
        verify_receipt(token, jwks)
    return check_uniform(info.value, token, reason, secrets)


def check_uniform(
    error: SignatureInvalidError, token: Any, reason: str | None, secrets: Iterable[str]
) -> str:
    assert type(error) is SignatureInvalidError
    assert error.detail == DETAIL
    assert str(error) == DETAIL
    assert error.errors == ()
    assert error.headers == {}
    cause = error.__cause__
    assert isinstance(cause, ReceiptRefused)
    assert REASON.fullmatch(cause.reason), cause.reason
    # Nothing that carries token content is chained, and the detail echoes none of it.
    assert cause.__cause__ is None
    assert cause.__context__ is None
    if isinstance(token, str):
        for segment in token.split("."):
            if len(segment) >= 8:
                assert segment[:4096] not in cause.reason
                assert segment[:4096] not in DETAIL
    for secret in secrets:
        assert secret not in str(error)
        assert secret not in cause.reason
    if reason is not None:
        assert cause.reason == reason
    return cause.reason


@contextmanager
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every file open and network connection fail (and be recorded) while active."""
    attempts: list[str] = []

    def blocked(name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise AssertionError(f"{name} was called during verification")

        return fail

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", blocked("socket.connect"))
        patch.setattr(socket.socket, "connect_ex", blocked("socket.connect_ex"))
        patch.setattr(socket, "create_connection", blocked("socket.create_connection"))
        patch.setattr(socket, "getaddrinfo", blocked("socket.getaddrinfo"))
        patch.setattr(urllib.request, "urlopen", blocked("urllib.request.urlopen"))
        patch.setattr(builtins, "open", blocked("open"))
        patch.setattr(io, "open", blocked("io.open"))
        patch.setattr(os, "open", blocked("os.open"))
        yield attempts


@contextmanager
def base64_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Record the length of everything base64-decoded (by us or by pyjwt) while active."""
    sizes: list[int] = []
    real_urlsafe, real_standard = base64.urlsafe_b64decode, base64.b64decode

    def urlsafe(data: Any, *args: Any, **kwargs: Any) -> bytes:
        sizes.append(len(data))
        return real_urlsafe(data, *args, **kwargs)

    def standard(data: Any, *args: Any, **kwargs: Any) -> bytes:
        sizes.append(len(data))
        return real_standard(data, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(base64, "urlsafe_b64decode", urlsafe)
        patch.setattr(base64, "b64decode", standard)
        yield sizes


# ---------------------------------------------------------------------------
# A valid receipt, and any change to it
# ---------------------------------------------------------------------------


def test_a_valid_receipt_verifies_and_returns_its_claims(seal: Seal) -> None:
    claims = receipt_claims(missing=["applicant.address"], deadline="2026-10-08")
    token = JwsReceiptIssuer(seal.key).issue(claims)

    assert verify_receipt(token, seal.jwks) == claims


def test_the_issuer_writes_exactly_the_header_the_verifier_requires(seal: Seal) -> None:
    header = json.loads(unb64(seal.issue().split(".")[0]))

    assert header == {"alg": seal.jws_alg, "kid": seal.key.kid, "typ": RECEIPT_TYP}
    assert RECEIPT_TYP == "gba-receipt+jwt"


def test_the_issuer_refuses_a_key_that_is_not_es256_or_eddsa() -> None:
    rsa_key = SigningKey("gw-http", generate_private_key("rsa-pss-sha512"), "rsa-pss-sha512")

    with pytest.raises(ValueError, match="ES256 or EdDSA"):
        JwsReceiptIssuer(rsa_key)


def test_the_key_is_chosen_by_exact_kid_in_a_set_of_several(es256: Seal, eddsa: Seal) -> None:
    other = make_seal("ecdsa-p256-sha256")
    jwks = {"keys": [other.key.jwk(), eddsa.key.jwk(), es256.key.jwk()]}

    assert verify_receipt(es256.issue(), jwks)["sub"] == "app-0001"
    assert verify_receipt(eddsa.issue(), jwks)["sub"] == "app-0001"
    # The same key under another kid is not the key.
    renamed = {"keys": [{**es256.key.jwk(), "kid": es256.key.kid.upper()}]}
    refused(es256.issue(), renamed, "unknown-kid")


def test_any_changed_byte_of_header_payload_or_signature_is_refused(seal: Seal) -> None:
    token = seal.issue()
    segments = token.split(".")
    assert verify_receipt(token, seal.jwks)
    for index in range(3):
        original = unb64(segments[index])
        for position in range(len(original)):
            changed = bytearray(original)
            changed[position] ^= 0x01
            tampered = list(segments)
            tampered[index] = b64(bytes(changed))
            refused(".".join(tampered), seal.jwks)


def test_any_changed_character_is_refused_including_unused_base64_bits(seal: Seal) -> None:
    token = seal.issue()
    for position, character in enumerate(token):
        if character == ".":
            continue
        for step in (1, 32):
            replacement = ALPHABET[(ALPHABET.index(character) + step) % 64]
            refused(token[:position] + replacement + token[position + 1 :], seal.jwks)


def test_the_last_signature_character_only_carries_unused_bits_yet_is_refused(
    seal: Seal,
) -> None:
    # 64 bytes take 86 characters: the last one carries 2 bits of data and 4 unused bits, so
    # a lenient decoder maps "…A" and "…B" to the same signature. Only the canonical one passes.
    token = seal.issue()
    head, last = token[:-1], token[-1]
    twin = ALPHABET[ALPHABET.index(last) ^ 0x01]
    assert unb64(token.split(".")[2][:-1] + twin) == unb64(token.split(".")[2])

    refused(head + twin, seal.jwks, "non-canonical-base64url")


@pytest.mark.parametrize("padding", ["=", "==", "==="])
def test_padded_segments_are_refused(seal: Seal, padding: str) -> None:
    header, payload, signature = seal.issue().split(".")

    refused(f"{header}.{payload}.{signature}{padding}", seal.jwks, "not-base64url")
    refused(f"{header}{padding}.{payload}.{signature}", seal.jwks, "not-base64url")
    refused(f"{header}.{payload}{padding}.{signature}", seal.jwks, "not-base64url")


@pytest.mark.parametrize(
    ("claims", "accepted", "reason"),
    [
        ({"exp": 3600}, True, None),
        ({"exp": -3600}, False, "expired"),
        ({"exp": -61}, False, "expired"),
        ({"exp": -30}, True, None),  # under a minute of clock skew is tolerated
        ({"nbf": -3600}, True, None),
        ({"nbf": 3600}, False, "not-yet-valid"),
        ({"nbf": -3600, "exp": -1800}, False, "expired"),
        ({"iat": 3600}, False, "iat-future"),
    ],
    ids=[
        "exp-future",
        "exp-past",
        "exp-beyond-skew",
        "exp-within-skew",
        "nbf-past",
        "nbf-future",
        "expired-window",
        "iat-future",
    ],
)
def test_exp_nbf_and_iat_are_honoured(
    seal: Seal, claims: dict[str, int], accepted: bool, reason: str | None
) -> None:
    now = int(time.time())
    token = seal.issue(**{name: now + offset for name, offset in claims.items()})

    if accepted:
        assert verify_receipt(token, seal.jwks)["sub"] == "app-0001"
    else:
        refused(token, seal.jwks, reason)


@pytest.mark.parametrize(
    "claims",
    [
        b'{"iss":"i","sub":"s","iat":1700000000,"jti":"j","exp":"99999999999"}',
        b'{"iss":"i","sub":"s","iat":"1700000000","jti":"j"}',
        b'{"iss":"i","sub":"s","iat":true,"jti":"j"}',
        b'{"iss":"i","sub":"s","iat":1700000000,"jti":"j","exp":1e400}',
        b'{"iss":"i","sub":"s","iat":1700000000,"jti":"j","nbf":null}',
        b'{"iss":["i"],"sub":"s","iat":1700000000,"jti":"j"}',
        b'{"iss":"i","sub":1,"iat":1700000000,"jti":"j"}',
    ],
    ids=[
        "exp-string",
        "iat-string",
        "iat-bool",
        "exp-infinite",
        "nbf-null",
        "iss-list",
        "sub-number",
    ],
)
def test_claims_of_the_wrong_type_are_refused(seal: Seal, claims: bytes) -> None:
    refused(seal.forge(claims=claims), seal.jwks, "claim-type")


@pytest.mark.parametrize("missing", ["iss", "sub", "iat", "jti"])
def test_a_receipt_without_a_required_claim_is_refused(seal: Seal, missing: str) -> None:
    claims = receipt_claims()
    del claims[missing]

    refused(seal.forge(claims=claims), seal.jwks, "missing-claim")


@pytest.mark.parametrize(
    "claims",
    [b"[]", b'"a string"', b"null", b"{}x", b"", b'{"iss":NaN}', b'{"iss":-Infinity}'],
)
def test_claims_that_are_not_one_json_object_are_refused(seal: Seal, claims: bytes) -> None:
    reason = refused(seal.forge(claims=claims), seal.jwks)

    assert reason in ("claims-not-object", "non-finite-number", "not-base64url")


# ---------------------------------------------------------------------------
# C1: alg none, empty signature
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "nOnE", "NONE", ""])
def test_alg_none_is_refused_with_an_empty_signature(seal: Seal, alg: str) -> None:
    token = forge(seal.header(alg=alg), receipt_claims(), None)
    assert token.endswith(".")

    refused(token, seal.jwks, "signature-length")


@pytest.mark.parametrize("alg", ["none", "None", "nOnE", "NONE", "", "ES256 ", "es256"])
def test_alg_none_is_refused_even_with_a_signature_of_the_right_size(seal: Seal, alg: str) -> None:
    refused(seal.forge(header=seal.header(alg=alg)), seal.jwks, "alg")


@pytest.mark.parametrize("alg", [None, 0, ["ES256"], {"alg": "ES256"}])
def test_an_alg_that_is_not_a_string_is_refused(seal: Seal, alg: Any) -> None:
    refused(seal.forge(header=seal.header(alg=alg)), seal.jwks, "header-type")


def test_an_empty_signature_segment_is_refused(seal: Seal) -> None:
    header, payload, _ = seal.issue().split(".")

    refused(f"{header}.{payload}.", seal.jwks, "signature-length")
    refused(f"{header}.{payload}", seal.jwks, "not-compact-jws")
    refused(f"{header}.{payload}.{b64(bytes(64))}.", seal.jwks, "not-compact-jws")


# ---------------------------------------------------------------------------
# C2: HMAC with the gateway's public key as the secret
# ---------------------------------------------------------------------------


def public_key_forms(seal: Seal) -> dict[str, bytes]:
    public_key = seal.key.private_key.public_key()
    jwk = seal.key.jwk()
    return {
        "pem": public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pem-stripped": public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).strip(),
        "der": public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        "jwks-json": json.dumps(seal.jwks).encode(),
        "openssh": public_key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
    }


FORMS = ["pem", "pem-stripped", "der", "jwk-json", "jwk-json-compact", "jwks-json", "openssh"]
HMACS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("alg", sorted(HMACS))
def test_hmac_signed_with_the_public_key_as_secret_is_refused(
    seal: Seal, form: str, alg: str
) -> None:
    secret = public_key_forms(seal)[form]
    digest = HMACS[alg]
    token = forge(
        seal.header(alg=alg),
        receipt_claims(),
        lambda data: hmac.new(secret, data, digest).digest(),
    )
    # The forgery is real: recomputing the MAC with the public key "verifies" it.
    signing_input, _, signature = token.rpartition(".")
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    assert hmac.compare_digest(unb64(signature), mac)

    # Whatever the MAC's length, the alg allow-list refuses it before any key is looked at.
    refused(token, seal.jwks, "alg")


@pytest.mark.parametrize("form", FORMS)
def test_hmac_labelled_with_the_keys_own_alg_is_refused(seal: Seal, form: str) -> None:
    secret = public_key_forms(seal)[form]
    token = forge(
        seal.header(),
        receipt_claims(),
        lambda data: hmac.new(secret, data, hashlib.sha512).digest(),
    )

    reason = refused(token, seal.jwks)

    assert reason in ("signature", "ecdsa-range")


# ---------------------------------------------------------------------------
# C3: kid is an exact lookup, with no file or network access
# ---------------------------------------------------------------------------

KIDS = [
    "../../dev/null",
    "../../../../../../etc/passwd",
    "/dev/null",
    "file:///dev/null",
    "' OR '1'='1' --",
    "x'; DROP TABLE keys; --",
    "1 UNION SELECT 'AAAA' --",
    "*)(uid=*))(|(uid=*",
    "*",
    "(&(objectClass=*)(kid=*))",
    "https://attacker.example/jwks.json",
    "http://169.254.169.254/latest/meta-data/",
    "gw-seal-unknown",
    "",
    "\u0000",
]


def test_the_io_guard_really_blocks_files_and_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    with no_io(monkeypatch) as attempts:
        with pytest.raises(AssertionError):
            open(os.devnull)  # noqa: SIM115 - the open itself must fail
        with pytest.raises(AssertionError):
            socket.create_connection(("169.254.169.254", 80))
        with socket.socket() as sock, pytest.raises(AssertionError):
            sock.connect(("169.254.169.254", 80))
    assert attempts == ["open", "socket.create_connection", "socket.connect"]


@pytest.mark.parametrize("kid", KIDS)
def test_kid_injection_and_unknown_kid_are_refused_without_io(
    seal: Seal, kid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = seal.forge(header=seal.header(kid=kid))

    with no_io(monkeypatch) as attempts, pytest.raises(SignatureInvalidError) as info:
        verify_receipt(token, seal.jwks)
    assert attempts == []

    secrets = [kid] if len(kid) > 2 else []
    check_uniform(info.value, token, "unknown-kid", secrets)


@pytest.mark.parametrize("kid", [None, 1, ["kid"], {"kid": "x"}, True])
def test_a_kid_that_is_not_a_string_is_refused(seal: Seal, kid: Any) -> None:
    refused(seal.forge(header=seal.header(kid=kid)), seal.jwks, "header-type")


def test_a_key_set_that_matches_a_kid_twice_is_refused(seal: Seal) -> None:
    other = make_seal("ecdsa-p256-sha256")
    jwks = {"keys": [seal.key.jwk(), {**other.key.jwk(), "kid": seal.key.kid}]}

    refused(seal.issue(), jwks, "duplicate-kid")


@pytest.mark.parametrize(
    "jwks",
    [{}, {"keys": None}, {"keys": "keys"}, {"keys": [1]}, {"keys": {"kid": "x"}}, []],
    ids=["empty", "null", "string", "list-of-number", "object", "list"],
)
def test_a_malformed_key_set_is_refused(seal: Seal, jwks: Any) -> None:
    refused(seal.issue(), jwks, "jwks-malformed")


# ---------------------------------------------------------------------------
# C4, C5: jku, x5u, jwk, x5c and every other header parameter
# ---------------------------------------------------------------------------

URLS = [
    "https://attacker.example/jwks.json",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "file:///etc/passwd",
    "file:///dev/null",
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("parameter", ["jku", "x5u"])
def test_jku_and_x5u_are_never_fetched_and_refused(
    seal: Seal, parameter: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = seal.forge(header=seal.header(**{parameter: url}))

    with no_io(monkeypatch) as attempts, pytest.raises(SignatureInvalidError) as info:
        verify_receipt(token, seal.jwks)
    assert attempts == []

    check_uniform(info.value, token, "header-parameters", [url])


@pytest.mark.parametrize("with_gateway_kid", [True, False], ids=["gateway-kid", "no-kid"])
def test_an_embedded_jwk_of_the_attackers_own_key_is_refused(
    seal: Seal, with_gateway_kid: bool
) -> None:
    attacker = make_seal(seal.key.alg)
    header: dict[str, Any] = {
        "alg": seal.jws_alg,
        "typ": RECEIPT_TYP,
        "jwk": attacker.key.jwk(),
    }
    if with_gateway_kid:
        header["kid"] = seal.key.kid
    token = forge(header, receipt_claims(), attacker.key.sign)

    refused(token, seal.jwks, "header-parameters")


def self_signed_certificate(private_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GBA Gateway seal")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )


def test_an_embedded_x5c_of_the_attackers_own_certificate_is_refused(es256: Seal) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_certificate(attacker)
    der = certificate.public_bytes(serialization.Encoding.DER)
    header = es256.header(x5c=[base64.b64encode(der).decode("ascii")])
    attacker_key = SigningKey("attacker", attacker, "ecdsa-p256-sha256")
    token = forge(header, receipt_claims(), attacker_key.sign)

    refused(token, es256.jwks, "header-parameters")


@pytest.mark.parametrize(
    "members",
    [
        {"x5t": "AAAA"},
        {"x5t#S256": "AAAA"},
        {"cty": "JWT"},
        {"zip": "DEF"},
        {"enc": "A256GCM"},
        {"iss": "https://gateway.test"},
        {"nonce": "n"},
        {"url": "https://gateway.test/"},
        {"b64": True},
        {"x-extension": "1"},
    ],
    ids=lambda members: next(iter(members)),
)
def test_any_other_header_parameter_is_refused(seal: Seal, members: dict[str, Any]) -> None:
    refused(seal.forge(header=seal.header(**members)), seal.jwks, "header-parameters")


@pytest.mark.parametrize(
    ("missing", "reason"), [("alg", "alg"), ("kid", "unknown-kid"), ("typ", "typ")]
)
def test_a_header_missing_a_member_is_refused(seal: Seal, missing: str, reason: str) -> None:
    header = seal.header()
    del header[missing]

    refused(seal.forge(header=header), seal.jwks, reason)


# ---------------------------------------------------------------------------
# C6: psychic signatures
# ---------------------------------------------------------------------------


def raw_signature(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


MAX_32 = 2**256 - 1


@pytest.mark.parametrize(
    ("r", "s"),
    [
        (0, 0),
        (0, 1),
        (1, 0),
        (P256_ORDER, 1),
        (1, P256_ORDER),
        (P256_ORDER, P256_ORDER),
        (P256_ORDER + 1, 1),
        (1, P256_ORDER + 1),
        (MAX_32, MAX_32),
    ],
    ids=["zero", "r-zero", "s-zero", "r-n", "s-n", "both-n", "r-above-n", "s-above-n", "max"],
)
def test_psychic_ecdsa_signatures_are_refused(es256: Seal, r: int, s: int) -> None:
    token = forge(es256.header(), receipt_claims(), lambda _: raw_signature(r, s))

    refused(token, es256.jwks, "ecdsa-range")


def test_the_all_zero_signature_is_64_zero_bytes_and_refused(es256: Seal) -> None:
    token = forge(es256.header(), receipt_claims(), lambda _: bytes(64))
    assert unb64(token.split(".")[2]) == b"\x00" * 64

    refused(token, es256.jwks, "ecdsa-range")


@pytest.mark.parametrize(("r", "s"), [(0, 0), (P256_ORDER, P256_ORDER)])
def test_psychic_signatures_in_der_form_are_refused(es256: Seal, r: int, s: int) -> None:
    token = forge(es256.header(), receipt_claims(), lambda _: encode_dss_signature(r, s))

    refused(token, es256.jwks, "signature-length")


def test_an_all_zero_eddsa_signature_is_refused(eddsa: Seal) -> None:
    token = forge(eddsa.header(), receipt_claims(), lambda _: bytes(64))

    refused(token, eddsa.jwks, "signature")


# ---------------------------------------------------------------------------
# C12: sizes, checked before anything is decoded
# ---------------------------------------------------------------------------


def oversized(seal: Seal, part: str) -> str:
    header, payload, signature = seal.issue().split(".")
    big = "A" * TEN_MB
    return {
        "token": big,
        "header": f"{big}.{payload}.{signature}",
        "payload": f"{header}.{big}.{signature}",
        "signature": f"{header}.{payload}.{big}",
        "five-segments": f"{big}.{big}.{big}.{big}.{big}",
    }[part]


@pytest.mark.parametrize("part", ["token", "header", "payload", "signature", "five-segments"])
def test_a_ten_megabyte_token_or_segment_is_refused_fast_without_decoding(
    seal: Seal, part: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = oversized(seal, part)

    with base64_spy(monkeypatch) as decoded:
        started = time.perf_counter()
        with pytest.raises(SignatureInvalidError) as info:
            verify_receipt(token, seal.jwks)
        elapsed = time.perf_counter() - started

    assert elapsed < 1.0  # a sanity bound; the spy above is what proves nothing was decoded
    assert decoded == []
    check_uniform(info.value, token, "token-too-large", [])


@pytest.mark.parametrize(
    ("part", "reason"),
    [("header", "header-too-large"), ("signature", "signature-length")],
)
def test_an_oversized_segment_within_the_token_limit_is_refused_before_decoding(
    seal: Seal, part: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, payload, signature = seal.issue().split(".")
    if part == "header":
        token = f"{b64(b'{' + b' ' * 3000 + b'}')}.{payload}.{signature}"
    else:
        token = f"{header}.{payload}.{signature}{'A' * 3000}"

    with base64_spy(monkeypatch) as decoded:
        started = time.perf_counter()
        with pytest.raises(SignatureInvalidError) as info:
            verify_receipt(token, seal.jwks)
        elapsed = time.perf_counter() - started

    assert elapsed < 1.0  # a sanity bound; the spy above is what proves nothing was decoded
    assert decoded == []
    check_uniform(info.value, token, reason, [])


def test_a_deeply_nested_payload_is_refused(seal: Seal) -> None:
    claims = b"[" * 5_000 + b"]" * 5_000  # within the token limit, deeper than the recursion limit

    refused(seal.forge(claims=claims), seal.jwks, "claims-not-object")


# ---------------------------------------------------------------------------
# C15: duplicate member names (pyjwt lets the last one win)
# ---------------------------------------------------------------------------


def test_duplicate_header_members_are_refused(seal: Seal) -> None:
    kid, alg = json.dumps(seal.key.kid), json.dumps(seal.jws_alg)
    typ = json.dumps(RECEIPT_TYP)
    headers = [
        f'{{"alg":{alg},"alg":"none","kid":{kid},"typ":{typ}}}',
        f'{{"alg":"none","alg":{alg},"kid":{kid},"typ":{typ}}}',
        f'{{"alg":"HS256","kid":{kid},"typ":{typ},"alg":{alg}}}',
        f'{{"alg":{alg},"kid":"unknown","kid":{kid},"typ":{typ}}}',
        f'{{"alg":{alg},"kid":{kid},"typ":"JWT","typ":{typ}}}',
        f'{{"alg":{alg},"kid":{kid},"typ":{typ},"\\u0061lg":{alg}}}',
    ]
    for header in headers:
        refused(seal.forge(header=header.encode()), seal.jwks, "duplicate-member")


def test_duplicate_claims_are_refused(seal: Seal) -> None:
    base = '"iss":"i","iat":1700000000,"jti":"j"'
    claims = [
        f'{{"sub":"a","sub":"b",{base}}}',
        f'{{"sub":"a",{base},"s\\u0075b":"b"}}',
        f'{{"sub":"a",{base},"iss":"attacker"}}',
        f'{{"sub":"a",{base},"status":"accepted","status":"rejected"}}',
        f'{{"sub":"a",{base},"extra":{{"k":1,"k":2}}}}',
        f'{{"sub":"a",{base},"missing":[{{"x":1,"x":1}}]}}',
    ]
    for claim in claims:
        refused(seal.forge(claims=claim.encode()), seal.jwks, "duplicate-member")


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [("utf-16", "not-utf8"), ("utf-32", "not-utf8"), ("utf-8-sig", "header-not-object")],
)
def test_a_header_in_another_unicode_encoding_is_refused(
    seal: Seal, encoding: str, reason: str
) -> None:
    header = json.dumps(seal.header()).encode(encoding)

    refused(seal.forge(header=header), seal.jwks, reason)


# ---------------------------------------------------------------------------
# C13: crit and b64
# ---------------------------------------------------------------------------


def test_crit_and_b64_are_refused(seal: Seal) -> None:
    claims = receipt_claims()
    payload = json.dumps(claims, separators=(",", ":"))
    cases = [
        seal.forge(header=seal.header(crit=["x-unknown"], **{"x-unknown": True})),
        seal.forge(header=seal.header(crit=["x-unknown"])),
        seal.forge(header=seal.header(crit=["exp"], exp=1)),
        seal.forge(header=seal.header(crit=[])),
        seal.forge(header=seal.header(crit=["b64"], b64=False)),
        seal.forge(header=seal.header(b64=False)),
        seal.forge(header=seal.header(crit=["b64"], b64=True)),
    ]
    for token in cases:
        refused(token, seal.jwks, "header-parameters")

    # RFC 7797 compact forms: the detached payload and the unencoded attached payload.
    header = b64(json.dumps(seal.header(crit=["b64"], b64=False)).encode())
    signature = b64(seal.key.sign(f"{header}.{payload}".encode()))
    refused(f"{header}..{signature}", seal.jwks, "not-base64url")
    assert "." in payload  # "https://gateway.test": the unencoded payload splits the token
    refused(f"{header}.{payload}.{signature}", seal.jwks, "not-compact-jws")
    compact = json.dumps({k: v for k, v in claims.items() if k != "iss"}, separators=(",", ":"))
    assert "." not in compact
    signature = b64(seal.key.sign(f"{header}.{compact}".encode()))
    refused(f"{header}.{compact}.{signature}", seal.jwks, "not-base64url")


# ---------------------------------------------------------------------------
# C11: a JWE where a JWS is expected
# ---------------------------------------------------------------------------


def test_a_jwe_is_refused(seal: Seal) -> None:
    epk = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), kid="epk")
    direct = {
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "kid": seal.key.kid,
        "typ": RECEIPT_TYP,
        "epk": {name: epk[name] for name in ("kty", "crv", "x", "y")},
    }
    wrapped = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": seal.key.kid, "cty": "JWT"}
    iv, ciphertext, tag = (b64(os.urandom(n)) for n in (12, 200, 16))
    tokens = [
        f"{b64(json.dumps(direct).encode())}..{iv}.{ciphertext}.{tag}",
        f"{b64(json.dumps(wrapped).encode())}.{b64(os.urandom(256))}.{iv}.{ciphertext}.{tag}",
    ]
    for token in tokens:
        refused(token, seal.jwks, "jwe")


# ---------------------------------------------------------------------------
# C7: explicit typing; the alg comes from the key
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ",
    [
        "JWT",
        "jwt",
        "at+jwt",
        "application/at+jwt",
        "dpop+jwt",
        "sandbox-gba-receipt+jwt",
        "gba-receipt+jwt;sandbox",
        "gba-sandbox-receipt+jwt",
        "gba-receipt-sandbox+jwt",
        "application/gba-receipt+jwt",
        "GBA-RECEIPT+JWT",
        "gba-receipt+jwt ",
        "gba-voucher+jwt",
        "",
    ],
)
def test_a_token_of_another_type_is_refused(seal: Seal, typ: str) -> None:
    refused(seal.forge(header=seal.header(typ=typ)), seal.jwks, "typ")


def test_a_plain_pyjwt_token_signed_by_the_gateway_key_is_refused(seal: Seal) -> None:
    token = jwt.encode(
        receipt_claims(),
        seal.key.private_key,
        algorithm=seal.jws_alg,
        headers={"kid": seal.key.kid},
    )

    refused(token, seal.jwks, "typ")


def test_header_es256_against_an_eddsa_key_is_refused(eddsa: Seal) -> None:
    # A genuine Ed25519 signature: a verifier that took the alg from the key alone would pass it.
    token = forge(eddsa.header(alg="ES256"), receipt_claims(), eddsa.key.sign)

    refused(token, eddsa.jwks, "alg-mismatch")


def test_header_eddsa_against_an_es256_key_is_refused(es256: Seal) -> None:
    token = forge(es256.header(alg="EdDSA"), receipt_claims(), es256.key.sign)

    refused(token, es256.jwks, "alg-mismatch")


def test_a_receipt_signed_by_another_key_under_the_gateway_kid_is_refused(seal: Seal) -> None:
    attacker = make_seal(seal.key.alg)
    token = forge(seal.header(), receipt_claims(), attacker.key.sign)

    refused(token, seal.jwks, "signature")


# ---------------------------------------------------------------------------
# Keys in the set that may not verify receipts
# ---------------------------------------------------------------------------

DROP = object()


def change_id(value: object) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={'dropped' if v is DROP else v}" for k, v in value.items())
    return str(value)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"alg": "ES384"}, "key-alg"),
        ({"alg": "ES512"}, "key-alg"),
        ({"alg": "HS256"}, "key-alg"),
        ({"alg": "PS512"}, "key-alg"),
        ({"alg": "none"}, "key-alg"),
        ({"alg": "es256"}, "key-alg"),
        ({"alg": DROP}, "key-alg"),
        ({"use": "enc"}, "key-use"),
        ({"use": "SIG"}, "key-use"),
        ({"use": DROP}, "key-use"),
        ({"key_ops": ["encrypt"]}, "key-ops"),
        ({"key_ops": "verify"}, "key-ops"),
        ({"kty": "oct"}, "key-type"),
        ({"crv": "P-384"}, "key-type"),
        ({"d": "AAAA"}, "key-malformed"),
        ({"x": "AAAA"}, "key-malformed"),
    ],
    ids=lambda value: change_id(value),
)
def test_an_es256_key_that_may_not_verify_receipts_is_refused(
    es256: Seal, changes: dict[str, Any], reason: str
) -> None:
    jwk: dict[str, Any] = es256.key.jwk()
    for name, value in changes.items():
        if value is DROP:
            del jwk[name]
        else:
            jwk[name] = value

    refused(es256.issue(), {"keys": [jwk]}, reason)


def test_an_eddsa_key_labelled_es256_is_refused(eddsa: Seal) -> None:
    jwk = {**eddsa.key.jwk(), "alg": "ES256"}
    token = forge(eddsa.header(alg="ES256"), receipt_claims(), eddsa.key.sign)

    refused(token, {"keys": [jwk]}, "key-type")


def test_a_key_with_key_ops_verify_is_accepted(es256: Seal) -> None:
    jwk = {**es256.key.jwk(), "key_ops": ["verify"]}

    assert verify_receipt(es256.issue(), {"keys": [jwk]})["sub"] == "app-0001"


@pytest.mark.parametrize("alg", ["PS512", "RS256", "PS256"])
def test_a_receipt_signed_by_an_rsa_key_in_the_set_is_refused(alg: str) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**public_jwk(private.public_key(), kid="gw-rsa"), "alg": alg}
    token = jwt.encode(
        receipt_claims(), private, algorithm=alg, headers={"kid": "gw-rsa", "typ": RECEIPT_TYP}
    )

    refused(token, {"keys": [jwk]}, "alg")


def test_a_receipt_signed_by_a_p384_key_in_the_set_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    numbers = private.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-384",
        "x": b64(numbers.x.to_bytes(48, "big")),
        "y": b64(numbers.y.to_bytes(48, "big")),
        "kid": "gw-p384",
        "use": "sig",
        "alg": "ES384",
    }
    token = jwt.encode(
        receipt_claims(), private, algorithm="ES384", headers={"kid": "gw-p384", "typ": RECEIPT_TYP}
    )

    refused(token, {"keys": [jwk]}, "alg")


def test_an_ed448_or_other_okp_key_is_refused(eddsa: Seal) -> None:
    jwk = {**eddsa.key.jwk(), "crv": "Ed448"}

    refused(eddsa.issue(), {"keys": [jwk]}, "key-type")


# ---------------------------------------------------------------------------
# Inputs that are not tokens at all
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "not-a-string"),
        (b"a.b.c", "not-a-string"),
        ("", "not-compact-jws"),
        (".", "not-compact-jws"),
        ("..", "signature-length"),
        ("a.b.c.d", "not-compact-jws"),
        ("ｅｙＪ.ｅｙＪ.ｅｙＪ", "not-ascii"),
    ],
    ids=["none", "bytes", "empty", "one-dot", "two-dots", "four-segments", "fullwidth"],
)
def test_input_that_is_not_a_compact_jws_is_refused(seal: Seal, token: Any, reason: str) -> None:
    refused(token, seal.jwks, reason)


def test_whitespace_inside_a_token_is_refused(seal: Seal) -> None:
    header, payload, signature = seal.issue().split(".")

    refused(f" {header}.{payload}.{signature}", seal.jwks, "not-base64url")
    refused(f"{header}.{payload[:10]}\n{payload[10:]}.{signature}", seal.jwks, "not-base64url")


# ---------------------------------------------------------------------------
# verify_receipt_file
# ---------------------------------------------------------------------------


def write_jwks(tmp_path: Path, jwks: Mapping[str, Any]) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks, indent=2) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("surround", [("", ""), ("", "\n"), ("\n  ", " \r\n\r\n"), ("\t", "\t")])
def test_a_receipt_file_verifies_with_surrounding_whitespace(
    seal: Seal, tmp_path: Path, surround: tuple[str, str]
) -> None:
    claims = receipt_claims()
    token = JwsReceiptIssuer(seal.key).issue(claims)
    receipt = tmp_path / "receipt.jws"
    receipt.write_bytes(f"{surround[0]}{token}{surround[1]}".encode("ascii"))

    assert verify_receipt_file(receipt, write_jwks(tmp_path, seal.jwks)) == claims


def test_a_receipt_file_is_refused_like_a_token(seal: Seal, tmp_path: Path) -> None:
    jwks = write_jwks(tmp_path, seal.jwks)
    header, payload, signature = seal.issue().split(".")
    receipt = tmp_path / "receipt.jws"
    cases = {
        f"{header}.{payload}\n.{signature}\n": "not-base64url",
        f"{header}.{payload}.{b64(bytes(64))}\n": None,
        "\N{BYTE ORDER MARK}" + f"{header}.{payload}.{signature}": "not-ascii",
    }
    for content, reason in cases.items():
        receipt.write_bytes(content.encode("utf-8"))
        with pytest.raises(SignatureInvalidError) as info:
            verify_receipt_file(receipt, jwks)
        check_uniform(info.value, content, reason, [])


def test_an_oversized_receipt_file_is_refused_fast(seal: Seal, tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.jws"
    receipt.write_bytes(b"A" * TEN_MB)
    jwks = write_jwks(tmp_path, seal.jwks)

    started = time.perf_counter()
    with pytest.raises(SignatureInvalidError) as info:
        verify_receipt_file(receipt, jwks)
    assert time.perf_counter() - started < 1.0  # a sanity bound on a shared machine
    check_uniform(info.value, None, "file-too-large", [])


@pytest.mark.parametrize(
    "content",
    [
        b'{"keys":[],"keys":[]}',
        b"[]",
        b"not json",
        b"\xff\xfe{}",
        b'{"keys":[{"kid":"a","kid":"b"}]}',
    ],
    ids=["duplicate-keys", "array", "not-json", "not-utf8", "duplicate-in-jwk"],
)
def test_a_malformed_jwks_file_is_refused(seal: Seal, tmp_path: Path, content: bytes) -> None:
    receipt = tmp_path / "receipt.jws"
    receipt.write_text(seal.issue() + "\n", encoding="ascii")
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(content)

    with pytest.raises(SignatureInvalidError) as info:
        verify_receipt_file(receipt, jwks)
    check_uniform(info.value, None, None, [])


def test_a_jwks_file_with_a_duplicated_key_member_is_refused(seal: Seal, tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.jws"
    receipt.write_text(seal.issue() + "\n", encoding="ascii")
    jwk = json.dumps(seal.key.jwk())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(f'{{"keys":[{jwk[:-1]},"use":"enc"}}]}}', encoding="utf-8")

    with pytest.raises(SignatureInvalidError) as info:
        verify_receipt_file(receipt, jwks)
    check_uniform(info.value, None, "duplicate-member", [])


def test_a_missing_file_is_an_os_error_not_a_refusal(seal: Seal, tmp_path: Path) -> None:
    jwks = write_jwks(tmp_path, seal.jwks)
    receipt = tmp_path / "receipt.jws"
    receipt.write_text(seal.issue(), encoding="ascii")

    with pytest.raises(FileNotFoundError):
        verify_receipt_file(tmp_path / "absent.jws", jwks)
    with pytest.raises(FileNotFoundError):
        verify_receipt_file(receipt, tmp_path / "absent.json")
