"""What the kit sends: each probe is one request (or a few) the gateway could send, or an
attacker could, built with the gateway's own signing code (:func:`sign_request`).

A probe is data: a name, what it sends in a sentence, the probes that must go first, and a
function building the outgoing requests from the run's context and what was sent before.
The checks (:mod:`gateway.conformance.checks`) say what each answer must be.

Refusal probes are named after the check that judges them, so a report naming a probe names
the check too. Each carries a fresh message id, so one probe's outcome never depends on
another's; ``redeliver-refused`` then delivers each refused message properly, to see that a
refusal kept nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from urllib.parse import urlsplit

from gateway.conformance.envelope import forwarded_message, message_in_format
from gateway.domain import ids
from gateway.services.ports import DocumentCodec
from gateway.trust.httpmessage import HttpMessage
from gateway.trust.keys import SigningKey
from gateway.trust.profile import LABEL, sign_request
from gateway.trust.sfv import parse_dictionary, serialize_item_parts

STALE_SECONDS = 600  # twice the ±300 s the profile allows
JSON = "application/json"


@dataclass(frozen=True)
class KitContext:
    """What every probe is built from: where, as whom, and when."""

    target: str
    key: SigningKey  # the key the partner trusts as the gateway's
    stranger: SigningKey  # a throwaway key the partner cannot know
    clock: Callable[[], datetime]
    # the partner's declared format (HK, MO, GD, canonical) and its codec, for native-delivery
    receives: str = "canonical"
    codec: DocumentCodec | None = None
    # an evidence issuer: the type to request (from --evidence-type or the agency document)
    # and the identifying fields to send (the sandbox's answer from a persona, else a refusal)
    evidence_type: str | None = None
    evidence_subject: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outgoing:
    """One request as it goes over the wire (headers exactly as sent)."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    message_id: str | None = None  # the message id inside the body
    genuine: bytes | None = None  # the body as the gateway signed it, before any change
    note: str = ""

    @cached_property
    def request(self) -> HttpMessage:
        """The request as the partner should see it, for the request-bound components."""
        return HttpMessage.request("POST", self.url, self.headers)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @cached_property
    def message(self) -> HttpMessage:
        return HttpMessage.response(self.status, self.headers)

    def header(self, name: str) -> str | None:
        return self.message.header(name)

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Exchange:
    """A request and what came back: an answer, or why none did."""

    sent: Outgoing
    answer: Answer | None
    error: str | None = None
    seconds: float = 0.0


Sent = Mapping[str, Sequence[Exchange]]


@dataclass(frozen=True)
class Probe:
    name: str
    summary: str  # what is sent, in one sentence
    build: Callable[[KitContext, Sent], list[Outgoing]]
    after: tuple[str, ...] = field(default=())


def signed(
    ctx: KitContext,
    body: bytes,
    message_id: str,
    *,
    key: SigningKey | None = None,
    url: str | None = None,
    created: datetime | None = None,
    idempotency_key: str | None = None,
    content_type: str = JSON,
) -> dict[str, str]:
    """The headers the gateway's partner client would send with ``body``."""
    return sign_request(
        method="POST",
        url=url or ctx.target,
        key=key or ctx.key,
        now=created or ctx.clock(),
        body=body,
        content_type=content_type,
        idempotency_key=idempotency_key or message_id,
    )


def _fresh(ctx: KitContext, note: str, **changes: object) -> list[Outgoing]:
    message_id, body = forwarded_message(ctx.clock())
    headers = signed(ctx, body, message_id, **changes)  # type: ignore[arg-type]
    return [Outgoing(ctx.target, headers, body, message_id, body, note)]


def _first(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    return _fresh(ctx, "the first delivery")


def _native(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    """A fresh forward in the partner's declared format (JSON when no codec is known)."""
    if ctx.codec is None:
        return _fresh(ctx, f"a delivery in the {ctx.receives} format")
    message_id, body, media_type = message_in_format(ctx.codec, ctx.clock())
    headers = signed(ctx, body, message_id, content_type=media_type)
    note = f"a delivery in the {ctx.receives} format ({media_type})"
    return [Outgoing(ctx.target, headers, body, message_id, body, note)]


def _evidence_request(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    """A signed evidence request, as the gateway's outbox sends it (none to a partner that
    declares no evidence type: its check is skipped)."""
    if ctx.evidence_type is None:
        return []
    message_id, now = ids.new_message_id(), ctx.clock()
    request = {
        "type": "evidence_request",
        "message_id": message_id,
        "request_id": message_id,
        "evidence_type": ctx.evidence_type,
        "subject": dict(ctx.evidence_subject),
        "matter": "conformance",
        "application_id": ids.new_application_id(),
        "consent_id": None,
        "requested_at": now.isoformat(),
        "answer_by": (now + timedelta(hours=24)).isoformat(),
    }
    body = json.dumps(request, ensure_ascii=False, sort_keys=True).encode()
    headers = signed(ctx, body, message_id)
    note = f"an evidence request for {ctx.evidence_type}"
    return [Outgoing(ctx.target, headers, body, message_id, body, note)]


def _redelivery(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    first = sent["first-delivery"][0].sent
    assert first.message_id is not None
    headers = signed(ctx, first.body, first.message_id)  # a new signature: created, nonce
    return [Outgoing(ctx.target, headers, first.body, first.message_id, first.body, "redelivery")]


def _replay(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    first = sent["first-delivery"][0].sent
    return [Outgoing(first.url, dict(first.headers), first.body, first.message_id, first.body)]


def _tampered(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    (genuine,) = _fresh(ctx, "")
    document = json.loads(genuine.body)
    document["application"]["particulars"]["capital"]["amount"] = "5000000.00"
    body = json.dumps(document, ensure_ascii=False).encode()
    return [Outgoing(ctx.target, genuine.headers, body, genuine.message_id, genuine.body)]


def _bad_signature(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    (genuine,) = _fresh(ctx, "")
    headers = dict(genuine.headers)
    signature = bytearray(parse_dictionary(headers["Signature"])[LABEL].value)
    signature[-1] ^= 0x01
    headers["Signature"] = f"{LABEL}={serialize_item_parts(bytes(signature))}"
    return [Outgoing(ctx.target, headers, genuine.body, genuine.message_id, genuine.body)]


def _missing_signature(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    (genuine,) = _fresh(ctx, "")
    headers = {
        k: v for k, v in genuine.headers.items() if k not in ("Signature", "Signature-Input")
    }
    return [Outgoing(ctx.target, headers, genuine.body, genuine.message_id, genuine.body)]


def _elsewhere(target: str) -> str:
    parts = urlsplit(target)
    return f"{parts.scheme}://{parts.netloc}/gba-conformance/another-agency/messages"


def _stale(ctx: KitContext) -> datetime:
    return ctx.clock() - timedelta(seconds=STALE_SECONDS)


def _malformed(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    message_id = ids.new_message_id()
    body = b'{"message_id": "' + message_id.encode() + b'", "application_id": '
    headers = signed(ctx, body, message_id)
    return [Outgoing(ctx.target, headers, body, None, None)]


REFUSAL_PROBES: tuple[str, ...] = (
    "refuses-replay",
    "refuses-tampered-body",
    "refuses-bad-signature",
    "refuses-missing-signature",
    "refuses-unknown-key",
    "refuses-wrong-target",
    "refuses-stale",
    "refuses-idempotency-mismatch",
    "refuses-malformed-body",
)
# The refusal probes whose signature is the gateway's own, valid and fresh: only answers to
# these can be bound to our request's signature ("signature";req), so only these must be
# signed. An answer to an unsigned, forged or stale request has nothing to bind to.
AUTHENTIC_REFUSAL_PROBES: tuple[str, ...] = (
    "refuses-replay",
    "refuses-idempotency-mismatch",
    "refuses-malformed-body",
)


def _redeliver_refused(ctx: KitContext, sent: Sent) -> list[Outgoing]:
    """Each message that a refusal probe carried and that was refused, delivered properly."""
    out = []
    for name in REFUSAL_PROBES:
        for exchange in sent.get(name, ()):
            refused = exchange.answer is not None and 400 <= exchange.answer.status < 500
            if name == "refuses-replay" or not refused or exchange.sent.message_id is None:
                continue
            message_id, body = exchange.sent.message_id, exchange.sent.genuine
            assert body is not None
            headers = signed(ctx, body, message_id)
            out.append(Outgoing(ctx.target, headers, body, message_id, body, f"{name}'s message"))
    return out


PROBES: dict[str, Probe] = {
    probe.name: probe
    for probe in (
        Probe("first-delivery", "a fresh forwarded message, signed as the gateway", _first),
        Probe(
            "native-delivery",
            "a fresh forwarded message in the partner's declared format (HK or Macau XML"
            " message, or the JSON message), signed as the gateway",
            _native,
        ),
        Probe(
            "redelivery",
            "the same message again (same id and body) with a new signature",
            _redelivery,
            after=("first-delivery",),
        ),
        Probe(
            "refuses-replay",
            "the first delivery's request again, byte for byte (same signature and nonce)",
            _replay,
            after=("first-delivery",),
        ),
        Probe(
            "refuses-tampered-body",
            "a signed message whose body was changed after signing (digest now wrong)",
            _tampered,
        ),
        Probe(
            "refuses-bad-signature",
            "a signed message whose signature bytes were altered",
            _bad_signature,
        ),
        Probe(
            "refuses-missing-signature",
            "a message with Content-Digest but no Signature or Signature-Input",
            _missing_signature,
        ),
        Probe(
            "refuses-unknown-key",
            "a message signed by a throwaway key under a key id the partner does not know",
            lambda ctx, sent: _fresh(ctx, "", key=ctx.stranger),
        ),
        Probe(
            "refuses-wrong-target",
            "a message signed for another URL (@target-uri) and sent to this one",
            lambda ctx, sent: _fresh(ctx, "", url=_elsewhere(ctx.target)),
        ),
        Probe(
            "refuses-stale",
            f"a message whose signature was created {STALE_SECONDS} s ago",
            lambda ctx, sent: _fresh(ctx, "", created=_stale(ctx)),
        ),
        Probe(
            "refuses-idempotency-mismatch",
            "a signed message whose Idempotency-Key differs from its message_id",
            lambda ctx, sent: _fresh(ctx, "", idempotency_key=ids.new_message_id()),
        ),
        Probe(
            "refuses-malformed-body",
            "a correctly signed body that is not well-formed JSON",
            _malformed,
        ),
        Probe(
            "evidence-request",
            "a signed evidence request for a type the partner issues (issuers only)",
            _evidence_request,
        ),
        Probe(
            "redeliver-refused",
            "each refused message again, now properly signed",
            _redeliver_refused,
            after=REFUSAL_PROBES,
        ),
    )
}
