"""The JOSE attack suite against EVERY caller of the one JWS verifier (gateway/trust/jws.py).

Six readers of compact JWS, each through its own public entry point: receipts, archive
manifests, audit checkpoints, upstream ID tokens, the gateway's access tokens and client
assertions. Each attack is refused by each of them with that caller's own error; the reason
code is read from :func:`gateway.trust.jws.verify` under the policy the caller declares, so a
test cannot pass because some other check happened to refuse. Where a caller could store
something (the client assertion's ``jti``, the access token's record lookup) nothing is.
``test_receipt_attacks.py`` holds the exhaustive variants for one caller.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.domain.errors import LoginFailedError, SignatureInvalidError
from gateway.identity.clients import (
    CLIENT_ASSERTION_POLICY,
    CLIENT_ASSERTION_TYPE,
    authenticate_client,
)
from gateway.identity.discovery import ProviderConfig, ProviderMetadata
from gateway.identity.errors import OAuthError
from gateway.identity.id_tokens import UnknownKeyError, id_token_policy, verify_id_token
from gateway.identity.ports import Client, TokenRecord
from gateway.identity.tokens import TokenRefusedError, TokenService
from gateway.trust import archive
from gateway.trust.archive import MANIFEST_POLICY, ArchiveInvalidError
from gateway.trust.audit import CHECKPOINT_POLICY, verify_checkpoint
from gateway.trust.jws import JwsPolicy, JwsRefused, verify
from gateway.trust.keys import PURPOSE_MEMBER, SigningKey, generate_private_key
from gateway.trust.receipts import RECEIPT_POLICY, verify_receipt

NOW = datetime.now(UTC).replace(microsecond=0)
AT = int(NOW.timestamp())
ISSUER = "https://gateway.test"
IDP = "https://idp.test/hk"
KID = "k-every-caller"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def as_json(value: Mapping[str, Any] | bytes) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


# ---------------------------------------------------------------------------
# The callers, each through its own entry point
# ---------------------------------------------------------------------------


class FakeOidcStore:
    """Just what token and client-assertion checks touch; records every lookup and write."""

    def __init__(self, client: Client | None = None) -> None:
        self._client = client
        self.used_jtis: list[str] = []
        self.token_lookups: list[str] = []

    async def client(self, client_id: str) -> Client | None:
        return self._client if self._client and self._client.client_id == client_id else None

    async def use_jti(self, scope: str, jti: str, now: datetime, expires: datetime) -> bool:
        self.used_jtis.append(jti)
        return True

    async def token(self, jti: str) -> TokenRecord | None:
        self.token_lookups.append(jti)
        return TokenRecord(
            jti, "access", "h", "portal-1", "hk-ird", "online", "l", "p", NOW + timedelta(60)
        )


@dataclass
class Caller:
    name: str
    key: SigningKey
    typ: str | None
    claims: Callable[[], dict[str, Any]]
    policy: JwsPolicy
    entry: Callable[[str, dict[str, Any]], Any]  # verifies against a key set; raises if not
    error: type[Exception]
    stored: Callable[[], list[str]] = field(default=lambda: [])

    @property
    def alg(self) -> str:
        return "ES256" if self.key.alg == "ecdsa-p256-sha256" else "EdDSA"

    def jwk(self, **changes: Any) -> dict[str, Any]:
        jwk: dict[str, Any] = {**self.key.jwk(), **changes}
        return {name: value for name, value in jwk.items() if value is not None}

    def jwks(self, **changes: Any) -> dict[str, Any]:
        return {"keys": [self.jwk(**changes)]}

    def header(self, **changes: Any) -> dict[str, Any]:
        header = {"alg": self.alg, "kid": self.key.kid, "typ": self.typ, **changes}
        return {name: value for name, value in header.items() if value is not None}

    def forge(
        self,
        header: Mapping[str, Any] | bytes | None = None,
        claims: Mapping[str, Any] | bytes | None = None,
        sign: Callable[[bytes], bytes] | None = None,
    ) -> str:
        """A token over exactly these bytes, signed with the caller's key unless ``sign``."""
        signing_input = (
            f"{b64(as_json(header or self.header()))}.{b64(as_json(claims or self.claims()))}"
        )
        signature = (sign or self.key.sign)(signing_input.encode("ascii"))
        return f"{signing_input}.{b64(signature)}"

    def accepts(self, token: str, jwks: dict[str, Any] | None = None) -> Any:
        return self.entry(token, jwks or self.jwks())

    def refuses(self, token: str, jwks: dict[str, Any] | None = None) -> str:
        """Assert the caller refuses ``token`` and stores nothing; the policy's reason code."""
        jwks = jwks or self.jwks()
        before = list(self.stored())
        with pytest.raises(self.error):
            self.entry(token, jwks)
        assert self.stored() == before
        with pytest.raises(JwsRefused) as refused:
            verify(token, jwks, self.policy, now=NOW)
        return refused.value.reason


def seal_key(alg: str = "ecdsa-p256-sha256") -> SigningKey:
    return SigningKey(f"{KID}-{os.urandom(3).hex()}", generate_private_key(alg), alg, "seal")


def receipt_caller() -> Caller:
    return Caller(
        "receipt",
        seal_key(),
        "gba-receipt+jwt",
        lambda: {"iss": ISSUER, "sub": "app-1", "iat": AT, "jti": "r-1", "status": "accepted"},
        RECEIPT_POLICY,
        lambda token, jwks: verify_receipt(token, jwks, now=NOW),
        SignatureInvalidError,
    )


def archive_caller() -> Caller:
    return Caller(
        "archive manifest",
        seal_key("ed25519"),
        "gba-archive+jwt",
        lambda: {"format": archive.FORMAT, "sub": "app-1", "iat": AT, "members": {}},
        MANIFEST_POLICY,
        lambda token, jwks: archive.verify_jws(token, jwks, MANIFEST_POLICY, "manifest"),
        ArchiveInvalidError,
    )


def checkpoint_caller() -> Caller:
    return Caller(
        "audit checkpoint",
        seal_key(),
        "gba-audit-checkpoint+jwt",
        lambda: {"seq": 7, "head": "a" * 64, "iat": AT},
        CHECKPOINT_POLICY,
        lambda token, jwks: verify_checkpoint(token, jwks, now=NOW),
        SignatureInvalidError,
    )


def id_token_caller() -> Caller:
    config = ProviderConfig("hk", IDP + "/.well-known/openid-configuration", "gw", ("ES256",))

    def entry(token: str, jwks: dict[str, Any]) -> Any:
        metadata = ProviderMetadata(IDP, IDP + "/authorize", IDP + "/token", jwks)
        try:
            return verify_id_token(token, config=config, metadata=metadata, nonce="n-1", now=NOW)
        except UnknownKeyError as exc:  # the relying party refetches once, then refuses so
            raise LoginFailedError(str(exc)) from None

    key = SigningKey(KID, generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
    return Caller(
        "ID token",
        key,
        "JWT",
        lambda: {"iss": IDP, "sub": "u1", "aud": "gw", "exp": AT + 300, "iat": AT, "nonce": "n-1"},
        id_token_policy(config, ProviderMetadata(IDP, "", "", {})),
        entry,
        LoginFailedError,
    )


def access_token_caller() -> Caller:
    key = SigningKey(KID, generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256", "oidc")
    store = FakeOidcStore()

    class Service(TokenService):
        """The real reader, with the key set under test in place of the ring's."""

        given: ClassVar[dict[str, Any]] = {}

        def jwks(self) -> dict[str, Any]:
            return self.given

    service = Service(store, lambda: (key,), issuer=ISSUER)  # type: ignore[arg-type]

    def entry(token: str, jwks: dict[str, Any]) -> Any:
        service.given = jwks
        return asyncio.run(service.access_token(token, NOW))

    return Caller(
        "access token",
        key,
        "at+jwt",
        lambda: {
            "iss": ISSUER,
            "aud": "hk-ird",
            "sub": "s",
            "client_id": "portal-1",
            "exp": AT + 300,
            "iat": AT,
            "jti": "at-1",
        },
        service.access_token_policy(),
        entry,
        TokenRefusedError,
        lambda: store.token_lookups,
    )


def id_token_hint_caller() -> Caller:
    """A logout's id_token_hint: the gateway's own ID token, read even once expired."""
    key = SigningKey(KID, generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256", "oidc")
    store = FakeOidcStore()

    class Service(TokenService):
        given: ClassVar[dict[str, Any]] = {}

        def jwks(self) -> dict[str, Any]:
            return self.given

    service = Service(store, lambda: (key,), issuer=ISSUER)  # type: ignore[arg-type]

    def entry(token: str, jwks: dict[str, Any]) -> Any:
        service.given = jwks
        return service.id_token_hint(token, NOW)

    return Caller(
        "ID token hint",
        key,
        "JWT",
        lambda: {
            "iss": ISSUER,
            "aud": "portal-1",
            "sub": "s",
            "sid": "login-1",
            "exp": AT - 3600,  # expired an hour ago: still a valid hint
            "iat": AT - 3900,
        },
        service.id_token_hint_policy(),
        entry,
        TokenRefusedError,
    )


def client_assertion_caller() -> Caller:
    key = SigningKey(KID, generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
    stores: list[FakeOidcStore] = []

    def entry(token: str, jwks: dict[str, Any]) -> Any:
        client = Client("portal-1", ("https://portal.test/cb",), jwks, "hk-ird")
        stores.append(FakeOidcStore(client))
        form = {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": token}
        run = authenticate_client(form, stores[-1], issuer=ISSUER, now=NOW)  # type: ignore[arg-type]
        return asyncio.run(run)

    return Caller(
        "client assertion",
        key,
        None,
        lambda: {
            "iss": "portal-1",
            "sub": "portal-1",
            "aud": ISSUER,
            "exp": AT + 60,
            "iat": AT,
            "jti": "assertion-0001",
        },
        CLIENT_ASSERTION_POLICY,
        entry,
        OAuthError,
        lambda: [jti for store in stores for jti in store.used_jtis],
    )


CALLERS = {
    "receipt": receipt_caller,
    "archive": archive_caller,
    "checkpoint": checkpoint_caller,
    "id-token": id_token_caller,
    "access-token": access_token_caller,
    "id-token-hint": id_token_hint_caller,
    "client-assertion": client_assertion_caller,
}


@pytest.fixture(params=sorted(CALLERS))
def caller(request: pytest.FixtureRequest) -> Caller:
    return CALLERS[request.param]()


@contextmanager
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every outbound connection or name lookup fails and is recorded while active."""
    attempts: list[str] = []

    def blocked(name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise AssertionError(f"{name} was called during verification")

        return fail

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", blocked("socket.connect"))
        patch.setattr(socket, "create_connection", blocked("socket.create_connection"))
        patch.setattr(socket, "getaddrinfo", blocked("socket.getaddrinfo"))
        patch.setattr(urllib.request, "urlopen", blocked("urllib.request.urlopen"))
        yield attempts


# ---------------------------------------------------------------------------
# A good token passes every caller, so each refusal below is the attack's doing
# ---------------------------------------------------------------------------


def test_a_well_formed_token_is_accepted_by_its_caller(caller: Caller) -> None:
    assert caller.accepts(caller.forge()) is not None
    verified = verify(caller.forge(), caller.jwks(), caller.policy, now=NOW)
    assert verified.claims == caller.claims()


def test_every_caller_declares_its_policy_and_they_differ_only_there() -> None:
    policies = {name: make().policy for name, make in CALLERS.items()}
    assert all(isinstance(policy, JwsPolicy) for policy in policies.values())
    assert len({policy.name for policy in policies.values()}) == len(CALLERS)


# ---------------------------------------------------------------------------
# The attacks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(caller: Caller, alg: str) -> None:
    unsigned = caller.forge(caller.header(alg=alg), sign=lambda _: b"")
    assert unsigned.endswith(".")
    assert caller.refuses(unsigned) == "signature-length"
    sized = caller.forge(caller.header(alg=alg))  # with a genuine signature of the right size
    assert caller.refuses(sized) == "alg"


@pytest.mark.parametrize("form", ["pem", "der", "jwk-json"])
@pytest.mark.parametrize("alg", ["HS256", "HS512"])
def test_hmac_with_the_public_key_as_secret_is_refused(caller: Caller, alg: str, form: str) -> None:
    public = caller.key.private_key.public_key()
    secret = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": json.dumps(caller.jwk()).encode(),
    }[form]
    digest = hashlib.sha256 if alg == "HS256" else hashlib.sha512
    token = caller.forge(
        caller.header(alg=alg), sign=lambda data: hmac.new(secret, data, digest).digest()
    )
    assert caller.refuses(token) == "alg"


@pytest.mark.parametrize(
    "kid",
    ["../../dev/null", "/dev/null", "' OR '1'='1' --", "*", "https://attacker.example/jwks", ""],
)
def test_kid_injection_is_an_exact_lookup_and_refused_without_io(
    caller: Caller, kid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = caller.forge(caller.header(kid=kid))
    with no_network(monkeypatch) as attempts:
        assert caller.refuses(token) == "unknown-kid"
    assert attempts == []


ATTACKER = SigningKey("attacker", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")


@pytest.mark.parametrize(
    "members",
    [
        {"jku": "https://attacker.example/jwks.json"},
        {"jku": "http://169.254.169.254/latest/meta-data/"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"jwk": ATTACKER.jwk()},
        {"x5c": ["MIIBszCCAVmgAwIBAgIUQ"]},
    ],
    ids=["jku", "jku-metadata", "x5u", "jwk", "x5c"],
)
def test_keys_named_or_embedded_in_the_header_are_never_used(
    caller: Caller, members: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signed by the attacker, who names or embeds the attacker's key.
    token = caller.forge(caller.header(**members), sign=ATTACKER.sign)
    with no_network(monkeypatch) as attempts:
        assert caller.refuses(token) == "header-parameters"
    assert attempts == []


@pytest.mark.parametrize(
    "members",
    [
        {"crit": ["x-unknown"], "x-unknown": True},
        {"crit": ["x-unknown"]},
        {"crit": ["exp"], "exp": AT + 60},
        {"crit": []},
        {"crit": ["b64"], "b64": False},
        {"b64": False},
    ],
    ids=["crit-extension", "crit-alone", "crit-registered", "crit-empty", "b64-crit", "b64"],
)
def test_crit_and_b64_are_refused(caller: Caller, members: dict[str, Any]) -> None:
    assert caller.refuses(caller.forge(caller.header(**members))) == "header-parameters"


TYPS = ["gba-receipt+jwt", "gba-archive+jwt", "gba-audit-checkpoint+jwt", "at+jwt", "dpop+jwt"]


@pytest.mark.parametrize("typ", [*TYPS, "JWT", "jwt", "GBA-RECEIPT+JWT", ""])
def test_a_token_of_another_type_is_refused(caller: Caller, typ: str) -> None:
    if typ in caller.policy.typs:
        assert caller.accepts(caller.forge(caller.header(typ=typ))) is not None
        return
    assert caller.refuses(caller.forge(caller.header(typ=typ))) == "typ"


def test_another_callers_token_is_refused_by_its_type(caller: Caller) -> None:
    for name, make in CALLERS.items():
        other = make()
        if other.typ in caller.policy.typs:
            continue
        # The other kind of token, signed with this caller's own trusted key.
        token = caller.forge(other.header(kid=caller.key.kid, alg=caller.alg), other.claims())
        assert caller.refuses(token) == "typ", name


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"use": "enc"}, "key-use"),
        ({"use": "SIG"}, "key-use"),
        ({"key_ops": ["sign"]}, "key-ops"),
        ({"key_ops": ["encrypt", "decrypt"]}, "key-ops"),
        ({"alg": "HS256"}, "key-alg"),
        ({"alg": ["ES256", "EdDSA"]}, "key-alg"),
        ({"kty": "oct"}, "key-type"),
        ({"d": "AAAA"}, "key-malformed"),
    ],
    ids=[
        "use-enc",
        "use-uppercase",
        "ops-sign",
        "ops-encrypt",
        "alg-hs256",
        "alg-list",
        "oct",
        "private",
    ],
)
def test_a_key_that_may_not_verify_is_refused(
    caller: Caller, changes: dict[str, Any], reason: str
) -> None:
    assert caller.refuses(caller.forge(), caller.jwks(**changes)) == reason


def test_a_key_for_another_purpose_is_refused(caller: Caller) -> None:
    if caller.policy.purpose is None:  # keys published by others: gba_use means nothing there
        assert caller.accepts(caller.forge(), caller.jwks(**{PURPOSE_MEMBER: "http"}))
        return
    for purpose in {"seal", "http", "oidc"} - {caller.policy.purpose}:
        token = caller.forge()
        assert caller.refuses(token, caller.jwks(**{PURPOSE_MEMBER: purpose})) == "key-purpose"


EXPECT_KEY_WITHOUT_USE = {
    "receipt": False,
    "archive manifest": False,
    "audit checkpoint": False,
    "access token": False,
    "ID token hint": False,  # the gateway's own keys, like access tokens
    "ID token": True,
    "client assertion": True,
}


def test_a_key_without_use_follows_the_one_rule(caller: Caller) -> None:
    """Accepted only where the policy says so: keys that identity providers and clients publish."""
    assert caller.policy.key_use_required is not EXPECT_KEY_WITHOUT_USE[caller.name]
    jwks = caller.jwks(use=None)
    assert "use" not in jwks["keys"][0]
    if EXPECT_KEY_WITHOUT_USE[caller.name]:
        assert caller.accepts(caller.forge(), jwks) is not None
    else:
        assert caller.refuses(caller.forge(), jwks) == "key-use"


def test_a_signature_over_a_different_header_is_refused(caller: Caller) -> None:
    good = caller.forge()
    signed_header, payload, signature = good.split(".")
    header = caller.header()
    others = [
        json.dumps(header, indent=1).encode(),  # the same members, other bytes
        json.dumps(dict(reversed(header.items()))).encode(),  # the same members, other order
        json.dumps(header, separators=(",", ":")).encode(),  # compact, as other encoders write
    ]
    for other in others:
        replaced = b64(other)
        assert replaced != signed_header
        assert caller.refuses(f"{replaced}.{payload}.{signature}") == "signature"


def test_a_signature_by_another_key_under_the_trusted_kid_is_refused(caller: Caller) -> None:
    assert caller.refuses(caller.forge(sign=ATTACKER.sign)) == "signature"


def test_duplicate_header_members_are_refused(caller: Caller) -> None:
    kid, alg = json.dumps(caller.key.kid), json.dumps(caller.alg)
    typ = f',"typ":{json.dumps(caller.typ)}' if caller.typ else ""
    for header in (
        f'{{"alg":{alg},"alg":"none","kid":{kid}{typ}}}',
        f'{{"alg":"HS256","kid":{kid}{typ},"alg":{alg}}}',
        f'{{"alg":{alg},"kid":"other","kid":{kid}{typ}}}',
        f'{{"alg":{alg},"kid":{kid}{typ},"\\u0061lg":{alg}}}',
    ):
        assert caller.refuses(caller.forge(header.encode())) == "duplicate-member"


def test_duplicate_claims_are_refused(caller: Caller) -> None:
    body = json.dumps(caller.claims())
    doubled = body[:-1] + f", {json.dumps(next(iter(caller.claims())))}: 0}}"
    assert caller.refuses(caller.forge(claims=doubled.encode())) == "duplicate-member"


def test_non_canonical_base64url_is_refused(caller: Caller) -> None:
    header, payload, signature = caller.forge().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(signature[-1]) ^ 0x01]  # flips an unused bit only
    assert unb64(signature[:-1] + twin) == unb64(signature)
    token = f"{header}.{payload}.{signature[:-1]}{twin}"
    assert caller.refuses(token) == "non-canonical-base64url"
    assert caller.refuses(f"{header}.{payload}.{signature}=") == "not-base64url"
    assert caller.refuses(f"{header}.{payload}.{signature.replace('-', '+')}+") in (
        "not-base64url",
        "signature-length",
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": AT - 3600}, "expired"),
        ({"nbf": AT + 3600}, "not-yet-valid"),
        ({"iat": AT + 3600}, "iat-future"),
        ({"exp": str(AT + 3600)}, "claim-type"),
        ({"iat": True}, "claim-type"),
    ],
    ids=["expired", "not-yet-valid", "issued-in-the-future", "exp-string", "iat-bool"],
)
def test_time_claims_are_honoured_by_every_caller(
    caller: Caller, changes: dict[str, Any], reason: str
) -> None:
    token = caller.forge(claims={**caller.claims(), **changes})
    if reason == "expired" and not caller.policy.check_exp:  # a logout's id_token_hint
        assert caller.accepts(token) is not None
        assert caller.policy.max_age is not None  # bound by its age instead
        too_old = {**caller.claims(), "iat": AT - caller.policy.max_age - 60}
        assert caller.refuses(caller.forge(claims=too_old)) == "iat-too-old"
        return
    assert caller.refuses(token) == reason


def test_a_missing_required_claim_is_refused(caller: Caller) -> None:
    assert caller.policy.required_claims
    for name in caller.policy.required_claims:
        claims = {k: v for k, v in caller.claims().items() if k != name}
        assert caller.refuses(caller.forge(claims=claims)) == "missing-claim", name


def test_a_jwe_is_refused(caller: Caller) -> None:
    header = b64(
        json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": caller.key.kid}).encode()
    )
    parts = [b64(os.urandom(n)) for n in (256, 12, 200, 16)]
    assert caller.refuses(".".join([header, *parts])) == "jwe"


def test_an_all_zero_signature_is_refused(caller: Caller) -> None:
    zeros = caller.forge(sign=lambda _: bytes(64))
    assert caller.refuses(zeros) == ("ecdsa-range" if caller.alg == "ES256" else "signature")


@pytest.mark.parametrize("part", ["token", "header", "signature"])
def test_an_oversized_token_is_refused_fast_before_decoding(
    caller: Caller, part: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, payload, signature = caller.forge().split(".")
    big = "A" * (10 * 1024 * 1024)
    token = {
        "token": big,
        "header": f"{header}{'A' * 4000}.{payload}.{signature}",
        "signature": f"{header}.{payload}.{signature}{'A' * 4000}",
    }[part]
    decoded: list[int] = []
    real = base64.urlsafe_b64decode

    def spy(data: Any, *args: Any, **kwargs: Any) -> bytes:
        decoded.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(base64, "urlsafe_b64decode", spy)
    started = time.perf_counter()
    reason = caller.refuses(token)
    assert time.perf_counter() - started < 2.0  # generous: a shared machine; the spy is the proof
    assert decoded == []
    expected = {"token": "token-too-large", "header": "header-too-large"}
    assert reason == expected.get(part, "signature-length")
