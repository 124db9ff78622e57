"""E-certificates in SQL (Art. 22): the signed content and its subject stay in this table."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.certificates import VALID, Certificate
from gateway.domain.errors import ConflictError
from gateway.store.tables import certificates


def _certificate(row: Any) -> Certificate:
    return Certificate(
        id=row.id,
        application_id=row.application_id,
        matter=row.matter,
        issuer=row.issuer,
        kid=row.kid,
        form=row.form,
        media_type=row.media_type,
        content=bytes(row.content),
        signature=row.signature,
        subject=row.subject,
        issued_at=row.issued_at,
        status=row.status,
        revoked_at=row.revoked_at,
        reason=row.reason,
        delivered_at=row.delivered_at,
    )


class SqlCertificates:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, certificate: Certificate) -> None:
        await self._conn.execute(
            certificates.insert().values(
                id=certificate.id,
                application_id=certificate.application_id,
                matter=certificate.matter,
                issuer=certificate.issuer,
                kid=certificate.kid,
                form=certificate.form,
                media_type=certificate.media_type,
                content=certificate.content,
                signature=certificate.signature,
                subject=certificate.subject,
                issued_at=certificate.issued_at,
                status=certificate.status,
            )
        )

    async def get(self, certificate_id: str) -> Certificate | None:
        if len(certificate_id) > 40:
            return None
        row = (
            await self._conn.execute(
                certificates.select().where(certificates.c.id == certificate_id)
            )
        ).one_or_none()
        return None if row is None else _certificate(row)

    async def of_subject(self, subject: str) -> list[Certificate]:
        rows = await self._conn.execute(
            certificates.select()
            .where(certificates.c.subject == subject)
            .order_by(certificates.c.issued_at, certificates.c.id)
        )
        return [_certificate(r) for r in rows]

    async def revoked(self, certificate: Certificate) -> None:
        done = await self._conn.execute(
            certificates.update()
            .where(certificates.c.id == certificate.id, certificates.c.status == VALID)
            .values(
                status=certificate.status,
                revoked_at=certificate.revoked_at,
                reason=certificate.reason,
            )
        )
        if done.rowcount != 1:
            raise ConflictError("the certificate was revoked meanwhile")

    async def delivered(self, certificate: Certificate) -> None:
        await self._conn.execute(
            certificates.update()
            .where(certificates.c.id == certificate.id, certificates.c.delivered_at.is_(None))
            .values(delivered_at=certificate.delivered_at)
        )
