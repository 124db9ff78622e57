"""``evidence``: the once-only principle — a material obtained from its issuer by data sharing.

A resident holding a Guangdong residence permit logs in at Guangdong's sandbox identity
provider and applies for the housing-provident-fund withdrawal, whose identity proof is the
``gd-residence-permit`` record that the Guangzhou Public Security Bureau (``gz-psb``) issues.
With a consent that covers the evidence's data category (``residence_status``) the gateway
requests it through the outbox: the case shows ``evidence.requested`` then
``evidence.received`` from the issuer, and is accepted without the applicant sending it.
Then the issuer is switched to refuse (``PUT /sandbox/v1/agencies/gz-psb/faults
{"evidence": "refuse"}``): a second application shows ``evidence.refused`` and the applicant is
asked for the material in the one supplement notice. The fault is reset even when a step fails.
"""

from __future__ import annotations

from typing import Any

from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, events
from gateway.sandbox.scenarios.residents import CATEGORIES, Resident, application, destinations

FUND = "12440100MB2C00121L3442030008000"
ISSUER = "gz-psb"
WHO = "chan-tai-man"  # holds a residence permit: Guangdong's provider asserts it
MATERIAL = "IDENTITY_PROOF"


async def _apply(ctx: Context, resident: Resident) -> str:
    matter = ctx.matter(FUND)
    body = {
        "application": application(matter, resident.who),
        "consent": {
            "categories": [*CATEGORIES, "residence_status"],
            "destinations": destinations(matter, resident.who),
        },
    }
    answer = await resident.ok("POST", "/v1/me/applications", body, status=202)
    return str(answer["application_id"])


def _evidence(view: dict[str, Any]) -> str:
    states = [e["state"] for e in view.get("evidence", [])]
    return f"{view['status']}, evidence {states}"


async def evidence(ctx: Context) -> None:
    who = persona(WHO)
    faults = f"/sandbox/v1/agencies/{ISSUER}/faults"
    async with ctx.step(f"{WHO} logs in at Guangdong's sandbox identity provider"):
        portal = await SandboxPortal.register(ctx.url, name="gba-gateway sandbox scenario")
        resident = Resident(ctx, who, await portal.login("guangdong", who.id))

    async with ctx.step(f"{WHO} applies for {FUND} without its {MATERIAL}") as step:
        first = await _apply(ctx, resident)
        step.detail = first

    async with ctx.step(f"the gateway gets {MATERIAL} from {ISSUER} and the case is accepted"):
        path = f"/v1/me/applications/{first}"
        view = await ctx.until(
            lambda: resident.ok("GET", path),
            lambda v: v["status"] in ("accepted", "under_review", "approved"),
            expected="accepted with the evidence received",
            seen=_evidence,
            hopeless=lambda v: v["status"] == "awaiting_supplement",
        )
        (state,) = view["evidence"]
        expect(
            (state["material"], state["state"], state["issuer"]) == (MATERIAL, "received", ISSUER),
            f"{MATERIAL} received from {ISSUER}",
            state,
        )
        expect(events(view, "evidence.received"), "evidence.received on the timeline", view)
        expect(state["material_id"], "kept as a material", state)

    broken = False
    try:
        async with ctx.step(f"switch {ISSUER} to refuse: PUT {faults} {{evidence: refuse}}"):
            broken = True
            answer = await ctx.http("PUT", faults, {"evidence": "refuse"})
            expect(answer.status == 200, f"200 from PUT {faults}", answer.describe())

        async with ctx.step(f"a second application: refused, so {WHO} is asked for it") as step:
            second = await _apply(ctx, resident)
            path = f"/v1/me/applications/{second}"
            view = await ctx.until(
                lambda: resident.ok("GET", path),
                lambda v: v["status"] == "awaiting_supplement",
                expected="awaiting_supplement",
                seen=_evidence,
                hopeless=lambda v: v["status"] in ("accepted", "approved"),
            )
            expect(MATERIAL in view["missing"], f"{MATERIAL} missing", view["missing"])
            expect(events(view, "evidence.refused"), "evidence.refused on the timeline", view)
            step.detail = f"{second}: missing {view['missing']}"
    finally:
        if broken:
            async with ctx.step(f"reset {ISSUER}'s faults (cleanup)"):
                answer = await ctx.http("DELETE", faults)
                expect(answer.status in (200, 204), f"200 from DELETE {faults}", answer.describe())


EVIDENCE = Scenario(
    "evidence",
    "a material obtained from its issuer by data sharing, then an issuer that refuses (Art. 19(5))",
    evidence,
)
