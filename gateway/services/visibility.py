"""Which cases a resident sees as their own (Art. 22: progress on every channel).

A resident sees the cases they filed themselves (``applicant_id``) and, once a login has
linked to them an identity document that an agency-submitted case names as its applicant's,
that case too — when the login they look with has at least the assurance the case's matter
requires. Links need ``substantial`` or more (:data:`gateway.domain.identity.LINKING_ASSURANCE`),
so a ``low`` login, whose documents link no one, never sees an agency's case; a
``substantial`` one does not see a case of a matter that needs ``high``. Nothing is written:
the case stays the submitting agency's, the resident reads it. A counter's case
(:mod:`gateway.domain.channels`) is seen by the holder of the one document its officer
inspected in person, not of any other document the application names.

The same rule says who is told of such a case's milestones (Art. 22):
:func:`applicants` finds, when a notification is dispatched, the residents whose linked
documents the case names, each through a link of at least the matter's assurance.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.application import Application
from gateway.domain.errors import UnknownMatterError
from gateway.domain.identity import LinkStatus, named_documents
from gateway.domain.matters import Assurance
from gateway.domain.values import local_date
from gateway.services.ports import Clock, MatterCatalog, UnitOfWork
from gateway.services.residents import login_assurance


@dataclass(frozen=True, slots=True)
class Viewer:
    """A resident looking through one login: their linked documents and its assurance."""

    person_id: str
    documents: tuple[tuple[str, str], ...]  # (type, number) linked to the person
    assurance: Assurance

    def sees(self, app: Application, catalog: MatterCatalog, clock: Clock) -> bool:
        """Their own case, or an agency's naming one of their linked documents at a matter
        whose required assurance the login has."""
        if app.applicant_id is not None:
            return app.applicant_id == self.person_id
        if not _named(app).intersection(self.documents):
            return False
        return self.assurance.rank >= _required(app, catalog, clock).rank


def _named(app: Application) -> set[tuple[str, str]]:
    """The documents an agency's case names as its applicant's."""
    if app.identified_by is not None:  # a counter's: the one its officer inspected (Art. 18)
        return {app.identified_by}
    return {(d.type.value, d.number) for d in named_documents(app.document)}


def _required(app: Application, catalog: MatterCatalog, clock: Clock) -> Assurance:
    try:
        return catalog.get(app.matter, local_date(clock.now())).min_assurance
    except UnknownMatterError:  # no longer in force: only the surest login sees it
        return Assurance.HIGH


async def applicants(
    uow: UnitOfWork, app: Application, catalog: MatterCatalog, clock: Clock
) -> list[str]:
    """The persons behind an agency's case: each one a document it names is linked to, by a
    link made at the matter's assurance or more; none for a resident's own case."""
    if app.applicant_id is not None:
        return []
    required = _required(app, catalog, clock)
    found = await uow.identities.linked(sorted(_named(app)))
    return sorted(
        {person.id for link, person in found.values() if link.assurance.rank >= required.rank}
    )


async def viewer(uow: UnitOfWork, person_id: str, login_id: str) -> Viewer:
    """The resident behind a login, with the documents linked to them."""
    level = await login_assurance(uow, person_id, login_id)
    links = await uow.identities.links_of(person_id)
    documents = tuple(link.key for link in links if link.status is LinkStatus.LINKED)
    return Viewer(person_id, documents, level)


async def visible_named(
    uow: UnitOfWork,
    seen: Viewer,
    catalog: MatterCatalog,
    clock: Clock,
    *,
    limit: int,
    after: str | None,
) -> list[Application]:
    """Up to ``limit`` agency-submitted cases the viewer sees, by id after the cursor."""
    found: list[Application] = []
    cursor = after
    while len(found) < limit and seen.documents:
        batch = await uow.applications.naming(seen.documents, limit=200, after=cursor)
        found += [a for a in batch if seen.sees(a, catalog, clock)]
        if len(batch) < 200:
            break
        cursor = batch[-1].id
    return found[:limit]
