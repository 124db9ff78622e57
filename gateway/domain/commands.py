"""Commands: orders given to the gateway by a caller, already authenticated."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.values import Channel


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sends a command: an authenticated agency (and the key it signed with)."""

    agency_id: str
    jurisdiction: str
    key_id: str


@dataclass(frozen=True, slots=True)
class SubmitApplication:
    caller: Caller
    body: bytes
    media_type: str
    content_digest: str
    idempotency_key: str
    channel: Channel = Channel.ONLINE


@dataclass(frozen=True, slots=True)
class RecordDecision:
    caller: Caller
    application_id: str
    decision: str  # approved | rejected
    reasons: tuple[str, ...] = ()
    idempotency_key: str = ""
    body_digest: str = ""
