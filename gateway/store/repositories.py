"""Every SQL repository of a unit of work, attached to one connection (shared by the unit of
work and by the group committer's work items)."""

from __future__ import annotations

from typing import Any

from gateway.store.applications import SqlApplications
from gateway.store.audit import SqlAudit
from gateway.store.certificates import SqlCertificates
from gateway.store.complaints import SqlComplaints
from gateway.store.contacts import SqlContacts
from gateway.store.delivery import SqlIdempotency, SqlNonces, SqlOutbox
from gateway.store.identity import SqlIdentities
from gateway.store.jobs import SqlJobLeases
from gateway.store.materials import SqlMaterials
from gateway.store.notifications import SqlNotifications
from gateway.store.registry import SqlAgencies
from gateway.store.registry_cache import RegistryCache


def attach_repositories(uow: Any, conn: Any, registry: RegistryCache | None) -> None:
    """Give ``uow`` the repositories of the UnitOfWork port, all on ``conn``."""
    uow.audit = SqlAudit(conn)
    uow.applications = SqlApplications(conn, uow.audit)
    uow.agencies = SqlAgencies(conn, registry)
    uow.outbox = SqlOutbox(conn)
    uow.idempotency = SqlIdempotency(conn)
    uow.nonces = SqlNonces(conn)
    uow.identities = SqlIdentities(conn)
    uow.notifications = SqlNotifications(conn)
    uow.complaints = SqlComplaints(conn)
    uow.certificates = SqlCertificates(conn)
    uow.contacts = SqlContacts(conn)
    uow.jobs = SqlJobLeases(conn)
    uow.materials = SqlMaterials(conn)
