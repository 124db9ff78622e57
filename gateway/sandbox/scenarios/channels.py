"""``counter-submission``: a counter submission without online login (Art. 17, 18).

The residence permit is offered at a counter only: an online submission of it is refused 422
naming the counter. A counter files it for a resident who has never logged in: the officer
inspected the resident's identity card in person, and the signed ``GBA-Channel`` header names
the service point, the officer and the document. The receipt signs that record; the case is
filed at ``high`` assurance. Later the resident logs in online (the login links the identity
card): the case is in their list, and its progress reads the same as the counter's. The
counter's agency sends the resident's data on its own legal basis, not on a consent: a
submission that declares none is refused 422, and the resident is shown the basis declared.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.sandbox.personas import persona
from gateway.sandbox.samples import (
    SANDBOX_LEGAL_BASIS,
    SANDBOX_OFFICER,
    SANDBOX_SERVICE_POINT,
    canonical_sample,
)
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, encoded
from gateway.sandbox.scenarios.matters import submitter
from gateway.sandbox.scenarios.residents import log_in

RESIDENCE_PERMIT = "11440100MB2C0002124440700001000"  # channels: [counter]
WHO = "ho-ka-yan"  # an HKID holder; her login links it
PROGRESS = ("matter", "status", "channel", "missing", "handlers", "deadlines", "timeline")


async def counter_submission(ctx: Context) -> None:
    matter = ctx.matter(RESIDENCE_PERMIT)
    who = persona(WHO)
    doc_type = who.documents[0][0]
    async with ctx.step(f"{RESIDENCE_PERMIT} is offered at a counter only") as step:
        served = await ctx.get_ok(f"/v1/matters/{RESIDENCE_PERMIT}")
        expect(served["channels"] == ["counter"], "channels [counter]", served["channels"])
        registry = await ctx.get_ok("/sandbox/v1/agencies")
        agency = submitter(ctx, {a["agency_id"]: a for a in registry["items"]}, matter)
        expect(agency is not None, "an agency allowed to submit it", "none")
        assert agency is not None
        step.detail = f"filed by {agency}"
    body = encoded(canonical_sample(matter, who))

    async with ctx.step("an online submission of it: 422 naming the counter, nothing stored"):
        answer = await ctx.signed(agency, "POST", "/v1/applications", body)
        codes = [e.get("code") for e in (answer.body or {}).get("errors", [])]
        expect(
            answer.status == 422 and codes == ["channel_not_offered"],
            "422 channel_not_offered",
            answer.describe(),
        )
        named = answer.body["errors"][0]["message"]["en"]
        expect(named.endswith(": counter"), "the allowed channel named", named)

    header = (
        f'counter;point="{SANDBOX_SERVICE_POINT}";officer="{SANDBOX_OFFICER}";document={doc_type}'
    )
    async with ctx.step("the counter's call without a legal basis: 422, nothing stored"):
        answer = await ctx.signed(
            agency,
            "POST",
            "/v1/applications",
            body,
            {"GBA-Channel": header},
            legal_basis=False,
        )
        codes = [e.get("code") for e in (answer.body or {}).get("errors", [])]
        expect(
            answer.status == 422 and codes == ["legal_basis_required"],
            "422 legal_basis_required",
            answer.describe(),
        )

    async with ctx.step(
        f"{agency}'s counter files it for {WHO}, whose {doc_type} the officer inspected"
    ) as step:
        answer = await ctx.signed(agency, "POST", "/v1/applications", body, {"GBA-Channel": header})
        expect(answer.status == 202, "202 from POST /v1/applications", answer.describe())
        application_id = str(answer.body["application_id"])
        claims = await ctx.receipt(
            answer.body["receipt"],
            application_id=application_id,
            matter=RESIDENCE_PERMIT,
            status=answer.body["status"],
            body=body,
        )
        recorded = {
            "channel": "counter",
            "service_point": SANDBOX_SERVICE_POINT,
            "officer": SANDBOX_OFFICER,
            "identity_inspected": doc_type,
        }
        expect(claims.get("channel") == recorded, f"receipt signs {recorded}", claims)
        basis = SANDBOX_LEGAL_BASIS.record()
        expect(claims.get("legal_basis") == basis, "receipt signs the legal basis", claims)
        step.detail = f"{application_id}, no login needed"

    async with ctx.step("the case records the counter, its officer and the inspection"):
        view = await ctx.case(agency, application_id)
        received = view["timeline"][0]
        expect(view["channel"] == "counter", "channel counter", view["channel"])
        expect(
            received.get("officer") == SANDBOX_OFFICER
            and received.get("identity_inspected") == doc_type,
            "the officer and the inspected document on the timeline",
            received,
        )

    async with ctx.step(f"{WHO} logs in later and finds the case in her list") as step:
        resident, _ = await log_in(ctx, WHO)
        mine = await resident.applications()
        expect(application_id in mine, f"{application_id} in /v1/me/applications", mine)
        step.detail = f"{len(mine)} case(s) in her list"

    async with ctx.step(f"{WHO} is shown the legal basis the counter's agency declared"):
        shown = await resident.ok("GET", f"/v1/me/applications/{application_id}")
        basis = SANDBOX_LEGAL_BASIS.record()
        expect(shown.get("legal_basis") == basis, f"legal_basis {basis}", shown.get("legal_basis"))

    async with ctx.step("its progress reads the same online and at the counter"):
        online, counter = await _same_moment(ctx, resident, agency, application_id)
        expect(
            {k: online[k] for k in PROGRESS} == {k: counter[k] for k in PROGRESS},
            "the same progress on both channels",
            f"online {online['status']}, counter {counter['status']}",
        )


async def _same_moment(
    ctx: Context, resident: Any, agency: str, application_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resident's and the counter's views read while the case did not move meanwhile
    (the relay may forward it between two reads)."""
    for _ in range(20):
        before = await ctx.case(agency, application_id)
        online = await resident.ok("GET", f"/v1/me/applications/{application_id}")
        after = await ctx.case(agency, application_id)
        if before == after:
            return online, after
        await asyncio.sleep(0.25)
    return online, after


COUNTER_SUBMISSION = Scenario(
    "counter-submission",
    "a counter submission without online login: the officer inspects the document (Art. 18)",
    counter_submission,
)
