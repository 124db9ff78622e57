"""``owed-material``: a 容缺 material supplied after acceptance (Art. 12).

The medical matter's health certificate may be missing at acceptance. The Hong Kong agency
submits without it; the lead (Shenzhen's Health Commission, a sandbox agency) accepts, and the
case owes the certificate by a due day (listed in the view and the signed acceptance voucher).
No approval while it is owed: the reviewer (the HK Medical Council, played here) is refused
with a 409 naming it. Run as of the day after its due day, the sweep flags it overdue and
tells the submitter and the handlers. The submitter then supplies it through the supplement
endpoint: every handler holding the case is forwarded the supplemented document, the lead
decides on it, and the Council's approval now decides the case.
"""

from __future__ import annotations

from datetime import date, timedelta

from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, case_summary, encoded, events

MEDICAL = "11440300MB2C00091K3440120007000"
OWED = "HEALTH_CERTIFICATE"
SUBMITTER = "hk-ird"
COUNCIL = "hk-mchk"


async def owed_material(ctx: Context) -> None:
    matter = ctx.matter(MEDICAL)
    expect(COUNCIL in matter.route.reviewers, f"{COUNCIL} reviews {MEDICAL}", matter.route)
    document = canonical_sample(matter, persona("chan-tai-man"))
    document["materials"] = [m for m in document["materials"] if m["code"] != OWED]
    async with ctx.step(f"{SUBMITTER} submits {MEDICAL} without {OWED}") as step:
        answer = await ctx.signed(SUBMITTER, "POST", "/v1/applications", encoded(document))
        expect(answer.status == 202, "202", answer.describe())
        application_id = answer.body["application_id"]
        step.detail = application_id
    base = f"/v1/applications/{application_id}"

    async with ctx.step(f"{matter.route.lead} accepts it: {OWED} is owed by a due day") as step:
        view = await ctx.follow(SUBMITTER, application_id, "under_review")
        owed = view.get("owed") or []
        expect(
            [o.get("material") for o in owed] == [OWED] and not owed[0].get("overdue"),
            f"{OWED} owed, not overdue",
            owed,
        )
        due = owed[0]["due"]
        claims = await ctx.voucher(view, "acceptance")
        expect(
            claims.get("owed") == [{"material": OWED, "due": due}],
            "the acceptance voucher lists what is owed",
            claims.get("owed"),
        )
        step.detail = f"due {due}"

    async with ctx.step(f"{COUNCIL}'s approval is refused while {OWED} is owed"):
        await ctx.until(
            lambda: ctx.received_by(COUNCIL, application_id),
            lambda count: count == 1,
            expected=f"the case in {COUNCIL}'s inbox",
            seen=str,
        )
        refused = await ctx.signed(COUNCIL, "POST", f"{base}/decisions", {"decision": "approved"})
        pointers = [p.get("pointer") for p in (refused.body or {}).get("errors", [])]
        expect(
            refused.status == 409 and pointers == [f"/owed/{OWED}"],
            f"409 naming /owed/{OWED}",
            refused.describe(),
        )

    async with ctx.step("the day after its due day the sweep flags it overdue, and tells"):
        day_after = (date.fromisoformat(due) + timedelta(days=1)).isoformat()
        swept = await ctx.http(
            "POST", f"/sandbox/v1/applications/{application_id}/sweep", {"today": day_after}
        )
        expect(
            swept.status == 200 and swept.body.get("owed_overdue") == 1,
            "one owed material flagged",
            swept.describe(),
        )
        view = await ctx.case(SUBMITTER, application_id)
        flagged = [e.get("material") for e in events(view, "material.overdue")]
        expect(flagged == [OWED], f"material.overdue for {OWED}", flagged)
        expect(view["owed"][0].get("overdue") is True, "overdue in the view", view["owed"])
        await ctx.until(
            lambda: ctx.get_ok(
                f"/sandbox/v1/notifications?application_id={application_id}&recipient={COUNCIL}"
            ),
            lambda page: any(n["event"] == "material.overdue" for n in page["items"]),
            expected=f"a material.overdue notification to {COUNCIL}",
            seen=lambda page: str([n["event"] for n in page["items"]]),
        )

    async with ctx.step(f"{SUBMITTER} supplies {OWED}; every handler is sent it") as step:
        digest = "sha-256=:" + "H" * 43 + "=:"
        supplied = await ctx.signed(
            SUBMITTER,
            "POST",
            f"{base}/supplements",
            {"materials": [{"code": OWED, "digest": digest}]},
        )
        expect(
            supplied.status == 200 and supplied.body.get("owed") == [],
            "200, nothing owed",
            supplied.describe(),
        )
        await ctx.until(
            lambda: ctx.received_by(COUNCIL, application_id),
            lambda count: count == 2,
            expected=f"the supplemented document in {COUNCIL}'s inbox",
            seen=str,
            hopeless=lambda count: count > 2,
        )
        view = await ctx.case(SUBMITTER, application_id)
        rounds = sorted(
            (e.get("agency"), e.get("supplement_round"))
            for e in events(view, "message.queued")
            if e.get("supplement_round")
        )
        expect(
            rounds == sorted([(matter.route.lead, 1), (COUNCIL, 1)]),
            "both handlers forwarded round 1",
            rounds,
        )
        provided = events(view, "application.supplement_provided")[-1]
        expect(provided.get("late") == [OWED], f"{OWED} supplied late", provided)
        step.detail = "forwarded to " + ", ".join(a for a, _ in rounds)

    async with ctx.step(f"{COUNCIL} approves: the case is decided"):
        approved = await ctx.signed(COUNCIL, "POST", f"{base}/decisions", {"decision": "approved"})
        expect(approved.status == 200, "200", approved.describe())
        view = await ctx.follow(SUBMITTER, application_id, "approved")
        expect(view["status"] == "approved", "approved", case_summary(view))


OWED_MATERIAL = Scenario(
    "owed-material",
    "a 容缺 material supplied after acceptance: owed, refused approval, overdue, supplied",
    owed_material,
)
