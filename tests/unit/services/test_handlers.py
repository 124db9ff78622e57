"""The partner-API use cases, through the in-memory fakes: no database, no network."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.guangdong import GuangdongCodec
from gateway.domain.commands import Caller, RecordDecision, SubmitApplication
from gateway.domain.errors import (
    ForbiddenError,
    IdempotencyConflictError,
    IllegalTransitionError,
    MalformedBodyError,
    NotFoundError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from gateway.domain.legal_basis import LegalBasis
from gateway.domain.matters import Route
from gateway.mapping.canonical import CanonicalCodec
from gateway.mapping.catalog import Catalog
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS
from gateway.services import commitments
from gateway.services.calendars import HolidayCalendar
from gateway.services.handlers import (
    Dependencies,
    canonical_digest,
    record_decision,
    submit_application,
)
from gateway.services.ports import Agency, StoredResponse
from gateway.services.queries import application_view, work_list
from gateway.services.relay import Relay, RelayPolicy
from gateway.trust.digest import content_digest
from tests.fakes import (
    FakeDirectory,
    FakeReceipts,
    FakeTransport,
    FakeUnitOfWorkFactory,
    FixedClock,
)

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "tests" / "fixtures" / "documents" / "hk-individual-business.canonical.json"
MATTER = "11440400MB2C00081P4440120002000"
TUESDAY = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Guangdong, a working day
ISSUER = "https://gateway.test"

HK_IRD = Agency("hk-ird", "HK", {"en": "Business Registration Office"}, matters=(MATTER,))
GD_CSB = Agency(
    "gd-hq-csb", "GD", {"en": "Hengqin Commercial Services Bureau"}, "https://gd.test/in", ("*",)
)
GD_TAX = Agency("gd-hq-tax", "GD", {"en": "Hengqin Tax Bureau"}, "https://tax.test/in", ("*",))
MO_DSF = Agency("mo-dsf", "MO", {"en": "Financial Services Bureau"}, matters=())  # no rights
HK_TD = Agency("hk-td", "HK", {"en": "Transport Department"}, matters=("*",))  # not a party

HK = Caller("hk-ird", "HK", "hk-ird-key-1")
GD = Caller("gd-hq-csb", "GD", "gd-hq-csb-key-1")
TAX = Caller("gd-hq-tax", "GD", "gd-hq-tax-key-1")
MO = Caller("mo-dsf", "MO", "mo-dsf-key-1")
STRANGER = Caller("hk-td", "HK", "hk-td-key-1")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(ROOT / "mappings" / "matters")


@dataclasses.dataclass
class World:
    deps: Dependencies
    uow: FakeUnitOfWorkFactory
    clock: FixedClock
    receipts: FakeReceipts
    agencies: FakeDirectory
    wakes: list[int]


def _world(catalog: Any) -> World:
    uow = FakeUnitOfWorkFactory()
    clock = FixedClock(TUESDAY)
    receipts = FakeReceipts()
    agencies = FakeDirectory([HK_IRD, GD_CSB, GD_TAX, MO_DSF, HK_TD])
    uow.agencies = agencies
    wakes: list[int] = []
    deps = Dependencies(
        uow=uow,
        clock=clock,
        catalog=catalog,
        codecs={"canonical": CanonicalCodec(), "GD": GuangdongCodec()},
        receipts=receipts,
        calendar=HolidayCalendar(),
        issuer=ISSUER,
        outbox_written=lambda: wakes.append(1),
    )
    return World(deps, uow, clock, receipts, agencies, wakes)


@pytest.fixture
def world(catalog: Catalog) -> World:
    return _world(catalog)


class JointCatalog:
    """The real catalog, with the sample matter handled jointly by two Guangdong agencies."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def get(self, code: str, on: date) -> Any:
        matter = self._catalog.get(code, on)
        return dataclasses.replace(matter, route=Route("gd-hq-csb", ("gd-hq-tax",)))

    def all(self, on: date) -> Any:
        return self._catalog.all(on)

    def search(self, text: str, on: date) -> Any:
        return self._catalog.search(text, on)


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text("utf-8"))


def _submit(
    document: dict[str, Any] | None = None,
    *,
    key: str = "key-1",
    caller: Caller = HK,
    body: bytes | None = None,
    media_type: str = "application/json",
    legal_basis: LegalBasis | None = SANDBOX_LEGAL_BASIS,
) -> SubmitApplication:
    """An agency's submission, declaring the sandbox's legal basis as its header would."""
    if body is None:
        body = json.dumps(document if document is not None else _golden()).encode()
    return SubmitApplication(
        caller, body, media_type, content_digest(body), key, legal_basis=legal_basis
    )


def _decide(
    application_id: str,
    decision: str = "approved",
    *,
    caller: Caller = GD,
    reasons: tuple[str, ...] = (),
    key: str = "decision-1",
) -> RecordDecision:
    body = json.dumps({"decision": decision, "reasons": list(reasons)}).encode()
    return RecordDecision(caller, application_id, decision, reasons, key, content_digest(body))


def _assert_nothing_stored(world: World) -> None:
    assert world.uow.applications() == []
    assert world.uow.messages() == []
    assert world.uow.idempotency_keys() == {}
    assert world.wakes == []


async def _deliver_all(world: World) -> None:
    relay = Relay(world.uow, FakeTransport(), world.clock)
    while await relay.run_once():
        pass


# --------------------------------------------------------------------------- submit


async def test_submit_canonical_json_accepts_and_queues_one_forward(world: World) -> None:
    cmd = _submit()

    response = await submit_application(cmd, world.deps)

    assert response.status == 202
    assert response.request_digest == cmd.content_digest
    [app] = world.uow.applications()
    assert response.resource == app.id
    assert response.body == {
        "application_id": app.id,
        "matter": app.matter,
        "status": "accepted",
        "receipt": f"fake-receipt.2.{app.id}",  # signed after the acceptance's voucher
    }
    assert app.id.startswith("app_")
    assert app.status.value == "accepted"
    assert (app.matter, app.matter_version, app.submitted_by) == (MATTER, 1, "hk-ird")
    assert (app.channel, app.source_format) == ("online", "canonical")
    assert app.content_digest == cmd.content_digest
    # the golden document, with its commitment's text filled in from the catalog (Art. 12)
    text = "本人承诺经营场所真实、合法、可用，如与事实不符，愿承担相应法律责任。"
    committed = {"material": "PREMISES_PROOF", "language": "zh-Hans", "text": text}
    committed["digest"] = commitments.digest(text)
    assert _golden()["commitments"] == [{"material": "PREMISES_PROOF"}]
    assert app.document == {**_golden(), "commitments": [committed]}
    assert app.deadline == "2026-03-03"  # promised: the same working day
    assert app.version == 1
    assert [(h.agency_id, h.role, h.state.value) for h in app.handlers] == [
        ("gd-hq-csb", "lead", "pending")
    ]
    assert world.uow.event_types(app.id) == [
        "application.received",
        "application.accepted",
        "voucher.issued",  # the acceptance's, as after an agency's acceptance (Art. 19(4))
        "message.queued",
    ]
    assert [e.seq for e in world.uow.timeline(app.id)] == [1, 2, 3, 4]
    assert world.wakes == [1]


async def test_the_forward_carries_the_envelope_and_translation_record(world: World) -> None:
    cmd = _submit()

    await submit_application(cmd, world.deps)

    [app] = world.uow.applications()
    [message] = world.uow.messages()
    assert message.id.startswith("msg_")
    assert (message.destination, message.application_id) == ("gd-hq-csb", app.id)
    assert (message.status, message.attempts) == ("pending", 0)
    assert message.next_attempt_at == TUESDAY
    assert message.media_type == "application/json"
    body = json.loads(message.body)
    assert body["message_id"] == message.id
    assert body["application_id"] == app.id
    assert body["matter"] == MATTER
    assert body["matter_version"] == 1
    assert body["role"] == "lead"
    assert body["submitted_by"] == "hk-ird"
    assert body["channel"] == "online"
    assert body["received_at"] == TUESDAY.isoformat()
    assert body["deadline"] == "2026-03-03"
    assert body["consent_id"] is None
    assert body["translation"] == {
        "source_format": "canonical",
        "source_digest": cmd.content_digest,
        "mapping_version": "canonical-1",
        # of the stored document: the golden one with its commitment's text filled in
        "canonical_digest": canonical_digest(app.document),
        "output_format": "GD",
        "output_digest": canonical_digest(body["application"]),
    }
    assert body["application"] == app.document  # the commitment's text goes with it
    queued = world.uow.timeline(app.id)[-1]
    assert queued.data == {"agency": "gd-hq-csb", "message_id": message.id}


async def test_submit_issues_a_receipt_with_the_documented_claims(world: World) -> None:
    cmd = _submit()

    await submit_application(cmd, world.deps)

    [app] = world.uow.applications()
    acceptance, claims = world.receipts.claims  # the acceptance's voucher, then the receipt
    assert (acceptance["kind"], acceptance["event"]) == ("acceptance", "application.accepted")
    assert claims["iss"] == ISSUER
    assert claims["sub"] == app.id
    assert claims["matter"] == MATTER
    assert claims["status"] == "accepted"
    assert claims["content_digest"] == cmd.content_digest
    assert claims["missing"] == []
    assert claims["deadline"] == "2026-03-03"
    assert claims["iat"] == int(TUESDAY.timestamp())
    assert claims["received_at"] == TUESDAY.isoformat()
    assert claims["jti"].startswith("rcp_")


async def test_deadline_counts_guangdong_working_days(world: World) -> None:
    world.clock.set(datetime(2026, 10, 1, 2, 0, tzinfo=UTC))  # National Day

    await submit_application(_submit(), world.deps)

    [app] = world.uow.applications()
    assert app.deadline == "2026-10-08"
    assert world.receipts.claims[0]["deadline"] == "2026-10-08"


async def test_deadline_counts_from_the_local_date_of_the_calendar(world: World) -> None:
    world.clock.set(datetime(2026, 3, 3, 23, 30, tzinfo=UTC))  # Wed 2026-03-04 07:30 in GD

    await submit_application(_submit(), world.deps)

    [app] = world.uow.applications()
    assert app.deadline == "2026-03-04"


async def test_incomplete_application_awaits_a_supplement_and_is_not_forwarded(
    world: World,
) -> None:
    document = _golden()
    del document["commitments"]

    response = await submit_application(_submit(document), world.deps)

    assert response.status == 202
    assert response.body["status"] == "awaiting_supplement"
    [app] = world.uow.applications()
    assert app.missing == ("PREMISES_PROOF",)
    assert app.deadline is None
    assert world.uow.messages() == []
    assert world.wakes == []
    assert world.uow.event_types(app.id) == [
        "application.received",
        "application.supplement_requested",
        "voucher.issued",  # the notice's, as after the lead's notice (Art. 19(4))
    ]
    notice, claims = world.receipts.claims
    assert (notice["kind"], notice["missing"]) == ("supplement_notice", ["PREMISES_PROOF"])
    assert (claims["status"], claims["missing"], claims["deadline"]) == (
        "awaiting_supplement",
        ["PREMISES_PROOF"],
        None,
    )


async def test_joint_matter_forwards_one_message_per_handler(catalog: Catalog) -> None:
    world = _world(JointCatalog(catalog))

    await submit_application(_submit(), world.deps)

    [app] = world.uow.applications()
    messages = world.uow.messages()
    assert sorted(m.destination for m in messages) == ["gd-hq-csb", "gd-hq-tax"]
    roles = {m.destination: json.loads(m.body)["role"] for m in messages}
    assert roles == {"gd-hq-csb": "lead", "gd-hq-tax": "reviewer"}
    assert len({m.id for m in messages}) == 2
    assert world.uow.event_types(app.id).count("message.queued") == 2


# --------------------------------------------------------------------------- idempotency


async def test_same_key_and_body_replays_the_stored_response(world: World) -> None:
    first = await submit_application(_submit(), world.deps)

    again = await submit_application(_submit(), world.deps)

    assert again == first
    assert len(world.uow.applications()) == 1
    assert len(world.uow.messages()) == 1
    assert len(world.receipts.claims) == 2  # the receipt and the acceptance's voucher, once
    assert world.uow.idempotency_keys() == {("hk-ird", "submit_application", "key-1"): first}


async def test_same_key_with_another_body_is_an_idempotency_conflict(world: World) -> None:
    await submit_application(_submit(), world.deps)
    other = _golden()
    other["particulars"]["employees"] = "4"

    with pytest.raises(IdempotencyConflictError):
        await submit_application(_submit(other), world.deps)
    assert len(world.uow.applications()) == 1


async def test_the_same_key_of_another_agency_is_another_request(world: World) -> None:
    await submit_application(_submit(), world.deps)
    world.agencies.add(dataclasses.replace(HK_TD, matters=(MATTER,)))

    await submit_application(_submit(caller=STRANGER), world.deps)

    assert len(world.uow.applications()) == 2


async def test_concurrent_requests_with_one_key_store_one_application(world: World) -> None:
    first, second = await asyncio.gather(
        submit_application(_submit(), world.deps), submit_application(_submit(), world.deps)
    )

    assert first == second
    # both did the work (a receipt and an acceptance voucher each); the later lost the key
    assert len(world.receipts.claims) == 4
    assert len(world.uow.applications()) == 1
    assert len(world.uow.messages()) == 1
    assert world.uow.applications()[0].id == first.body["application_id"]


# --------------------------------------------------------------------------- refusals


async def test_unknown_matter_is_a_validation_problem_at_matter(world: World) -> None:
    document = _golden()
    document["matter"] = "11440400MB2C00081P4440120009999"

    with pytest.raises(ValidationFailedError) as raised:
        await submit_application(_submit(document), world.deps)

    assert [(p.pointer, p.code) for p in raised.value.errors] == [("/matter", "unknown_matter")]
    _assert_nothing_stored(world)


async def test_document_without_a_matter_is_a_validation_problem(world: World) -> None:
    document = _golden()
    del document["matter"]

    with pytest.raises(ValidationFailedError) as raised:
        await submit_application(_submit(document), world.deps)

    assert [p.pointer for p in raised.value.errors] == ["/matter"]


async def test_agency_without_rights_to_the_matter_is_forbidden(world: World) -> None:
    with pytest.raises(ForbiddenError):
        await submit_application(_submit(caller=MO), world.deps)

    _assert_nothing_stored(world)
    assert world.receipts.claims == []


async def test_invalid_document_lists_every_problem_and_stores_nothing(world: World) -> None:
    document = _golden()
    document["applicant"]["birth_date"] = "1988-13-01"
    document["applicant"]["documents"][0]["number"] = "A1234560"
    document["materials"][0]["digest"] = "not-a-digest"
    del document["particulars"]["business_name"]

    with pytest.raises(ValidationFailedError) as raised:
        await submit_application(_submit(document), world.deps)

    assert sorted((p.pointer, p.code) for p in raised.value.errors) == [
        ("/applicant/birth_date", "invalid_date"),
        ("/applicant/documents/0/number", "invalid_document"),
        ("/materials/0/digest", "invalid_digest"),
        ("/particulars/business_name", "required"),
    ]
    assert raised.value.detail == "4 problem(s) found"
    _assert_nothing_stored(world)
    assert world.receipts.claims == []


async def test_a_refused_submission_does_not_burn_its_key(world: World) -> None:
    bad = _golden()
    del bad["particulars"]["business_name"]
    with pytest.raises(ValidationFailedError):
        await submit_application(_submit(bad, key="key-9"), world.deps)

    response = await submit_application(_submit(key="key-9"), world.deps)

    assert response.status == 202


async def test_malformed_json_is_refused(world: World) -> None:
    with pytest.raises(MalformedBodyError):
        await submit_application(_submit(body=b'{"matter": '), world.deps)
    _assert_nothing_stored(world)


async def test_unsupported_media_type_is_refused(world: World) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        await submit_application(_submit(media_type="application/pdf"), world.deps)
    _assert_nothing_stored(world)


# --------------------------------------------------------------------------- decisions


async def _accepted_and_delivered(world: World) -> str:
    response = await submit_application(_submit(), world.deps)
    await _deliver_all(world)
    application_id = response.body["application_id"]
    assert world.uow.application(application_id).status.value == "under_review"
    return application_id


async def test_record_decision_approves(world: World) -> None:
    application_id = await _accepted_and_delivered(world)

    response = await record_decision(_decide(application_id), world.deps)

    assert response == StoredResponse(
        request_digest=_decide(application_id).body_digest,
        status=200,
        body={
            "application_id": application_id,
            "status": "approved",
            "handler": {"agency_id": "gd-hq-csb", "state": "approved"},
        },
        resource=application_id,
    )
    app = world.uow.application(application_id)
    assert app.status.value == "approved"
    assert world.uow.event_types(application_id)[-3:] == [
        "decision.recorded",
        "application.approved",
        "voucher.issued",  # the decision's signed voucher (Art. 19(4))
    ]


async def test_repeated_decision_with_the_same_key_replays(world: World) -> None:
    application_id = await _accepted_and_delivered(world)
    first = await record_decision(_decide(application_id), world.deps)
    events = world.uow.event_types(application_id)

    again = await record_decision(_decide(application_id), world.deps)

    assert again == first
    assert world.uow.event_types(application_id) == events


async def test_one_decision_key_on_two_cases_is_two_requests(world: World) -> None:
    first = await _accepted_and_delivered(world)
    second = (await submit_application(_submit(key="key-2"), world.deps)).body["application_id"]
    await _deliver_all(world)

    answers = [await record_decision(_decide(case), world.deps) for case in (first, second)]

    assert [a.body["application_id"] for a in answers] == [first, second]
    assert {k for k in world.uow.idempotency_keys() if k[0] == "gd-hq-csb"} == {
        ("gd-hq-csb", f"record_decision {first}", "decision-1"),
        ("gd-hq-csb", f"record_decision {second}", "decision-1"),
    }


async def test_rejection_records_its_reasons(world: World) -> None:
    application_id = await _accepted_and_delivered(world)

    response = await record_decision(
        _decide(application_id, "rejected", reasons=("PREMISES_NOT_ZONED",)), world.deps
    )

    assert response.body["status"] == "rejected"
    view = await application_view(world.deps, HK, application_id)
    assert view["handlers"][0]["reasons"] == ["PREMISES_NOT_ZONED"]


async def test_decision_before_delivery_is_an_illegal_transition(world: World) -> None:
    response = await submit_application(_submit(), world.deps)
    application_id = response.body["application_id"]

    with pytest.raises(IllegalTransitionError):
        await record_decision(_decide(application_id), world.deps)
    assert world.uow.application(application_id).status.value == "accepted"
    assert world.uow.idempotency_keys().keys() == {("hk-ird", "submit_application", "key-1")}


async def test_stranger_agency_cannot_see_or_decide_the_application(world: World) -> None:
    application_id = await _accepted_and_delivered(world)

    with pytest.raises(NotFoundError):
        await record_decision(_decide(application_id, caller=STRANGER), world.deps)
    with pytest.raises(NotFoundError):
        await application_view(world.deps, STRANGER, application_id)
    assert world.uow.application(application_id).status.value == "under_review"


async def test_unknown_application_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError):
        await record_decision(_decide("app_NOPE"), world.deps)
    with pytest.raises(NotFoundError):
        await application_view(world.deps, GD, "app_NOPE")


async def test_the_submitter_cannot_decide(world: World) -> None:
    application_id = await _accepted_and_delivered(world)

    with pytest.raises(ForbiddenError):
        await record_decision(_decide(application_id, caller=HK), world.deps)
    assert world.uow.application(application_id).status.value == "under_review"


async def test_joint_case_is_decided_when_both_handlers_decided(catalog: Catalog) -> None:
    world = _world(JointCatalog(catalog))
    response = await submit_application(_submit(), world.deps)
    application_id = response.body["application_id"]
    # One delivery at a time: two acknowledgements of one case must not race (see test_relay).
    relay = Relay(world.uow, FakeTransport(), world.clock, RelayPolicy(concurrency=1))
    assert await relay.run_once() == 2
    assert world.uow.application(application_id).status.value == "under_review"

    first = await record_decision(_decide(application_id), world.deps)
    assert first.body["status"] == "under_review"

    second = await record_decision(_decide(application_id, caller=TAX), world.deps)
    assert second.body == {
        "application_id": application_id,
        "status": "approved",
        "handler": {"agency_id": "gd-hq-tax", "state": "approved"},
    }


# --------------------------------------------------------------------------- views


async def test_application_view_shows_handlers_deadlines_and_timeline(world: World) -> None:
    application_id = await _accepted_and_delivered(world)
    await record_decision(_decide(application_id), world.deps)

    view = await application_view(world.deps, HK, application_id)

    assert set(view) == {
        "application_id",
        "matter",
        "status",
        "submitted_by",
        "channel",
        "received_at",
        "missing",
        "handlers",
        "deadlines",
        "delivery_channel",
        "legal_basis",
        "evidence",
        "owed",
        "timeline",
    }
    assert view["evidence"] == []  # an agency's submission requests no evidence
    assert view["legal_basis"] == SANDBOX_LEGAL_BASIS.record()  # what the agency declared
    assert view["application_id"] == application_id
    assert view["matter"] == MATTER
    assert view["status"] == "approved"
    assert view["submitted_by"] == "hk-ird"
    assert view["channel"] == "online"
    assert view["received_at"] == TUESDAY.isoformat()
    assert view["missing"] == []
    assert view["handlers"] == [
        {"agency_id": "gd-hq-csb", "role": "lead", "state": "approved", "reasons": []}
    ]
    assert view["deadlines"] == {
        "acceptance_due": None,
        "promised": "2026-03-03",
        "statutory": "2026-03-06",
        "overdue": False,
    }
    assert [(e["seq"], e["type"]) for e in view["timeline"]] == [
        (1, "application.received"),
        (2, "application.accepted"),
        (3, "voucher.issued"),
        (4, "message.queued"),
        (5, "message.delivered"),
        (6, "review.started"),
        (7, "decision.recorded"),
        (8, "application.approved"),
        (9, "voucher.issued"),
    ]
    assert [view["timeline"][i]["kind"] for i in (2, 8)] == ["acceptance", "decision"]
    decision = view["timeline"][6]
    assert decision["actor"] == "gd-hq-csb"
    assert decision["decision"] == "approved"
    assert decision["at"] == TUESDAY.isoformat()


async def test_every_party_sees_the_same_case(world: World) -> None:
    application_id = await _accepted_and_delivered(world)

    by_submitter = await application_view(world.deps, HK, application_id)
    by_handler = await application_view(world.deps, GD, application_id)

    assert by_submitter == by_handler


async def test_work_list_holds_only_the_cases_an_agency_handles(world: World) -> None:
    response = await submit_application(_submit(), world.deps)
    application_id = response.body["application_id"]

    handler_list = await work_list(world.deps, GD, limit=10, after=None)
    submitter_list = await work_list(world.deps, HK, limit=10, after=None)

    assert handler_list == {
        "items": [
            {
                "application_id": application_id,
                "matter": MATTER,
                "status": "accepted",
                "received_at": TUESDAY.isoformat(),
                "deadline": "2026-03-03",
                "owed": [],
            }
        ],
        "next": None,
    }
    assert submitter_list == {"items": [], "next": None}


async def test_work_list_pages_with_a_cursor(world: World) -> None:
    for n in range(3):
        await submit_application(_submit(key=f"key-{n}"), world.deps)
    every = sorted(a.id for a in world.uow.applications())

    page1 = await work_list(world.deps, GD, limit=2, after=None)
    page2 = await work_list(world.deps, GD, limit=2, after=page1["next"])

    assert [i["application_id"] for i in page1["items"]] == every[:2]
    assert page1["next"] == every[1]
    assert [i["application_id"] for i in page2["items"]] == every[2:]
    assert page2["next"] is None
