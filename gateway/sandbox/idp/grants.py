"""The authorization code grant as the sandbox providers run it, built from authlib's parts.

- :class:`CodeGrant`: authlib's code grant; codes live in the provider's memory, are bound to
  the client and the redirect URI, valid 60 s and burnt on first presentation.
- :class:`S256Only`: PKCE is required, and only with ``S256`` (``plain`` or none refused).
- :class:`SandboxRules`: ``openid`` in ``scope`` and a ``state`` are required.
- :class:`ProviderOpenIDCode`: OpenID Connect on the code grant; ``nonce`` is required and the
  ID token is the provider's (see ``SandboxProvider.id_token``).
- :class:`PrivateKeyJwt`: the only client authentication, RFC 7523 ``private_key_jwt``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode

from gateway.sandbox.idp.clients import Client, assertion_alg
from gateway.sandbox.idp.oauth import (
    AiohttpAuthorizationServer,
    AuthorizationCode,
    ProviderIssuerParameter,
)
from gateway.sandbox.personas import Persona, persona

if TYPE_CHECKING:
    from gateway.sandbox.idp.provider import SandboxProvider

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("ES256", "EdDSA", "PS256")
ASSERTION_MAX_LIFETIME = 300  # seconds: exp at most 5 minutes ahead
LEEWAY = 5  # seconds of clock skew tolerated on exp, nbf and iat


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012 (authlib's interface)
    server: AiohttpAuthorizationServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.provider.save_code(code, request)

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return self.server.provider.take_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing left to do: :meth:`query_authorization_code` burnt it already."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Persona:
        return persona(authorization_code.persona_id)


class S256Only(CodeChallenge):
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (authlib's interface)
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: Any) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE requires 'code_challenge_method=S256'.")
        super().validate_code_challenge(grant, redirect_uri)


class SandboxRules:
    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    @staticmethod
    def validate(grant: Any, result: Any) -> None:
        data = grant.request.payload.data
        if "openid" not in (data.get("scope") or "").split():
            raise InvalidScopeError("The scope must contain 'openid'.")
        if not data.get("state"):
            raise InvalidRequestError("Missing 'state' in request.")


class ProviderOpenIDCode(OpenIDCode):
    def __init__(self, provider: SandboxProvider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        return self.provider.id_token(request.authorization_code, request.user)

    def generate_user_info(self, user: Persona, scope: str) -> dict[str, Any]:
        return self.provider.profile.profile(user)


class PrivateKeyJwt(JWTBearerClientAssertion):
    """RFC 7523 client authentication against the client's registered JWKS."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, provider: SandboxProvider) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.provider = provider

    def get_audiences(self) -> list[str]:
        p = self.provider
        return [p.issuer, p.endpoint("token"), p.endpoint("par")]

    def __call__(self, query_client: Any, request: OAuth2Request) -> Client | None:
        data = request.form
        assertion = data.get("client_assertion")
        if data.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        header, unverified = self.extract_assertion(assertion)
        sub = unverified.get("sub")
        client = query_client(sub) if isinstance(sub, str) else None
        if client is None:
            raise _refused("The client does not exist on this server.")
        key = self._key(client, header)
        try:
            claims = jwt.decode(assertion, key, algorithms=[key.algorithm_name], options=_OWN)
        except jwt.PyJWTError as exc:
            raise _refused("The client assertion does not verify.") from exc
        self.verify_claims(claims)
        request.client = client
        return self.authenticate_client(client)

    @staticmethod
    def _key(client: Client, header: dict[str, Any]) -> jwt.PyJWK:
        kid, alg = header.get("kid"), header.get("alg")
        keys = [k for k in client.jwks["keys"] if kid is None or k.get("kid") == kid]
        if len(keys) != 1:
            raise _refused("No single registered key matches the assertion kid.")
        if alg not in ASSERTION_ALGS or assertion_alg(keys[0]) != alg:
            raise _refused("The assertion alg is not allowed for the registered key.")
        return jwt.PyJWK(keys[0], algorithm=alg)

    def verify_claims(self, claims: dict[str, Any]) -> None:  # type: ignore[override]
        now = self.provider.now()
        if claims.get("iss") != claims.get("sub"):
            raise _refused("Issuer and Subject MUST match.")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if len(auds) != 1 or auds[0] not in self.get_audiences():
            raise _refused("The assertion aud must be the issuer.")
        exp = claims.get("exp")
        if not _number(exp):
            raise _refused("Missing claim: 'exp'.")
        if exp <= now - LEEWAY:
            raise _refused("The assertion has expired.")
        if exp > now + ASSERTION_MAX_LIFETIME + LEEWAY:
            raise _refused("The assertion exp is more than 5 minutes ahead.")
        for name in ("nbf", "iat"):
            if name in claims and (not _number(claims[name]) or claims[name] > now + LEEWAY):
                raise _refused(f"The assertion '{name}' is not acceptable.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _refused("Missing JWT ID.")
        if not self.provider.use_jti(claims["sub"], jti, float(exp)):
            raise _refused("JWT ID is used before.")


_OWN = {  # pyjwt checks the signature; the claims are checked above, on the provider's clock
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _refused(description: str) -> InvalidClientError:
    return InvalidClientError(description=description, status_code=401)


def build_server(provider: SandboxProvider) -> AiohttpAuthorizationServer:
    server = AiohttpAuthorizationServer(provider)
    server.register_client_auth_method("private_key_jwt", PrivateKeyJwt(provider))
    server.register_token_generator("default", provider.generate_token)
    server.register_grant(CodeGrant, [S256Only(), SandboxRules(), ProviderOpenIDCode(provider)])
    server.register_extension(ProviderIssuerParameter(provider.issuer))
    return server
