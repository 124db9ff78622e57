"""``every-matter``: every matter of the catalog, submitted once and followed to its end.

The sandbox must serve the catalog of the local ``mappings/`` (the samples are built from
it). Each matter's sample (``canonical_sample``, as ``gba-gateway mappings sample`` prints it)
is submitted by an agency the registry allows to submit it, its receipt verified against the
JWKS; the cases then run side by side. Every lead examines and decides on its own; a
handler that decides nothing on its own (an HK or Macao reviewer, such as the HK Medical
Council on the medical matter) is played by the scenario, signing with that agency's key. A
case ends approved by every handler, with a decision voucher that verifies, each handler
having received it once, and the lead delivering the result.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.application import AUTOMATIC
from gateway.domain.matters import Matter
from gateway.sandbox.agencies import SANDBOX_AGENCIES, agency_key_path
from gateway.sandbox.faults import Faults
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample, channel_headers
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, encoded, events

PERSONA = "chan-tai-man"


def sample(matter: Matter) -> dict[str, Any]:
    """The matter's canonical sample, as ``gba-gateway mappings sample`` prints it."""
    return canonical_sample(matter, persona(PERSONA))


def reviewers(ctx: Context, code: str) -> list[str]:
    return list(ctx.matter(code).route.reviewers)


def undecided(matter: Matter) -> list[str]:
    """Handlers of the matter that decide nothing on their own in the sandbox."""
    deciding = {a.id for a in SANDBOX_AGENCIES if a.auto_decision}
    return [h for h in matter.route.handlers if h not in deciding]


def submitter(ctx: Context, registered: dict[str, Any], matter: Matter) -> str | None:
    """An agency the registry allows to submit the matter, whose key we hold; one from
    outside Guangdong first (a cross-border submission), never one handling the case."""
    code = str(matter.code)
    ordered = sorted(SANDBOX_AGENCIES, key=lambda a: a.jurisdiction == "GD")
    for agency in ordered:
        entry = registered.get(agency.id)
        if entry is None or agency.id in matter.route.handlers:
            continue
        allowed = "*" in entry["matters"] or code in entry["matters"]
        if allowed and agency_key_path(ctx.options.data_dir, agency.id).is_file():
            return agency.id
    return None


async def every_matter(ctx: Context) -> None:
    async with ctx.step("GET /v1/matters serves the catalog of the local mappings/") as step:
        matters = ctx.catalog()
        served = await ctx.get_ok("/v1/matters")
        local = {str(m.code): m.version for m in matters}
        remote = {m["code"]: m["version"] for m in served["items"]}
        expect(served["next"] is None, "the whole catalog on one page", f"next {served['next']}")
        expect(remote == local, f"{len(local)} matters (code: version) {local}", f"{remote}")
        routes = {m["code"]: m["route"] for m in served["items"]}
        moved = {
            code: route
            for code, route in routes.items()
            if {k: route.get(k) for k in ("lead", "reviewers")}
            != {"lead": ctx.matter(code).route.lead, "reviewers": reviewers(ctx, code)}
        }
        expect(not moved, "every route as in mappings/ (DELETE /sandbox/v1/routes/…)", moved)
        step.detail = f"{len(remote)} matters"

    async with ctx.step("every handling agency is registered and healthy; each has a submitter"):
        board = await ctx.get_ok("/sandbox/v1/faults")
        healthy = Faults().to_json()
        faulty = {
            f["agency_id"]: {k: v for k, v in f.items() if k in healthy and v != healthy[k]}
            for f in board["items"]
            if not f.get("healthy")
        }
        registry = await ctx.get_ok("/sandbox/v1/agencies")
        registered = {a["agency_id"]: a for a in registry["items"]}
        routed = sorted({h for m in matters for h in m.route.handlers})
        missing = [h for h in routed if h not in registered]
        expect(not missing, f"registered: {', '.join(routed)}", f"not registered: {missing}")
        sick = {a: faulty[a] for a in routed if a in faulty}
        expect(not sick, "no fault switched on (DELETE /sandbox/v1/agencies/…/faults)", sick)
        submitters = {str(m.code): submitter(ctx, registered, m) for m in matters}
        without = [code for code, agency in submitters.items() if agency is None]
        expect(not without, "an agency allowed to submit each matter", f"none for {without}")

    cases: dict[str, tuple[str, str]] = {}
    for matter in matters:
        code, agency = str(matter.code), submitters[str(matter.code)]
        assert agency is not None
        async with ctx.step(f"{agency} submits {code}") as step:
            cases[code] = (agency, await submit(ctx, agency, matter))
            step.detail = f"{cases[code][1]}, receipt verified"

    for matter in matters:
        code = str(matter.code)
        agency, application_id = cases[code]
        for handler in undecided(matter):
            await decide_as(ctx, handler, agency, application_id, "approved", [])
        async with ctx.step(f"{code} approved by {', '.join(matter.route.handlers)}") as step:
            step.detail = await approved(ctx, matter, agency, application_id)
        async with ctx.step(f"{matter.route.lead} delivers the result of {code} by post"):
            await deliver(ctx, matter.route.lead, application_id)


async def submit(ctx: Context, agency: str, matter: Matter) -> str:
    """Submit the matter's sample as ``agency``; check the answer and its receipt."""
    document = sample(matter)
    if matter.automatic_decision is not None:
        failed = matter.automatic_decision.failed(document)
        expect(not failed, "a sample meeting the automatic-decision rules", f"fails {failed}")
    body = encoded(document)
    # a channel the matter lists (Art. 17): a counter-only matter is filed at a counter
    channel = channel_headers(matter, persona(PERSONA))
    answer = await ctx.signed(agency, "POST", "/v1/applications", body, channel)
    status = "accepted" if matter.acceptance == "automatic" else "received"
    expect(
        answer.status == 202 and answer.body.get("status") == status,
        f"202 with status {status} ({matter.acceptance} acceptance)",
        answer.describe(),
    )
    application_id = answer.body["application_id"]
    location = answer.headers.get("Location", "")
    expect(
        location.endswith(f"/v1/applications/{application_id}"),
        "Location: the case's URL",
        location or "no Location",
    )
    code = str(matter.code)
    await ctx.receipt(
        answer.body["receipt"], application_id=application_id, matter=code, status=status, body=body
    )
    return str(application_id)


async def decide_as(
    ctx: Context, handler: str, viewer: str, application_id: str, decision: str, reasons: list[str]
) -> dict[str, Any]:
    """Play a handler that decides nothing on its own: wait for its copy, then decide."""
    async with ctx.step(f"{handler} receives {application_id}") as step:
        await ctx.until(
            lambda: ctx.case(viewer, application_id),
            lambda view: state_of(view, handler) == "delivered",
            expected=f"{handler} delivered the case",
            seen=lambda view: f"{handler} {state_of(view, handler)}, case {view['status']}",
            hopeless=lambda view: state_of(view, handler) not in ("pending", "delivered"),
        )
        count = await ctx.received_by(handler, application_id)
        expect(count == 1, f"the case once in {handler}'s inbox", f"{count} times")
        step.detail = "in its inbox once"
    async with ctx.step(f"{handler} {decision} {application_id}, signed with its own key"):
        path = f"/v1/applications/{application_id}/decisions"
        answer = await ctx.signed(handler, "POST", path, {"decision": decision, "reasons": reasons})
        expect(answer.status == 200, f"200 from POST {path}", answer.describe())
        expect(
            answer.body.get("handler") == {"agency_id": handler, "state": decision},
            f"{handler} recorded as {decision}",
            answer.describe(),
        )
        return dict(answer.body)


async def approved(ctx: Context, matter: Matter, viewer: str, application_id: str) -> str:
    """Wait for the approval; check every handler, the voucher and the inboxes."""
    view = await ctx.follow(viewer, application_id, "approved")
    states = {h["agency_id"]: h["state"] for h in view["handlers"]}
    wanted = dict.fromkeys(matter.route.handlers, "approved")
    expect(states == wanted, f"handlers {wanted}", f"{states}")
    claims = await ctx.voucher(view, "decision")
    expect(claims.get("status") == "approved", "a decision voucher saying approved", claims)
    detail = "decision voucher verified"
    if matter.automatic_decision is not None:
        actors = [e["actor"] for e in events(view, "decision.recorded")]
        wanted = [AUTOMATIC] * len(matter.route.handlers)  # for every handler (Art. 25)
        expect(actors == wanted, f"decided by {AUTOMATIC} (Art. 25)", f"by {actors}")
        detail += f", decided by {AUTOMATIC}"
    for handler in matter.route.handlers:
        count = await ctx.received_by(handler, application_id)
        expect(count == 1, f"the case once in {handler}'s inbox", f"{count} times")
    return detail


async def deliver(ctx: Context, lead: str, application_id: str) -> None:
    path = f"/v1/applications/{application_id}/result"
    answer = await ctx.signed(lead, "POST", path, {"channel": "post"})
    expect(
        answer.status == 200 and answer.body.get("status") == "result_delivered",
        f"200 result_delivered from POST {path}",
        answer.describe(),
    )
    await ctx.voucher(await ctx.case(lead, application_id), "result_delivery")


def state_of(view: dict[str, Any], agency_id: str) -> str | None:
    return next((h["state"] for h in view["handlers"] if h["agency_id"] == agency_id), None)


EVERY_MATTER = Scenario(
    "every-matter",
    "every matter of the catalog, submitted once with its sample and followed to its end",
    every_matter,
)
