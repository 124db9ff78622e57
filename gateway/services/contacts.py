"""The resident's contact preferences (Art. 22: the applicant chooses the delivery channel).

``PUT /v1/me/contact`` replaces them whole (checked whole: every problem in one answer,
nothing kept); ``GET /v1/me/contact`` reads them. The audit chain records that they changed
and which channels were chosen — never an address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.domain.contacts import preferences_from_request, preferred_language
from gateway.services.handlers import Dependencies


async def contact_of(
    deps: Dependencies, person_id: str, *, accept_language: str | None = None
) -> dict[str, Any]:
    """What is held; nothing yet: no channel, the language the request asks for."""
    async with deps.uow() as uow:
        held = await uow.contacts.get(person_id)
    if held is None:
        language = preferred_language(accept_language)
        return {"email": None, "phone": None, "channels": [], "language": language}
    return held.as_dict()


async def set_contact(
    deps: Dependencies,
    person_id: str,
    data: Mapping[str, Any],
    *,
    accept_language: str | None = None,
) -> dict[str, Any]:
    now = deps.clock.now()
    preferences = preferences_from_request(person_id, data, now, accept_language=accept_language)
    async with deps.uow() as uow:
        await uow.contacts.put(preferences)
        uow.audit.record(
            "resident.contact_set",
            f"resident:{person_id}",
            person_id,
            {"channels": list(preferences.channels), "language": preferences.language},
            now,
        )
        await uow.commit()
    return preferences.as_dict()
