"""One unit of work per signed write: the message's acceptance (nonce, evidence, audit entry)
commits with the use case's own writes and its Idempotency-Key, or not at all."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from gateway.domain.commands import ActOnApplication, Caller
from gateway.domain.complaints import AnswerComplaint, FileComplaint
from gateway.domain.errors import (
    IllegalTransitionError,
    ReplayedRequestError,
    ValidationFailedError,
)
from gateway.mapping.catalog import Catalog
from gateway.services.acceptance import MessageAcceptance, keep_refused
from gateway.services.complaints import answer_complaint, file_complaint
from gateway.services.handlers import record_decision, submit_application
from gateway.services.lifecycle import act_on_application
from gateway.trust.digest import content_digest
from tests.unit.services.test_handlers import (
    GD,
    HK,
    ROOT,
    TUESDAY,
    World,
    _decide,
    _deliver_all,
    _golden,
    _submit,
    _world,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(ROOT / "mappings" / "matters")


@pytest.fixture
def world(catalog: Catalog) -> World:
    return _world(catalog)


def _acceptance(caller: Caller, nonce: str, body: bytes = b"{}") -> MessageAcceptance:
    return MessageAcceptance(
        agency_id=caller.agency_id,
        keyid=caller.key_id,
        nonce=nonce,
        expires_at=TUESDAY + timedelta(minutes=10),
        media_type="application/json",
        content_digest=content_digest(body),
        evidence=body,
        audit={"method": "POST", "nonce": nonce},
        at=TUESDAY,
    )


def _snapshot(world: World) -> dict[str, Any]:
    state = world.uow.state
    return {
        "applications": {k: v.status for k, v in state.applications.items()},
        "timelines": {k: len(v) for k, v in state.timelines.items()},
        "outbox": len(state.outbox),
        "idempotency": set(state.idempotency),
        "nonces": set(state.nonces),
        "audit": len(state.audit),
        "evidence": set(state.evidence),
    }


async def _submitted(world: World) -> str:
    response = await submit_application(_submit(key="setup-submit"), world.deps)
    await _deliver_all(world)
    return str(response.body["application_id"])


async def _with_complaint(world: World) -> tuple[str, str]:
    application_id = await _submitted(world)
    filed = await file_complaint(
        FileComplaint(HK, application_id, "too slow", "setup-complaint", "sha-256=:x:"),
        world.deps,
    )
    return application_id, str(filed.resource)


Act = Callable[[MessageAcceptance], Awaitable[Any]]


async def _submit_write(world: World) -> Act:
    return lambda acceptance: submit_application(_submit(key="the-write"), world.deps, acceptance)


async def _decide_write(world: World) -> Act:
    application_id = await _submitted(world)
    return lambda acceptance: record_decision(_decide(application_id), world.deps, acceptance)


async def _withdraw_write(world: World) -> Act:
    application_id = await _submitted(world)
    cmd = ActOnApplication(HK, application_id, "withdraw", {}, "the-write", "sha-256=:w:")
    return lambda acceptance: act_on_application(cmd, world.deps, acceptance)


async def _complain_write(world: World) -> Act:
    application_id = await _submitted(world)
    cmd = FileComplaint(HK, application_id, "no answer yet", "the-write", "sha-256=:c:")
    return lambda acceptance: file_complaint(cmd, world.deps, acceptance)


async def _answer_write(world: World) -> Act:
    application_id, complaint_id = await _with_complaint(world)
    cmd = AnswerComplaint(
        GD, application_id, complaint_id, "dismissed", "answered in time", "the-write", "d"
    )
    return lambda acceptance: answer_complaint(cmd, world.deps, acceptance)


WRITES: dict[str, tuple[Callable[[World], Awaitable[Act]], Caller]] = {
    "submit_application": (_submit_write, HK),
    "record_decision": (_decide_write, GD),
    "act_on_application": (_withdraw_write, HK),
    "file_complaint": (_complain_write, HK),
    "answer_complaint": (_answer_write, GD),
}


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_each_signed_write_runs_in_one_unit_of_work(world: World, name: str) -> None:
    setup, caller = WRITES[name]
    act = await setup(world)
    opened, commits = world.uow.opened, world.uow.commits
    acceptance = _acceptance(caller, "nonce-" + name)

    await act(acceptance)

    assert (world.uow.opened - opened, world.uow.commits - commits) == (1, 1)
    assert (caller.key_id, acceptance.nonce) in world.uow.state.nonces
    accepted = [e for e in world.uow.state.audit if e[0] == "message.accepted"]
    assert [(e[1], e[2], e[3]["nonce"]) for e in accepted] == [
        (caller.agency_id, caller.key_id, acceptance.nonce)
    ]
    assert acceptance.content_digest in world.uow.state.evidence


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_replayed_nonce_stores_nothing(world: World, name: str) -> None:
    setup, caller = WRITES[name]
    act = await setup(world)
    async with world.uow() as uow:  # the nonce, used by an earlier request
        await uow.nonces.use(
            caller.key_id, "used", now=TUESDAY, expires_at=TUESDAY + timedelta(days=1)
        )
        await uow.commit()
    before, wakes = _snapshot(world), list(world.wakes)

    with pytest.raises(ReplayedRequestError):
        await act(_acceptance(caller, "used", b'{"replayed": true}'))

    assert _snapshot(world) == before
    assert world.wakes == wakes


async def test_a_submission_opens_one_unit_of_work(world: World) -> None:
    await submit_application(_submit(), world.deps, _acceptance(HK, "n-1"))
    assert (world.uow.opened, world.uow.commits) == (1, 1)


async def test_an_idempotent_retry_is_one_unit_of_work_that_keeps_its_nonce(
    world: World,
) -> None:
    first = await submit_application(_submit(), world.deps, _acceptance(HK, "n-1"))
    again = await submit_application(_submit(), world.deps, _acceptance(HK, "n-2"))
    assert again.replayed
    assert again.body == first.body
    assert (world.uow.opened, world.uow.commits) == (2, 2)
    assert {("hk-ird-key-1", "n-1"), ("hk-ird-key-1", "n-2")} <= set(world.uow.state.nonces)
    assert len(world.uow.applications()) == 1


async def test_a_refused_write_rolls_its_nonce_back_with_it(world: World) -> None:
    document = _golden()
    document["applicant"] = {}
    body = json.dumps(document).encode()
    acceptance = _acceptance(HK, "refused", body)
    with pytest.raises(ValidationFailedError):
        await submit_application(_submit(body=body), world.deps, acceptance)
    assert world.uow.state.nonces == {}
    assert world.uow.state.audit == []
    assert world.uow.applications() == []


async def test_a_refused_request_keeps_its_nonce_so_its_copy_is_a_replay(world: World) -> None:
    acceptance = _acceptance(HK, "refused")
    await keep_refused(world.uow, acceptance)
    assert ("hk-ird-key-1", "refused") in world.uow.state.nonces
    assert [e[0] for e in world.uow.state.audit] == ["message.accepted"]

    before = _snapshot(world)
    with pytest.raises(ReplayedRequestError):
        await submit_application(_submit(), world.deps, acceptance)
    assert _snapshot(world) == before
    assert world.wakes == []

    with pytest.raises(ReplayedRequestError):  # a copy refused before its use case ran
        await keep_refused(world.uow, acceptance)
    assert _snapshot(world) == before


async def test_a_conflict_rolls_its_nonce_back_too(world: World) -> None:
    response = await submit_application(_submit(), world.deps)  # not delivered: not decidable
    before = _snapshot(world)
    with pytest.raises(IllegalTransitionError):
        await record_decision(
            _decide(str(response.body["application_id"])), world.deps, _acceptance(GD, "early")
        )
    assert _snapshot(world) == before  # the edge keeps the refusal (keep_refused)
