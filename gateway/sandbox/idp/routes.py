"""The sandbox identity providers' HTTP endpoints, under ``/sandbox/idp/{provider}``, and the
testers' key rotation under ``/sandbox/v1/idps/{provider}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import jurisdictions
from gateway.domain.documents import problem
from gateway.domain.errors import NotFoundError, ValidationFailedError
from gateway.sandbox.idp import endpoints
from gateway.sandbox.idp.oauth import HttpCall
from gateway.sandbox.idp.provider import SandboxProvider
from gateway.sandbox.idp.providers import SandboxIdentityProviders
from gateway.services.ports import Clock
from gateway.settings import Settings
from gateway.web.auth import read_body
from gateway.web.keys import SETTINGS
from gateway.web.openapi import OAUTH_ERROR, operation, path_param
from gateway.web.problems import json_object, json_response

IDENTITY_PROVIDERS = web.AppKey("sandbox_identity_providers", SandboxIdentityProviders)
PREFIX = "/sandbox/idp/{provider}"
TAG = "sandbox identity providers"
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
# One sandbox provider per registered jurisdiction that has one; any other name is a 404.
_PROVIDER = [
    path_param(
        "provider",
        "a registered jurisdiction's sandbox identity provider: hk, macau, guangdong",
        lambda: {"enum": [j.provider for j in jurisdictions.registered() if j.sandbox_idp]},
    )
]
routes = web.RouteTableDef()


def install_identity_providers(
    app: web.Application, settings: Settings, clock: Clock
) -> SandboxIdentityProviders:
    """Create the three sandbox OpenID providers (keys in memory) and mount their routes."""
    providers = SandboxIdentityProviders(settings.base_url, clock)
    app[IDENTITY_PROVIDERS] = providers
    app.add_routes(routes)
    return providers


def _provider(request: web.Request) -> SandboxProvider:
    try:
        return request.app[IDENTITY_PROVIDERS].provider(request.match_info["provider"])
    except KeyError:
        raise NotFoundError("no such sandbox identity provider") from None


async def _call(request: web.Request) -> HttpCall:
    return await HttpCall.read(request, request.app[SETTINGS].base_url)


@routes.get(PREFIX + "/.well-known/openid-configuration")
@operation(
    summary="OpenID provider metadata of a sandbox identity provider (hk, macau, guangdong)",
    tag=TAG,
    parameters=_PROVIDER,
    responses={200: ("Provider metadata", {"type": "object"}), 404: "No such provider"},
    sandbox_only=True,
)
async def discovery(request: web.Request) -> web.Response:
    return json_response(_provider(request).discovery())


@routes.get(PREFIX + "/jwks")
@operation(
    summary="The provider's public ID-token signing keys",
    tag=TAG,
    parameters=_PROVIDER,
    responses={200: ("JWK set", {"type": "object"}), 404: "No such provider"},
    sandbox_only=True,
)
async def jwks(request: web.Request) -> web.Response:
    return json_response(_provider(request).serve_jwks())


@routes.get(PREFIX + "/authorize")
@operation(
    summary="Authorization endpoint: code flow with PKCE S256; login_hint=<persona id> logs "
    "the persona in at once, otherwise an HTML persona picker",
    tag=TAG,
    parameters=_PROVIDER,
    responses={
        200: "HTML persona picker (text/html)",
        302: "Back to redirect_uri with code, state and iss (or error, state and iss)",
        400: "Unknown client, redirect URI not registered, or bad request_uri",
        404: "No such provider",
    },
    sandbox_only=True,
)
async def authorize(request: web.Request) -> web.Response:
    return endpoints.authorize(_provider(request), await _call(request))


@routes.post(PREFIX + "/authorize")
@operation(
    summary="The persona picked on the HTML page",
    tag=TAG,
    parameters=_PROVIDER,
    request={
        _FORM: {
            "type": "object",
            "required": ["interaction", "persona"],
            "properties": {"interaction": {"type": "string"}, "persona": {"type": "string"}},
        }
    },
    responses={
        302: "Back to redirect_uri with code, state and iss",
        400: "The page expired or the persona is not offered here",
        404: "No such provider",
    },
    sandbox_only=True,
)
async def choose(request: web.Request) -> web.Response:
    return endpoints.choose(_provider(request), await _call(request))


@routes.post(PREFIX + "/token")
@operation(
    summary="Token endpoint: authorization_code grant, private_key_jwt client authentication",
    tag=TAG,
    parameters=_PROVIDER,
    request={_FORM: {"type": "object", "required": ["grant_type", "client_assertion"]}},
    responses={
        200: ("access_token, token_type, expires_in, id_token, scope", {"type": "object"}),
        400: ("OAuth error (RFC 6749 JSON, e.g. invalid_grant)", OAUTH_ERROR, _JSON),
        401: ("Client authentication failed (invalid_client, RFC 6749 JSON)", OAUTH_ERROR, _JSON),
        404: "No such provider",
    },
    sandbox_only=True,
)
async def token(request: web.Request) -> web.Response:
    return endpoints.token(_provider(request), await _call(request))


@routes.post(PREFIX + "/par")
@operation(
    summary="Pushed authorization request (RFC 9126; hk only), private_key_jwt",
    tag=TAG,
    parameters=_PROVIDER,
    request={_FORM: {"type": "object", "required": ["client_assertion"]}},
    responses={
        201: ("request_uri and expires_in", {"type": "object"}),
        400: ("OAuth error (RFC 6749 JSON)", OAUTH_ERROR, _JSON),
        401: ("Client authentication failed (invalid_client, RFC 6749 JSON)", OAUTH_ERROR, _JSON),
        404: "No such provider, or no PAR at this provider",
    },
    sandbox_only=True,
)
async def par(request: web.Request) -> web.Response:
    provider = _provider(request)
    if not provider.supports_par:
        raise NotFoundError("this provider has no pushed authorization request endpoint")
    return endpoints.par(provider, await _call(request))


@routes.get(PREFIX + "/userinfo")
@operation(
    summary="UserInfo: sub and the provider's profile claims for a Bearer access token",
    tag=TAG,
    parameters=_PROVIDER,
    responses={
        200: ("sub and profile claims", {"type": "object"}),
        401: ("Missing, unknown or expired access token", OAUTH_ERROR, _JSON),
        404: "No such provider",
    },
    sandbox_only=True,
)
async def userinfo(request: web.Request) -> web.Response:
    return endpoints.userinfo(_provider(request), request.headers.get("Authorization", ""))


def _keys_json(provider: SandboxProvider) -> dict[str, Any]:
    return {
        "provider": provider.name,
        "kid": provider.key.kid,
        "previous_kid": provider.previous_key.kid if provider.previous_key else None,
        "published_kids": [key["kid"] for key in provider.jwks()["keys"]],
        "jwks_requests": provider.jwks_requests,
    }


_KEYS = {
    "type": "object",
    "properties": {
        "provider": {"type": "string"},
        "kid": {"type": "string", "description": "the key ID tokens are signed with now"},
        "previous_kid": {"type": ["string", "null"], "description": "the key before rotation"},
        "published_kids": {"type": "array", "items": {"type": "string"}},
        "jwks_requests": {"type": "integer", "description": "key sets served since start"},
    },
}


@routes.get("/sandbox/v1/idps/{provider}/keys")
@operation(
    summary="A sandbox identity provider's signing keys: the current kid, the published ones, "
    "and how often its key set was fetched",
    tag="sandbox",
    parameters=_PROVIDER,
    responses={200: ("The provider's keys", _KEYS), 404: "No such provider"},
    sandbox_only=True,
)
async def keys(request: web.Request) -> web.Response:
    return json_response(_keys_json(_provider(request)))


@routes.post("/sandbox/v1/idps/{provider}/rotate-key")
@operation(
    summary="Rotate a sandbox identity provider's signing key while the gateway runs: ID tokens "
    "are signed with a new kid from now on; the old key is dropped from its JWKS at once, or "
    "with keep_previous kept beside the new one until the next rotation",
    tag="sandbox",
    parameters=_PROVIDER,
    request={
        "application/json": {
            "type": "object",
            "properties": {"keep_previous": {"type": "boolean", "default": False}},
            "additionalProperties": False,
        }
    },
    responses={
        200: ("The provider's keys after the rotation", _KEYS),
        400: "Malformed JSON",
        404: "No such provider",
        415: "A body that is not JSON",
        422: "Bad fields",
    },
    sandbox_only=True,
)
async def rotate_key(request: web.Request) -> web.Response:
    provider = _provider(request)
    options = json_object(await read_body(request), request.content_type, "the rotation")
    keep_previous = options.pop("keep_previous", False)
    problems = [problem(f"/{name}", "unexpected_field") for name in options]
    if not isinstance(keep_previous, bool):
        problems.append(problem("/keep_previous", "wrong_type"))
    if problems:
        raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
    provider.rotate_key(keep_previous=keep_previous)
    return json_response(_keys_json(provider))
