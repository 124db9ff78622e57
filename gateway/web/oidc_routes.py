"""The identity broker's HTTP edge: OpenID Provider endpoints and upstream callbacks.

Portals: ``/.well-known/openid-configuration``, ``/oauth2/authorize`` (or
``/auth/{provider}/login``; without ``idp_hint`` the provider chooser page),
``/oauth2/token``, ``/oauth2/userinfo``, ``/oauth2/logout``; partner agencies:
``/oauth2/introspect`` (RFC 9421-signed, like the partner API); identity providers:
``/auth/{provider}/callback``. Sandbox mode adds ``/oauth2/register`` (RFC 7591); outside it
that route does not exist. The browser cookies: :mod:`gateway.web.sessions`. How the broker
works: docs/identity.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from multidict import MultiDictProxy

from gateway import jurisdictions
from gateway.domain.errors import BadRequestError, NotFoundError, UnsupportedMediaTypeError
from gateway.identity.broker import Broker, ChooseProvider
from gateway.identity.clients import load_clients
from gateway.identity.discovery import Upstreams, load_providers, sandbox_providers
from gateway.identity.errors import OAuthError, invalid_request
from gateway.identity.ports import Client, OidcStore
from gateway.identity.provider import AuthorizationRedirectError, OpenIdProvider
from gateway.identity.relying_party import RelyingParty
from gateway.identity.tokens import TokenService
from gateway.mapping.identity import IdentityProfile
from gateway.services.identity import sign_in
from gateway.store.oidc import SqlOidcStore
from gateway.trust.keys import SigningKey
from gateway.trust.keystore import OIDC, KeyRing
from gateway.web import i18n, sessions
from gateway.web.auth import authenticate, read_body
from gateway.web.bearer import BROKER, bearer_token
from gateway.web.keys import DEPENDENCIES, READINESS, SETTINGS, STORE
from gateway.web.openapi import OAUTH_ERROR, operation, path_param, query
from gateway.web.pages import ensure_pages, language, render
from gateway.web.problems import json_object, json_response

routes = web.RouteTableDef()
sandbox_routes = web.RouteTableDef()
SANDBOX_DEFAULT_AGENCY = "gd-hq-csb"
TAG = "identity"
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_AUTHORIZE_PARAMS = [
    query("client_id", "the portal's client id"),
    query("redirect_uri", "one of the client's registered redirect URIs, exactly"),
    query("response_type", "code"),
    query("scope", "openid, and identity_documents for document numbers (allowed clients)"),
    query("state", "required"),
    query("nonce", "required"),
    query("code_challenge", "PKCE S256 challenge"),
    query("code_challenge_method", "S256"),
    query("login_hint", "sandbox only: the persona to log in"),
    query("ui_locales", "the chooser's language (zh-Hant, zh-Hans, en, pt), unless lang= is given"),
    query("lang", "the chooser's language, as on every page"),
]
_PROVIDER = path_param(
    "provider",
    "a registered jurisdiction's identity provider: hk, macau, guangdong",
    lambda: {"enum": list(jurisdictions.registered().providers)},
)


def single_values(values: MultiDictProxy[str] | Mapping[str, str]) -> dict[str, str]:
    """Parameters given once each (RFC 6749 §3.1); a repeated one is refused."""
    items = list(values.items())
    if len(items) != len({name for name, _ in items}):
        raise BadRequestError("a parameter is repeated")
    return dict(items)


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, **_NO_STORE})


def _oauth_error(error: OAuthError) -> web.Response:
    return json_response(error.as_dict(), status=error.status, headers=dict(_NO_STORE))


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_type != _FORM:
        raise invalid_request(f"the body must be {_FORM}")
    pairs = parse_qsl((await read_body(request)).decode("utf-8", "replace"))
    if len({k for k, _ in pairs}) != len(pairs):
        raise invalid_request("a parameter is repeated")
    return dict(pairs)


@routes.get("/.well-known/openid-configuration")
@operation(
    summary="OpenID Provider metadata of the gateway (the identity broker toward portals)",
    tag=TAG,
    responses={200: ("OpenID Provider metadata", {"type": "object"})},
)
async def discovery(request: web.Request) -> web.Response:
    return json_response(request.app[BROKER].provider.discovery(request.app[SETTINGS].sandbox))


async def _authorize(request: web.Request, idp_hint: str | None) -> web.Response:
    params = single_values(request.query)
    secret = sessions.cookie_secret(request, sessions.LOGIN_COOKIE) or sessions.new_secret()
    try:
        location = await request.app[BROKER].start(
            params, idp_hint=idp_hint, browser_hash=sessions.secret_hash(secret)
        )
    except ChooseProvider as choice:
        return _chooser(request, params, choice)
    except AuthorizationRedirectError as refused:
        return _redirect(refused.location)
    response = _redirect(location)
    sessions.set_login_cookie(request, response, secret)
    return response


def _chooser(
    request: web.Request, params: Mapping[str, str], choice: ChooseProvider
) -> web.Response:
    """The provider chooser: one link per provider, continuing the same request."""
    lang = language(request)
    tr = i18n.Translator(lang)
    keep = {k: v for k, v in params.items() if k not in ("idp_hint", "lang")}
    if "lang" in params:
        keep["lang"] = lang
    providers = [
        {
            "id": name,
            "name": tr(name, "providers"),
            "hint": tr(name, "provider_hints"),
            "href": "/oauth2/authorize?" + urlencode({**keep, "idp_hint": name}),
        }
        for name in choice.providers
    ]
    context = {"client_name": choice.client.name, "providers": providers}
    return render(request, "chooser.html", context, lang=lang)


@routes.get("/oauth2/authorize")
@operation(
    summary="Authorization endpoint: code + PKCE S256; idp_hint=hk|macau|guangdong, "
    "else the provider chooser",
    tag=TAG,
    parameters=[
        query("idp_hint", "hk, macau or guangdong; absent: the chooser"),
        *_AUTHORIZE_PARAMS,
    ],
    responses={
        200: "The provider chooser (text/html), when idp_hint is absent and the request valid",
        302: "To the identity provider (setting the gba_login cookie), or back to redirect_uri "
        "with an error",
        400: "Unknown client, redirect URI not registered or unknown idp_hint (never redirected)",
    },
)
async def authorize(request: web.Request) -> web.Response:
    return await _authorize(request, None)


@routes.get("/auth/{provider}/login")
@operation(
    summary="The authorization endpoint with idp_hint taken from the path",
    tag=TAG,
    parameters=[_PROVIDER, *_AUTHORIZE_PARAMS],
    responses={302: "To the identity provider", 400: "Bad request", 404: "No such provider"},
)
async def login(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    if provider not in request.app[BROKER].relying_party.providers():
        raise NotFoundError("no such identity provider")
    return await _authorize(request, provider)


@routes.get("/auth/{provider}/callback")
@operation(
    summary="Where an identity provider returns the resident (RFC 9207 iss required)",
    tag=TAG,
    parameters=[_PROVIDER, query("code", "code"), query("state", "state"), query("iss", "issuer")],
    responses={
        302: "To the portal with code, state and iss (setting the gba_session cookie)",
        400: "A parameter is repeated",
        401: "Login refused (also: not the browser that started the login)",
        404: "No such identity provider",
    },
)
async def callback(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    if provider not in request.app[BROKER].relying_party.providers():
        raise NotFoundError("no such identity provider")
    login = sessions.cookie_secret(request, sessions.LOGIN_COOKIE)
    session = sessions.new_secret()
    location = await request.app[BROKER].finish(
        provider,
        single_values(request.query),
        browser_hash=sessions.secret_hash(login) if login else None,
        session_hash=sessions.secret_hash(session),
    )
    response = _redirect(location)
    sessions.set_session_cookie(request, response, session)
    return response


@routes.post("/oauth2/token")
@operation(
    summary="Token endpoint: authorization_code and refresh_token grants (rotating refresh "
    "tokens), private_key_jwt client authentication",
    tag=TAG,
    request={_FORM: {"type": "object", "required": ["grant_type", "client_assertion"]}},
    responses={
        200: (
            "access_token, token_type, expires_in, id_token, refresh_token, scope",
            {"type": "object"},
        ),
        400: ("OAuth error (RFC 6749 JSON)", OAUTH_ERROR, _JSON),
        401: ("invalid_client (RFC 6749 JSON)", OAUTH_ERROR, _JSON),
    },
)
async def token(request: web.Request) -> web.Response:
    try:
        answer = await request.app[BROKER].provider.token(await _form(request))
    except OAuthError as error:
        return _oauth_error(error)
    return json_response(answer, headers=dict(_NO_STORE))


@routes.get("/oauth2/userinfo")
@routes.post("/oauth2/userinfo")
@operation(
    summary="The resident's canonical identity claims for a Bearer access token",
    tag=TAG,
    responses={200: ("sub and identity claims", {"type": "object"}), 401: "Invalid token"},
)
async def userinfo(request: web.Request) -> web.Response:
    claims = await request.app[BROKER].provider.userinfo(bearer_token(request))
    return json_response(claims, headers=dict(_NO_STORE))


@routes.get("/oauth2/logout")
@routes.post("/oauth2/logout")
@operation(
    summary="RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ends the login the "
    "id_token_hint names, its refresh tokens and the OP session",
    tag=TAG,
    parameters=[
        query("id_token_hint", "an ID token the gateway issued for the login (may be expired)"),
        query("client_id", "optional; must be the ID token's audience"),
        query("post_logout_redirect_uri", "one the client registered; absent: a logged-out page"),
        query("state", "returned to the post_logout_redirect_uri"),
        query("lang", "the logged-out page's language"),
    ],
    responses={
        200: "Logged out (text/html), when no post_logout_redirect_uri is given",
        302: "To the post_logout_redirect_uri, with state",
        400: "No or invalid id_token_hint, or a post_logout_redirect_uri not registered "
        "(never redirected)",
    },
)
async def logout(request: web.Request) -> web.Response:
    if request.method == "POST":
        if request.content_type != _FORM:
            raise BadRequestError(f"the body must be {_FORM}")
        pairs = parse_qsl((await read_body(request)).decode("utf-8", "replace"))
        if len({k for k, _ in pairs}) != len(pairs):
            raise BadRequestError("a parameter is repeated")
        params = dict(pairs)
    else:
        params = single_values(request.query)
    location = await request.app[BROKER].provider.end_session(params)
    response = (
        _redirect(location)
        if location
        else render(request, "logged_out.html", {}, lang=language(request))
    )
    sessions.clear_session_cookie(request, response)
    return response


@routes.post("/oauth2/introspect")
@operation(
    summary="Token introspection (RFC 7662) for the partner agency a token is for",
    tag=TAG,
    request={_FORM: {"type": "object", "required": ["token"]}},
    responses={
        200: ("active, and the token's claims when active", {"type": "object"}),
        401: "Signature refused",
        415: f"Content-Type is not {_FORM}",
    },
    signed=True,
)
async def introspect(request: web.Request) -> web.Response:
    signed = await authenticate(request, require_idempotency=False, keep_body=False)
    if signed.media_type != _FORM:
        raise UnsupportedMediaTypeError(f"the body is {_FORM}")
    form = dict(parse_qsl(signed.body.decode("utf-8", "replace")))
    answer = await request.app[BROKER].provider.introspect(
        form.get("token", ""), signed.caller.agency_id
    )
    return json_response(answer, headers=dict(_NO_STORE))


@sandbox_routes.post("/oauth2/register")
@operation(
    summary="Dynamic client registration (RFC 7591), sandbox only",
    tag=TAG,
    request={"application/json": {"type": "object", "required": ["redirect_uris", "jwks"]}},
    responses={
        201: ("client_id and the client metadata", {"type": "object"}),
        400: "Malformed JSON",
        415: "Not JSON",
        422: "Invalid",
    },
    sandbox_only=True,
)
async def register(request: web.Request) -> web.Response:
    if not request.app[SETTINGS].sandbox:
        raise NotFoundError("no resource at this path")
    data = json_object(await read_body(request), request.content_type, "client metadata")
    client = await request.app[BROKER].provider.register(
        data, default_agency=SANDBOX_DEFAULT_AGENCY
    )
    issued_at = int(request.app[DEPENDENCIES].clock.now().timestamp())
    body: dict[str, Any] = {**client.metadata(), "client_id_issued_at": issued_at}
    return json_response(body, status=201, headers=dict(_NO_STORE))


def install(
    app: web.Application,
    ring: KeyRing,
    profiles: Mapping[str, IdentityProfile],
) -> Broker:
    """Build the broker from the settings, mount its routes and its start-up context."""
    settings, deps = app[SETTINGS], app[DEPENDENCIES]
    configs = (
        sandbox_providers(settings.base_url)
        if settings.sandbox and settings.identity_providers_file is None
        else load_providers(settings.identity_providers_file, sandbox=settings.sandbox)
        if settings.identity_providers_file
        else ()
    )
    readiness = app[READINESS]

    def ready(name: str, ok: bool) -> None:
        readiness[f"identity_provider_{name}"] = ok

    store = OidcStore(SqlOidcStore(app[STORE]))
    upstreams = Upstreams(
        configs,
        egress=settings.egress,
        timeout=settings.partner_timeout,
        readiness=ready,
        sandbox=settings.sandbox,
        refresh_seconds=settings.idp_metadata_refresh_seconds,
        refetch_seconds=settings.idp_jwks_refetch_seconds,
    )

    def oidc_keys() -> tuple[SigningKey, ...]:
        return tuple(k for k in ring.keys if k.purpose == OIDC)

    broker = Broker(
        relying_party=RelyingParty(
            upstreams,
            profiles,
            store,
            lambda: ring.current(OIDC),
            base_url=settings.base_url,
            sandbox=settings.sandbox,
            timeout=settings.partner_timeout,
            now=deps.clock.now,
        ),
        provider=OpenIdProvider(
            store,
            TokenService(
                store,
                oidc_keys,
                issuer=settings.base_url,
                access_lifetime=settings.access_token_seconds,
            ),
            issuer=settings.base_url,
            providers=lambda: [name for name in profiles if name in upstreams.configs],
            now=deps.clock.now,
            sandbox=settings.sandbox,
        ),
        store=store,
        sign_in=lambda identity: sign_in(identity, deps),
        sandbox=settings.sandbox,
    )
    app[BROKER] = broker
    ensure_pages(app)
    clients = load_clients(settings.clients_file) if settings.clients_file else []
    app.cleanup_ctx.append(_lifecycle(clients))
    app.add_routes(routes)
    if settings.sandbox:
        app.add_routes(sandbox_routes)
    return broker


def _lifecycle(clients: list[Client]) -> Any:
    """Clients from clients_file are stored at start; upstream metadata is fetched, then
    refreshed on a schedule until the gateway stops."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        broker = app[BROKER]
        await broker.register_clients(clients, app[DEPENDENCIES].clock.now())
        warming = asyncio.create_task(broker.relying_party.upstreams.run())
        yield
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming

    return context
