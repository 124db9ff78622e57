"""A relying party registered with a sandbox provider, and the checks on its registration.

Clients authenticate with ``private_key_jwt`` only, so a registration is a public JWK set
(EC P-256, Ed25519 or RSA of at least 2048 bits, each with its kid) and the exact redirect
URIs; nothing else is ever compared loosely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from authlib.oauth2.rfc6749 import ClientMixin


def new_client(client_id: str, jwks: dict[str, Any], redirect_uris: list[str]) -> Client:
    """A checked client; ValueError says what is wrong with the registration."""
    if not isinstance(client_id, str) or not client_id:
        raise ValueError("client_id must be a non-empty string")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError("jwks must be a JWK set with at least one key")
    for key in keys:
        _check_client_key(key)
    kids = [k["kid"] for k in keys]
    if len(set(kids)) != len(kids):
        raise ValueError("every key in jwks needs its own kid")
    if not redirect_uris or not all(_is_redirect_uri(uri) for uri in redirect_uris):
        raise ValueError("redirect_uris must be absolute http(s) URIs without a fragment")
    return Client(client_id, {"keys": [dict(k) for k in keys]}, tuple(redirect_uris))


def assertion_alg(jwk: dict[str, Any]) -> str | None:
    """The one algorithm a registered key may sign client assertions with."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    alg = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA", ("RSA", None): "PS256"}.get(
        (kty, crv)
    )
    return alg if jwk.get("alg") in (None, alg) else None


@dataclass
class Client(ClientMixin):
    """A registered relying party: private_key_jwt only, exact redirect URIs."""

    client_id: str
    jwks: dict[str, Any]
    redirect_uris: tuple[str, ...]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required, and compared exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return scope or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "private_key_jwt"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


def _check_client_key(key: Any) -> None:
    if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key["kid"]:
        raise ValueError("every key in jwks needs a kid")
    if any(member in key for member in ("d", "p", "q", "k")):
        raise ValueError("jwks must hold public keys only")
    alg = assertion_alg(key)
    if alg is None:
        raise ValueError("keys must be EC P-256, Ed25519 or RSA, with a matching alg if any")
    try:
        parsed = jwt.PyJWK(key, algorithm=alg)
    except jwt.PyJWTError as exc:
        raise ValueError(f"key {key['kid']} cannot be read") from exc
    if alg == "PS256" and parsed.key.key_size < 2048:
        raise ValueError("RSA keys must have at least 2048 bits")


def _is_redirect_uri(uri: Any) -> bool:
    if not isinstance(uri, str):
        return False
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment
