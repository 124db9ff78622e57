"""Evidence by data sharing, the once-only principle (Art. 11, 19(5); docs/evidence.md).

- :func:`plan` decides at a resident's submission, for each by-data-sharing material that
  names an evidence type and that the application does not carry, whether it is requested:
  only when an agency of the registry issues the type, the applicant has the identifying
  fields it needs, and the applicant's consent covers it (the evidence type's data category,
  and the issuer's jurisdiction among the consent's destinations). Otherwise nothing is
  requested, the timeline says why, and the applicant is asked for the material.
- :func:`requests` turns each evidence still to request into a signed message for the issuer
  *through the outbox* (same durable queue, retries and signing as a forward; the body's
  ``type`` tells it apart), carrying only the identifying fields the type needs.
- :func:`record_answer` reads the issuer's signed acknowledgement, which *is* its answer: an
  ``evidence_document`` (kept as the material, with issuer, time and request id) or an
  ``evidence_refusal``; any other acknowledgement leaves the request outstanding.
- :func:`unanswered` is the deadline sweep's step: a request past its time is unanswered.

When no request is outstanding any more, :func:`settle_evidence` lets the case go on (the one
notice of everything missing, or the acceptance); every move's settle step calls it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from gateway.domain import ids
from gateway.domain.application import Application
from gateway.domain.evidence import (
    EVIDENCE_DOCUMENT,
    EVIDENCE_REFUSAL,
    EVIDENCE_REQUEST,
    Evidence,
    EvidenceState,
    EvidenceType,
)
from gateway.domain.identity import Consent
from gateway.domain.materials import StoredMaterial
from gateway.domain.matters import MaterialRule, Matter
from gateway.services.ports import (
    Acknowledgement,
    AgencyRepository,
    OutboxMessage,
    StoredBlob,
)

MEDIA_TYPE = "application/json"
_REASON = re.compile(r"[a-z][a-z0-9_]{0,39}")


class EvidenceTypeCatalog(Protocol):
    def get(self, code: str) -> EvidenceType | None: ...


async def plan(
    matter: Matter,
    document: Mapping[str, Any],
    *,
    consent: Consent | None,
    agencies: AgencyRepository,
    types: EvidenceTypeCatalog,
    now: datetime,
) -> tuple[Evidence, ...]:
    """The evidence of a resident's submission: requested, or not and why."""
    given = {m.get("code") for m in document.get("materials", []) if isinstance(m, dict)}
    applicant = document.get("applicant") or {}
    out = []
    for material in matter.materials:
        if (
            material.rule is not MaterialRule.BY_DATA_SHARING
            or material.evidence is None
            or material.code in given
        ):
            continue
        kind = types.get(material.evidence)
        issuer = await agencies.issuer_of(material.evidence)
        reason = None
        if kind is None or issuer is None:
            reason = "no_issuer"
        elif kind.subject_of(applicant) is None:
            reason = "no_identifier"
        elif consent is None or not consent.covers(
            purpose="cross_border_application",
            categories=[kind.category],
            destinations=[issuer.jurisdiction],
            matter=str(matter.code),
            at=now,
        ):
            reason = "no_consent"
        if reason is None and issuer is not None:
            out.append(
                Evidence(material.code, material.evidence, EvidenceState.REQUESTED, issuer.id)
            )
        else:
            out.append(
                Evidence(
                    material.code, material.evidence, EvidenceState.NOT_REQUESTED, reason=reason
                )
            )
    return tuple(out)


def requests(
    app: Application, types: EvidenceTypeCatalog, answer_within: timedelta, now: datetime
) -> list[OutboxMessage]:
    """One signed evidence request for each evidence to request that has none queued."""
    messages = []
    for evidence in app.evidence_due():
        kind = types.get(evidence.evidence_type)
        subject = None if kind is None else kind.subject_of(app.document.get("applicant") or {})
        if subject is None or evidence.issuer is None:  # the catalog changed since the plan
            continue
        message_id = ids.new_message_id()
        due = now + answer_within
        body = {
            "type": EVIDENCE_REQUEST,
            "message_id": message_id,
            "request_id": message_id,
            "evidence_type": evidence.evidence_type,
            "subject": subject,
            "matter": app.matter,
            "application_id": app.id,
            "consent_id": app.consent_id,
            "requested_at": now.isoformat(),
            "answer_by": due.isoformat(),
        }
        data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
        messages.append(
            OutboxMessage(
                message_id,
                app.id,
                evidence.issuer,
                MEDIA_TYPE,
                data,
                next_attempt_at=now,
                relies_on=app.relies_on,
            )
        )
        app.evidence_queued(evidence.material, message_id, evidence.issuer, due, now)
    return messages


def is_document(body: bytes) -> bool:
    """Whether an acknowledgement may be an evidence document (whose bytes are then kept in
    the blob store before the answer is recorded); a cheap test, the answer is read later."""
    return f'"{EVIDENCE_DOCUMENT}"'.encode() in body


def record_answer(
    app: Application,
    message: OutboxMessage,
    ack: Acknowledgement,
    at: datetime,
    blob: StoredBlob | None = None,
) -> StoredMaterial | None:
    """The issuer's verified, signed acknowledgement of an evidence request, read as its
    answer (the transport checked that the issuer itself signed it): a refusal, or the
    evidence document, kept as the material — the stored material to add (bound to the case
    with its material code and its provenance) when ``blob`` holds the answer's bytes. An
    answer naming another request or type, or a plain acknowledgement, changes nothing."""
    evidence = app.evidence_of_request(message.id)
    if evidence is None:
        return None
    try:
        answer = json.loads(ack.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(answer, dict) or answer.get("request_id") != message.id:
        return None
    if answer.get("type") == EVIDENCE_REFUSAL:
        reason = str(answer.get("reason") or "")
        reason = reason if _REASON.fullmatch(reason) else "refused"
        app.evidence_failed(message.id, EvidenceState.REFUSED, reason, at)
        return None
    if (
        answer.get("type") != EVIDENCE_DOCUMENT
        or answer.get("evidence_type") != evidence.evidence_type
        or not isinstance(answer.get("document"), dict)
    ):
        return None
    issued = answer.get("issued_at")
    issued_at = issued if isinstance(issued, str) and len(issued) <= 40 else at.isoformat()
    kept = blob is not None and blob.key == hashlib.sha256(ack.body).hexdigest()
    material_id = ids.new_material_id() if kept else None
    if not app.evidence_received(
        message.id,
        digest=ack.body_digest,
        media_type=MEDIA_TYPE,
        issued_at=issued_at,
        at=at,
        material_id=material_id,
        size=blob.size if kept and blob is not None else None,
    ):
        return None
    if blob is None or material_id is None:
        return None
    return StoredMaterial(
        material_id=material_id,
        digest=blob.digest,
        blob_key=blob.key,
        size=blob.size,
        media_type=MEDIA_TYPE,
        owner=message.destination,
        created_at=at,
        expires_at=at,  # bound at once: never removed as an unused upload
        filename=f"{evidence.evidence_type}.json",
        application_id=app.id,
        code=evidence.material,
        provenance={
            "issuer": message.destination,
            "issued_at": issued_at,
            "received_at": at.isoformat(),
            "request_id": message.id,
            "evidence_type": evidence.evidence_type,
        },
    )


def undeliverable(app: Application, message: OutboxMessage, at: datetime) -> bool:
    """An evidence request parked as a dead letter: unanswered now, the applicant asked."""
    if app.evidence_of_request(message.id) is None:
        return False
    return app.evidence_failed(message.id, EvidenceState.UNANSWERED, "undeliverable", at)


def unanswered(app: Application, now: datetime) -> bool:
    """Every request whose answer was due before ``now`` is unanswered; True if any was."""
    changed = False
    for evidence in list(app.evidence):
        due = evidence.due_at
        if evidence.state is EvidenceState.REQUESTED and due is not None and due < now:
            assert evidence.request_id is not None
            changed |= app.evidence_failed(
                evidence.request_id, EvidenceState.UNANSWERED, "no_answer", now
            )
    return changed


def view(app: Application) -> list[dict[str, Any]]:
    """Per-material evidence state, as the application view shows it (codes, ids, times)."""
    return [e.to_json() for e in app.evidence]
