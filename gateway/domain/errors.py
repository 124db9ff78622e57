"""The one error tree of the gateway.

Every error a caller can see is a :class:`GatewayError`. Each class carries the slug of its
RFC 9457 problem type (documented in ``docs/problems/<slug>.md``), a title and an HTTP status.
The web edge renders them as ``application/problem+json``; nothing else does.

::

    GatewayError
    ├── BadRequestError                 400  bad-request
    │   ├── MalformedBodyError          400  malformed-body
    │   └── MissingHeaderError          400  missing-header
    ├── AuthenticationError             401  unauthenticated
    │   ├── SignatureMissingError       401  signature-missing
    │   ├── SignatureInvalidError       401  signature-invalid
    │   ├── UnknownKeyError             401  unknown-key
    │   ├── ReplayedRequestError        401  replayed-request
    │   ├── LoginFailedError            401  login-failed
    │   ├── InvalidTokenError           401  invalid-token
    │   └── SandboxTokenError           401  sandbox-token
    ├── DigestMismatchError             400  digest-mismatch
    ├── ForbiddenError                  403  forbidden
    │   ├── InsufficientAssuranceError  403  insufficient-assurance
    │   ├── ConsentRequiredError        403  consent-required
    │   └── DelegationError             403  delegation-required
    ├── NotFoundError                   404  not-found
    │   └── UnknownMatterError          404  unknown-matter
    ├── MethodNotAllowedError           405  method-not-allowed
    ├── RequestTimeoutError             408  request-timeout
    ├── ConflictError                   409  conflict
    │   └── IllegalTransitionError      409  illegal-transition
    ├── PayloadTooLargeError            413  payload-too-large
    ├── MisdirectedRequestError         421  misdirected-request
    ├── UnsupportedMediaTypeError       415  unsupported-media-type
    ├── ValidationFailedError           422  validation-failed
    │   └── NotExpressibleError         422  not-expressible
    ├── CertificateError                422  untrusted-certificate
    ├── IdempotencyConflictError        422  idempotency-conflict
    ├── RateLimitedError                429  rate-limited
    ├── NotReadyError                   503  not-ready
    ├── DeliveryError                   (not rendered: outbox relay only)
    │   ├── TransientDeliveryError      retried with backoff
    │   └── PermanentDeliveryError      parked as dead letter
    └── ConfigurationError              (not rendered: refuses to start)

``detail`` never carries personal data: callers build it from codes and counts only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Localized:
    """A short message in the three scripts every page and error must speak, and in
    Portuguese where a resident of Macao may be told it (``pt``; notifications)."""

    zh_hant: str
    zh_hans: str
    en: str
    pt: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"zh-Hant": self.zh_hant, "zh-Hans": self.zh_hans, "en": self.en}
        if self.pt:
            out["pt"] = self.pt
        return out


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem found in a document: where (JSON pointer or XPath), what (code), why."""

    code: str
    message: Localized
    pointer: str | None = None
    xpath: str | None = None

    def as_dict(self) -> dict[str, object]:
        where = {"xpath": self.xpath} if self.xpath is not None else {"pointer": self.pointer or ""}
        return {**where, "code": self.code, "message": self.message.as_dict()}


class GatewayError(Exception):
    """Root of every error a caller or an operator can see."""

    slug = "internal-error"
    title = "Internal error"
    status = 500

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = tuple(errors)
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequestError(GatewayError):
    slug, title, status = "bad-request", "Bad request", 400


class MalformedBodyError(BadRequestError):
    slug, title = "malformed-body", "The body cannot be parsed"


class MissingHeaderError(BadRequestError):
    slug, title = "missing-header", "A required header is missing"


class DigestMismatchError(GatewayError):
    slug, title, status = "digest-mismatch", "Content-Digest does not match the body", 400


class AuthenticationError(GatewayError):
    slug, title, status = "unauthenticated", "Authentication required", 401


class SignatureMissingError(AuthenticationError):
    slug, title = "signature-missing", "The request carries no acceptable signature"


class SignatureInvalidError(AuthenticationError):
    slug, title = "signature-invalid", "The request signature does not verify"


class UnknownKeyError(AuthenticationError):
    slug, title = "unknown-key", "The signing key is unknown, revoked or not valid now"


class ReplayedRequestError(AuthenticationError):
    slug, title = "replayed-request", "The signature nonce was already used"


class ForbiddenError(GatewayError):
    slug, title, status = "forbidden", "Not allowed for this caller", 403


class InsufficientAssuranceError(ForbiddenError):
    """The login's assurance level is below what the matter needs, or was not stated."""

    slug, title = "insufficient-assurance", "The login's assurance level is too low"


class ConsentRequiredError(ForbiddenError):
    slug, title = "consent-required", "The applicant's consent is needed for this transfer"


class DelegationError(ForbiddenError):
    slug, title = "delegation-required", "No delegation allows this agent to act"


class LoginFailedError(AuthenticationError):
    """A federated login was refused; ``detail`` names the check, never a token."""

    slug, title = "login-failed", "The login could not be completed"


class InvalidTokenError(AuthenticationError):
    slug, title = "invalid-token", "The access token is missing, invalid or expired"


class SandboxTokenError(AuthenticationError):
    """A sandbox reachable beyond loopback asks for its access token (docs/sandbox.md)."""

    slug, title = "sandbox-token", "The sandbox access token is missing or wrong"


class NotFoundError(GatewayError):
    slug, title, status = "not-found", "Not found", 404


class UnknownMatterError(NotFoundError):
    slug, title = "unknown-matter", "No matter with this code is in force"


class MethodNotAllowedError(GatewayError):
    slug, title, status = "method-not-allowed", "Method not allowed", 405


class RequestTimeoutError(GatewayError):
    """The request's body did not arrive within the configured time (``body_timeout``)."""

    slug, title, status = "request-timeout", "The request was not received in time", 408


class ConflictError(GatewayError):
    slug, title, status = "conflict", "Conflict with the current state", 409


class IllegalTransitionError(ConflictError):
    slug, title = "illegal-transition", "The application cannot move to that state now"


class PayloadTooLargeError(GatewayError):
    slug, title, status = "payload-too-large", "The body is larger than allowed", 413


class MisdirectedRequestError(GatewayError):
    """The ``Host`` names a host this gateway does not answer (DNS rebinding)."""

    slug, title, status = "misdirected-request", "This gateway does not serve that host", 421


class UnsupportedMediaTypeError(GatewayError):
    slug, title, status = "unsupported-media-type", "Unsupported content type", 415


class ValidationFailedError(GatewayError):
    slug, title, status = "validation-failed", "The document is not valid", 422


class NotExpressibleError(ValidationFailedError):
    """A document the destination format cannot carry whole: a field that would not come
    back from it, or a value it refuses (every problem listed)."""

    slug, title = "not-expressible", "The destination format cannot carry the document"


class CertificateError(GatewayError):
    """A certificate chain was refused; ``detail`` names the failed check, never a name."""

    slug, title, status = "untrusted-certificate", "The certificate chain is not trusted", 422


class IdempotencyConflictError(GatewayError):
    slug, title, status = (
        "idempotency-conflict",
        "The Idempotency-Key was used with another body",
        422,
    )


class RateLimitedError(GatewayError):
    """Too many requests from one signing key or one client address; ``Retry-After`` says
    when the next one will be accepted."""

    slug, title, status = "rate-limited", "Too many requests", 429


class NotReadyError(GatewayError):
    slug, title, status = "not-ready", "The gateway is not ready", 503


class DeliveryError(GatewayError):
    """A forward to a partner agency failed. Never rendered to a caller."""

    slug, title, status = "delivery-failed", "Delivery to a partner failed", 502


class TransientDeliveryError(DeliveryError):
    """Worth retrying later: timeouts, connection errors, 5xx, 429."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: the partner refused the message or answered unverifiably."""


class ConfigurationError(GatewayError):
    """The gateway refuses to start. Never rendered to a caller."""

    slug, title, status = "configuration", "Invalid configuration", 500


def renderable_errors() -> tuple[type[GatewayError], ...]:
    """All error classes a caller may receive (excludes delivery and configuration errors)."""
    seen: list[type[GatewayError]] = [GatewayError]
    stack = list(GatewayError.__subclasses__())
    while stack:
        cls = stack.pop(0)
        if issubclass(cls, DeliveryError | ConfigurationError):
            continue
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return tuple(seen)
