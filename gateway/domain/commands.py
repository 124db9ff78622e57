"""Commands: orders given to the gateway by a caller, already authenticated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.domain.certificates import AttachedCertificate
from gateway.domain.channels import ChannelCall
from gateway.domain.legal_basis import LegalBasis
from gateway.domain.values import Channel


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sends a command: an authenticated agency (and the key it signed with), or a
    resident through a gateway access token (``person_id`` set; ``agency_id`` is then
    ``resident:<person id>``, the namespace of their Idempotency-Keys)."""

    agency_id: str
    jurisdiction: str
    key_id: str
    person_id: str | None = None

    @classmethod
    def resident(cls, person_id: str, login_id: str) -> Caller:
        return cls(f"resident:{person_id}", "", f"login:{login_id}", person_id)

    @property
    def login_id(self) -> str | None:
        """The login a resident acts through (None for an agency)."""
        return self.key_id.removeprefix("login:") if self.person_id is not None else None


@dataclass(frozen=True, slots=True)
class Applicant:
    """A resident's own submission: the identity part comes from their login (Art. 19(5))."""

    person_id: str
    login_id: str
    client_id: str
    application: Mapping[str, Any]  # the canonical application without ``applicant``
    consent_id: str | None = None
    consent: Mapping[str, Any] | None = field(default=None)  # a consent given with it
    on_behalf_of: str | None = None  # a delegation id: an agent applying for its principal


@dataclass(frozen=True, slots=True)
class SubmitApplication:
    caller: Caller
    body: bytes
    media_type: str
    content_digest: str
    idempotency_key: str
    channel: Channel = Channel.ONLINE
    applicant: Applicant | None = None
    delivery_channel: str | None = None  # how the applicant wants the result
    channel_call: ChannelCall | None = None  # a partner's GBA-Channel (counter, kiosk ...)
    legal_basis: LegalBasis | None = None  # a partner's GBA-Legal-Basis (PIPL art. 13)

    @property
    def call(self) -> ChannelCall:
        """The channel as stated: the partner's header, else the client's channel."""
        return self.channel_call if self.channel_call is not None else ChannelCall(self.channel)


@dataclass(frozen=True, slots=True)
class RecordDecision:
    caller: Caller
    application_id: str
    decision: str  # approved | rejected
    reasons: tuple[str, ...] = ()
    idempotency_key: str = ""
    body_digest: str = ""
    certificate: AttachedCertificate | None = None  # an approval's e-certificate, verified


@dataclass(frozen=True, slots=True)
class ActOnApplication:
    """A party acts on a case: ``examine`` (the lead), ``supplement`` (the applicant or the
    agency that submitted), ``withdraw`` (the same), ``deliver_result`` (the lead),
    ``consent`` (the resident applicant consents again after a withdrawal)."""

    caller: Caller
    application_id: str
    action: str
    data: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    body_digest: str = ""
