"""Partner authentication: RFC 9421 signature, RFC 9530 digest, durable nonce. In that order.

The body is read once, bounded by the configured limit, and checked against its digest
before anything parses it. Once the signature verified, the signing key's rate limit is
charged (:mod:`gateway.web.rate_limits`), and only then is the nonce recorded, so a
request whose signature fails leaves nothing behind. A write route records the nonce in
its use case's unit of work (:func:`signed_write`, :mod:`gateway.services.acceptance`); a
read records it on its own (:func:`authenticate`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from aiohttp import web

from gateway.domain.commands import Caller
from gateway.domain.errors import (
    BadRequestError,
    MissingHeaderError,
    PayloadTooLargeError,
    ReplayedRequestError,
    SignatureInvalidError,
    UnknownKeyError,
)
from gateway.services.acceptance import MessageAcceptance, accept_alone, keep_refused
from gateway.trust.digest import StreamedDigest, content_digest
from gateway.trust.httpsig import HttpMessage, VerifiedSignature, signature_keyid
from gateway.trust.keys import VerificationKey
from gateway.trust.profile import verify_request, verify_streamed_request
from gateway.web.keys import (
    AGENCY_ID,
    DEPENDENCIES,
    RATE_LIMITS,
    SETTINGS,
    STORE,
    VERIFIED_KEYID,
)
from gateway.web.messages import request_message

log = structlog.get_logger("gateway.web.auth")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    caller: Caller
    body: bytes
    media_type: str
    content_digest: str
    idempotency_key: str | None
    acceptance: MessageAcceptance  # not yet recorded: see verify()


async def read_body(request: web.Request) -> bytes:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLargeError(f"the body is larger than {limit} bytes") from None


def idempotency_key_of(request: web.Request) -> str:
    """The request's Idempotency-Key: required on every POST, 8 to 200 characters."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        raise MissingHeaderError("Idempotency-Key is required on every POST")
    if not 8 <= len(key) <= 200:
        raise BadRequestError("Idempotency-Key must be 8 to 200 characters")
    return key


async def verify(
    request: web.Request, *, require_idempotency: bool, keep_body: bool = True
) -> SignedRequest:
    """The calling agency, once its signature and digest hold; else a problem. Writes nothing.

    The key and its agency come from the process's registry snapshot, in memory (a key it does
    not know is looked up in the database). The acceptance is recorded only after the key is
    checked again where the request's writes commit, against the registry version then
    (``still_valid``): a revocation committed anywhere refuses the request even if this
    snapshot is older. The key's validity is judged against the clock now.
    The signature and digest are verified and the key's rate limit is charged. The
    nonce, the evidence and the audit entry are in ``acceptance``, for the use case to record
    in its unit of work. The body is kept as evidence unless ``keep_body`` is false (a body
    holding a bearer secret, such as a token sent for introspection: its digest is still on
    the audit chain).
    """
    body = await read_body(request)

    def check(message: HttpMessage, key: VerificationKey, now: datetime) -> VerifiedSignature:
        return verify_request(
            message,
            body,
            resolve_key=lambda _kid: key,
            now=now,
            max_skew=request.app[SETTINGS].signature_max_skew,
        )

    digest = content_digest(body)
    return await _verified(
        request,
        check,
        body=body,
        digest=digest,
        audited_digest=digest if body else None,
        evidence=body if body and keep_body else None,
        require_idempotency=require_idempotency,
    )


@dataclass(frozen=True, slots=True)
class SignedUpload:
    """A signed request whose body is yet to stream: ``digest`` checks it as it does."""

    signed: SignedRequest
    digest: StreamedDigest


async def verify_upload(request: web.Request) -> SignedUpload:
    """An upload's caller, from its signature alone (``content-digest`` covered), before any
    byte of the body is read; the body's digest is checked as it streams (``digest``).
    Writes nothing; the audit entry carries the declared (signed) SHA-256."""
    declared: list[StreamedDigest] = []

    def check(message: HttpMessage, key: VerificationKey, now: datetime) -> VerifiedSignature:
        verified, digest = verify_streamed_request(
            message,
            resolve_key=lambda _kid: key,
            now=now,
            max_skew=request.app[SETTINGS].signature_max_skew,
        )
        declared.append(digest)
        return verified

    signed = await _verified(
        request,
        check,
        body=b"",
        digest="",
        audited_digest=None,
        evidence=None,
        require_idempotency=True,
    )
    digest = declared[0]
    sha256 = digest.expected.get("sha-256")
    named = "sha-256=:" + base64.b64encode(sha256).decode() + ":" if sha256 else ""
    acceptance = dataclasses.replace(
        signed.acceptance,
        content_digest=named,
        audit={**signed.acceptance.audit, "content_digest": request.headers.get("Content-Digest")},
    )
    return SignedUpload(
        dataclasses.replace(signed, content_digest=named, acceptance=acceptance), digest
    )


async def _verified(
    request: web.Request,
    check: Callable[[HttpMessage, VerificationKey, datetime], VerifiedSignature],
    *,
    body: bytes,
    digest: str,
    audited_digest: str | None,
    evidence: bytes | None,
    require_idempotency: bool,
) -> SignedRequest:
    settings = request.app[SETTINGS]
    deps = request.app[DEPENDENCIES]
    message = request_message(request, settings.base_url)
    keyid = signature_keyid(message)
    idempotency_key = request.headers.get("Idempotency-Key")
    now = deps.clock.now()
    key, agency = await request.app[STORE].signer(keyid)
    verified = check(message, key, now)
    if key.sandbox and not settings.sandbox:
        raise SignatureInvalidError("sandbox keys are not accepted outside sandbox mode")
    request[VERIFIED_KEYID] = verified.keyid  # from here on, the answer is signed
    request.app[RATE_LIMITS].partner.charge(verified.keyid, "with this signing key")
    if require_idempotency or idempotency_key is not None:
        idempotency_key = idempotency_key_of(request)
    if agency is None:
        raise UnknownKeyError("the key's agency is not registered")
    assert verified.nonce is not None  # the profile requires one
    request[AGENCY_ID] = agency.id
    acceptance = MessageAcceptance(
        agency_id=agency.id,
        keyid=verified.keyid,
        nonce=verified.nonce,
        expires_at=now + timedelta(seconds=2 * settings.signature_max_skew),
        media_type=request.content_type,
        content_digest=digest,
        evidence=evidence,
        audit={
            "method": request.method,
            "target": message.target_uri,
            "content_digest": audited_digest,
            "signature": base64.b64encode(verified.signature).decode(),
            "signature_input": message.header("signature-input"),
            "created": verified.created,
            "idempotency_key": idempotency_key,
        },
        at=now,
    )
    return SignedRequest(
        caller=Caller(agency.id, agency.jurisdiction, verified.keyid),
        body=body,
        media_type=request.content_type,
        content_digest=digest,
        idempotency_key=idempotency_key,
        acceptance=acceptance,
    )


async def authenticate(
    request: web.Request, *, require_idempotency: bool, keep_body: bool = True
) -> SignedRequest:
    """A signed request that writes nothing else (a read, an introspection): verified, and
    its message accepted (nonce, evidence, audit entry) in a transaction of its own."""
    signed = await verify(request, require_idempotency=require_idempotency, keep_body=keep_body)
    await accept_alone(request.app[DEPENDENCIES].uow, signed.acceptance)
    return signed


@contextlib.asynccontextmanager
async def signed_write(
    request: web.Request, verified: SignedRequest | None = None
) -> AsyncIterator[SignedRequest]:
    """A signed write: verified here; the route hands ``signed.acceptance`` to its use case,
    which records it in its own unit of work (``verified``: a request verified already,
    an upload's by :func:`verify_upload`). Should the request be refused after it
    authenticated (a malformed body, 422, 409, ...), its nonce is burnt and its record kept
    all the same (:func:`gateway.services.acceptance.keep_refused`). A route whose use case
    did not record the acceptance fails closed: it is recorded on its own, and logged, so no
    signed write ever leaves its nonce unused."""
    signed = verified or await verify(request, require_idempotency=True)
    try:
        yield signed
    except ReplayedRequestError:
        raise
    except Exception:
        await keep_refused(request.app[DEPENDENCIES].uow, signed.acceptance)
        raise
    if not signed.acceptance.recorded():
        log.error(
            "acceptance.not_recorded",
            route=request.match_info.route.resource and request.match_info.route.resource.canonical,
        )
        await accept_alone(request.app[DEPENDENCIES].uow, signed.acceptance)
