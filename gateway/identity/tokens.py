"""The tokens the gateway issues as OpenID Provider, and the one rule-set that reads them back.

Both are ES256 JWS signed with the key ring's ``oidc`` key, and their types are explicit so
one is never taken for the other (RFC 8725 §3.11):

- access token, header ``typ: at+jwt`` (RFC 9068): ``iss``, ``aud`` = the client's partner
  agency, ``sub`` = the pairwise subject for that agency, ``client_id``, ``iat``, ``exp``
  (the ``access_token_seconds`` setting, 300 s by default), ``jti``, ``acr``, ``auth_time``,
  ``sid`` (the login id), ``scope``;
- ID token, header ``typ: JWT``: ``iss``, ``aud`` = the client id, ``azp``, ``sub``, ``iat``,
  ``exp``, ``auth_time``, ``nonce``, ``acr``, ``sid`` and the canonical identity claims —
  identity document numbers (``gba_documents``) only under the ``identity_documents`` scope,
  which is granted only to a client registered with ``identity_documents: true``
  (:func:`released`, also what userinfo answers).

:meth:`TokenService.access_token` is the only reader, through the one JWS verifier under
:meth:`TokenService.access_token_policy`: ``typ`` exactly ``at+jwt``, ``alg`` ES256, ``kid`` one
of the ring's ``oidc`` keys (with ``use: "sig"`` and ``alg``), ``iss`` this gateway, ``exp``
with :data:`LEEWAY`; then ``aud`` is checked, and the token must be on record and not revoked
(a replayed code revokes what it had issued).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.common.security import generate_token

from gateway.domain.matters import Assurance
from gateway.identity.jose import JoseError, sign_jwt, verify_jws
from gateway.identity.ports import Client, OidcStore, RefreshToken, Session, TokenRecord
from gateway.trust.jws import JwsPolicy
from gateway.trust.keys import SigningKey
from gateway.trust.keystore import OIDC

ACCESS_TOKEN_LIFETIME = 300
ID_TOKEN_LIFETIME = 300
ID_TOKEN_HINT_MAX_AGE = 24 * 3600  # a logout's id_token_hint may have expired, not aged more
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JOSE media type, not a secret
ACR_PREFIX = "urn:gba:loa:"
LEEWAY = 5


DOCUMENTS_SCOPE = "identity_documents"
DOCUMENT_CLAIMS = ("gba_documents",)


def acr_of(assurance: Assurance) -> str:
    return ACR_PREFIX + assurance.value


def granted_scope(requested: str, client: Client) -> str:
    """``openid``, plus ``identity_documents`` when asked for by a client allowed it."""
    wanted = requested.split()
    return (
        f"openid {DOCUMENTS_SCOPE}"
        if DOCUMENTS_SCOPE in wanted and client.identity_documents
        else "openid"
    )


def released(claims: dict[str, Any], scope: str) -> dict[str, Any]:
    """The identity claims a token or userinfo may carry under ``scope``."""
    if DOCUMENTS_SCOPE in scope.split():
        return dict(claims)
    return {k: v for k, v in claims.items() if k not in DOCUMENT_CLAIMS}


class TokenRefusedError(ValueError):
    """An access token that is not valid here; the message names the check."""


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """A valid access token, read back: its claims and what the gateway recorded for it."""

    claims: dict[str, Any]
    record: TokenRecord


@dataclass(frozen=True, slots=True)
class Grant:
    """What tokens are issued from: a redeemed code, or a rotated refresh token of its family.

    ``family`` is the code's hash; ``nonce`` is the authorization request's, None on refresh
    (a refreshed ID token carries no nonce, OpenID Connect Core §12.2)."""

    family: str
    login_id: str
    person_id: str
    scope: str
    nonce: str | None


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    id_token: str
    refresh_token: str
    scope: str
    records: list[TokenRecord]
    refresh: RefreshToken


def refresh_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(
        self,
        store: OidcStore,
        keys: Callable[[], tuple[SigningKey, ...]],
        *,
        issuer: str,
        access_lifetime: int = ACCESS_TOKEN_LIFETIME,
    ) -> None:
        self._store = store
        self._keys = keys  # every oidc key of the ring, newest last (newest signs)
        self.issuer = issuer
        self.access_lifetime = access_lifetime  # seconds (the access_token_seconds setting)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self._keys()]}

    def access_token_policy(self) -> JwsPolicy:
        """What an access token must be, for the one JWS verifier."""
        return JwsPolicy(
            name="access token",
            typs=frozenset({ACCESS_TOKEN_TYPE}),
            algs=frozenset({"ES256"}),
            purpose=OIDC,
            required_claims=("iss", "aud", "exp", "jti"),
            leeway=LEEWAY,
            issuer=self.issuer,
        )

    async def issue(
        self, client: Client, code: Grant, session: Session, now: datetime
    ) -> IssuedTokens:
        """An access token, an ID token and the family's next refresh token, which lives
        no longer than the login session."""
        key = self._keys()[-1]
        subject = await self._store.subject(client.agency_id, code.person_id)
        at = int(now.timestamp())
        common = {"iss": self.issuer, "sub": subject, "iat": at, "auth_time": session.auth_time}
        access_jti, id_jti = generate_token(32), generate_token(32)
        access = {
            **common,
            "aud": client.agency_id,
            "client_id": client.client_id,
            "exp": at + self.access_lifetime,
            "jti": access_jti,
            "acr": session.acr,
            "sid": code.login_id,
            "scope": code.scope,
        }
        identity = {
            **released(session.claims, code.scope),
            **common,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": at + ID_TOKEN_LIFETIME,
            "jti": id_jti,
            **({"nonce": code.nonce} if code.nonce is not None else {}),
            "acr": session.acr,
            "sid": code.login_id,
        }

        def record(jti: str, kind: str, lifetime: int) -> TokenRecord:
            return TokenRecord(
                jti=jti,
                kind=kind,
                code_hash=code.family,
                client_id=client.client_id,
                agency_id=client.agency_id,
                channel=client.channel,
                login_id=code.login_id,
                person_id=code.person_id,
                expires_at=now + timedelta(seconds=lifetime),
            )

        refresh_token = generate_token(48)
        return IssuedTokens(
            access_token=sign_jwt(key, access, typ=ACCESS_TOKEN_TYPE),
            id_token=sign_jwt(key, identity, typ="JWT"),
            refresh_token=refresh_token,
            scope=code.scope,
            records=[
                record(access_jti, "access", self.access_lifetime),
                record(id_jti, "id", ID_TOKEN_LIFETIME),
            ],
            refresh=RefreshToken(
                token_hash=refresh_hash(refresh_token),
                family=code.family,
                client_id=client.client_id,
                agency_id=client.agency_id,
                channel=client.channel,
                login_id=code.login_id,
                person_id=code.person_id,
                scope=code.scope,
                created_at=now,
                expires_at=session.expires_at,
            ),
        )

    def id_token_hint_policy(self) -> JwsPolicy:
        """What a logout's ``id_token_hint`` must be: an ID token of this gateway, expired
        or not (RP-Initiated Logout 1.0 §2), issued at most a day ago."""
        return JwsPolicy(
            name="ID token hint",
            typs=frozenset({"JWT"}),
            algs=frozenset({"ES256"}),
            purpose=OIDC,
            required_claims=("iss", "aud", "sub", "sid"),
            leeway=LEEWAY,
            issuer=self.issuer,
            check_exp=False,
            max_age=ID_TOKEN_HINT_MAX_AGE,
        )

    def id_token_hint(self, token: str, now: datetime) -> dict[str, Any]:
        """The claims of an ID token this gateway issued, read as a logout's
        ``id_token_hint``; else TokenRefusedError."""
        try:
            return verify_jws(token, self.jwks(), self.id_token_hint_policy(), now=now).claims
        except JoseError as exc:
            raise TokenRefusedError(str(exc)) from None

    async def access_token(self, token: str, now: datetime) -> AccessGrant:
        """An access token issued here, valid now and not revoked; else TokenRefusedError."""
        try:
            claims = verify_jws(token, self.jwks(), self.access_token_policy(), now=now).claims
        except JoseError as exc:
            raise TokenRefusedError(str(exc)) from None
        if not isinstance(claims["aud"], str) or not claims["aud"]:
            raise TokenRefusedError("the token has no audience")
        jti = claims["jti"]
        record = await self._store.token(jti)
        if record is None or record.kind != "access" or record.revoked_at is not None:
            raise TokenRefusedError("the token was revoked or never issued here")
        if record.agency_id != claims["aud"] or record.client_id != claims.get("client_id"):
            raise TokenRefusedError("the token does not match its record")
        return AccessGrant(claims, record)
