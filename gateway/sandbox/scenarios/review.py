"""``supplement`` and ``joint-rejection``: the two ways a case does not simply go through.

``supplement`` (Art. 19(2–3)): an application lacking a required material and a commitment
gets ONE signed notice listing both and waits, forwarded to nobody; only the agency that
submitted may supplement; a partial supplement gets a new notice of what is left; the last
one completes it, and the case is accepted and decided.

``joint-rejection`` (Art. 20–21): the medical matter is examined and approved by the Shenzhen
Health Commission and reviewed in parallel by the HK Medical Council, which the scenario plays
and which rejects. The case is rejected with the Council's reasons and the routes of redress
of Hong Kong, with their last days, exactly as ``mappings/appeals.yaml`` gives them; the
decision voucher carries both; the lead delivers the result; each handler got the case once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.domain.matters import MaterialRule, Matter
from gateway.domain.values import local_date
from gateway.mapping.appeals import AppealRoutes
from gateway.sandbox.agencies import sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, case_summary, encoded, events
from gateway.sandbox.scenarios.matters import decide_as, deliver, state_of, submit

HENGQIN = "11440400MB2C00081P4440120002000"  # individual business: a form, a commitment
MEDICAL = "11440300MB2C00091K3440120007000"  # joint review with the HK Medical Council
SUBMITTER = "hk-ird"
REASON = "沒有有效的香港執業證明書 / no valid Hong Kong practising certificate"


def first(matter: Matter, rule: MaterialRule) -> str:
    return next(m.code for m in matter.materials if m.rule is rule)


async def supplement(ctx: Context) -> None:
    matter = ctx.matter(HENGQIN)
    lead = matter.route.lead
    form = first(matter, MaterialRule.REQUIRED)
    committed = first(matter, MaterialRule.COMMITMENT_ALLOWED)
    document = canonical_sample(matter, persona("chan-tai-man"))
    material = next(m for m in document["materials"] if m["code"] == form)
    document["materials"].remove(material)
    document["commitments"] = [c for c in document["commitments"] if c["material"] != committed]
    both = sorted([form, committed])

    async with ctx.step(f"{SUBMITTER} submits {HENGQIN} without {form} and {committed}") as step:
        body = encoded(document)
        answer = await ctx.signed(SUBMITTER, "POST", "/v1/applications", body)
        expect(
            answer.status == 202 and answer.body.get("status") == "awaiting_supplement",
            "202 awaiting_supplement",
            answer.describe(),
        )
        application_id = answer.body["application_id"]
        claims = await ctx.receipt(
            answer.body["receipt"],
            application_id=application_id,
            matter=HENGQIN,
            status="awaiting_supplement",
            body=body,
        )
        expect(sorted(claims["missing"]) == both, f"one notice listing {both}", claims["missing"])
        step.detail = f"{application_id}: one signed notice listing {', '.join(both)}"

    async with ctx.step("the case waits for the supplement, forwarded to nobody"):
        view = await ctx.case(SUBMITTER, application_id)
        expect(view["status"] == "awaiting_supplement", "awaiting_supplement", case_summary(view))
        expect(sorted(view["missing"]) == both, f"missing {both}", view["missing"])
        requested = [e.get("missing") for e in events(view, "application.supplement_requested")]
        expect(requested == [both], f"one supplement_requested event, missing {both}", requested)
        queued = events(view, "message.queued")
        expect(not queued, "no message queued", [e.get("agency") for e in queued])
        count = await ctx.received_by(lead, application_id)
        expect(count == 0, f"nothing in {lead}'s inbox", f"{count} messages")

    path = f"/v1/applications/{application_id}/supplements"
    async with ctx.step(f"{lead}, which did not submit it, may not supplement"):
        answer = await ctx.signed(lead, "POST", path, {"materials": [material]})
        expect(answer.status == 403, f"403 from POST {path} as {lead}", answer.describe())

    async with ctx.step(f"{SUBMITTER} supplies {form}: a new notice lists what is left") as step:
        answer = await ctx.signed(SUBMITTER, "POST", path, {"materials": [material]})
        expect(
            answer.status == 200
            and answer.body.get("status") == "awaiting_supplement"
            and answer.body.get("missing") == [committed],
            f"200 awaiting_supplement, missing [{committed}]",
            answer.describe(),
        )
        notice = await ctx.voucher(await ctx.case(SUBMITTER, application_id), "supplement_notice")
        missing = notice.get("missing")
        expect(missing == [committed], f"a signed notice listing [{committed}]", missing)
        step.detail = "signed notice verified"

    async with ctx.step(f"{SUBMITTER} supplies the commitment for {committed}: accepted"):
        answer = await ctx.signed(
            SUBMITTER, "POST", path, {"commitments": [{"material": committed}]}
        )
        expect(
            answer.status == 200
            and answer.body.get("status") == "accepted"
            and answer.body.get("missing") == [],
            "200 accepted, nothing missing",
            answer.describe(),
        )

    async with ctx.step(f"the case is approved by {lead}, who received it once") as step:
        view = await ctx.follow(SUBMITTER, application_id, "approved")
        kinds = [e["type"] for e in view["timeline"] if e["type"] != "voucher.issued"]
        wanted = [
            "application.received",
            "application.supplement_requested",
            "application.supplement_provided",
            "application.supplement_requested",
            "application.supplement_provided",
            "application.accepted",
        ]
        expect(kinds[: len(wanted)] == wanted, f"timeline {wanted}…", kinds)
        await ctx.voucher(view, "acceptance")
        await ctx.voucher(view, "decision")
        count = await ctx.received_by(lead, application_id)
        expect(count == 1, f"the case once in {lead}'s inbox", f"{count} times")
        step.detail = "acceptance and decision vouchers verified"


async def joint_rejection(ctx: Context) -> None:
    matter = ctx.matter(MEDICAL)
    lead = matter.route.lead
    reviewers = [r for r in matter.route.reviewers if sandbox_agency(r).jurisdiction == "HK"]
    expect(reviewers, f"a Hong Kong reviewer of {MEDICAL}", matter.route.reviewers)
    council = reviewers[0]

    async with ctx.step(f"{SUBMITTER} submits {MEDICAL} for {lead}'s examination") as step:
        application_id = await submit(ctx, SUBMITTER, matter)
        step.detail = f"{application_id} received, receipt verified"

    async with ctx.step(f"{lead} accepts and approves; {council} reviews in parallel") as step:
        view = await ctx.until(
            lambda: ctx.case(SUBMITTER, application_id),
            lambda v: state_of(v, lead) == "approved" and state_of(v, council) == "delivered",
            expected=f"{lead} approved and {council} delivered",
            seen=case_summary,
            hopeless=lambda v: v["status"] in ("rejected", "not_accepted", "withdrawn"),
        )
        expect(view["status"] == "under_review", "under_review", case_summary(view))
        await ctx.voucher(view, "acceptance")
        step.detail = "acceptance voucher verified"

    await decide_as(ctx, council, SUBMITTER, application_id, "rejected", [REASON])

    async with ctx.step(f"the case is rejected with {council}'s reasons"):
        view = await ctx.case(SUBMITTER, application_id)
        states = [(h["agency_id"], h["state"]) for h in view["handlers"]]
        wanted_states = [(lead, "approved"), (council, "rejected")]
        expect(view["status"] == "rejected", "rejected", case_summary(view))
        expect(states == wanted_states, f"handlers {wanted_states}", states)
        rejections = events(view, "application.rejected")
        expect(len(rejections) == 1, "one application.rejected event", len(rejections))
        rejection = rejections[0]
        reasons = rejection.get("reasons")
        expect(reasons == {council: [REASON]}, f"reasons {{{council}: [{REASON}]}}", reasons)

    async with ctx.step("the routes of redress of Hong Kong are on the case (Art. 21)") as step:
        appeals = AppealRoutes.load(ctx.options.mappings_dir / "appeals.yaml")
        decided_on = local_date(datetime.fromisoformat(rejection["at"]))
        wanted: Any = {"HK": appeals.for_refusal("HK", decided_on)}
        expect(rejection.get("appeal") == wanted, f"appeal {wanted}", rejection.get("appeal"))
        routes = [r["route"] for r in wanted["HK"]]
        expect(routes and all(r["last_day"] for r in wanted["HK"]), "last days", wanted)
        step.detail = ", ".join(f"{r['route']} by {r['last_day']}" for r in wanted["HK"])

    async with ctx.step("the decision voucher carries the reasons and the routes"):
        claims = await ctx.voucher(view, "decision")
        got = (claims.get("status"), claims.get("reasons"), claims.get("appeal"))
        expect(got == ("rejected", reasons, wanted), "rejected, reasons, appeal", got)

    async with ctx.step(f"{lead} delivers the result by post"):
        await deliver(ctx, lead, application_id)

    async with ctx.step(f"{lead} and {council} each received the case once"):
        counts = {a: await ctx.received_by(a, application_id) for a in (lead, council)}
        expect(counts == {lead: 1, council: 1}, "once each", counts)


SUPPLEMENT = Scenario(
    "supplement",
    "missing materials get one signed notice; supplements complete the case",
    supplement,
)
JOINT_REJECTION = Scenario(
    "joint-rejection",
    "Guangdong approves, Hong Kong rejects: rejected with HK's reasons and routes of redress",
    joint_rejection,
)
