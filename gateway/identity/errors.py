"""OAuth 2.0 protocol errors (RFC 6749 §5.2), answered in OAuth's own JSON form.

The token, registration and introspection endpoints speak to OAuth clients, which expect
``{"error": ..., "error_description": ...}`` rather than RFC 9457 problems, so these errors
are not :class:`~gateway.domain.errors.GatewayError` s: only the OIDC routes render them.
Refusals during a resident's login (upstream or at the authorization endpoint before the
redirect URI is trusted) stay GatewayErrors (``login-failed``, ``bad-request``).
"""

from __future__ import annotations


class OAuthError(Exception):
    """One RFC 6749 error; ``description`` names the check, never a token or a person."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def as_dict(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)
