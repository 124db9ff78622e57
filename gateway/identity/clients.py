"""OIDC clients of the gateway: their metadata, and how they authenticate (private_key_jwt).

A client is a portal, kiosk or counter system. It has exact redirect URIs (no wildcards,
no fragments, no user info) — and, for RP-initiated logout, exact
``post_logout_redirect_uris`` under the same rules — public keys (its ``jwks``), the partner
agency its tokens are bound to and a channel. Production clients come from ``clients_file``;
in sandbox mode portals may also register themselves (RFC 7591). Clients have no secrets: the
token endpoint accepts only an RFC 7523 client assertion signed with one of the client's keys,
whose ``aud`` is the gateway's issuer and nothing else, with a short ``exp`` and a ``jti``
never seen before.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from authlib.common.security import generate_token

from gateway.domain.documents import problem
from gateway.domain.errors import ConfigurationError, FieldProblem, ValidationFailedError
from gateway.identity.errors import invalid_client
from gateway.identity.jose import JoseError, alg_for_key, unverified, verify_jws
from gateway.identity.ports import CHANNELS, Client, OidcStore
from gateway.trust.jws import JwsPolicy
from gateway.trust.keys import KeyMisuseError, public_key_from_jwk

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300
ASSERTION_TYPES = (None, "JWT", "client-authentication+jwt")
# What a client assertion must be, for the one JWS verifier: signed with one of the client's
# registered keys (which may omit ``use`` and ``alg``, as clients publish them); the rest of
# RFC 7523 (iss = sub = the client, aud = the issuer alone, a short life, a fresh jti) below.
CLIENT_ASSERTION_POLICY = JwsPolicy(
    name="client assertion",
    typs=frozenset(ASSERTION_TYPES),
    algs=frozenset({"ES256", "EdDSA", "PS256"}),
    key_use_required=False,
    key_alg_required=False,
    required_claims=("iss", "sub", "aud", "exp", "jti"),
    leeway=5,
)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _redirect_problem(uri: object, sandbox: bool) -> bool:
    if not isinstance(uri, str) or len(uri) > 500 or "*" in uri or "#" in uri:
        return True
    parts = urlsplit(uri)
    if parts.scheme == "http" and sandbox and parts.hostname in _LOOPBACK:
        pass
    elif parts.scheme != "https":
        return True
    return not parts.hostname or "@" in parts.netloc


def _key_problems(jwks: object) -> list[FieldProblem]:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > 10:
        return [problem("/jwks", "invalid_key")]
    problems, kids = [], set()
    for n, jwk in enumerate(keys):
        try:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                raise KeyMisuseError("no kid")
            key = public_key_from_jwk(jwk)
            if jwk.get("alg", alg_for_key(key)) != alg_for_key(key):
                raise KeyMisuseError("alg")
        except KeyMisuseError:
            problems.append(problem(f"/jwks/keys/{n}", "invalid_key"))
            continue
        if jwk["kid"] in kids:
            problems.append(problem(f"/jwks/keys/{n}", "invalid_key"))
        kids.add(jwk["kid"])
    return problems


def client_from_metadata(
    data: Mapping[str, Any], *, client_id: str | None, sandbox: bool, default_agency: str = ""
) -> Client:
    """A client from RFC 7591 metadata (or a clients_file entry); every problem at once."""
    problems: list[FieldProblem] = []
    uris = data.get("redirect_uris")
    if not isinstance(uris, list) or not uris or len(uris) > 10:
        problems.append(problem("/redirect_uris", "required"))
    else:
        problems += [
            problem(f"/redirect_uris/{n}", "invalid_value")
            for n, uri in enumerate(uris)
            if _redirect_problem(uri, sandbox)
        ]
    after_logout = data.get("post_logout_redirect_uris", [])
    if not isinstance(after_logout, list) or len(after_logout) > 10:
        problems.append(problem("/post_logout_redirect_uris", "wrong_type"))
        after_logout = []
    else:
        problems += [
            problem(f"/post_logout_redirect_uris/{n}", "invalid_value")
            for n, uri in enumerate(after_logout)
            if _redirect_problem(uri, sandbox)
        ]
    problems += _key_problems(data.get("jwks"))
    method = data.get("token_endpoint_auth_method", "private_key_jwt")
    if method != "private_key_jwt":
        problems.append(problem("/token_endpoint_auth_method", "invalid_value"))
    grant_types = data.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not {"authorization_code"} <= set(grant_types) <= {
        "authorization_code",
        "refresh_token",
    }:
        problems.append(problem("/grant_types", "invalid_value"))
    if set(data.get("response_types", ["code"])) != {"code"}:
        problems.append(problem("/response_types", "invalid_value"))
    channel = data.get("channel", "online")
    if channel not in CHANNELS:
        problems.append(problem("/channel", "invalid_value"))
    agency = data.get("agency_id", default_agency)
    if not isinstance(agency, str) or not agency:
        problems.append(problem("/agency_id", "required"))
    name = data.get("client_name", "")
    if not isinstance(name, str) or len(name) > 200:
        problems.append(problem("/client_name", "wrong_type"))
    documents = data.get("identity_documents", False)
    if not isinstance(documents, bool):
        problems.append(problem("/identity_documents", "wrong_type"))
    given_id = client_id or data.get("client_id")
    if not isinstance(given_id, str) or not 3 <= len(given_id) <= 100:
        problems.append(problem("/client_id", "required"))
    if problems:
        raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
    return Client(
        client_id=given_id,  # type: ignore[arg-type]
        redirect_uris=tuple(uris),  # type: ignore[arg-type]
        jwks={"keys": [dict(k) for k in data["jwks"]["keys"]]},
        agency_id=agency,  # type: ignore[arg-type]
        channel=channel,
        name=name,
        sandbox=sandbox,
        identity_documents=documents is True,
        post_logout_redirect_uris=tuple(after_logout),
    )


def new_client_id() -> str:
    return "sbx-" + generate_token(20)


def load_clients(path: Path) -> list[Client]:
    """``clients_file``: a YAML list under ``clients:`` (format in docs/identity.md)."""
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    entries = data.get("clients") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: expected a list under 'clients'")
    clients, problems = [], []
    for n, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict) or "agency_id" not in entry:
                raise ValidationFailedError("agency_id", errors=[problem("/agency_id", "required")])
            clients.append(client_from_metadata(entry, client_id=None, sandbox=False))
        except ValidationFailedError as exc:
            where = ", ".join(f"{p.pointer} {p.code}" for p in exc.errors)
            problems.append(f"clients[{n}]: {where}")
    if len({c.client_id for c in clients}) != len(clients):
        problems.append("a client_id is listed twice")
    if problems:
        raise ConfigurationError(f"{path}: " + "; ".join(problems))
    return clients


async def authenticate_client(
    form: Mapping[str, str],
    store: OidcStore,
    *,
    issuer: str,
    now: datetime,
    accept_sandbox: bool = True,
) -> Client:
    """The client proven by a private_key_jwt assertion, or ``invalid_client``."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise invalid_client("client authentication is private_key_jwt only")
    assertion = form.get("client_assertion", "")
    try:
        claimed = unverified(assertion).claims.get("iss")
    except JoseError as exc:
        raise invalid_client(f"client assertion refused: {exc}") from None
    if not isinstance(claimed, str) or len(claimed) > 100:
        raise invalid_client("the client assertion names no client")
    if form.get("client_id", claimed) != claimed:
        raise invalid_client("client_id is not the client of the assertion")
    client = await store.client(claimed)
    if client is None or (client.sandbox and not accept_sandbox):
        raise invalid_client("unknown client")
    try:
        claims = verify_jws(assertion, client.jwks, CLIENT_ASSERTION_POLICY, now=now).claims
    except JoseError as exc:
        raise invalid_client(f"client assertion refused: {exc}") from None
    _check_assertion(claims, client.client_id, issuer, now)
    expires = datetime.fromtimestamp(claims["exp"], now.tzinfo) + timedelta(seconds=60)
    if not await store.use_jti(f"client:{client.client_id}", claims["jti"], now, expires):
        raise invalid_client("the client assertion was already used (jti)")
    return client


def _check_assertion(claims: dict[str, Any], client_id: str, issuer: str, now: datetime) -> None:
    at = int(now.timestamp())
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise invalid_client("the assertion's iss and sub must both be the client id")
    if claims.get("aud") != issuer:
        raise invalid_client("the assertion's aud must be the gateway's issuer, alone")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= at - 5:
        raise invalid_client("the assertion has expired or has no exp")
    if exp > at + MAX_ASSERTION_LIFETIME:
        raise invalid_client("the assertion lives too long (exp)")
    iat = claims.get("iat", at)
    if not isinstance(iat, int) or iat > at + 60 or exp - iat > MAX_ASSERTION_LIFETIME:
        raise invalid_client("the assertion's iat is not now")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
        raise invalid_client("the assertion has no jti")
