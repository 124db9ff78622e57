"""Events: what happened to an application, in the past tense, without personal data.

Every event becomes one row of the application's timeline; its ``data`` holds codes, ids,
digests and agency names only, so the timeline can be shown to every party of the case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    application_id: str
    at: datetime
    actor: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """Stable dotted name, e.g. ``application.received``."""
        return _TYPE_NAMES[type(self)]


class ApplicationReceived(Event):
    pass


class ApplicationAccepted(Event):
    pass


class SupplementRequested(Event):
    pass


class MessageQueued(Event):
    pass


class MessageDelivered(Event):
    pass


class DeliveryFailed(Event):
    pass


class ReviewStarted(Event):
    pass


class DecisionRecorded(Event):
    pass


class ApplicationApproved(Event):
    pass


class ApplicationRejected(Event):
    pass


_TYPE_NAMES: dict[type[Event], str] = {
    ApplicationReceived: "application.received",
    ApplicationAccepted: "application.accepted",
    SupplementRequested: "application.supplement_requested",
    MessageQueued: "message.queued",
    MessageDelivered: "message.delivered",
    DeliveryFailed: "message.dead_lettered",
    ReviewStarted: "review.started",
    DecisionRecorded: "decision.recorded",
    ApplicationApproved: "application.approved",
    ApplicationRejected: "application.rejected",
}
