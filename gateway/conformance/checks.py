"""The checks of the conformance kit, in the order they run: one per rule of the partner API
contract (DESIGN.md, "Partner API v1") that a partner's inbox must keep.

Each check is data: a stable kebab-case id, a one-line description, what it expects, the
DESIGN.md rule, the probes whose answers it judges (:mod:`gateway.conformance.probes`: what
is sent) and its judge (:mod:`gateway.conformance.judges`: what must come back). Ids never
change meaning; new checks get new ids.

Refusals of a genuinely signed message must be signed, like acknowledgements: forwarded
messages "use the same signature profile", under which the answer to a signed request is
signed and bound to that request's signature. That is its own check (``refusals-signed``), so
a partner that signs only its acknowledgements is told exactly that. Refusals of an unsigned,
forged or stale message are not judged for a signature: there is no signature to bind to.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.conformance import judges as j
from gateway.conformance.probes import AUTHENTIC_REFUSAL_PROBES, REFUSAL_PROBES, STALE_SECONDS


@dataclass(frozen=True)
class Check:
    id: str
    description: str
    expects: str  # what the answer must be, in a few words
    rule: str  # the DESIGN.md rule it enforces
    probes: tuple[str, ...]  # the probes it judges (sent first, in order)
    judge: j.Judge


_PROFILE = "Signatures: RFC 9421 on every partner request and every response to it"
_RESPONSES = (
    'Responses are signed, covering "@status" "content-digest" "content-type" '
    '"@method";req "@target-uri";req "signature";req;key="sig1"'
)
_ACK = "Forwarded messages ... expect a signed acknowledgement; partners de-duplicate on it"


def _refusal(
    check_id: str, description: str, expects: str, rule: str, statuses: range = j.CLIENT_ERROR
) -> Check:
    return Check(
        check_id, description, expects, rule, (check_id,), j.refused(check_id, statuses, expects)
    )


UNAUTHORIZED = range(401, 402)

CHECKS: tuple[Check, ...] = (
    Check(
        "accepts-valid-message",
        "a freshly signed forwarded message is accepted",
        "2xx",
        "Forwarded messages to partners use the same signature profile",
        ("first-delivery",),
        j.accepts_valid_message,
    ),
    Check(
        "accepts-own-format",
        "a forward in the partner's declared format (native XML for an HK or Macau partner)"
        " is accepted with a signed acknowledgement",
        '2xx, signed, valid ack with status "received"',
        "Each agency receives forwards in the format it declared (receives), signed as ever",
        ("native-delivery",),
        j.accepts_own_format,
    ),
    Check(
        "ack-signed",
        "acknowledgements carry an RFC 9421 signature by the partner's key, bound to our request",
        "Signature/Signature-Input that verify",
        _RESPONSES,
        ("first-delivery", "redelivery"),
        j.ack_signed,
    ),
    Check(
        "ack-digest",
        "each acknowledgement's Content-Digest matches its bytes",
        "RFC 9530 sha-256 or sha-512 of the body",
        "Body integrity: RFC 9530 Content-Digest, checked against the raw bytes",
        ("first-delivery", "redelivery"),
        j.ack_digest,
    ),
    Check(
        "ack-schema",
        "acknowledgements are JSON with our message_id, status and an RFC 3339 received_at",
        "valid against mappings/schemas/partner-ack.schema.json",
        _ACK,
        ("first-delivery", "redelivery"),
        j.ack_schema,
    ),
    Check(
        "dedup-redelivery",
        "the same message redelivered with a new signature is acknowledged as a duplicate",
        '2xx, "received" then "duplicate"',
        "Idempotency-Key equal to the message id ...; partners de-duplicate on it",
        ("first-delivery", "redelivery"),
        j.dedup_redelivery,
    ),
    _refusal(
        "refuses-replay",
        "the identical signed request sent again (same nonce) is refused",
        "4xx",
        "nonce (never reused per key within the window)",
    ),
    _refusal(
        "refuses-tampered-body",
        "a body changed after signing is refused",
        "4xx",
        "Content-Digest ... checked against the raw bytes",
    ),
    _refusal(
        "refuses-bad-signature",
        "a signature whose bytes were altered is refused",
        "401",
        _PROFILE,
        UNAUTHORIZED,
    ),
    _refusal(
        "refuses-missing-signature",
        "an unsigned message is refused",
        "401",
        _PROFILE,
        UNAUTHORIZED,
    ),
    _refusal(
        "refuses-unknown-key",
        "a message signed under a key id the partner does not know is refused",
        "401",
        "keyid (a registered key); kid is a lookup key, nothing more",
        UNAUTHORIZED,
    ),
    _refusal(
        "refuses-wrong-target",
        "a message signed for another URL is refused",
        "401",
        'Covered components on requests: "@method" "@target-uri" ...',
        UNAUTHORIZED,
    ),
    _refusal(
        "refuses-stale",
        f"a signature created {STALE_SECONDS} s ago is refused",
        "4xx",
        "created (within ±300 s)",
    ),
    _refusal(
        "refuses-idempotency-mismatch",
        "a message whose Idempotency-Key is not its message_id is refused",
        "4xx",
        "an Idempotency-Key equal to the message id",
    ),
    _refusal(
        "refuses-malformed-body",
        "a correctly signed body that is not well-formed JSON is refused",
        "4xx",
        "All partner calls are ... JSON or XML",
    ),
    Check(
        "errors-are-problem-json",
        "every refusal is an RFC 9457 problem: application/problem+json with type, title, status",
        "application/problem+json",
        "Errors: RFC 9457 application/problem+json with type, title, status ...",
        REFUSAL_PROBES,
        j.errors_are_problem_json(REFUSAL_PROBES),
    ),
    Check(
        "refusals-signed",
        "every refusal of a genuinely signed message (replayed, idempotency mismatch,"
        " malformed body) is signed by the partner's key and bound to our request, like an ack",
        "Signature/Signature-Input and Content-Digest that verify",
        _RESPONSES,
        AUTHENTIC_REFUSAL_PROBES,
        j.refusals_signed(AUTHENTIC_REFUSAL_PROBES),
    ),
    Check(
        "refusals-keep-nothing",
        "a refused message was not kept: delivered properly afterwards, it is received",
        '2xx, status "received" (not "duplicate")',
        "partners de-duplicate on it (on messages they accepted, not on refused ones)",
        ("redeliver-refused",),
        j.refusals_keep_nothing,
    ),
    Check(
        "answers-evidence-request",
        "an evidence issuer answers a signed evidence request with a signed evidence document"
        " or a signed refusal (skipped for a partner that issues no evidence)",
        '2xx, signed, "evidence_document" or "evidence_refusal" for our request_id',
        "Materials obtainable by data sharing are requested ... (signed evidence request "
        "through the outbox) from the issuing agency (docs/evidence.md)",
        ("evidence-request",),
        j.answers_evidence_request,
    ),
)

CHECK_IDS: tuple[str, ...] = tuple(check.id for check in CHECKS)
