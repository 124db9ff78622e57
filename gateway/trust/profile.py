"""The partner API signature profile of DESIGN.md, for both sides of every exchange.

Requests cover ``"@method" "@target-uri"`` plus ``"content-digest" "content-type"`` when
there is a body and ``"idempotency-key"``, ``"gba-channel"`` and ``"gba-legal-basis"`` when
present; responses cover ``"@status" "content-digest" "content-type"`` and the request-bound
``"@method";req "@target-uri";req "signature";req;key="sig1"``, so an answer verifies only
with the one signed request it answers (RFC 9421 §2.4); an unsigned request gets no signed
answer.
Every signature carries ``created``, ``nonce``, ``keyid`` and ``tag="gba-gateway"``.
Everything here is framework-free: the web edge, the partner client, the sandbox agencies
and the demo all sign and verify through these functions.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

from gateway.trust.digest import StreamedDigest, content_digest, verify_content_digest
from gateway.trust.httpsig import (
    APPLICATION_TAG,
    Component,
    HttpMessage,
    SignatureParams,
    VerifiedSignature,
    VerifyPolicy,
    components,
    sign,
    verify,
)
from gateway.trust.keys import SigningKey, VerificationKey

LABEL = "sig1"
_RESPONSE_POLICY = VerifyPolicy.for_response(label=LABEL, request_label=LABEL)
_RESPONSE_COMPONENTS = _RESPONSE_POLICY.required_components


@lru_cache(maxsize=16)
def _request_policy(has_body: bool, max_skew: int) -> VerifyPolicy:
    """The request policy (immutable), built once per shape rather than on every request."""
    policy = VerifyPolicy.for_request(has_body=has_body, label=LABEL)
    return policy if max_skew == policy.max_skew else replace(policy, max_skew=max_skew)


@lru_cache(maxsize=16)
def _covered(*names: str) -> tuple[Component, ...]:
    """The (immutable) components of a request signature, parsed once per shape."""
    return components(*names)


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def sign_request(
    *,
    method: str,
    url: str,
    key: SigningKey,
    now: datetime,
    body: bytes | None = None,
    content_type: str | None = None,
    idempotency_key: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every header a signed partner request needs (Content-Digest, Signature-Input ...)."""
    headers = dict(extra_headers or {})
    covered = ["@method", "@target-uri"]
    if body is not None:
        headers["Content-Type"] = content_type or "application/json"
        headers["Content-Digest"] = content_digest(body)
        covered += ["content-digest", "content-type"]
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
        covered.append("idempotency-key")
    if any(name.lower() == "gba-channel" for name in headers):
        covered.append("gba-channel")  # the channel a call states is signed (Art. 17-18)
    if any(name.lower() == "gba-legal-basis" for name in headers):
        covered.append("gba-legal-basis")  # so is the legal basis an agency declares
    message = HttpMessage.request(method, url, headers)
    params = SignatureParams(
        components=_covered(*covered),
        created=int(now.timestamp()),
        keyid=key.kid,
        nonce=new_nonce(),
        alg=key.alg,
        tag=APPLICATION_TAG,
    )
    headers.update(sign(message, key, params, label=LABEL))
    return headers


def sign_response(
    *,
    status: int,
    body: bytes,
    content_type: str,
    request: HttpMessage,
    key: SigningKey,
    now: datetime,
    digest: str | None = None,
) -> dict[str, str]:
    """Content-Type, Content-Digest and the signature binding a response to its request.

    ``request`` must carry the signature labelled ``sig1`` (ComponentError otherwise): only
    the answer to a signed request is signed. ``digest``: the body's RFC 9530 digest when
    it is streamed rather than given (a stored material, whose digest is known).
    """
    headers = {
        "Content-Type": content_type,
        "Content-Digest": content_digest(body) if digest is None else digest,
    }
    message = HttpMessage.response(status, headers)
    params = SignatureParams(
        components=_RESPONSE_COMPONENTS,
        created=int(now.timestamp()),
        keyid=key.kid,
        nonce=new_nonce(),
        alg=key.alg,
        tag=APPLICATION_TAG,
    )
    return {**headers, **sign(message, key, params, label=LABEL, request=request)}


def _lines(message: HttpMessage) -> int:
    return message.field_lines("content-digest")


def verify_request(
    message: HttpMessage,
    body: bytes,
    *,
    resolve_key: Callable[[str], VerificationKey],
    now: datetime,
    max_skew: int = 300,
) -> VerifiedSignature:
    """Signature first, then the digest against the raw bytes; nothing is parsed before."""
    policy = _request_policy(bool(body), max_skew)
    verified = verify(message, resolve_key=resolve_key, policy=policy, now=now)
    if body or message.header("content-digest") is not None:
        verify_content_digest(message.header("content-digest"), body, lines=_lines(message))
    return verified


def verify_streamed_request(
    message: HttpMessage,
    *,
    resolve_key: Callable[[str], VerificationKey],
    now: datetime,
    max_skew: int = 300,
) -> tuple[VerifiedSignature, StreamedDigest]:
    """A request whose body streams (an upload): the signature, which must cover
    ``content-digest``, before any byte of the body is read; then the digest the client
    declared, to be computed while the body streams and checked at its end."""
    verified = verify(
        message, resolve_key=resolve_key, policy=_request_policy(True, max_skew), now=now
    )
    return verified, StreamedDigest(message.header("content-digest"), lines=_lines(message))


def verify_response(
    message: HttpMessage,
    body: bytes,
    *,
    request: HttpMessage,
    resolve_key: Callable[[str], VerificationKey],
    now: datetime,
) -> VerifiedSignature:
    """A partner's (or the gateway's) signed answer to ``request``."""
    verified = verify(
        message,
        resolve_key=resolve_key,
        policy=_RESPONSE_POLICY,
        now=now,
        request=request,
    )
    verify_content_digest(message.header("content-digest"), body, lines=_lines(message))
    return verified
