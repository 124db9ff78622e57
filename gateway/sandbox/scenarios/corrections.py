"""``supplement-rounds`` and ``automatic-overturned``: the branches that go back.

``supplement-rounds`` (Art. 19(3), 20): the medical matter is routed to the HK Medical Council
as lead, which the scenario plays. It asks twice for a supplement; each supplement restarts its
five-working-day examination from the day it arrived, the Council receives each supplemented
document (its inbox holds the case three times) and is notified of each. It then issues no
notice: the sweep, run as of the day after the second round's last day, deems the case
accepted as of that supplement's arrival, with a signed voucher.

``automatic-overturned`` (Art. 25): social-insurance registrations are decided by the gateway by
comparing data and a share is drawn for the lead's human re-check. A case rejected by the rules
and drawn appears on the lead's re-check work list; the lead (Macao's Social Security Fund)
overturns it with reasons, which issues a signed corrective approval naming Macao's routes of
redress; the submitting agency is notified and the case leaves the work list.
"""

from __future__ import annotations

from datetime import date, timedelta

from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, case_summary, encoded, events

MEDICAL = "11440300MB2C00091K3440120007000"
INSURANCE = "11440400MB2C00031J3442030001000"
SUBMITTER = "hk-ird"
COUNCIL = "hk-mchk"


async def supplement_rounds(ctx: Context) -> None:
    matter = ctx.matter(MEDICAL)
    form = "APPLICATION_FORM"
    expect(form in {m.code for m in matter.materials}, f"{MEDICAL} asks for {form}", "no")
    route = f"/sandbox/v1/routes/{MEDICAL}"
    async with ctx.step(f"{MEDICAL} is routed to {COUNCIL} as lead (played here)"):
        answer = await ctx.http("PUT", route, {"lead": COUNCIL, "reviewers": [matter.route.lead]})
        expect(answer.status == 200, f"200 from PUT {route}", answer.describe())
    try:
        await _two_rounds(ctx, form)
    finally:
        await ctx.http("DELETE", route)


async def _two_rounds(ctx: Context, form: str) -> None:
    document = canonical_sample(ctx.matter(MEDICAL), persona("chan-tai-man"))
    async with ctx.step(f"{SUBMITTER} submits {MEDICAL} for {COUNCIL}'s examination") as step:
        answer = await ctx.signed(SUBMITTER, "POST", "/v1/applications", encoded(document))
        expect(
            answer.status == 202 and answer.body.get("status") == "received",
            "202 received",
            answer.describe(),
        )
        application_id = answer.body["application_id"]
        step.detail = application_id
    base = f"/v1/applications/{application_id}"
    dues: list[str] = []
    for round_ in (1, 2):
        async with ctx.step(f"round {round_}: {COUNCIL} asks for {form}; it is supplied") as step:
            await ctx.until(
                lambda: ctx.received_by(COUNCIL, application_id),
                lambda count, n=round_: count == n,
                expected=f"the case {round_} time(s) in {COUNCIL}'s inbox",
                seen=str,
                hopeless=lambda count, n=round_: count > n,
            )
            notice = {"outcome": "supplement", "missing": [form]}
            asked = await ctx.signed(COUNCIL, "POST", f"{base}/acceptance", notice)
            expect(
                asked.status == 200 and asked.body.get("status") == "awaiting_supplement",
                "200 awaiting_supplement",
                asked.describe(),
            )
            digest = "sha-256=:" + ("A" if round_ == 1 else "B") * 43 + "=:"
            supplied = await ctx.signed(
                SUBMITTER,
                "POST",
                f"{base}/supplements",
                {"materials": [{"code": form, "digest": digest}]},
            )
            due = (supplied.body or {}).get("deadlines", {}).get("acceptance_due")
            expect(
                supplied.status == 200 and supplied.body.get("status") == "received" and due,
                "200 received with a new acceptance_due",
                supplied.describe(),
            )
            dues.append(due)
            step.detail = f"examination restarted, last day {due}"

    async with ctx.step(f"{COUNCIL} received each supplemented document and was notified"):
        count = await ctx.until(
            lambda: ctx.received_by(COUNCIL, application_id),
            lambda count: count == 3,
            expected=f"the case 3 times in {COUNCIL}'s inbox",
            seen=str,
            hopeless=lambda count: count > 3,
        )
        expect(count == 3, "3 messages", count)
        view = await ctx.case(SUBMITTER, application_id)
        rounds = [e.get("supplement_round") for e in events(view, "message.queued")]
        expect(rounds == [None, 1, 2], "forwards of rounds [None, 1, 2]", rounds)
        told = await ctx.until(
            lambda: ctx.get_ok(
                f"/sandbox/v1/notifications?application_id={application_id}&recipient={COUNCIL}"
            ),
            lambda page: (
                sum(n["event"] == "application.supplement_provided" for n in page["items"]) == 2
            ),
            expected=f"two supplement_provided notifications to {COUNCIL}",
            seen=lambda page: str([n["event"] for n in page["items"]]),
        )
        expect(told, "notifications", told)

    async with ctx.step("no notice by the second round's last day: deemed accepted") as step:
        day_after = (date.fromisoformat(dues[-1]) + timedelta(days=1)).isoformat()
        on_due = await ctx.http(
            "POST", f"/sandbox/v1/applications/{application_id}/sweep", {"today": dues[-1]}
        )
        expect(
            on_due.status == 200 and on_due.body["deemed_accepted"] == 0,
            "nothing deemed on the last day",
            on_due.describe(),
        )
        swept = await ctx.http(
            "POST", f"/sandbox/v1/applications/{application_id}/sweep", {"today": day_after}
        )
        expect(
            swept.status == 200 and swept.body["deemed_accepted"] == 1,
            f"deemed accepted on {day_after}",
            swept.describe(),
        )
        view = await ctx.case(SUBMITTER, application_id)
        expect(view["status"] in ("accepted", "under_review"), "accepted", case_summary(view))
        accepted = events(view, "application.accepted")[-1]
        arrived = events(view, "application.supplement_provided")[-1]["at"]
        expect(
            accepted.get("deemed") is True and accepted.get("effective") == arrived,
            f"deemed, effective {arrived} (the second supplement's arrival)",
            accepted,
        )
        claims = await ctx.voucher(view, "acceptance")
        expect(claims.get("deemed") is True, "a deemed-acceptance voucher", claims)
        step.detail = f"last days {', '.join(dues)}; deemed as of {arrived}"


async def automatic_overturned(ctx: Context) -> None:
    matter = ctx.matter(INSURANCE)
    rules = matter.automatic_decision
    expect(rules is not None and rules.recheck_sample > 0, "a sampled automatic matter", rules)
    assert rules is not None
    lead = matter.route.lead
    document = canonical_sample(matter, persona("chan-tai-man"))
    document["particulars"]["employer_uscc"] = "not-a-uscc"

    async with ctx.step(f"{SUBMITTER} submits failing cases until one is drawn") as step:
        application_id = None
        for _ in range(60):
            answer = await ctx.signed(SUBMITTER, "POST", "/v1/applications", encoded(document))
            expect(answer.status == 202, "202", answer.describe())
            if rules.sampled(answer.body["application_id"]):
                application_id = answer.body["application_id"]
                break
        expect(application_id is not None, "a case drawn for re-check", "none in 60")
        assert application_id is not None
        view = await ctx.follow(SUBMITTER, application_id, "rejected")
        expect(events(view, "decision.recheck_queued"), "recheck queued", case_summary(view))
        step.detail = f"{application_id} rejected by the rules, drawn for re-check"

    async with ctx.step(f"it is on {lead}'s re-check work list"):
        listed = await ctx.signed(lead, "GET", "/v1/applications?recheck=true&limit=200")
        ids = [a["application_id"] for a in listed.body["items"]]
        expect(application_id in ids, f"{application_id} listed", ids)

    reasons = ["the employer's code was mistyped; the registry confirms the employer"]
    async with ctx.step(f"{lead} overturns it: a signed corrective approval") as step:
        path = f"/v1/applications/{application_id}/recheck"
        answer = await ctx.signed(lead, "POST", path, {"outcome": "overturned", "reasons": reasons})
        expect(
            answer.status == 200 and answer.body.get("status") == "approved",
            "200 approved",
            answer.describe(),
        )
        view = await ctx.case(SUBMITTER, application_id)
        (corrected,) = events(view, "application.decision_corrected")
        expect(
            (corrected.get("decision"), corrected.get("overturned"), corrected.get("reasons"))
            == ("approved", "rejected", reasons),
            "approved, overturning rejected, with the reasons",
            corrected,
        )
        routes = corrected.get("appeal", {}).get("MO")
        expect(routes, "Macao's routes of redress", corrected.get("appeal"))
        claims = await ctx.voucher(view, "corrective_decision")
        expect(claims.get("appeal") == corrected["appeal"], "routes signed", claims)
        step.detail = "corrective decision voucher verified; " + ", ".join(
            r["route"] for r in routes
        )

    async with ctx.step(f"{SUBMITTER} is told; the case leaves the work list"):
        await ctx.until(
            lambda: ctx.get_ok(
                f"/sandbox/v1/notifications?application_id={application_id}&recipient={SUBMITTER}"
            ),
            lambda page: any(
                n["event"] == "application.decision_corrected" and n.get("appeal")
                for n in page["items"]
            ),
            expected=f"a decision_corrected notification with routes to {SUBMITTER}",
            seen=lambda page: str([n["event"] for n in page["items"]]),
        )
        listed = await ctx.signed(lead, "GET", "/v1/applications?recheck=true&limit=200")
        ids = [a["application_id"] for a in listed.body["items"]]
        expect(application_id not in ids, "no longer listed", ids)


SUPPLEMENT_ROUNDS = Scenario(
    "supplement-rounds",
    "two supplement rounds restart the examination; the lead gets each; deemed acceptance",
    supplement_rounds,
)
AUTOMATIC_OVERTURNED = Scenario(
    "automatic-overturned",
    "an automatic rejection drawn for re-check is overturned by a signed corrective decision",
    automatic_overturned,
)
