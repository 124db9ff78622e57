"""The sandbox identity providers' HTTP endpoints, under ``/sandbox/idp/{provider}``."""

from __future__ import annotations

from aiohttp import web

from gateway import jurisdictions
from gateway.domain.errors import NotFoundError
from gateway.sandbox.idp import endpoints
from gateway.sandbox.idp.oauth import HttpCall
from gateway.sandbox.idp.provider import SandboxProvider
from gateway.sandbox.idp.providers import SandboxIdentityProviders
from gateway.services.ports import Clock
from gateway.settings import Settings
from gateway.web.keys import SETTINGS
from gateway.web.openapi import OAUTH_ERROR, operation, path_param
from gateway.web.problems import json_response

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
    return json_response(_provider(request).jwks())


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
