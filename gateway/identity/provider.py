"""The gateway as OpenID Provider toward portals, kiosks and counter systems.

Authorization (:meth:`OpenIdProvider.authorization_request`): ``response_type=code`` only,
a known client, a redirect URI equal to a registered one (otherwise an error page, never a
redirect), PKCE S256, ``state``, ``nonce`` and ``scope=openid`` — then the resident logs in
upstream. ``identity_documents`` is granted only to a client registered for it; without it
no document number is released. After the upstream login, :meth:`OpenIdProvider.issue_code`
gives a single-use, 60-second code bound to the client, redirect URI, code challenge, nonce,
login and person, returned as ``redirect_uri?code&state&iss`` (RFC 9207).

Without ``idp_hint`` the request is checked all the same (an unknown client or redirect URI is
an error page, never a redirect) and the broker shows the provider chooser.

Token (:meth:`OpenIdProvider.token`): private_key_jwt only; ``authorization_code`` — a code
redeemed twice is refused and the tokens first issued from it are revoked (RFC 9700 §4.5) —
and ``refresh_token``. Every code exchange and every refresh answers a new refresh token;
refresh tokens rotate (each is used once), are bound to their client, live no longer than the
login session, and one presented again after its rotation revokes its whole family
(RFC 9700 §4.14.2). A refresh answers the same subject and ``acr`` as the login.

Logout (:meth:`OpenIdProvider.end_session`, OpenID Connect RP-Initiated Logout 1.0): the
``id_token_hint`` names the login; it ends with its session, refresh and access tokens, and
the resident returns to a ``post_logout_redirect_uri`` the client registered, with ``state``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gateway.domain.documents import problem
from gateway.domain.errors import BadRequestError, InvalidTokenError, ValidationFailedError
from gateway.domain.identity import CanonicalIdentity
from gateway.identity.clients import authenticate_client, client_from_metadata, new_client_id
from gateway.identity.errors import OAuthError, invalid_grant, invalid_request
from gateway.identity.ports import AuthorizationRequest, Client, IssuedCode, OidcStore, Session
from gateway.identity.tokens import (
    DOCUMENTS_SCOPE,
    Grant,
    IssuedTokens,
    TokenRefusedError,
    TokenService,
    acr_of,
    granted_scope,
    refresh_hash,
    released,
)

CODE_LIFETIME = timedelta(seconds=60)
# A login session: what userinfo and refreshes answer from, and the OP session cookie's life.
# Refresh tokens never outlive it; logout ends it at once.
SESSION_LIFETIME = timedelta(hours=8)
_PKCE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def with_query(uri: str, params: Mapping[str, str]) -> str:
    """The registered redirect URI, unchanged, with ``params`` added to its query."""
    if not params:
        return uri
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


class AuthorizationRedirectError(Exception):
    """An authorization error told to the client at its (already verified) redirect URI."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True, slots=True)
class Authorization:
    client: Client
    request: AuthorizationRequest
    provider: str | None  # None: no idp_hint, the resident chooses
    login_hint: str | None


class OpenIdProvider:
    def __init__(
        self,
        store: OidcStore,
        tokens: TokenService,
        *,
        issuer: str,
        providers: Callable[[], list[str]],
        now: Callable[[], datetime],
        sandbox: bool = False,
    ) -> None:
        self._sandbox = sandbox  # sandbox clients are never accepted outside sandbox mode
        self._store = store
        self.tokens = tokens
        self.issuer = issuer
        self._providers = providers
        self._now = now

    def discovery(self, sandbox: bool) -> dict[str, Any]:
        b = self.issuer
        document = {
            "issuer": b,
            "authorization_endpoint": f"{b}/oauth2/authorize",
            "token_endpoint": f"{b}/oauth2/token",
            "userinfo_endpoint": f"{b}/oauth2/userinfo",
            "introspection_endpoint": f"{b}/oauth2/introspect",
            "jwks_uri": f"{b}/.well-known/jwks.json",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "end_session_endpoint": f"{b}/oauth2/logout",
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "userinfo_signing_alg_values_supported": [],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256", "EdDSA"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", DOCUMENTS_SCOPE],
            "acr_values_supported": [f"urn:gba:loa:{v}" for v in ("low", "substantial", "high")],
            "authorization_response_iss_parameter_supported": True,
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "gba_idp_hints_supported": self._providers(),
        }
        if sandbox:
            document["registration_endpoint"] = f"{b}/oauth2/register"
        return document

    async def authorization_request(
        self, query: Mapping[str, str], *, idp_hint: str | None, sandbox: bool
    ) -> Authorization:
        client = await self._store.client(query.get("client_id", "")[:100])
        if client is None or (client.sandbox and not self._sandbox):
            raise BadRequestError("unknown client_id")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise BadRequestError("redirect_uri is not one registered for this client")
        state = query.get("state", "")

        def refuse(error: str, description: str) -> AuthorizationRedirectError:
            params = {"error": error, "error_description": description, "iss": self.issuer}
            if state:
                params["state"] = state
            return AuthorizationRedirectError(with_query(redirect_uri, params))

        if query.get("response_type") != "code":
            raise refuse("unsupported_response_type", "response_type must be code")
        if "openid" not in query.get("scope", "").split():
            raise refuse("invalid_scope", "scope must include openid")
        if query.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "PKCE with code_challenge_method=S256 is required")
        challenge = query.get("code_challenge", "")
        if len(challenge) != 43 or not _PKCE.fullmatch(challenge):
            raise refuse("invalid_request", "code_challenge must be a S256 challenge")
        nonce = query.get("nonce", "")
        if not 0 < len(state) <= 500 or not 0 < len(nonce) <= 500:
            raise refuse("invalid_request", "state and nonce are required")
        if "request" in query or "request_uri" in query:
            raise refuse("request_not_supported", "request objects are not supported")
        provider = idp_hint or query.get("idp_hint") or None
        if provider is not None and provider not in self._providers():
            raise BadRequestError("idp_hint must name an identity provider (hk, macau, guangdong)")
        login_hint = query.get("login_hint") if sandbox else None
        request = AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=state,
            nonce=nonce,
            code_challenge=challenge,
            scope=granted_scope(query.get("scope", ""), client),
        )
        return Authorization(client, request, provider, login_hint)

    async def issue_code(
        self,
        request: AuthorizationRequest,
        *,
        login_id: str,
        person_id: str,
        identity: CanonicalIdentity,
        browser_hash: str | None = None,
    ) -> str:
        """Keep the login's session (with the hash of its OP session cookie, if any) and
        answer the redirect carrying a fresh code."""
        now = self._now()
        await self._store.save_session(
            Session(
                login_id=login_id,
                person_id=person_id,
                acr=acr_of(identity.assurance),
                auth_time=int(now.timestamp()),
                claims=identity.claims(),
                expires_at=now + SESSION_LIFETIME,
                browser_hash=browser_hash,
            ),
            now,
        )
        code = generate_token(43)
        await self._store.save_code(
            IssuedCode(
                code_hash=code_hash(code),
                client_id=request.client_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                nonce=request.nonce,
                scope=request.scope,
                login_id=login_id,
                person_id=person_id,
                expires_at=now + CODE_LIFETIME,
            ),
            now,
        )
        params = {"code": code, "state": request.state, "iss": self.issuer}
        return with_query(request.redirect_uri, params)

    async def token(self, form: Mapping[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise invalid_request("grant_type is required")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError(
                "unsupported_grant_type", "only authorization_code and refresh_token are supported"
            )
        now = self._now()
        client = await authenticate_client(
            form, self._store, issuer=self.issuer, now=now, accept_sandbox=self._sandbox
        )
        if grant_type == "refresh_token":
            return await self._refresh(form, client, now)
        code = form.get("code", "")
        redemption = await self._store.redeem_code(code_hash(code), now) if code else None
        if redemption is None:
            raise invalid_grant("unknown or expired code")
        if not redemption.first_use:
            raise invalid_grant("the code was already used; its tokens are revoked")
        issued = redemption.code
        if issued.expires_at <= now:
            raise invalid_grant("the code has expired")
        if issued.client_id != client.client_id:
            raise invalid_grant("the code was issued to another client")
        if form.get("redirect_uri") != issued.redirect_uri:
            raise invalid_grant("redirect_uri is not the one of the authorization request")
        verifier = form.get("code_verifier", "")
        if not _PKCE.fullmatch(verifier) or not hmac.compare_digest(
            create_s256_code_challenge(verifier), issued.code_challenge
        ):
            raise invalid_grant("code_verifier does not match the code challenge")
        session = await self._store.session(issued.login_id, now)
        if session is None:
            raise invalid_grant("the login has expired")
        grant = Grant(
            family=issued.code_hash,
            login_id=issued.login_id,
            person_id=issued.person_id,
            scope=issued.scope,
            nonce=issued.nonce,
        )
        return await self._answer(await self.tokens.issue(client, grant, session, now), now)

    async def _refresh(
        self, form: Mapping[str, str], client: Client, now: datetime
    ) -> dict[str, Any]:
        presented = form.get("refresh_token", "")
        rotation = (
            await self._store.rotate_refresh(refresh_hash(presented), client.client_id, now)
            if 0 < len(presented) <= 200
            else None
        )
        if rotation is None:
            raise invalid_grant("unknown refresh token")
        old = rotation.token
        if old.client_id != client.client_id:
            raise invalid_grant("the refresh token was issued to another client")
        if not rotation.live:
            if old.used_at is not None:
                raise invalid_grant("the refresh token was already used; its family is revoked")
            raise invalid_grant("the refresh token was revoked or has expired")
        scope = form.get("scope") or old.scope
        if not set(scope.split()) <= set(old.scope.split()) or "openid" not in scope.split():
            raise OAuthError("invalid_scope", "a refresh may only keep or narrow the scope")
        session = await self._store.session(old.login_id, now)
        if session is None:
            raise invalid_grant("the login has ended")
        grant = Grant(
            family=old.family,
            login_id=old.login_id,
            person_id=old.person_id,
            scope=" ".join(w for w in old.scope.split() if w in scope.split()),
            nonce=None,
        )
        return await self._answer(await self.tokens.issue(client, grant, session, now), now)

    async def _answer(self, tokens: IssuedTokens, now: datetime) -> dict[str, Any]:
        """Record what was issued and answer it; a family revoked meanwhile answers nothing."""
        recorded = await self._store.record_tokens(tokens.records)
        if not recorded or not await self._store.save_refresh(tokens.refresh, now):
            raise invalid_grant("the code or refresh token was replayed; its tokens are revoked")
        return {
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": self.tokens.access_lifetime,
            "id_token": tokens.id_token,
            "refresh_token": tokens.refresh_token,
            "scope": tokens.scope,
        }

    async def browser_session(self, secret: str) -> Session | None:
        """The live login an OP session cookie belongs to."""
        if not 0 < len(secret) <= 200:
            return None
        return await self._store.browser_session(code_hash(secret), self._now())

    async def end_session(self, params: Mapping[str, str]) -> str | None:
        """RP-initiated logout: end the login the ``id_token_hint`` names; the client's
        registered ``post_logout_redirect_uri`` with ``state`` to return to, if it gave one.
        A refused request is an error page (BadRequestError), never a redirect."""
        now = self._now()
        hint = params.get("id_token_hint", "")
        if not hint:
            raise BadRequestError("id_token_hint is required: it names the login to end")
        try:
            claims = self.tokens.id_token_hint(hint, now)
        except TokenRefusedError as exc:
            raise BadRequestError(f"id_token_hint refused: {exc}") from None
        client_id = claims["aud"] if isinstance(claims["aud"], str) else ""
        if params.get("client_id", client_id) != client_id:
            raise BadRequestError("client_id is not the client the id_token_hint was issued to")
        client = await self._store.client(client_id)
        if client is None or (client.sandbox and not self._sandbox):
            raise BadRequestError("the id_token_hint was issued to an unknown client")
        target = params.get("post_logout_redirect_uri")
        if target is not None and target not in client.post_logout_redirect_uris:
            raise BadRequestError("post_logout_redirect_uri is not one the client registered")
        await self._store.end_login(str(claims["sid"]), now)
        if target is None:
            return None
        state = params.get("state", "")[:500]
        return with_query(target, {"state": state}) if state else target

    async def userinfo(self, token: str) -> dict[str, Any]:
        now = self._now()
        try:
            grant = await self.tokens.access_token(token, now)
        except TokenRefusedError as exc:
            raise InvalidTokenError(str(exc), headers=BEARER_INVALID) from None
        session = await self._store.session(grant.record.login_id, now)
        if session is None:
            raise InvalidTokenError("the login has expired", headers=BEARER_INVALID)
        claims = released(session.claims, str(grant.claims.get("scope", "")))
        return {**claims, "sub": grant.claims["sub"], "acr": session.acr}

    async def introspect(self, token: str, agency_id: str) -> dict[str, Any]:
        """RFC 7662 for a partner agency: active only for its own valid access tokens."""
        try:
            grant = await self.tokens.access_token(token, self._now())
        except TokenRefusedError:
            return {"active": False}
        claims = grant.claims
        if claims["aud"] != agency_id:
            return {"active": False}
        keep = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "acr", "auth_time")
        return {
            "active": True,
            "token_type": "Bearer",
            **{k: claims[k] for k in keep if k in claims},
        }

    async def register(self, data: Mapping[str, Any], *, default_agency: str) -> Client:
        """RFC 7591 dynamic registration (sandbox only; the route does not exist otherwise)."""
        client = client_from_metadata(
            data, client_id=new_client_id(), sandbox=True, default_agency=default_agency
        )
        if not await self._store.agency_exists(client.agency_id):
            raise ValidationFailedError(
                "agency_id is not a registered agency",
                errors=[problem("/agency_id", "invalid_value")],
            )
        await self._store.save_client(client, self._now())
        return client


BEARER_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
