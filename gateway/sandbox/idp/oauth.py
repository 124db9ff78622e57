"""authlib's authorization server on aiohttp, as the sandbox identity providers use it.

authlib has no aiohttp integration; this is the small one it needs. A handler first reads the
request into an :class:`HttpCall` (aiohttp reads bodies asynchronously, authlib is
synchronous), and :class:`AiohttpAuthorizationServer` turns that into authlib's request and
authlib's ``(status, body, headers)`` answers into aiohttp responses.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    JsonPayload,
    JsonRequest,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import AuthorizationCodeMixin
from multidict import CIMultiDict, MultiDict, MultiDictProxy

from gateway.sandbox.idp.clients import Client

if TYPE_CHECKING:
    from gateway.sandbox.idp.provider import SandboxProvider

log = structlog.get_logger("gateway.sandbox.idp")


@dataclass(frozen=True)
class HttpCall:
    """What authlib needs of one HTTP request, read in full before authlib sees it."""

    method: str
    uri: str
    headers: Mapping[str, str]
    query: MultiDict[str]
    form: MultiDict[str]
    body: bytes = b""

    @classmethod
    async def read(cls, request: web.Request, base_url: str) -> HttpCall:
        """The URI is rebuilt from the configured base URL, never from ``Host``.

        A form is read as UTF-8 whatever ``charset`` it names, bytes that are not UTF-8
        replaced (as the gateway's own token endpoint does): authlib then refuses what it
        cannot use with an OAuth error, where aiohttp's ``post()`` would raise.
        """
        form: MultiDict[str] = MultiDict()
        body = b""
        if request.method == "POST":
            body = await request.read()
            if request.content_type == "application/x-www-form-urlencoded":
                text = body.decode("utf-8", "replace")
                form = MultiDict(parse_qsl(text, keep_blank_values=True))
        uri = base_url + request.path_qs
        return cls(request.method, uri, request.headers, request.query.copy(), form, body)

    @classmethod
    def of(cls, uri: str, params: Mapping[str, str]) -> HttpCall:
        """An authorization request rebuilt from stored parameters (PAR, the picker)."""
        return cls("GET", uri, {}, MultiDict(params), MultiDict())


class AiohttpPayload(OAuth2Payload):
    def __init__(self, call: HttpCall) -> None:
        self._data = MultiDictProxy(MultiDict([*call.query.items(), *call.form.items()]))

    @property
    def data(self) -> MultiDictProxy[str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._data.items():
            values[key].append(value)
        return values


class AiohttpOAuth2Request(OAuth2Request):
    def __init__(self, call: HttpCall) -> None:
        super().__init__(method=call.method, uri=call.uri, headers=call.headers)
        self.call = call
        self.payload = AiohttpPayload(call)

    @property
    def args(self) -> MultiDict[str]:
        return self.call.query

    @property
    def form(self) -> MultiDict[str]:
        return self.call.form


class AiohttpJsonPayload(JsonPayload):
    def __init__(self, call: HttpCall) -> None:
        self._call = call

    @property
    def data(self) -> Any:
        return json.loads(self._call.body or b"null")


class AiohttpJsonRequest(JsonRequest):
    def __init__(self, call: HttpCall) -> None:
        super().__init__(call.method, call.uri, call.headers)
        self.payload = AiohttpJsonPayload(call)


class IssuerResponse(web.Response):
    """A response with the ``location`` attribute authlib's RFC 9207 extension edits."""

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    @location.setter
    def location(self, value: str) -> None:
        self.headers["Location"] = value


class ProviderIssuerParameter(IssuerParameter):
    """RFC 9207: ``iss`` on every redirect back to the client, success or error."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class AiohttpAuthorizationServer(AuthorizationServer):
    """authlib's server for one sandbox provider; storage is the provider's memory."""

    def __init__(self, provider: SandboxProvider) -> None:
        super().__init__(scopes_supported=None)
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.save_token(token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return AiohttpOAuth2Request(request)

    def create_json_request(self, request: Any) -> JsonRequest:
        return AiohttpJsonRequest(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> web.Response:
        out = CIMultiDict(headers or [])
        if isinstance(body, dict):
            data = json.dumps(body, ensure_ascii=False).encode()
            out.setdefault("Content-Type", "application/json")
        else:
            data = (body or "").encode() if isinstance(body, str) else body
        return IssuerResponse(status=status, body=data, headers=out)

    def handle_error_response(self, request: OAuth2Request, error: OAuth2Error) -> web.Response:
        # RFC 6749 §5.2: a client that failed to authenticate gets 401.
        if error.error == "invalid_client" and not error.redirect_uri:
            error.status_code = 401
        log.info("idp.refused", provider=self.provider.name, error=error.error)
        return super().handle_error_response(request, error)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("idp.signal", provider=self.provider.name, signal=name)


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    persona_id: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    acr: str
    amr: list[str] = field(default_factory=list)
    expires_at: float = 0.0

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return self.amr
