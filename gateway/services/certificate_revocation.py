"""Revocation of an e-certificate by the agency that issued it (Art. 22).

One transaction: the certificate reads revoked, the case's timeline records
``certificate.revoked`` (ids only), the audit chain the revocation; idempotent per
Idempotency-Key. Another agency is answered as if the certificate did not exist (404): a
revocation attempt discloses nothing about who issued what.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.commands import Caller
from gateway.domain.errors import NotFoundError
from gateway.services.acceptance import MessageAcceptance
from gateway.services.handlers import _once, scope_of
from gateway.services.milestones import Dependencies
from gateway.services.ports import StoredResponse, UnitOfWork


@dataclass(frozen=True, slots=True)
class RevokeCertificate:
    caller: Caller
    certificate_id: str
    reason: str
    idempotency_key: str
    body_digest: str


async def revoke_certificate(
    cmd: RevokeCertificate, deps: Dependencies, acceptance: MessageAcceptance | None = None
) -> StoredResponse:
    """The issuing agency revokes its certificate; anyone else learns nothing (404)."""
    scope = scope_of("revoke_certificate", cmd.certificate_id)

    async def work(uow: UnitOfWork) -> StoredResponse:
        now = deps.clock.now()
        certificate = await uow.certificates.get(cmd.certificate_id)
        if certificate is None:
            raise NotFoundError("no such certificate issued by this agency")
        certificate.revoke(cmd.caller.agency_id, cmd.reason, now)
        await uow.certificates.revoked(certificate)
        app = await uow.applications.get(certificate.application_id)
        if app is not None:
            app.certificate_revoked(certificate.id, cmd.caller.agency_id, now)
            await uow.applications.save(app)
        uow.audit.record("certificate.revoked", cmd.caller.agency_id, certificate.id, {}, now)
        response = StoredResponse(cmd.body_digest, 200, certificate.status_view(), certificate.id)
        await uow.idempotency.put(cmd.caller.agency_id, scope, cmd.idempotency_key, response, now)
        return response

    return await _once(
        deps, acceptance, cmd.caller, scope, cmd.idempotency_key, cmd.body_digest, work
    )
