"""Native out, end to end on the running sandbox: each handler receives the case in the format
it declared, signed as ever, and a format that cannot carry the whole case stops that forward
with a clear event on the timeline (the other forwards still go)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import sqlalchemy as sa
from lxml import etree

from gateway.domain.agencies import Agency
from gateway.mapping.xml import parse_xml
from gateway.sandbox.routes import PARTNERS
from gateway.sandbox.samples import INDIVIDUAL_BUSINESS
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import UTCDateTime, outbox
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.registry import Registration
from gateway.web.keys import DEPENDENCIES
from tests.conftest import Database, RunningGateway
from tests.support import FIXTURES, sample_xml, send

HK = "{urn:gba:hk:application:1}"
MO = "{urn:gba:mo:requerimento:1}"


async def _route(gateway: RunningGateway, lead: str, reviewers: list[str]) -> None:
    url = f"{gateway.url}/sandbox/v1/routes/{INDIVIDUAL_BUSINESS}"
    body = {"lead": lead, "reviewers": reviewers}
    async with aiohttp.ClientSession() as session, session.put(url, json=body) as response:
        assert response.status == 200, await response.text()


async def _schema(gateway: RunningGateway, name: str) -> etree.XMLSchema:
    """The XSD as the gateway publishes it at /v1/schemas/{name}."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/v1/schemas/{name}") as response,
    ):
        assert response.status == 200
        return etree.XMLSchema(etree.fromstring(await response.read()))


async def _outbox(gateway: RunningGateway, application_id: str) -> dict[str, Any]:
    """The stored forwards of a case by destination, as signed and sent."""
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        rows = await uow._conn.execute(
            sa.select(outbox).where(outbox.c.application_id == application_id)
        )
        return {row.destination: row for row in rows}


async def _case(gateway: RunningGateway, application_id: str) -> Any:
    return (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()


async def _until_delivered(gateway: RunningGateway, application_id: str, agencies: set[str]) -> Any:
    for _ in range(500):
        case = await _case(gateway, application_id)
        delivered = {e["actor"] for e in case["timeline"] if e["type"] == "message.delivered"}
        if agencies <= delivered:
            return case
        await asyncio.sleep(0.02)
    raise AssertionError(f"not delivered to {agencies - delivered}: {case['timeline']}")


def _c14n_digest(element: etree._Element) -> str:
    data = etree.tostring(element, method="c14n", exclusive=True)
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


async def test_a_case_reaches_hk_and_macau_reviewers_in_their_native_xml(
    gateway: RunningGateway,
) -> None:
    await _route(gateway, "gd-hq-csb", ["hk-cr", "mo-dsat"])

    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    assert answer.status == 202, answer.body
    application_id = answer.json()["application_id"]
    # delivered means acknowledged, signed: the sandbox agency parsed and validated its format
    await _until_delivered(gateway, application_id, {"gd-hq-csb", "hk-cr", "mo-dsat"})

    sent = await _outbox(gateway, application_id)
    assert sent["gd-hq-csb"].media_type == "application/json"
    assert json.loads(sent["gd-hq-csb"].body)["translation"]["output_format"] == "GD"
    for agency, name, tag, record in (
        ("hk-cr", "hk-application.xsd", f"{HK}Message", f"{HK}Envelope/{HK}Translation/{HK}"),
        ("mo-dsat", "macau-application.xsd", f"{MO}Mensagem", f"{MO}Envelope/{MO}Traducao/{MO}"),
    ):
        row = sent[agency]
        assert row.media_type == "application/xml"
        message = parse_xml(row.body)
        assert message.tag == tag
        schema = await _schema(gateway, name)
        assert schema.validate(message), schema.error_log
        output, digest = (
            ("OutputFormat", "OutputDigest")
            if agency == "hk-cr"
            else (
                "FormatoSaida",
                "ResumoSaida",
            )
        )
        assert message.findtext(record + output) == ("HK" if agency == "hk-cr" else "MO")
        assert message.findtext(record + digest) == _c14n_digest(message[1])
        received = gateway.app[PARTNERS].inboxes[agency].messages  # type: ignore[index]
        [envelope] = received.values()
        assert envelope["application_id"] == application_id
        assert envelope["format"] == ("HK" if agency == "hk-cr" else "MO")
        assert envelope["translation"]["source_format"] == "HK"


async def test_an_agency_that_asks_for_canonical_gets_the_json_message(
    gateway: RunningGateway,
) -> None:
    key = SigningKey("tester-hk-key-1", generate_private_key("ed25519"), "ed25519")
    registration = {
        "agency_id": "tester-hk",
        "jurisdiction": "HK",
        "keys": [key.jwk()],
        "matters": ["*"],
        "receives": "canonical",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/sandbox/v1/agencies", json=registration) as response,
    ):
        assert response.status == 201
        assert (await response.json())["receives"] == "canonical"
    await _route(gateway, "gd-hq-csb", ["tester-hk"])

    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    assert answer.status == 202, answer.body

    row = (await _outbox(gateway, answer.json()["application_id"]))["tester-hk"]
    assert row.media_type == "application/json"
    message = json.loads(row.body)
    assert message["translation"]["output_format"] == "canonical"
    assert message["application"]["matter"] == INDIVIDUAL_BUSINESS
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/sandbox/console/agencies/tester-hk?lang=en") as response,
    ):
        page = await response.text()
    assert response.status == 200
    assert "<dt>Receives</dt><dd><code>canonical</code></dd>" in page


async def test_a_name_the_hk_format_cannot_carry_blocks_only_that_forward(
    gateway: RunningGateway,
) -> None:
    await _route(gateway, "gd-hq-csb", ["hk-cr"])
    document = json.loads(
        (FIXTURES / "documents" / "hk-individual-business.canonical.json").read_text("utf-8")
    )
    # a name in Simplified Chinese only: the HK format has a Traditional Chinese or an English
    # name, and deriving one from the other is not the gateway's to do
    document["applicant"]["names"] = {"original": "王小明", "zh-Hans": "王小明"}

    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document, ensure_ascii=False).encode(),
        content_type="application/json",
    )
    assert answer.status == 202, answer.body
    application_id = answer.json()["application_id"]

    case = await _case(gateway, application_id)
    queued = [e["agency"] for e in case["timeline"] if e["type"] == "message.queued"]
    blocked = [e for e in case["timeline"] if e["type"] == "message.forward_blocked"]
    assert queued == ["gd-hq-csb"]
    assert [(e["agency"], e["problems"]) for e in blocked] == [
        (
            "hk-cr",
            [
                {"pointer": "/applicant/names/original", "code": "not_in_format"},
                {"pointer": "/applicant/names/zh-Hans", "code": "not_in_format"},
            ],
        )
    ]
    assert set(await _outbox(gateway, application_id)) == {"gd-hq-csb"}
    assert gateway.app[PARTNERS].inboxes["hk-cr"].messages == {}  # type: ignore[index]


OLD_AGENCIES = sa.MetaData()
sa.Table(  # agencies as create_schema made it before agencies declared their format
    "agencies",
    OLD_AGENCIES,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("jurisdiction", sa.String(2), nullable=False),
    sa.Column("names", sa.JSON, nullable=False),
    sa.Column("endpoint", sa.String(500)),
    sa.Column("matters", sa.JSON, nullable=False),
    sa.Column("sandbox", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


async def test_an_old_registry_is_migrated_and_its_agencies_receive_their_own_format(
    database: Database,
) -> None:
    engine = create_engine(database.url, schema=database.schema or None)
    uow = SqlUnitOfWorkFactory(engine)
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(OLD_AGENCIES.create_all)
            await conn.execute(
                OLD_AGENCIES.tables["agencies"]
                .insert()
                .values(
                    id="mo-old",
                    jurisdiction="MO",
                    names={},
                    endpoint=None,
                    matters=["*"],
                    sandbox=False,
                    updated_at=now,
                )
            )

        await create_schema(engine)
        await create_schema(engine)  # and again: nothing left to do

        async with uow() as tx:
            old = await tx.agencies.get("mo-old")
            assert old is not None
            assert old.receives == "MO"
            changed = Agency("mo-old", "MO", {}, None, ("*",), "canonical")
            await tx.agencies.register(Registration(changed, ()), now)
            await tx.commit()
        async with uow() as tx:
            assert [(a.id, a.receives) for a, _ in await tx.agencies.all()] == [
                ("mo-old", "canonical")
            ]
    finally:
        await uow.close()  # the committer's connection, then the engine
