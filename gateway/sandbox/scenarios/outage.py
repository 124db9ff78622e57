"""``partner-outage``: the lead agency is down; the gateway keeps the case, retries, and
delivers it exactly once when the agency is back.

The scenario takes the lead of the individual-business matter down with the fault API
(``PUT /sandbox/v1/agencies/{id}/faults {"down": true}``: its inbox answers 503 and keeps
nothing), submits, and watches the case's timeline: each failed attempt is a
``message.retry_scheduled`` event with its attempt number and the time of the next one. After
two retries it heals the agency (``DELETE``) and waits for the next attempt to be delivered:
one ``message.delivered`` on the timeline, the message once in the agency's inbox, the case
decided. The faults are reset even when a step fails.

The relay's backoff is exponential from 1 s with jitter (``RelayPolicy``: about 1.5 s, then
2.5 s, then 4.5 s...), so the two retries and the delivery take some 5 seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, case_summary, events
from gateway.sandbox.scenarios.matters import submit
from gateway.sandbox.scenarios.review import HENGQIN, SUBMITTER

RETRIES = 2  # failed attempts to see on the timeline before the agency comes back


def retries(view: dict[str, Any], agency: str) -> list[dict[str, Any]]:
    return [e for e in events(view, "message.retry_scheduled") if e.get("agency") == agency]


async def partner_outage(ctx: Context) -> None:
    matter = ctx.matter(HENGQIN)
    lead = matter.route.lead
    faults = f"/sandbox/v1/agencies/{lead}/faults"
    broken = False
    try:
        async with ctx.step(f"take {lead} down: PUT {faults} {{down: true}}"):
            broken = True
            answer = await ctx.http("PUT", faults, {"down": True})
            expect(answer.status == 200, f"200 from PUT {faults}", answer.describe())
            read = await ctx.get_ok(faults)
            expect(read.get("down") is True, f"GET {faults}: down", read)

        async with ctx.step(f"{SUBMITTER} submits {HENGQIN}: accepted while {lead} is down") as s:
            application_id = await submit(ctx, SUBMITTER, matter)
            s.detail = f"{application_id}, receipt verified"

        async with ctx.step(f"the relay retries: {RETRIES} message.retry_scheduled on the case"):
            view = await ctx.until(
                lambda: ctx.case(SUBMITTER, application_id),
                lambda v: len(retries(v, lead)) >= RETRIES,
                expected=f"{RETRIES} retries for {lead} on the timeline",
                seen=lambda v: f"{len(retries(v, lead))} retries, {case_summary(v)}",
                hopeless=lambda v: bool(events(v, "message.delivered")),
            )
            seen = retries(view, lead)
            attempts = [e.get("attempt") for e in seen]
            expect(attempts == list(range(1, len(seen) + 1)), "attempts 1, 2, … in order", attempts)
            expect(all(e.get("next_attempt_at") for e in seen), "the next attempt's time", seen)
            count = await ctx.received_by(lead, application_id)
            expect(count == 0, f"nothing in {lead}'s inbox while down", f"{count} messages")

        next_at = datetime.fromisoformat(seen[-1]["next_attempt_at"])
        async with ctx.step(f"bring {lead} back: DELETE {faults}") as s:
            answer = await ctx.http("DELETE", faults)
            expect(answer.status in (200, 204), f"200 from DELETE {faults}", answer.describe())
            broken = False
            read = await ctx.get_ok(faults)
            expect(read.get("down") is False, f"GET {faults}: up", read)
            s.detail = f"next attempt due at {next_at.time().isoformat('milliseconds')}"

        async with ctx.step(f"the next attempt delivers it, once, and {lead} decides") as s:
            view = await ctx.follow(SUBMITTER, application_id, "approved")
            delivered = [e for e in events(view, "message.delivered") if e["actor"] == lead]
            expect(len(delivered) == 1, "one message.delivered", f"{len(delivered)}")
            at = datetime.fromisoformat(delivered[0]["at"])
            expect(at >= next_at, f"delivered at or after {next_at}", f"at {at}")
            s.detail = f"after {len(retries(view, lead))} retries"

        async with ctx.step(f"{lead}'s inbox shows the message once"):
            count = await ctx.received_by(lead, application_id)
            expect(count == 1, f"the case once in {lead}'s inbox", f"{count} times")
    finally:
        if broken:
            async with ctx.step(f"reset {lead}'s faults (cleanup)"):
                answer = await ctx.http("DELETE", faults)
                expect(answer.status in (200, 204), f"200 from DELETE {faults}", answer.describe())


PARTNER_OUTAGE = Scenario(
    "partner-outage",
    "the lead agency down: retries on the timeline, then delivered exactly once when back",
    partner_outage,
)
