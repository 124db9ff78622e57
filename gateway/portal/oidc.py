"""The portal as an OpenID Connect client of the gateway's OpenID Provider.

Everything comes from the OP's discovery document (``/.well-known/openid-configuration``):
the portal registers itself there by RFC 7591 dynamic registration with an ES256 key made
at start-up (never stored), sends the resident to the authorization endpoint with
state, nonce and PKCE S256, and at the callback exchanges the code with a private_key_jwt
client assertion (RFC 7523) and checks the ID token (signature against the OP's JWKS, iss,
aud, nonce, expiry). A token response carrying ``refresh_token`` is refreshed with it; an
``end_session_endpoint`` in discovery is used at logout (RP-initiated logout).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.asymmetric import ec
from yarl import URL

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEEWAY = 30  # seconds of clock skew tolerated on the ID token and before expiry


class OidcError(RuntimeError):
    """The OP answered something an OIDC client must not accept."""


@dataclass(frozen=True, slots=True)
class Pending:
    """What the portal keeps between sending the resident to log in and their return."""

    state: str
    nonce: str
    verifier: str
    provider: str | None
    return_to: str
    created: float

    @classmethod
    def new(cls, provider: str | None, return_to: str) -> Pending:
        return cls(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
            provider,
            return_to,
            time.monotonic(),
        )


@dataclass(slots=True)
class Tokens:
    """The resident's tokens, held in the server-side session only."""

    access_token: str
    expires_at: float
    id_token: str
    refresh_token: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    # refreshed this long before ``expires_at``: LEEWAY, or a tenth of a short lifetime (a
    # token living a few seconds is used, not refreshed at every call)
    margin: float = LEEWAY

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at - self.margin


@dataclass
class PortalClient:
    """One registration of the portal at the OP, made lazily on first need."""

    issuer: str
    redirect_uri: str
    post_logout_uri: str
    http: aiohttp.ClientSession
    client_name: str = "reference resident portal"
    metadata: dict[str, Any] = field(default_factory=dict)
    client_id: str = ""
    _key: ec.EllipticCurvePrivateKey | None = None
    _kid: str = ""
    _jwks: jwt.PyJWKSet | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ready(self) -> PortalClient:
        """Discovery read and the client registered (once; retried after a failure)."""
        async with self._lock:
            if self.client_id:
                return self
            self.metadata = await self._json("GET", "/.well-known/openid-configuration")
            if self.metadata.get("issuer") != self.issuer:
                raise OidcError("discovery names another issuer")
            self._key = ec.generate_private_key(ec.SECP256R1())
            self._kid = "portal-" + secrets.token_urlsafe(9)
            public = jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
            registration: dict[str, Any] = {
                "client_name": self.client_name,
                "redirect_uris": [self.redirect_uri],
                "jwks": {"keys": [{**public, "kid": self._kid, "use": "sig", "alg": "ES256"}]},
                "token_endpoint_auth_method": "private_key_jwt",
            }
            if "end_session_endpoint" in self.metadata:
                registration["post_logout_redirect_uris"] = [self.post_logout_uri]
            endpoint = self.metadata.get("registration_endpoint")
            if not endpoint:
                raise OidcError("the OP offers no dynamic registration (sandbox mode only)")
            async with self.http.post(endpoint, json=registration) as response:
                body = await response.json(content_type=None)
                if response.status != 201:
                    raise OidcError(f"registration refused ({response.status})")
            self.client_id = body["client_id"]
            return self

    async def _json(self, method: str, path_or_url: str, **kwargs: Any) -> dict[str, Any]:
        url = path_or_url if "://" in path_or_url else self.issuer + path_or_url
        async with self.http.request(method, url, **kwargs) as response:
            if response.status != 200:
                raise OidcError(f"{method} {URL(url).path} answered {response.status}")
            return dict(await response.json(content_type=None))

    @property
    def providers(self) -> list[str]:
        return list(self.metadata.get("gba_idp_hints_supported", []))

    def authorization_url(self, pending: Pending, lang: str) -> str:
        """Without a provider the OP chooses (its chooser page); with one, ``idp_hint``."""
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
            "ui_locales": lang,
        }
        if pending.provider:
            query["idp_hint"] = pending.provider
        return str(URL(self.metadata["authorization_endpoint"]).with_query(query))

    def _assertion(self) -> str:
        assert self._key is not None, "ready() registers the key"
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.issuer,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(18),
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid})

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        data = {
            "client_id": self.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(),
            **form,
        }
        async with self.http.post(self.metadata["token_endpoint"], data=data) as response:
            body = await response.json(content_type=None)
            if response.status != 200 or "access_token" not in body:
                raise OidcError(f"token request refused ({response.status})")
            return dict(body)

    async def exchange(self, code: str, pending: Pending) -> Tokens:
        body = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": pending.verifier,
            }
        )
        claims = await self.check_id_token(body.get("id_token", ""), pending.nonce)
        return self._tokens(body, claims)

    async def refresh(self, tokens: Tokens) -> Tokens:
        """New tokens for a refresh token (rotated: the new one replaces the old)."""
        assert tokens.refresh_token is not None
        body = await self._token(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )
        claims = tokens.claims
        if body.get("id_token"):
            claims = await self.check_id_token(body["id_token"], None, sub=claims.get("sub"))
        refreshed = self._tokens(body, claims)
        refreshed.refresh_token = body.get("refresh_token") or tokens.refresh_token
        refreshed.id_token = body.get("id_token") or tokens.id_token
        return refreshed

    @staticmethod
    def _tokens(body: dict[str, Any], claims: dict[str, Any]) -> Tokens:
        lifetime = int(body.get("expires_in", 300))
        return Tokens(
            access_token=body["access_token"],
            expires_at=time.time() + lifetime,
            id_token=body.get("id_token", ""),
            refresh_token=body.get("refresh_token"),
            claims=claims,
            margin=min(LEEWAY, lifetime / 10),
        )

    async def check_id_token(
        self, token: str, nonce: str | None, *, sub: str | None = None
    ) -> dict[str, Any]:
        """Signature (the OP's JWKS, refetched once for an unknown kid), iss, aud, exp, nonce."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise OidcError("the ID token is not a JWT") from exc
        key = await self._signing_key(kid)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self.metadata.get("id_token_signing_alg_values_supported", ["ES256"]),
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token is refused: {exc}") from exc
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token's nonce is not the one sent")
        if sub is not None and claims.get("sub") != sub:
            raise OidcError("the refreshed ID token is for another subject")
        return dict(claims)

    async def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        for attempt in range(2):
            if self._jwks is None or attempt:
                self._jwks = jwt.PyJWKSet.from_dict(
                    await self._json("GET", self.metadata["jwks_uri"])
                )
            for key in self._jwks.keys:
                if key.key_id == kid:
                    return key
        raise OidcError("the ID token is signed with a key the OP does not publish")

    def logout_url(self, tokens: Tokens | None) -> str | None:
        """RP-initiated logout at the OP, when discovery advertises it."""
        endpoint = self.metadata.get("end_session_endpoint")
        if not endpoint:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": self.post_logout_uri}
        if tokens is not None and tokens.id_token:
            query["id_token_hint"] = tokens.id_token
        return str(URL(endpoint).with_query(query))
