"""Residents' contact preferences in SQL (Art. 22): one row per person, replaced whole.

The row holds personal data (an e-mail address, a phone number): it is read by the
notification channels and by the resident, and never written to a log, the timeline or the
audit chain.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.contacts import ContactPreferences
from gateway.store.tables import resident_contacts


def _preferences(row: Any) -> ContactPreferences:
    return ContactPreferences(
        person_id=row.person_id,
        email=row.email,
        phone=row.phone,
        channels=tuple(row.channels),
        language=row.language,
        source=row.source,
        updated_at=row.updated_at,
    )


class SqlContacts:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, person_id: str) -> ContactPreferences | None:
        row = (
            await self._conn.execute(
                resident_contacts.select().where(resident_contacts.c.person_id == person_id)
            )
        ).one_or_none()
        return None if row is None else _preferences(row)

    async def put(self, preferences: ContactPreferences) -> None:
        values = {
            "email": preferences.email,
            "phone": preferences.phone,
            "channels": list(preferences.channels),
            "language": preferences.language,
            "source": preferences.source,
            "updated_at": preferences.updated_at,
        }
        changed = await self._conn.execute(
            resident_contacts.update()
            .where(resident_contacts.c.person_id == preferences.person_id)
            .values(**values)
        )
        if changed.rowcount == 0:
            await self._conn.execute(
                resident_contacts.insert().values(person_id=preferences.person_id, **values)
            )

    async def forget(self, person_id: str) -> None:
        await self._conn.execute(
            sa.delete(resident_contacts).where(resident_contacts.c.person_id == person_id)
        )
