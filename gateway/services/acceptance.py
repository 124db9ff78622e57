"""Message acceptance: a signed request's nonce, evidence and audit entry, written in the
unit of work of what the request asks for.

The web edge verifies the signature and the digest and builds a :class:`MessageAcceptance`
without writing anything. A write use case records it with :func:`accept_message` in its own
unit of work, so the nonce, the evidence, the ``message.accepted`` entry and the use case's
writes commit together, or not at all: a replayed nonce stores nothing.

A request that was authenticated but then refused (422, 409, ...) still burns its nonce and
keeps its evidence and audit entry: :func:`keep_refused` commits them on their own, after the
use case's unit of work rolled back. So a captured copy of a refused request is refused as a
replay later, when the case's state may have changed and the original would have passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.domain.errors import ReplayedRequestError
from gateway.services.ports import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class MessageAcceptance:
    """What accepting one verified, signed message writes: nothing is written yet."""

    agency_id: str  # the caller: the audit entry's actor
    keyid: str  # the signing key: the nonce's scope and the audit entry's subject
    nonce: str
    expires_at: datetime  # when the nonce may be forgotten (the signature window has passed)
    media_type: str
    content_digest: str  # RFC 9530 form of the body's SHA-256
    evidence: bytes | None  # the body to keep as evidence; None: no body, or not to be kept
    audit: Mapping[str, Any]  # the ``message.accepted`` entry's data
    at: datetime
    # Set by accept_message once written in a unit of work; lets the edge check that a use
    # case did record it (see recorded()). Not part of the value.
    _written: list[bool] = field(default_factory=list, compare=False, repr=False)

    def recorded(self) -> bool:
        """Whether :func:`accept_message` wrote this acceptance in some unit of work."""
        return bool(self._written)


async def accept_message(uow: UnitOfWork, acceptance: MessageAcceptance) -> None:
    """Record the nonce, the evidence and the audit entry in ``uow``; a used nonce refuses,
    and so does a signing key revoked since the signature was verified."""
    await uow.agencies.still_valid(acceptance.keyid, acceptance.at)
    fresh = await uow.nonces.use(
        acceptance.keyid, acceptance.nonce, now=acceptance.at, expires_at=acceptance.expires_at
    )
    if not fresh:
        raise ReplayedRequestError("this signature nonce was already used")
    if acceptance.evidence:
        await uow.audit.keep_evidence(
            acceptance.content_digest, acceptance.media_type, acceptance.evidence, acceptance.at
        )
    uow.audit.record(
        "message.accepted", acceptance.agency_id, acceptance.keyid, acceptance.audit, acceptance.at
    )
    acceptance._written.append(True)


async def accept_alone(uow_factory: UnitOfWorkFactory, acceptance: MessageAcceptance) -> None:
    """Record the acceptance on its own (the read-only signed routes), group-committed."""
    async with uow_factory.batched() as uow:
        await accept_message(uow, acceptance)
        await uow.commit()


async def keep_refused(uow_factory: UnitOfWorkFactory, acceptance: MessageAcceptance) -> None:
    """Burn the nonce of a request refused after it authenticated, and keep its record.

    Nothing else is written: the use case's own unit of work has rolled back. A nonce found
    used here raises :class:`ReplayedRequestError`, which answers instead of the refusal: the
    request is a copy of an earlier one (refused before the use case could see its nonce, as
    a malformed body is), or lost the race to a concurrent copy.
    """
    await accept_alone(uow_factory, acceptance)
