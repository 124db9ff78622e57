"""One sandbox OpenID provider's state, all in memory: key, clients, codes, tokens, faults.

Sandbox only, one process: nothing here survives a restart, and nothing is written to disk.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import OAuth2Request

from gateway.identity.discovery import SANDBOX_MARK
from gateway.sandbox.idp.clients import Client, new_client
from gateway.sandbox.idp.grants import ASSERTION_ALGS, build_server
from gateway.sandbox.idp.keys import SIGNING_MODES, ProviderKey, sign_compact
from gateway.sandbox.idp.oauth import AuthorizationCode
from gateway.sandbox.idp.profiles import profiles
from gateway.sandbox.personas import PERSONAS, Persona
from gateway.services.ports import Clock

CODE_LIFETIME = 60
ID_TOKEN_LIFETIME = 300
ACCESS_TOKEN_LIFETIME = 600
PAR_LIFETIME = 60
INTERACTION_LIFETIME = 600
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


@dataclass(frozen=True)
class Faults:
    """The tamper seam: how the next tokens and redirects are spoilt (see ``tamper``)."""

    id_token_claims: Mapping[str, Any] = field(default_factory=dict)
    id_token_header: Mapping[str, Any] = field(default_factory=dict)
    signing: str = "normal"
    authorization_response: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Issued:
    persona_id: str
    client_id: str
    scope: str
    expires_at: float


@dataclass(frozen=True)
class _Held:
    """Stored authorization parameters: a pushed request or a pending persona choice."""

    client_id: str
    params: dict[str, str]
    expires_at: float


class SandboxProvider:
    """A sandbox OpenID provider: ``hk`` (iAM Smart), ``macau`` or ``guangdong``."""

    def __init__(self, name: str, issuer: str, clock: Clock) -> None:
        self.name = name
        self.issuer = issuer
        self.profile = profiles()[name]
        self._key: ProviderKey | None = None  # generated at first use: see ``key``
        self.previous_key: ProviderKey | None = None  # the key before the last rotation
        self.publish_previous = False  # whether the JWKS still lists it
        self.jwks_requests = 0  # key sets served: how often relying parties fetched them
        self.clients: dict[str, Client] = {}
        self.faults = Faults()
        self._clock = clock
        self._codes: dict[str, AuthorizationCode] = {}
        self._tokens: dict[str, _Issued] = {}
        self._jtis: dict[tuple[str, str], float] = {}
        self._pushed: dict[str, _Held] = {}
        self._pending: dict[str, _Held] = {}
        self.server = build_server(self)

    @property
    def key(self) -> ProviderKey:
        """The provider's signing key, generated when first asked for (its JWKS, a token):
        an RSA key takes tens of milliseconds, and most apps never use their providers."""
        if self._key is None:
            self._key = ProviderKey.generate(self.profile.signing_alg, self.name)
        return self._key

    @property
    def supports_par(self) -> bool:
        return self.profile.par

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/{name}"

    def now(self) -> float:
        return self._clock.now().timestamp()

    # -- the Python API -------------------------------------------------------------------

    def register_client(
        self, client_id: str, *, jwks: dict[str, Any], redirect_uris: list[str]
    ) -> None:
        """Register (or replace) a relying party: its public JWKS and exact redirect URIs."""
        self.clients[client_id] = new_client(client_id, jwks, redirect_uris)

    def tamper(self, **faults: Any) -> None:
        """Spoil what the provider issues until ``tamper()`` (no arguments) resets it.

        ``id_token_claims`` and ``id_token_header``: members to override (None removes);
        ``signing``: ``normal``, ``none``, ``hs256-public-key``, ``foreign-key``,
        ``unpublished-key`` (a new kid the JWKS never lists) or ``previous-key`` (the key
        before the last :meth:`rotate_key`);
        ``authorization_response``: ``iss``, ``state`` or ``code`` in the redirect to
        override (None removes). Faults set by separate calls accumulate.
        """
        if not faults:
            self.faults = Faults()
            return
        known = {f.name for f in dataclasses.fields(Faults)}
        if unknown := set(faults) - known:
            raise TypeError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        if faults.get("signing", "normal") not in SIGNING_MODES:
            raise ValueError(f"signing must be one of {', '.join(SIGNING_MODES)}")
        if faults.get("signing") == "previous-key" and self.previous_key is None:
            raise ValueError("previous-key signing needs a rotated key: rotate_key() first")
        copied = {k: dict(v) if isinstance(v, Mapping) else v for k, v in faults.items()}
        self.faults = dataclasses.replace(self.faults, **copied)

    def rotate_key(self, *, keep_previous: bool = False) -> ProviderKey:
        """Sign with a fresh key (a new kid) from now on. The key it replaces is dropped from
        the JWKS at once, or with ``keep_previous`` still published beside the new one (until
        the next rotation), as a provider rotating gracefully does."""
        self.previous_key = self.key
        self.publish_previous = keep_previous
        self._key = ProviderKey.generate(self.profile.signing_alg, self.name)
        return self._key

    # -- personas -------------------------------------------------------------------------

    def personas(self) -> list[Persona]:
        return [p for p in PERSONAS if self.name in p.providers()]

    def persona_for(self, persona_id: str | None) -> Persona | None:
        return next((p for p in self.personas() if p.id == persona_id), None)

    # -- codes, tokens, assertions, pushed requests ---------------------------------------

    def save_code(self, code: str, request: OAuth2Request) -> None:
        data, user, now = request.payload.data, request.user, self.now()
        self._codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=data["redirect_uri"],
            scope=request.scope,
            persona_id=user.id,
            nonce=data["nonce"],
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            auth_time=int(now),
            acr=self.profile.acr_for(user),
            amr=self.profile.amr_for(user),
            expires_at=now + CODE_LIFETIME,
        )

    def take_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code, once: any presentation burns it, valid or not."""
        found = self._codes.pop(code, None)
        if found is None or found.client_id != client_id or found.expires_at <= self.now():
            return None
        return found

    def generate_token(self, *, scope: str | None = None, **_: Any) -> dict[str, Any]:
        return {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": scope or "",
        }

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self._tokens[token["access_token"]] = _Issued(
            request.user.id,
            request.client.client_id,
            token["scope"],
            self.now() + ACCESS_TOKEN_LIFETIME,
        )

    def use_jti(self, client_id: str, jti: str, exp: float) -> bool:
        """Record a client assertion's jti; False if this client used it before."""
        now = self.now()
        self._jtis = {k: v for k, v in self._jtis.items() if v > now}
        if (client_id, jti) in self._jtis:
            return False
        self._jtis[(client_id, jti)] = max(exp, now) + 60
        return True

    def push(self, client_id: str, params: dict[str, str]) -> str:
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(24)
        self._pushed[request_uri] = _Held(client_id, params, self.now() + PAR_LIFETIME)
        return request_uri

    def pull(self, client_id: str, request_uri: str) -> dict[str, str] | None:
        """The pushed parameters, once, to the client that pushed them, within 60 s."""
        held = self._pushed.pop(request_uri, None)
        if held is None or held.client_id != client_id or held.expires_at <= self.now():
            return None
        return held.params

    def hold(self, params: dict[str, str]) -> str:
        """Keep a validated request while the user picks a persona; returns its handle."""
        handle = secrets.token_urlsafe(24)
        client_id = params.get("client_id", "")
        self._pending[handle] = _Held(client_id, params, self.now() + INTERACTION_LIFETIME)
        return handle

    def resume(self, handle: str) -> dict[str, str] | None:
        held = self._pending.pop(handle, None)
        return None if held is None or held.expires_at <= self.now() else held.params

    # -- what the provider says -----------------------------------------------------------

    def id_token(self, code: AuthorizationCode, user: Persona) -> str:
        now = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.profile.subject(user, code.client_id),
            "aud": code.client_id,
            "exp": now + ID_TOKEN_LIFETIME,
            "iat": now,
            "auth_time": code.auth_time,
            "nonce": code.nonce,
            "acr": code.acr,
            "amr": code.amr,
            **self.profile.profile(user),
        }
        faults = self.faults
        claims = _overridden(claims, faults.id_token_claims)
        return sign_compact(
            self.key,
            claims,
            signing=faults.signing,
            header_overrides=dict(faults.id_token_header),
            previous=self.previous_key,
        )

    def userinfo(self, access_token: str) -> dict[str, Any] | None:
        issued = self._tokens.get(access_token)
        if issued is None or issued.expires_at <= self.now():
            return None
        user = self.persona_for(issued.persona_id)
        if user is None:
            return None
        return {"sub": self.profile.subject(user, issued.client_id), **self.profile.profile(user)}

    def redirect_location(self, location: str) -> str:
        """The redirect back to the client, with the ``authorization_response`` fault."""
        changes = self.faults.authorization_response
        if not changes:
            return location
        parts = urlsplit(location)
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        for name, value in changes.items():
            params = [(k, v) for k, v in params if k != name]
            if value is not None:
                params.append((name, str(value)))
        return urlunsplit(parts._replace(query=urlencode(params)))

    def jwks(self) -> dict[str, Any]:
        keys = [self.key]
        if self.previous_key is not None and self.publish_previous:
            keys.append(self.previous_key)
        return {"keys": [key.public_jwk() for key in keys]}

    def serve_jwks(self) -> dict[str, Any]:
        """The JWKS as the endpoint answers it: each answer counted."""
        self.jwks_requests += 1
        return self.jwks()

    def discovery(self) -> dict[str, Any]:
        profile = self.profile
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "jwks_uri": self.endpoint("jwks"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "id_token_signing_alg_values_supported": [profile.signing_alg],
            "acr_values_supported": list(profile.acr),
            "claims_supported": [
                *("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr"),
                *profile.claims,
            ],
            "scopes_supported": list(profile.scopes),
            "subject_types_supported": [profile.subject_type],
            "ui_locales_supported": list(profile.locales),
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            SANDBOX_MARK: True,  # a production gateway refuses a provider that says this
        }
        if self.supports_par:
            document["pushed_authorization_request_endpoint"] = self.endpoint("par")
            document["require_pushed_authorization_requests"] = False
        return document


def _overridden(members: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(members)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out
