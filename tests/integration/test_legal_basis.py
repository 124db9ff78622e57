"""Every forward of an agency's case rests on a declared legal basis (issue 17, item 3), on
SQLite and PostgreSQL, with a fixed clock and the relay driven by the test.

An agency's submission, in any format (canonical JSON, Hong Kong XML, Macao XML), declares
the legal basis on which it sends the applicant's data in the signed ``GBA-Legal-Basis``
header (canonical JSON may carry it as its ``legal_basis`` member instead). Without one it
is refused 422 and nothing is stored; with one it is kept on the case, signed into the
receipt, on the timeline, and shown to the resident whose login links the case. A case
with neither a consent nor a basis (filed before one was required) is never forwarded: the
forward due at a move is not queued, and one waiting in the queue is withheld by the relay.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.bootstrap import Overrides, create_app
from gateway.domain.commands import Caller
from gateway.domain.legal_basis import LegalBasis
from gateway.domain.values import local_date
from gateway.operations import mappings_sample
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS, channel_headers, default_persona
from gateway.services import queries
from gateway.services.identity import sign_in
from gateway.store.database import create_engine
from gateway.store.tables import applications, outbox
from gateway.trust.profile import sign_request
from gateway.trust.receipts import verify_receipt
from gateway.web.keys import DEPENDENCIES
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.integration.test_consent_forwards import Partners, _forwards, _relay, _withheld
from tests.integration.test_lifecycle import act, jwks
from tests.integration.test_residents import chan_at_hk
from tests.support import CASE_TABLES, agency_key, row_counts, send

MEDICAL = "11440300MB2C00091K3440120007000"  # agency acceptance: lead sz-hc, reviewer hk-mchk
HENGQIN = "11440400MB2C00081P4440120002000"  # automatic acceptance; lead gd-hq-csb (GD)
AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Guangdong
JSON, XML = "application/json", "application/xml"
# (format of mappings_sample, media type, submitting agency)
FORMATS = [("canonical", JSON, "hk-ird"), ("hk", XML, "hk-ird"), ("macau", XML, "mo-dsf")]
HK_BASIS = LegalBasis(
    law="Personal Data (Privacy) Ordinance (Cap. 486)",
    article="s. 58(1)(d), (2)",
    text="Necessary to discharge the agency's statutory functions",
)


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


def _sample(gateway: RunningGateway, code: str, fmt: str) -> tuple[bytes, dict[str, str]]:
    """The matter's sample in ``fmt`` and the channel header it is sent with."""
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(code, local_date(deps.clock.now()))
    who = "chan-tai-man" if fmt == "canonical" else None
    body = mappings_sample(gateway.settings, code, fmt, who)
    return body, channel_headers(matter, persona(who or default_persona(fmt)))


async def _submit(
    gateway: RunningGateway,
    code: str,
    fmt: str = "canonical",
    media_type: str = JSON,
    agency: str = "hk-ird",
    *,
    body: bytes | None = None,
    key: str | None = None,
    legal_basis: LegalBasis | None = SANDBOX_LEGAL_BASIS,
) -> Any:
    sample, headers = _sample(gateway, code, fmt)
    return await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=body if body is not None else sample,
        content_type=media_type,
        agency=agency,
        headers=headers,
        idempotency_key=key,
        now=AT,
        legal_basis=legal_basis,
    )


async def _execute(gateway: RunningGateway, statement: Any) -> None:
    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


async def _relies_on(gateway: RunningGateway, app_id: str) -> list[str | None]:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        app = await uow.applications.get(app_id)
    assert app is not None
    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(outbox.c.relies_on).where(outbox.c.application_id == app_id)
            )
            return [app.relies_on, *rows.scalars()]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("fmt", "media_type", "agency"), FORMATS)
async def test_an_agency_submission_without_a_legal_basis_is_refused_and_nothing_stored(
    quiet: tuple[RunningGateway, FixedClock], fmt: str, media_type: str, agency: str
) -> None:
    gateway, _ = quiet
    before = await row_counts(gateway.settings, CASE_TABLES)

    refused = await _submit(
        gateway, HENGQIN, fmt, media_type, agency, key="key-no-basis-1", legal_basis=None
    )

    assert refused.status == 422, refused.body
    problem = refused.json()
    assert problem["type"].endswith("/problems/validation-failed")
    assert [(e["pointer"], e["code"]) for e in problem["errors"]] == [
        ("/headers/gba-legal-basis", "legal_basis_required")
    ]
    assert "legal basis" in problem["errors"][0]["message"]["en"]
    # no application, no timeline, no outbox row, no Idempotency-Key spent
    assert await row_counts(gateway.settings, CASE_TABLES) == before
    # the same key, now with a basis, is a new request and is accepted
    accepted = await _submit(gateway, HENGQIN, fmt, media_type, agency, key="key-no-basis-1")
    assert accepted.status == 202, accepted.body


@pytest.mark.parametrize(("fmt", "media_type", "agency"), FORMATS)
async def test_a_declared_basis_is_kept_signed_and_every_forward_relies_on_it(
    quiet: tuple[RunningGateway, FixedClock], fmt: str, media_type: str, agency: str
) -> None:
    gateway, _ = quiet
    declared = SANDBOX_LEGAL_BASIS.record()

    answer = await _submit(gateway, HENGQIN, fmt, media_type, agency)

    assert answer.status == 202, answer.body
    app_id = answer.json()["application_id"]
    claims = verify_receipt(answer.json()["receipt"], await jwks(gateway))
    assert claims["legal_basis"] == declared  # signed into the receipt
    view = await send(gateway.settings, "GET", f"/v1/applications/{app_id}", agency=agency, now=AT)
    assert view.json()["legal_basis"] == declared
    [received] = [e for e in view.json()["timeline"] if e["type"] == "application.received"]
    assert received["legal_basis"] == declared
    # kept on the case; the queued forward records what it relies on, and does not carry it
    assert await _relies_on(gateway, app_id) == ["legal_basis", "legal_basis"]
    partners = Partners()
    assert await _relay(gateway, partners).run_once() == 1
    assert await _forwards(gateway, app_id) == [("gd-hq-csb", "delivered", None)]


async def test_the_resident_linked_to_an_agency_case_is_shown_its_legal_basis(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    body, _ = _sample(gateway, HENGQIN, "hk")
    answer = await _submit(gateway, HENGQIN, "hk", XML, legal_basis=HK_BASIS)
    assert answer.status == 202, answer.body
    app_id = answer.json()["application_id"]
    assert b"Cap. 486" not in body  # the basis came with the call, not in the document

    chan = await sign_in(chan_at_hk(), deps)  # later, online: his HKID links the case
    seen = await queries.application_view(
        deps, Caller.resident(chan.person_id, chan.login_id), app_id
    )

    assert seen["legal_basis"] == HK_BASIS.record()
    [received] = [e for e in seen["timeline"] if e["type"] == "application.received"]
    assert received["legal_basis"] == HK_BASIS.record()
    over_http = await send(gateway.settings, "GET", f"/v1/applications/{app_id}", now=AT)
    assert over_http.json()["legal_basis"] == HK_BASIS.record()


async def test_canonical_json_may_carry_the_basis_and_both_carriers_must_agree(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    document = json.loads(_sample(gateway, HENGQIN, "canonical")[0])
    in_json = {**document, "legal_basis": HK_BASIS.record()}
    raw = json.dumps(in_json, ensure_ascii=False).encode()

    member_only = await _submit(gateway, HENGQIN, body=raw, legal_basis=None)
    before = await row_counts(gateway.settings, CASE_TABLES)
    twice = await _submit(gateway, HENGQIN, body=raw, legal_basis=SANDBOX_LEGAL_BASIS)
    no_article = json.dumps({**document, "legal_basis": {"law": "PDPO"}}).encode()
    incomplete = await _submit(gateway, HENGQIN, body=no_article, legal_basis=None)

    assert member_only.status == 202, member_only.body
    claims = verify_receipt(member_only.json()["receipt"], await jwks(gateway))
    assert claims["legal_basis"] == HK_BASIS.record()
    [forward] = await _forward_bodies(gateway, member_only.json()["application_id"])
    assert b"legal_basis" not in forward  # never forwarded
    assert b"Cap. 486" not in forward
    assert twice.status == 422, twice.body
    assert [(e["pointer"], e["code"]) for e in twice.json()["errors"]] == [
        ("/legal_basis", "legal_basis_twice")
    ]
    assert incomplete.status == 422, incomplete.body
    assert ("/legal_basis/article", "required") in {
        (e["pointer"], e["code"]) for e in incomplete.json()["errors"]
    }
    assert await row_counts(gateway.settings, CASE_TABLES) == before


async def _forward_bodies(gateway: RunningGateway, app_id: str) -> list[bytes]:
    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(outbox.c.body).where(outbox.c.application_id == app_id)
            )
            return [bytes(b) for b in rows.scalars()]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('law="PDPO"', [("/headers/gba-legal-basis/article", "required")]),
        ('law="", article="13"', [("/headers/gba-legal-basis/law", "wrong_type")]),
        (
            f'law="PDPO", article="{"9" * 101}", purpose="x"',
            [
                ("/headers/gba-legal-basis/article", "wrong_type"),
                ("/headers/gba-legal-basis/purpose", "unexpected_field"),
            ],
        ),
        (
            'law=(1 2), article="13"',
            [("/headers/gba-legal-basis/law", "wrong_type")],
        ),
        ("law=", [("/headers/gba-legal-basis", "wrong_type")]),
    ],
)
async def test_a_malformed_basis_is_refused_with_every_problem_and_nothing_stored(
    quiet: tuple[RunningGateway, FixedClock], header: str, expected: list[tuple[str, str]]
) -> None:
    gateway, _ = quiet
    before = await row_counts(gateway.settings, CASE_TABLES)
    body, headers = _sample(gateway, HENGQIN, "hk")

    refused = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=body,
        content_type=XML,
        headers={**headers, "GBA-Legal-Basis": header},
        now=AT,
    )

    assert refused.status == 422, refused.body
    found = [(e["pointer"], e["code"]) for e in refused.json()["errors"]]
    assert sorted(found) == sorted(expected)
    assert await row_counts(gateway.settings, CASE_TABLES) == before


async def test_a_basis_added_after_signing_is_refused_and_nothing_stored(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    before = await row_counts(gateway.settings, CASE_TABLES)
    body, _ = _sample(gateway, HENGQIN, "hk")
    url = gateway.settings.base_url + "/v1/applications"
    headers = sign_request(
        method="POST",
        url=url,
        key=agency_key(gateway.settings, "hk-ird"),
        now=AT,
        body=body,
        content_type=XML,
        idempotency_key="key-basis-unsigned",
    )
    headers["GBA-Legal-Basis"] = SANDBOX_LEGAL_BASIS.header()  # added by a relay in between

    refused = await send(
        gateway.settings, "POST", "/v1/applications", body=body, headers=headers, sign=False
    )

    assert refused.status == 401, refused.body
    assert refused.json()["type"].endswith("/problems/signature-invalid")
    assert await row_counts(gateway.settings, CASE_TABLES) == before


async def _older_case(gateway: RunningGateway, code: str) -> str:
    """A case as filed before a basis was required: accepted, then its basis (and what its
    queued forwards rely on) erased from the rows, as they were before."""
    answer = await _submit(gateway, code, "hk", XML)
    assert answer.status == 202, answer.body
    app_id = answer.json()["application_id"]
    await _execute(
        gateway, sa.update(applications).where(applications.c.id == app_id).values(legal_basis=None)
    )
    await _execute(
        gateway, sa.update(outbox).where(outbox.c.application_id == app_id).values(relies_on=None)
    )
    return app_id


async def test_the_relay_withholds_a_queued_forward_of_a_case_resting_on_nothing(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    older = await _older_case(gateway, HENGQIN)
    control = (await _submit(gateway, HENGQIN, "hk", XML)).json()["application_id"]
    partners = Partners()

    clock.current = AT + timedelta(minutes=1)
    assert await _relay(gateway, partners).run_once() == 1  # only the control is sent

    assert await _forwards(gateway, older) == [("gd-hq-csb", "withheld", "no_legal_basis")]
    assert await _forwards(gateway, control) == [("gd-hq-csb", "delivered", None)]
    assert len(partners.sent) == 1
    [held] = await _withheld(gateway, older)
    assert (held["agency"], held["reason"]) == ("gd-hq-csb", "no_legal_basis")
    assert held["message_id"]
    assert await _withheld(gateway, control) == []
    clock.current = AT + timedelta(hours=2)
    assert await _relay(gateway, partners).run_once() == 0  # never claimed again
    assert len(partners.sent) == 1


async def test_a_forward_falling_due_for_a_case_resting_on_nothing_is_not_queued(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    answer = await _submit(gateway, MEDICAL, "hk", XML)
    assert answer.status == 202, answer.body
    app_id = answer.json()["application_id"]
    assert await _relay(gateway, Partners()).run_once() == 1  # the lead has the case
    await _execute(
        gateway, sa.update(applications).where(applications.c.id == app_id).values(legal_basis=None)
    )
    clock.current = AT + timedelta(hours=4)

    accepted = await act(gateway, app_id, "acceptance", {"outcome": "accepted"})

    assert accepted.status == 200, accepted.body
    # the reviewer in Hong Kong is never sent the case; the timeline says why
    assert await _forwards(gateway, app_id) == [("sz-hc", "delivered", None)]
    assert await _withheld(gateway, app_id) == [{"agency": "hk-mchk", "reason": "no_legal_basis"}]
