"""Use cases of e-certificates (Art. 22): issue with an approval, hand to the resident under
an ``e_certificate`` consent, answer the public status, revoke by the issuer.

The certificate's signature is verified at the edge before any unit of work opens (CPU work,
:mod:`gateway.trust.e_certificates`); here the key is checked again where the writes commit
(``still_valid``), so a key revoked meanwhile refuses the decision. Each use case is one
transaction: the certificate row, its event on the case's timeline (ids only) and the audit
entry. A resident's fetch without a consent in force is refused (403), audited, and delivers
nothing. Revocation by the issuer: :mod:`gateway.services.certificate_revocation`.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from gateway.domain.application import Application
from gateway.domain.certificates import AttachedCertificate, Certificate, subject_of
from gateway.domain.errors import ConsentRequiredError, NotFoundError
from gateway.domain.identity import Consent
from gateway.services import visibility
from gateway.services.milestones import Dependencies
from gateway.services.ports import UnitOfWork

PURPOSE = "e_certificate"


async def issue(
    app: Application, attached: AttachedCertificate, uow: UnitOfWork, now: datetime
) -> Certificate:
    """In the decision's transaction: keep the approving agency's certificate and record it
    on the case (before :func:`~gateway.services.milestones.settle` saves the case)."""
    await uow.agencies.still_valid(attached.kid, now)
    certificate = Certificate.issue(
        attached,
        application_id=app.id,
        matter=app.matter,
        subject=subject_of(app.applicant_id, app.document, app.id),
        at=now,
    )
    app.certificate_issued(certificate.id, attached.issuer, attached.kid, now)
    await uow.certificates.add(certificate)
    uow.audit.record(
        "certificate.issued",
        attached.issuer,
        certificate.id,
        {"application_id": app.id, "kid": attached.kid, "digest": certificate.digest},
        now,
    )
    return certificate


def covering(consents: list[Consent], certificate: Certificate, now: datetime) -> Consent | None:
    """The resident's ``e_certificate`` consent in force for the certificate's matter."""
    for consent in consents:
        if (
            consent.purpose == PURPOSE
            and consent.active(now)
            and consent.matter in (None, certificate.matter)
        ):
            return consent
    return None


async def _theirs(
    uow: UnitOfWork, deps: Dependencies, person_id: str, login_id: str | None
) -> list[Certificate]:
    """The certificates of the resident's own cases and, seen through ``login_id``, of the
    agencies' cases naming a document linked to them (:mod:`visibility`)."""
    found = await uow.certificates.of_subject(f"person:{person_id}")
    if login_id is None:
        return found
    seen = await visibility.viewer(uow, person_id, login_id)
    for doc_type, number in seen.documents:
        for certificate in await uow.certificates.of_subject(f"document:{doc_type}:{number}"):
            app = await uow.applications.get(certificate.application_id)
            if app is not None and seen.sees(app, deps.catalog, deps.clock):
                found.append(certificate)
    return found


async def my_certificates(
    deps: Dependencies, person_id: str, login_id: str | None = None
) -> dict[str, Any]:
    """The resident's certificates (without their content), each saying whether a consent in
    force lets the resident fetch it."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        found = await _theirs(uow, deps, person_id, login_id)
        consents = await uow.identities.consents_of(person_id)
    items = [
        {**summary(c), "consent_in_force": covering(consents, c, now) is not None} for c in found
    ]
    return {"items": items, "next": None}


async def my_certificate(
    deps: Dependencies, person_id: str, certificate_id: str, login_id: str | None = None
) -> dict[str, Any]:
    """The certificate itself, to its subject, only under an ``e_certificate`` consent in
    force; the delivery is recorded (the first one on the case's timeline)."""
    now = deps.clock.now()
    actor = f"resident:{person_id}"
    async with deps.uow() as uow:
        certificate = await uow.certificates.get(certificate_id)
        if certificate is None or not await _subject_is(
            uow, deps, certificate, person_id, login_id
        ):
            raise NotFoundError("no such certificate of yours")
        consent = covering(await uow.identities.consents_of(person_id), certificate, now)
        if consent is None:
            uow.audit.record("certificate.refused", actor, certificate.id, {"why": "consent"}, now)
            await uow.commit()
            raise ConsentRequiredError(
                "an electronic certificate is delivered only with the applicant's consent "
                "(purpose e_certificate)"
            )
        if certificate.delivered_at is None:
            certificate.delivered_at = now
            await uow.certificates.delivered(certificate)
            app = await uow.applications.get(certificate.application_id)
            if app is not None:
                app.certificate_delivered(certificate.id, now)
                await uow.applications.save(app)
        uow.audit.record(
            "certificate.delivered", actor, certificate.id, {"consent_id": consent.id}, now
        )
        await uow.commit()
    return {**summary(certificate), **content(certificate)}


async def _subject_is(
    uow: UnitOfWork,
    deps: Dependencies,
    certificate: Certificate,
    person_id: str,
    login_id: str | None,
) -> bool:
    """Whether the certificate is about this resident: their own case's, or an agency's case
    naming a document linked to them that their login may see."""
    if certificate.subject == f"person:{person_id}":
        return True
    if login_id is None or not certificate.subject.startswith("document:"):
        return False
    seen = await visibility.viewer(uow, person_id, login_id)
    if certificate.subject.split(":", 1)[1] not in {f"{t}:{n}" for t, n in seen.documents}:
        return False
    app = await uow.applications.get(certificate.application_id)
    return app is not None and seen.sees(app, deps.catalog, deps.clock)


async def certificate_status(deps: Dependencies, certificate_id: str) -> dict[str, Any]:
    """The public answer: valid or revoked, when, and the issuer; nothing personal."""
    async with deps.uow() as uow:
        certificate = await uow.certificates.get(certificate_id)
    if certificate is None:
        raise NotFoundError("no such certificate")
    return certificate.status_view()


def summary(certificate: Certificate) -> dict[str, Any]:
    out = {
        "certificate_id": certificate.id,
        "application_id": certificate.application_id,
        "matter": certificate.matter,
        "issued_at": certificate.issued_at.isoformat(),
        "form": certificate.form,
        "media_type": certificate.media_type,
        "digest": certificate.digest,
        **certificate.status_view(),
    }
    out["kid"] = certificate.kid
    return out


def content(certificate: Certificate) -> dict[str, Any]:
    """What the resident verifies offline: the JWS, or the document and its signature."""
    if certificate.form == "jws":
        return {"certificate": certificate.content.decode("ascii")}
    return {
        "document": base64.b64encode(certificate.content).decode("ascii"),
        "signature": certificate.signature,
    }
