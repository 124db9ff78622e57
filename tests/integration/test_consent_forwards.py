"""Consent to the last forward (GBA personal-information rules; PIPL arts. 15, 39), on
SQLite and PostgreSQL, with a fixed clock and the relay driven by the test: a resident's
consent is checked again at every forward and before every send. Withdrawn mid-review, the
reviewers' forward due after the lead's acceptance is not queued; a forward waiting in the
queue for a retry is withheld and never sent; one whose consent expired while it waited is
withheld by the relay. The timeline says so (``message.withheld`` with the reason)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.bootstrap import Overrides, create_app
from gateway.domain.agencies import Agency
from gateway.domain.commands import ActOnApplication, Applicant, Caller, SubmitApplication
from gateway.domain.errors import (
    ConflictError,
    ConsentRequiredError,
    IllegalTransitionError,
    NotFoundError,
    TransientDeliveryError,
    ValidationFailedError,
)
from gateway.operations import mappings_sample
from gateway.outbox_ops import outbox_retry
from gateway.services import handlers, lifecycle
from gateway.services.identity import SignIn, grant_consent, sign_in, withdraw_consent
from gateway.services.ports import Acknowledgement, OutboxMessage
from gateway.services.relay import Relay
from gateway.store.tables import consents, notifications, outbox
from gateway.trust.receipts import verify_receipt
from gateway.web.keys import DEPENDENCIES
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.integration.test_lifecycle import act, jwks, view
from tests.integration.test_residents import (
    _DEPS,
    application,
    chan_at_hk,
    hk_person,
    resident,
)
from tests.integration.test_supplement_rounds import _rows
from tests.support import CASE_TABLES, row_counts, send

MEDICAL = "11440300MB2C00091K3440120007000"  # high; lead sz-hc (GD) examines; hk-mchk reviews
HENGQIN = "11440400MB2C00081P4440120002000"  # substantial; automatic; lead gd-hq-csb (GD)
AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Guangdong
CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}


@pytest.fixture
async def quiet(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[tuple[RunningGateway, FixedClock]]:
    """A sandbox gateway with a fixed clock and no relay of its own."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    clock = FixedClock(AT)
    app = create_app(settings, Overrides(clock=clock))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app), clock
    await server.close()


class Partners:
    """Acknowledges every message, or fails each for now while ``failing``; records sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failing = False

    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        self.sent.append(message.id)
        if self.failing:
            raise TransientDeliveryError("the partner is briefly away")
        return Acknowledgement(200, f"{agency.id}-key", "sha-256=:ack:")


async def submit(
    gateway: RunningGateway, signed: SignIn, code: str, key: str, **applicant: Any
) -> dict[str, Any]:
    """A resident's own submission through the use case, with the body's real digest (the
    HK and Macao envelopes carry it, and their XSDs check its form)."""
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    _DEPS["deps"] = deps
    body = {"application": application(code), **applicant}
    raw = json.dumps(body).encode()
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(raw).digest()).decode() + ":"
    stored = await handlers.submit_application(
        SubmitApplication(
            caller=Caller.resident(signed.person_id, signed.login_id),
            body=raw,
            media_type="application/json",
            content_digest=digest,
            idempotency_key=key,
            applicant=Applicant(
                person_id=signed.person_id,
                login_id=signed.login_id,
                client_id="portal-1",
                application=body["application"],
                consent_id=applicant.get("consent_id"),
                consent=applicant.get("consent"),
            ),
        ),
        deps,
    )
    return dict(stored.body)


def _relay(gateway: RunningGateway, partners: Partners, *, notify: bool = False) -> Relay:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    return Relay(deps.uow, partners, deps.clock, notify=notify)


async def _forwards(gateway: RunningGateway, app_id: str) -> list[tuple[str, str, str | None]]:
    rows = await _rows(
        gateway.settings,
        sa.select(outbox.c.destination, outbox.c.status, outbox.c.last_error)
        .where(outbox.c.application_id == app_id)
        .order_by(outbox.c.created_at, outbox.c.destination),
    )
    return [(r.destination, r.status, r.last_error) for r in rows]


async def _on_hold(gateway: RunningGateway, app_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The notifications telling that the case is on hold: (recipient, body)."""
    rows = await _rows(
        gateway.settings,
        sa.select(notifications.c.recipient, notifications.c.body).where(
            notifications.c.application_id == app_id,
            notifications.c.event == "message.withheld",
        ),
    )
    return [(r.recipient, r.body) for r in rows]


async def _withheld(gateway: RunningGateway, app_id: str) -> list[dict[str, Any]]:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        timeline = await uow.applications.timeline(app_id)
    return [e.data for e in timeline if e.type == "message.withheld"]


async def test_withdrawn_mid_review_the_reviewers_forward_is_not_sent(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(acr="iamsmart+"), deps)
    received = await submit(gateway, chan, MEDICAL, "key-00000101", consent=CONSENT)
    app_id = received["application_id"]
    partners = Partners()
    assert await _relay(gateway, partners).run_once() == 1  # the lead has the case
    assert await _forwards(gateway, app_id) == [("sz-hc", "delivered", None)]
    async with deps.uow() as uow:
        consent_id = (await uow.applications.get(app_id)).consent_id
    assert consent_id is not None

    clock.current = AT + timedelta(hours=2)
    withdrawn = await withdraw_consent(resident(chan), consent_id, deps)
    assert withdrawn["withdrawn_at"] is not None
    clock.current = AT + timedelta(hours=4)
    accepted = await act(gateway, app_id, "acceptance", {"outcome": "accepted"})
    assert accepted.status == 200, accepted.body
    assert accepted.json()["status"] == "accepted"

    # the reviewer in Hong Kong is never sent the case: nothing queued, nothing sent
    assert await _forwards(gateway, app_id) == [("sz-hc", "delivered", None)]
    assert await _relay(gateway, partners).run_once() == 0
    assert len(partners.sent) == 1
    assert await _withheld(gateway, app_id) == [
        {"agency": "hk-mchk", "reason": "consent_withdrawn"}
    ]
    assert [r for r, _ in await _on_hold(gateway, app_id)] == [f"resident:{chan.person_id}"]


async def test_with_the_consent_in_force_the_reviewer_is_sent_the_case_after_acceptance(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    """The control of the test above: the same case, no withdrawal."""
    gateway, clock = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(acr="iamsmart+"), deps)
    received = await submit(gateway, chan, MEDICAL, "key-00000105", consent=CONSENT)
    app_id = received["application_id"]
    assert await _relay(gateway, Partners()).run_once() == 1
    clock.current = AT + timedelta(hours=4)

    accepted = await act(gateway, app_id, "acceptance", {"outcome": "accepted"})

    assert accepted.status == 200, accepted.body
    assert await _forwards(gateway, app_id) == [
        ("sz-hc", "delivered", None),
        ("hk-mchk", "pending", None),
    ]
    assert await _withheld(gateway, app_id) == []
    assert await _on_hold(gateway, app_id) == []


async def test_a_queued_retry_is_not_sent_after_withdrawal(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    received = await submit(gateway, chan, HENGQIN, "key-00000102", consent=CONSENT)
    app_id = received["application_id"]
    partners = Partners()
    partners.failing = True
    assert await _relay(gateway, partners).run_once() == 1
    assert await _forwards(gateway, app_id) == [
        ("gd-hq-csb", "pending", "the partner is briefly away")
    ]
    async with deps.uow() as uow:
        consent_id = (await uow.applications.get(app_id)).consent_id

    clock.current = AT + timedelta(minutes=1)
    await withdraw_consent(resident(chan), consent_id, deps)

    assert await _forwards(gateway, app_id) == [("gd-hq-csb", "withheld", "consent_withdrawn")]
    [(recipient, body)] = await _on_hold(gateway, app_id)  # told once that the case waits
    assert (recipient, body["reason"]) == (f"resident:{chan.person_id}", "consent_withdrawn")
    partners.failing = False
    clock.current = AT + timedelta(hours=1)  # long past the retry's time
    assert await _relay(gateway, partners).run_once() == 0
    assert len(partners.sent) == 1  # only the attempt before the withdrawal
    [held] = await _withheld(gateway, app_id)
    assert held["agency"] == "gd-hq-csb"
    assert held["reason"] == "consent_withdrawn"
    # an operator cannot make it due again
    with pytest.raises(ConflictError):
        await outbox_retry(gateway.settings, held["message_id"], lambda _: None)
    assert await _forwards(gateway, app_id) == [("gd-hq-csb", "withheld", "consent_withdrawn")]


async def test_the_relay_withholds_a_retry_whose_consent_expired_in_the_queue(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    expiring = {**CONSENT, "expires_at": (AT + timedelta(minutes=30)).isoformat()}
    given = await grant_consent(resident(chan), expiring, deps)
    received = await submit(gateway, chan, HENGQIN, "key-00000103", consent_id=given["consent_id"])
    app_id = received["application_id"]
    partners = Partners()
    partners.failing = True
    assert await _relay(gateway, partners).run_once() == 1

    partners.failing = False
    clock.current = AT + timedelta(hours=1)  # the consent ran out while the retry waited
    assert await _relay(gateway, partners, notify=True).run_once() == 0

    assert len(partners.sent) == 1
    assert await _forwards(gateway, app_id) == [("gd-hq-csb", "withheld", "consent_expired")]
    [held] = await _withheld(gateway, app_id)
    assert (held["agency"], held["reason"]) == ("gd-hq-csb", "consent_expired")
    # the resident did nothing: they are told the case is on hold, and why
    [(recipient, body)] = await _on_hold(gateway, app_id)
    assert recipient == f"resident:{chan.person_id}"
    assert body["reason"] == "consent_expired"
    assert body["message"]["en"].startswith("Your application is on hold")


LEGAL_BASIS = {
    "law": "《个人信息保护法》",
    "article": "第十三条第一款第（三）项",
    "text": "Necessary for the agency's statutory duty to register the applicant's enterprise",
}


async def test_an_agency_declares_its_legal_basis_recorded_signed_and_never_forwarded(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    document = json.loads(mappings_sample(gateway.settings, HENGQIN, "canonical", "chan-tai-man"))

    answer = await send(  # the basis in canonical JSON's member, not in the header
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps({**document, "legal_basis": LEGAL_BASIS}, ensure_ascii=False).encode(),
        content_type="application/json",
        now=AT,
        legal_basis=None,
    )
    assert answer.status == 202, answer.body
    received = answer.json()

    claims = verify_receipt(received["receipt"], await jwks(gateway))
    assert claims["legal_basis"] == LEGAL_BASIS
    case = await view(gateway, received["application_id"])
    [receipt_event] = [e for e in case["timeline"] if e["type"] == "application.received"]
    assert receipt_event["legal_basis"] == LEGAL_BASIS
    rows = await _rows(
        gateway.settings,
        sa.select(outbox.c.body, outbox.c.consent_id, outbox.c.relies_on).where(
            outbox.c.application_id == received["application_id"]
        ),
    )
    assert len(rows) == 1
    assert b"legal_basis" not in rows[0].body
    assert rows[0].consent_id is None
    assert rows[0].relies_on == "legal_basis"


async def test_a_resident_cannot_declare_a_legal_basis_and_nothing_is_kept(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    before = await row_counts(gateway.settings, CASE_TABLES)
    _DEPS["deps"] = deps
    body = {"application": {**application(HENGQIN), "legal_basis": LEGAL_BASIS}, "consent": CONSENT}

    with pytest.raises(ValidationFailedError) as refused:
        await handlers.submit_application(
            SubmitApplication(
                caller=Caller.resident(chan.person_id, chan.login_id),
                body=json.dumps(body).encode(),
                media_type="application/json",
                content_digest="sha-256=:key-00000104:",
                idempotency_key="key-00000104",
                applicant=Applicant(
                    chan.person_id,
                    chan.login_id,
                    "portal-1",
                    body["application"],
                    consent=CONSENT,
                ),
            ),
            deps,
        )

    assert [p.pointer for p in refused.value.errors] == ["/legal_basis"]
    assert await row_counts(gateway.settings, CASE_TABLES) == before


# ---- consenting again: the case goes on -------------------------------------------------


async def _consent_again(
    gateway: RunningGateway, signed: SignIn, app_id: str, consent: dict[str, Any] = CONSENT
) -> Any:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    return await lifecycle.act_on_application(
        ActOnApplication(
            caller=Caller.resident(signed.person_id, signed.login_id),
            application_id=app_id,
            action="consent",
            data=consent,
        ),
        deps,
    )


async def _case(gateway: RunningGateway, app_id: str) -> tuple[Any, list[Any]]:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        return await uow.applications.get(app_id), await uow.applications.timeline(app_id)


async def test_consenting_again_sends_the_forward_the_withdrawal_held_back(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    """A forward waiting for a retry was withheld by the withdrawal; a new consent for the
    case queues it again, relying on the new consent, and the relay sends it."""
    gateway, clock = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    app_id = (await submit(gateway, chan, HENGQIN, "key-00000111", consent=CONSENT))[
        "application_id"
    ]
    partners = Partners()
    partners.failing = True
    assert await _relay(gateway, partners).run_once() == 1
    first, _ = await _case(gateway, app_id)
    clock.current = AT + timedelta(minutes=1)
    await withdraw_consent(resident(chan), first.consent_id, deps)
    [held] = await _withheld(gateway, app_id)

    clock.current = AT + timedelta(minutes=5)
    answer = await _consent_again(gateway, chan, app_id)

    assert answer.status == 200
    case, timeline = await _case(gateway, app_id)
    assert case.consent_id not in (None, first.consent_id)
    [renewed] = [e.data for e in timeline if e.type == "consent.renewed"]
    assert renewed == {
        "consent_id": case.consent_id,
        "previous": first.consent_id,
        "forwards_due": ["gd-hq-csb"],
    }
    queued = [e.data["message_id"] for e in timeline if e.type == "message.queued"]
    assert len(queued) == 2
    assert queued[0] == held["message_id"]
    async with deps.uow() as uow:
        consent = await uow.identities.consent(case.consent_id)
    assert (consent.matter, consent.recipients) == (HENGQIN, ("gd-hq-csb",))
    assert await _forwards(gateway, app_id) == [
        ("gd-hq-csb", "withheld", "consent_withdrawn"),
        ("gd-hq-csb", "pending", None),
    ]
    partners.failing = False
    assert await _relay(gateway, partners).run_once() == 1
    assert partners.sent[-1] == queued[1]
    assert [s for _, s, _ in await _forwards(gateway, app_id)] == ["withheld", "delivered"]
    with pytest.raises(IllegalTransitionError):  # in force, nothing withheld since: no more
        await _consent_again(gateway, chan, app_id)


async def test_consenting_again_mid_review_sends_the_reviewer_the_case(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    """The reviewer's forward fell due after the withdrawal and was never queued; once the
    applicant consents again it goes with the case's next move: at once."""
    gateway, clock = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(acr="iamsmart+"), deps)
    app_id = (await submit(gateway, chan, MEDICAL, "key-00000112", consent=CONSENT))[
        "application_id"
    ]
    partners = Partners()
    assert await _relay(gateway, partners).run_once() == 1
    first, _ = await _case(gateway, app_id)
    await withdraw_consent(resident(chan), first.consent_id, deps)
    clock.current = AT + timedelta(hours=4)
    assert (await act(gateway, app_id, "acceptance", {"outcome": "accepted"})).status == 200
    assert [w["agency"] for w in await _withheld(gateway, app_id)] == ["hk-mchk"]

    answer = await _consent_again(gateway, chan, app_id, {**CONSENT, "destinations": ["GD"]})

    assert answer.status == 200
    _, timeline = await _case(gateway, app_id)
    [renewed] = [e.data for e in timeline if e.type == "consent.renewed"]
    assert renewed["forwards_due"] == []  # nothing had been queued to it
    assert await _forwards(gateway, app_id) == [
        ("sz-hc", "delivered", None),
        ("hk-mchk", "pending", None),
    ]
    assert await _relay(gateway, partners).run_once() == 1
    assert len(partners.sent) == 2


async def test_consenting_again_is_refused_and_changes_nothing_unless_it_can_help(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    """Refused, with nothing stored (no consent, no case change, no forward): a consent that
    does not cover the destinations the case's agencies need; someone else's case; a case
    whose consent is in force with nothing withheld; a closed case."""
    gateway, _ = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    other = await sign_in(
        hk_person("HK-WONG", "B654321", "4", "WONG, Siu Ming", "19900101", "iamsmart"), deps
    )
    app_id = (await submit(gateway, chan, HENGQIN, "key-00000113", consent=CONSENT))[
        "application_id"
    ]
    first, _ = await _case(gateway, app_id)

    with pytest.raises(IllegalTransitionError):  # in force, nothing withheld: nothing to do
        await _consent_again(gateway, chan, app_id)
    await withdraw_consent(resident(chan), first.consent_id, deps)
    before = await row_counts(gateway.settings, (consents, *CASE_TABLES))
    with pytest.raises(ConsentRequiredError):  # not to Guangdong, where the agency is (elsewhere)
        await _consent_again(gateway, chan, app_id, {**CONSENT, "destinations": ["MO"]})
    with pytest.raises(ConsentRequiredError):  # not the materials the case carries
        await _consent_again(gateway, chan, app_id, {**CONSENT, "categories": ["identity"]})
    with pytest.raises(NotFoundError):
        await _consent_again(gateway, other, app_id)
    assert await row_counts(gateway.settings, (consents, *CASE_TABLES)) == before
    case, _ = await _case(gateway, app_id)
    assert case.consent_id == first.consent_id

    await lifecycle.act_on_application(
        ActOnApplication(
            caller=Caller.resident(chan.person_id, chan.login_id),
            application_id=app_id,
            action="withdraw",
        ),
        deps,
    )
    with pytest.raises(IllegalTransitionError):  # withdrawn: nothing goes on
        await _consent_again(gateway, chan, app_id)
    assert (await row_counts(gateway.settings, (consents,)))["consents"] == before["consents"]
