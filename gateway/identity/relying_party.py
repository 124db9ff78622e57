"""The gateway as OIDC relying party toward the three identity providers.

:meth:`RelyingParty.begin` starts an authorization-code login with PKCE S256, ``state`` and
``nonce``, an exact redirect URI ``{base}/auth/{provider}/callback``, pushed through PAR
(RFC 9126) when the provider has it. The pending login is stored (any process may receive
the callback) and is single-use, bound to the browser that started it by the hash of its
login cookie. :meth:`RelyingParty.complete` checks the authorization response — ``iss`` must
be this provider's issuer (RFC 9207: a response of another provider delivered to this
callback is refused), ``state`` must be a pending login *of this provider*, and the browser
must be the one that started it (login CSRF: a callback URL sent to someone else's browser
is refused) — exchanges the code with private_key_jwt client authentication (RFC 7523),
validates the ID token (:mod:`gateway.identity.id_tokens`; a ``kid`` not in the cached key
set refetches the provider's key set once, rate-limited, and verifies again) and maps its
claims through the jurisdiction's identity profile. Each refusal is a
:class:`LoginFailedError` and stores nothing.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from yarl import URL

from gateway.domain.errors import BadRequestError, LoginFailedError
from gateway.domain.identity import CanonicalIdentity
from gateway.egress.client import client_session
from gateway.identity.discovery import (
    ProviderConfig,
    ProviderMetadata,
    Upstreams,
    is_sandbox_issuer,
)
from gateway.identity.id_tokens import UnknownKeyError, verify_id_token
from gateway.identity.jose import sign_jwt
from gateway.identity.ports import AuthorizationRequest, LoginTransaction, OidcStore
from gateway.mapping.identity import IdentityProfile
from gateway.trust.keys import SigningKey

TRANSACTION_LIFETIME = timedelta(minutes=10)
ASSERTION_LIFETIME = 60
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


def client_assertion(key: SigningKey, client_id: str, audience: str, now: datetime) -> str:
    """An RFC 7523 assertion: ``aud`` is the issuer only, a short ``exp``, a unique ``jti``."""
    at = int(now.timestamp())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": at,
        "exp": at + ASSERTION_LIFETIME,
        "jti": generate_token(32),
    }
    return sign_jwt(key, claims, typ="JWT")


class RelyingParty:
    def __init__(
        self,
        upstreams: Upstreams,
        profiles: Mapping[str, IdentityProfile],
        store: OidcStore,
        key: Callable[[], SigningKey],
        *,
        base_url: str,
        sandbox: bool,
        timeout: float,
        now: Callable[[], datetime],
    ) -> None:
        self.upstreams = upstreams
        self._profiles = profiles
        self._store = store
        self._key = key
        self._base_url = base_url
        self._sandbox = sandbox
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = now

    def providers(self) -> list[str]:
        return [name for name in self.upstreams.configs if name in self._profiles]

    def _config(self, provider: str) -> ProviderConfig:
        config = self.upstreams.config(provider)
        if config is None or provider not in self._profiles:
            raise BadRequestError("no such identity provider (idp_hint is hk, macau or guangdong)")
        return config

    def redirect_uri(self, provider: str) -> str:
        return f"{self._base_url}/auth/{provider}/callback"

    async def begin(
        self,
        provider: str,
        request: AuthorizationRequest,
        *,
        login_hint: str | None,
        browser_hash: str,
    ) -> str:
        """Store a pending login, bound to the browser whose login cookie hashes to
        ``browser_hash``, and answer the provider URL to send the browser to."""
        config = self._config(provider)
        metadata = await self.upstreams.metadata(provider)
        now = self._now()
        transaction = LoginTransaction(
            state=generate_token(43),
            provider=provider,
            nonce=generate_token(43),
            code_verifier=generate_token(64),
            redirect_uri=self.redirect_uri(provider),
            request=request,
            created_at=now,
            expires_at=now + TRANSACTION_LIFETIME,
            browser_hash=browser_hash,
        )
        params = {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": transaction.redirect_uri,
            "scope": " ".join(config.scopes),
            "state": transaction.state,
            "nonce": transaction.nonce,
            "code_challenge": create_s256_code_challenge(transaction.code_verifier),
            "code_challenge_method": "S256",
        }
        if login_hint and self._sandbox:  # a sandbox persona; never passed on in production
            params["login_hint"] = login_hint
        if metadata.par_endpoint:
            pushed = await self._post(
                metadata.par_endpoint, {**params, **self._auth(config, metadata)}, "PAR"
            )
            request_uri = pushed.get("request_uri")
            if not isinstance(request_uri, str):
                raise LoginFailedError("the identity provider's PAR answer has no request_uri")
            params = {"client_id": config.client_id, "request_uri": request_uri}
        await self._store.save_transaction(transaction)
        return str(URL(metadata.authorization_endpoint).update_query(params))

    async def complete(
        self, provider: str, query: Mapping[str, str], *, browser_hash: str | None
    ) -> tuple[CanonicalIdentity, LoginTransaction]:
        """Check the authorization response, redeem the code, validate and map the ID token."""
        config = self._config(provider)
        metadata = await self.upstreams.metadata(provider)
        issuer = query.get("iss")
        if not issuer:
            raise LoginFailedError("the authorization response has no iss (RFC 9207)")
        if issuer != metadata.issuer:
            raise LoginFailedError("the authorization response comes from another issuer")
        state = query.get("state", "")
        transaction = (
            await self._store.take_transaction(provider, state, self._now())
            if 0 < len(state) <= 200
            else None
        )
        if transaction is None:
            raise LoginFailedError("unknown, used or expired state")
        if not (
            browser_hash
            and transaction.browser_hash
            and hmac.compare_digest(browser_hash, transaction.browser_hash)
        ):
            raise LoginFailedError("the login was started in another browser")
        if "error" in query:
            code = query["error"] if _ERROR_CODE.fullmatch(query["error"]) else "an error"
            raise LoginFailedError(f"the identity provider answered {code}")
        code = query.get("code")
        if not code or len(code) > 2000:
            raise LoginFailedError("the authorization response has no code")
        tokens = await self._post(
            metadata.token_endpoint,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": transaction.redirect_uri,
                "code_verifier": transaction.code_verifier,
                **self._auth(config, metadata),
            },
            "token",
        )

        def verified(metadata: ProviderMetadata) -> dict[str, Any]:
            return verify_id_token(
                tokens.get("id_token"),
                config=config,
                metadata=metadata,
                nonce=transaction.nonce,
                now=self._now(),
            )

        try:
            claims = verified(metadata)
        except UnknownKeyError:  # the provider may have rotated its key: refetch, once
            metadata = await self.upstreams.refetch_keys(provider, metadata)
            try:
                claims = verified(metadata)
            except UnknownKeyError as still:
                raise LoginFailedError(str(still)) from None
        if not self._sandbox and is_sandbox_issuer(str(claims.get("iss", ""))):
            raise LoginFailedError("a sandbox identity provider is never trusted in production")
        identity = self._profiles[provider].identity(claims, issuer=metadata.issuer)
        return identity, transaction

    def _auth(self, config: ProviderConfig, metadata: ProviderMetadata) -> dict[str, str]:
        return {
            "client_id": config.client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": client_assertion(
                self._key(), config.client_id, metadata.issuer, self._now()
            ),
        }

    async def _post(self, url: str, form: dict[str, str], what: str) -> dict[str, Any]:
        try:
            async with (
                client_session(self.upstreams.egress, timeout=self._timeout, limit=4) as session,
                session.post(url, data=form, allow_redirects=False) as response,
            ):
                body = await response.content.read(64 * 1024)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LoginFailedError(f"the identity provider's {what} endpoint failed") from exc
        if 300 <= status < 400:
            raise LoginFailedError(
                f"the identity provider's {what} endpoint answered a redirect ({status}),"
                " which is not followed"
            )
        if status not in (200, 201):
            raise LoginFailedError(f"the identity provider's {what} endpoint answered {status}")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            data = None
        if not isinstance(data, dict):
            raise LoginFailedError(f"the identity provider's {what} answer is not JSON")
        return data
