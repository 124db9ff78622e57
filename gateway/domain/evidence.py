"""Evidence by data sharing (the once-only principle, Art. 11 and 19(5)). No I/O.

A matter's material with rule ``by_data_sharing`` may name an :class:`EvidenceType`: a
document an agency of the registry issues (it declares ``issues_evidence``). On submission
the gateway asks that issuer for it, with only the applicant's identifying fields the type
needs, under the applicant's consent; the issuer answers with a signed evidence document.

Each such material has one :class:`Evidence` record on the case::

    requested ──► received                 (kept as a material, with its provenance)
        ├───────► refused                  (the issuer has no record, or will not say)
        └───────► unanswered               (no answer within the set time)
    not_requested                          (no consent covering it, no issuer, no identifier)

Anything but ``received`` means the applicant is asked for the material, in the one notice
of everything missing (Art. 19(3)), which waits until no evidence is outstanding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.domain.matters import Names

EVIDENCE_REQUEST = "evidence_request"  # the ``type`` of the request the issuer receives
EVIDENCE_DOCUMENT = "evidence_document"  # the ``type`` of an issuer's answer with evidence
EVIDENCE_REFUSAL = "evidence_refusal"  # the ``type`` of an issuer's refusal
# Identifying fields an evidence type may ask for: the applicant's names and birth date, or
# the number of one identity document type (``document:HKID``).
NAME_FIELDS = ("names.original", "names.latin", "birth_date")
DOCUMENT_FIELD = "document:"


class EvidenceState(StrEnum):
    REQUESTED = "requested"
    RECEIVED = "received"
    REFUSED = "refused"
    UNANSWERED = "unanswered"
    NOT_REQUESTED = "not_requested"

    @property
    def asked_of_applicant(self) -> bool:
        """Whether the applicant must now provide the material themselves."""
        return self in (
            EvidenceState.REFUSED,
            EvidenceState.UNANSWERED,
            EvidenceState.NOT_REQUESTED,
        )


@dataclass(frozen=True, slots=True)
class EvidenceType:
    """One kind of evidence an agency issues (``mappings/evidence.yaml``)."""

    code: str
    names: Names
    category: str  # the consent data category it falls in
    jurisdiction: str  # where its issuer is
    subject: tuple[str, ...]  # the applicant's identifying fields the issuer needs

    def subject_of(self, applicant: Mapping[str, Any]) -> dict[str, str] | None:
        """Only the identifying fields this type needs, from the canonical applicant part;
        None when the applicant lacks one (then nothing is requested)."""
        out: dict[str, str] = {}
        names = applicant.get("names") if isinstance(applicant.get("names"), dict) else {}
        documents = applicant.get("documents") or []
        for name in self.subject:
            value: object = None
            if name.startswith(DOCUMENT_FIELD):
                kind = name[len(DOCUMENT_FIELD) :]
                value = next(
                    (
                        d.get("number")
                        for d in documents
                        if isinstance(d, dict) and d.get("type") == kind
                    ),
                    None,
                )
            elif name.startswith("names."):
                value = names.get(name.split(".", 1)[1]) if isinstance(names, dict) else None
            else:
                value = applicant.get(name)
            if not isinstance(value, str) or not value:
                return None
            out[name] = value
        return out


@dataclass(slots=True)
class Evidence:
    """The state of one by-data-sharing material of a case (codes, ids, times only)."""

    material: str
    evidence_type: str
    state: EvidenceState
    issuer: str | None = None
    request_id: str | None = None  # the evidence request's message id (its Idempotency-Key)
    requested_at: datetime | None = None
    due_at: datetime | None = None  # unanswered after this
    answered_at: datetime | None = None
    reason: str | None = None  # why not requested, or the issuer's refusal code
    digest: str | None = None  # of the evidence document received
    material_id: str | None = None  # where it is kept, once stored as a material

    def to_json(self) -> dict[str, Any]:
        return {
            "material": self.material,
            "evidence_type": self.evidence_type,
            "state": self.state.value,
            "issuer": self.issuer,
            "request_id": self.request_id,
            "requested_at": _iso(self.requested_at),
            "due_at": _iso(self.due_at),
            "answered_at": _iso(self.answered_at),
            "reason": self.reason,
            "digest": self.digest,
            "material_id": self.material_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            material=str(data["material"]),
            evidence_type=str(data["evidence_type"]),
            state=EvidenceState(data["state"]),
            issuer=data.get("issuer"),
            request_id=data.get("request_id"),
            requested_at=_time(data.get("requested_at")),
            due_at=_time(data.get("due_at")),
            answered_at=_time(data.get("answered_at")),
            reason=data.get("reason"),
            digest=data.get("digest"),
            material_id=data.get("material_id"),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: object) -> datetime | None:
    return None if not isinstance(value, str) else datetime.fromisoformat(value)
