"""What each endpoint of a sandbox provider does, given the request read in full.

A request that cannot be trusted to redirect (unknown client, a redirect URI that is not
exactly registered, an unknown ``request_uri``) is answered with a 400 problem page and never
redirected. Every other refusal redirects back with ``error``, ``state`` and ``iss``.
"""

from __future__ import annotations

from aiohttp import web
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError

from gateway.domain.errors import BadRequestError
from gateway.sandbox.idp.grants import CodeGrant
from gateway.sandbox.idp.oauth import HttpCall
from gateway.sandbox.idp.pages import persona_picker
from gateway.sandbox.idp.provider import PAR_LIFETIME, SandboxProvider
from gateway.sandbox.personas import Persona
from gateway.web.problems import json_response

NO_STORE = {"Cache-Control": "no-store"}
_CLIENT_AUTH = ("client_assertion", "client_assertion_type")


def oauth_request(provider: SandboxProvider, call: HttpCall) -> OAuth2Request:
    try:
        return provider.server.create_oauth2_request(call)
    except InsecureTransportError:
        raise BadRequestError(
            "the sandbox identity providers need an https or loopback base URL"
        ) from None


def authorize(provider: SandboxProvider, call: HttpCall) -> web.Response:
    """GET /authorize: log the ``login_hint`` persona in at once, or show the picker."""
    params = _authorization_params(provider, call)
    user = provider.persona_for(params.get("login_hint"))
    request = oauth_request(provider, HttpCall.of(provider.endpoint("authorize"), params))
    grant = _consent(provider, request, user)
    if isinstance(grant, web.Response):
        return grant
    if user is not None:
        return _grant(provider, request, grant, user)
    handle = provider.hold(params)
    page = persona_picker(
        provider.profile.title, provider.endpoint("authorize"), handle, provider.personas()
    )
    return web.Response(text=page, content_type="text/html", headers=NO_STORE)


def choose(provider: SandboxProvider, call: HttpCall) -> web.Response:
    """POST /authorize: the persona picked on the page, for the request it held."""
    params = provider.resume(call.form.get("interaction", ""))
    if params is None:
        raise BadRequestError("this login page has expired or was already used; start again")
    user = provider.persona_for(call.form.get("persona"))
    if user is None:
        raise BadRequestError("choose one of the personas offered by this provider")
    request = oauth_request(provider, HttpCall.of(provider.endpoint("authorize"), params))
    grant = _consent(provider, request, user)
    if isinstance(grant, web.Response):
        return grant
    return _grant(provider, request, grant, user)


def _authorization_params(provider: SandboxProvider, call: HttpCall) -> dict[str, str]:
    request_uri = call.query.get("request_uri")
    if request_uri is None:
        for name in call.query:
            if len(call.query.getall(name)) > 1:
                raise BadRequestError(f"the parameter {name} is repeated")
        return dict(call.query)
    if not provider.supports_par:
        raise BadRequestError("this provider does not support request_uri")
    pushed = provider.pull(call.query.get("client_id", ""), request_uri)
    if pushed is None:
        raise BadRequestError("the request_uri is unknown, expired, used or not this client's")
    return pushed


def _consent(
    provider: SandboxProvider, request: OAuth2Request, user: Persona | None
) -> CodeGrant | web.Response:
    server = provider.server
    try:
        return server.get_consent_grant(request, end_user=user)
    except OAuth2Error as error:
        if not error.redirect_uri:
            raise BadRequestError(f"authorization request refused ({error.error})") from None
        response = server.handle_error_response(request, error)
        server.execute_hook("after_create_authorization_response", response)
        return _redirected(provider, response)


def _grant(
    provider: SandboxProvider, request: OAuth2Request, grant: CodeGrant, user: Persona
) -> web.Response:
    response = provider.server.create_authorization_response(request, grant_user=user, grant=grant)
    return _redirected(provider, response)


def _redirected(provider: SandboxProvider, response: web.Response) -> web.Response:
    if "Location" in response.headers:
        response.headers["Location"] = provider.redirect_location(response.headers["Location"])
        response.headers.update(NO_STORE)
    return response


def token(provider: SandboxProvider, call: HttpCall) -> web.Response:
    response = provider.server.create_token_response(oauth_request(provider, call))
    response.headers.update(NO_STORE)
    return response


def par(provider: SandboxProvider, call: HttpCall) -> web.Response:
    """RFC 9126: the client pushes its authorization request, authenticated like /token."""
    server = provider.server
    request = oauth_request(provider, call)
    try:
        client = server.authenticate_client(request, ["private_key_jwt"], endpoint="par")
        if any(len(call.form.getall(name)) > 1 for name in call.form):
            raise InvalidRequestError("A parameter is repeated.")
        if "request_uri" in call.form:
            raise InvalidRequestError("'request_uri' is not allowed in a pushed request.")
        if call.form.get("client_id", client.client_id) != client.client_id:
            raise InvalidRequestError("'client_id' does not match the client assertion.")
        params = {k: v for k, v in call.form.items() if k not in _CLIENT_AUTH}
        params["client_id"] = client.client_id
        pushed = oauth_request(provider, HttpCall.of(provider.endpoint("authorize"), params))
        server.get_consent_grant(pushed)
    except OAuth2Error as error:
        error.redirect_uri = None  # a pushed request is answered, never redirected
        return server.handle_error_response(request, error)
    body = {"request_uri": provider.push(client.client_id, params), "expires_in": PAR_LIFETIME}
    return json_response(body, status=201, headers=NO_STORE)


def userinfo(provider: SandboxProvider, authorization: str) -> web.Response:
    scheme, _, access_token = authorization.partition(" ")
    claims = provider.userinfo(access_token.strip()) if scheme.lower() == "bearer" else None
    if claims is None:
        return json_response(
            {"error": "invalid_token", "error_description": "The access token is not valid."},
            status=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return json_response(claims, headers=NO_STORE)
