"""Electronic certificates as results (Art. 22): what an approving agency attaches to its
decision, signed by itself, and what the gateway keeps of it.

Two forms, both signed with a key the agency registered:

- ``jws``: a compact JWS whose claims are the certificate (``typ`` gba-certificate+jwt);
- ``document``: a document the agency signed (bytes and media type) with its own detached
  signature (JWS with a detached payload, RFC 7515 appendix F).

The edge verifies the signature before any unit of work opens and hands the use case an
:class:`AttachedCertificate`. The gateway then keeps a :class:`Certificate`: its subject (the
applicant's reference) is personal data, never on the timeline, the audit chain or the public
status answer; the status answer says ``valid`` or ``revoked``, when, and who issued it.
Only the issuing agency revokes, once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain import ids
from gateway.domain.errors import IllegalTransitionError, NotFoundError

FORMS = ("jws", "document")
VALID, REVOKED = "valid", "revoked"
MAX_REASON = 500  # characters of a revocation reason


@dataclass(frozen=True, slots=True)
class AttachedCertificate:
    """An e-certificate whose signature verified against a registered key of ``issuer``.

    ``content``: the JWS (ASCII) or the document's bytes; ``signature``: the detached JWS of
    a document (None for the jws form); ``claims``: the JWS's claims (empty for a document).
    """

    form: str
    issuer: str
    kid: str
    content: bytes
    media_type: str
    signature: str | None = None
    claims: dict[str, Any] | None = None


@dataclass(slots=True)
class Certificate:
    id: str
    application_id: str
    matter: str
    issuer: str
    kid: str
    form: str
    media_type: str
    content: bytes
    signature: str | None
    subject: str  # the applicant's person or document reference: personal data
    issued_at: datetime
    status: str = VALID
    revoked_at: datetime | None = None
    reason: str | None = None
    delivered_at: datetime | None = None

    @classmethod
    def issue(
        cls,
        attached: AttachedCertificate,
        *,
        application_id: str,
        matter: str,
        subject: str,
        at: datetime,
    ) -> Certificate:
        return cls(
            id=ids.new_certificate_id(),
            application_id=application_id,
            matter=matter,
            issuer=attached.issuer,
            kid=attached.kid,
            form=attached.form,
            media_type=attached.media_type,
            content=attached.content,
            signature=attached.signature,
            subject=subject,
            issued_at=at,
        )

    def revoke(self, agency_id: str, reason: str, at: datetime) -> None:
        """The issuer revokes, once; another agency learns nothing (not found)."""
        if agency_id != self.issuer:
            raise NotFoundError("no such certificate issued by this agency")
        if self.status == REVOKED:
            raise IllegalTransitionError("the certificate is revoked already")
        self.status, self.revoked_at, self.reason = REVOKED, at, reason[:MAX_REASON]

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of what was signed: the JWS, or the document's bytes."""
        return hashlib.sha256(self.content).hexdigest()

    def status_view(self) -> dict[str, Any]:
        """The public answer: no personal data, no content, no application."""
        out: dict[str, Any] = {"certificate_id": self.id, "status": self.status}
        if self.revoked_at is not None:
            out["revoked_at"] = self.revoked_at.isoformat()
        out["issuer"] = self.issuer
        return out


def subject_of(applicant_id: str | None, document: dict[str, Any], application_id: str) -> str:
    """The applicant's reference a certificate is about: the resident's person id when they
    applied through the gateway, else their first identity document, else the case."""
    if applicant_id:
        return f"person:{applicant_id}"
    docs = (document.get("applicant") or {}).get("documents") or []
    if docs and isinstance(docs[0], dict) and docs[0].get("type") and docs[0].get("number"):
        return f"document:{docs[0]['type']}:{docs[0]['number']}"
    return f"application:{application_id}"
