"""``consent-withdrawn``: consent to the last forward (GBA personal-information rules).

A Hong Kong resident applies for the enterprise registration of Shenzhen, handled with a
Guangdong lead and a Macao reviewer, under a consent covering Guangdong and Macao. The Macao
reviewer is down (``PUT /sandbox/v1/agencies/{id}/faults {"down": true}``), so its forward
waits in the queue for a retry while the lead has the case. The resident withdraws the
consent (``POST /v1/me/consents/{id}/withdraw``): the waiting forward is withheld and the
timeline says so (``message.withheld``, ``consent_withdrawn``); the reviewer comes back and is
never sent the case, past the retry's time. The resident then consents again for the case
(``POST /v1/me/applications/{id}/consent``): ``consent.renewed`` names the reviewer, and the
reviewer is sent the case under the new consent. The lead was sent only what the matter
declares it needs; the faults are reset even when a step fails.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from gateway.domain.matters import MaterialRule
from gateway.sandbox.agencies import sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import material_digest
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, case_summary, events
from gateway.sandbox.scenarios.residents import CATEGORIES, application, destinations, log_in

ENTERPRISE = "11440300MB2C00011B3440120001000"  # lead sz-amr (GD); reviewers gd-tax, mo-ipim
WHO = "chan-tai-man"


def _withheld(view: dict[str, Any], agency: str) -> list[dict[str, Any]]:
    return [e for e in events(view, "message.withheld") if e.get("agency") == agency]


def _retries(view: dict[str, Any], agency: str) -> list[dict[str, Any]]:
    return [e for e in events(view, "message.retry_scheduled") if e.get("agency") == agency]


async def consent_withdrawn(ctx: Context) -> None:
    matter = ctx.matter(ENTERPRISE)
    lead = matter.route.lead
    macao = [r for r in matter.route.reviewers if sandbox_agency(r).jurisdiction == "MO"]
    expect(macao, f"a Macao reviewer of {ENTERPRISE}", matter.route.reviewers)
    reviewer = macao[0]
    who = persona(WHO)
    faults = f"/sandbox/v1/agencies/{reviewer}/faults"
    broken = False
    try:
        async with ctx.step(f"take {reviewer} down: PUT {faults} {{down: true}}"):
            broken = True
            answer = await ctx.http("PUT", faults, {"down": True})
            expect(answer.status == 200, f"200 from PUT {faults}", answer.describe())

        async with ctx.step(f"{WHO} applies for {ENTERPRISE} under a consent") as step:
            resident, _ = await log_in(ctx, WHO)
            wanted = destinations(matter, who)
            document = application(matter, who)
            # the materials the gateway would ask their issuers for, sent by the applicant
            # here: this scenario is about the forwards, not evidence by data sharing
            document["materials"] += [
                {
                    "code": m.code,
                    "digest": material_digest(f"{m.code} of {WHO}".encode()),
                    "media_type": "application/pdf",
                    "filename": f"{m.code.lower()}.pdf",
                }
                for m in matter.materials
                if m.rule is MaterialRule.BY_DATA_SHARING
            ]
            body = {
                "application": document,
                "consent": {"categories": CATEGORIES, "destinations": wanted},
            }
            submitted = await resident.ok("POST", "/v1/me/applications", body, status=202)
            application_id = submitted["application_id"]
            step.detail = f"{application_id}, consent to {', '.join(wanted)}"

        async with ctx.step(f"{lead} has the case; {reviewer}'s forward waits for a retry"):
            view = await ctx.until(
                lambda: ctx.case(lead, application_id),
                lambda v: (
                    bool(_retries(v, reviewer))
                    and any(e["actor"] == lead for e in events(v, "message.delivered"))
                ),
                expected=f"{lead} delivered and a retry scheduled for {reviewer}",
                seen=case_summary,
            )
            count = await ctx.received_by(reviewer, application_id)
            expect(count == 0, f"nothing in {reviewer}'s inbox while down", f"{count} messages")

        async with ctx.step(f"{WHO} withdraws the consent") as step:
            consents = await resident.ok("GET", "/v1/me/consents")
            held = [c for c in consents["items"] if c.get("matter") == ENTERPRISE]
            expect(len(held) == 1, f"one consent for {ENTERPRISE}", consents)
            consent_id = held[0]["consent_id"]
            withdrawn = await resident.ok("POST", f"/v1/me/consents/{consent_id}/withdraw")
            expect(withdrawn.get("withdrawn_at"), "withdrawn_at", withdrawn)
            step.detail = consent_id

        async with ctx.step("the waiting forward is withheld: message.withheld on the case"):
            view = await ctx.case(lead, application_id)
            stopped = _withheld(view, reviewer)
            reasons = [e.get("reason") for e in stopped]
            expect(reasons == ["consent_withdrawn"], "one consent_withdrawn", reasons)

        next_at = max(
            datetime.fromisoformat(e["next_attempt_at"]) for e in _retries(view, reviewer)
        )
        async with ctx.step(f"bring {reviewer} back: DELETE {faults}") as step:
            answer = await ctx.http("DELETE", faults)
            expect(answer.status in (200, 204), f"200 from DELETE {faults}", answer.describe())
            broken = False
            step.detail = f"its retry was due at {next_at.time().isoformat('milliseconds')}"

        async with ctx.step(f"past the retry's time, {reviewer} was never sent the case") as step:
            wait = (next_at - datetime.now(UTC)).total_seconds() + 2 * ctx.poll
            await asyncio.sleep(max(wait, 2 * ctx.poll))
            count = await ctx.received_by(reviewer, application_id)
            expect(count == 0, f"nothing in {reviewer}'s inbox", f"{count} messages")
            view = await ctx.case(lead, application_id)
            delivered = [e["actor"] for e in events(view, "message.delivered")]
            expect(reviewer not in delivered, f"no delivery to {reviewer}", delivered)
            step.detail = case_summary(view)

        async with ctx.step(f"{WHO} consents again for the case") as step:
            again = {"categories": CATEGORIES, "destinations": wanted}
            path = f"/v1/me/applications/{application_id}/consent"
            await resident.ok("POST", path, again)
            view = await ctx.case(lead, application_id)
            renewed = events(view, "consent.renewed")
            expect(
                [e.get("forwards_due") for e in renewed] == [[reviewer]],
                f"one consent.renewed naming {reviewer}",
                renewed,
            )
            step.detail = f"{renewed[0].get('previous')} -> {renewed[0].get('consent_id')}"

        async with ctx.step(f"{reviewer} is sent the case under the new consent") as step:
            view = await ctx.until(
                lambda: ctx.case(lead, application_id),
                lambda v: any(e["actor"] == reviewer for e in events(v, "message.delivered")),
                expected=f"a delivery to {reviewer}",
                seen=case_summary,
            )
            count = await ctx.received_by(reviewer, application_id)
            expect(count == 1, f"one message in {reviewer}'s inbox", f"{count} messages")
            step.detail = case_summary(view)
    finally:
        if broken:
            await ctx.http("DELETE", faults)


CONSENT_WITHDRAWN = Scenario(
    "consent-withdrawn",
    "consent withdrawn mid-review: a waiting forward is withheld; consented again, it goes",
    consent_withdrawn,
)
