"""``resident-told`` and ``agency-case-seen``: residents told and shown their cases (Art. 22).

``resident-told``: a resident chooses e-mail in Portuguese (``PUT /v1/me/contact``); the
sandbox's SMTP sink is told to defer the next message (451); the resident applies; the
acceptance e-mail arrives in the SMTP sink in Portuguese; the message answered 451 arrives
after the notification queue retried it, each milestone once; the console lists them.

``agency-case-seen``: an agency submits a case naming a resident by the document a
high-assurance login links; the resident sees it in ``/v1/me/applications`` and on the
progress page; a low-assurance login of another resident named by another agency case does
not see that one.
"""

from __future__ import annotations

from typing import Any

from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, encoded
from gateway.sandbox.scenarios.residents import CATEGORIES, application, destinations, log_in
from gateway.sandbox.scenarios.review import HENGQIN, SUBMITTER

TOLD = "chan-tai-man"
SEEN = "zhang-wei"  # high assurance
UNSEEN = "wong-siu-ming"  # low assurance
ACCEPTED_PT = "O seu pedido foi aceite."
APPROVED_PT = "O seu pedido foi deferido."
SUBJECT_PT = "Serviços transfronteiriços da Grande Baía: novidades do seu pedido"


async def resident_told(ctx: Context) -> None:
    matter = ctx.matter(HENGQIN)
    who = persona(TOLD)
    async with ctx.step(f"{TOLD} logs in and chooses e-mail in Portuguese") as step:
        resident, _ = await log_in(ctx, TOLD)
        chosen = {"email": who.email, "channels": ["email"], "language": "pt"}
        held = await resident.ok("PUT", "/v1/me/contact", chosen)
        expect(held["channels"] == ["email"] and held["language"] == "pt", "email, pt", held)
        step.detail = "channels email, language pt"

    async with ctx.step("the SMTP sink will answer the next message 451 (try later)"):
        faults = await ctx.http("POST", "/sandbox/v1/mailbox/faults", {"defer": 1})
        expect(faults.status == 200, "200", faults.describe())
        deferred_before = faults.body["deferred"]

    async with ctx.step(f"{TOLD} applies for {HENGQIN}") as step:
        body = {
            "application": application(matter, who),
            "consent": {"categories": CATEGORIES, "destinations": destinations(matter, who)},
        }
        submitted = await resident.ok("POST", "/v1/me/applications", body, status=202)
        application_id = submitted["application_id"]
        step.detail = application_id

    async def mailbox() -> dict[str, Any]:
        return dict(await ctx.get_ok("/sandbox/v1/mailbox"))

    def accepted(box: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            m for m in box["emails"] if application_id in m["text"] and ACCEPTED_PT in m["text"]
        ]

    async with ctx.step("an e-mail is received in the SMTP sink, in Portuguese") as step:
        box = await ctx.until(
            mailbox,
            lambda box: bool(accepted(box)),
            expected=f"the acceptance of {application_id} in the SMTP sink",
            seen=lambda box: f"{len(box['emails'])} e-mails, {box['deferred']} deferred",
        )
        (mail,) = accepted(box)
        expect(mail["to"] == [who.email], who.email, mail["to"])
        expect(mail["subject"] == SUBJECT_PT, SUBJECT_PT, mail["subject"])
        step.detail = str(mail["message_id"])

    def approved(box: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            m for m in box["emails"] if application_id in m["text"] and APPROVED_PT in m["text"]
        ]

    async with ctx.step("the message answered 451 arrived on retry; each milestone once") as step:
        box = await ctx.until(
            mailbox,
            lambda box: bool(approved(box)) and box["deferred"] > deferred_before,
            expected=f"the approval of {application_id} too, after one 451",
            seen=lambda box: f"{len(box['emails'])} e-mails, {box['deferred']} deferred",
        )
        mine = [m for m in box["emails"] if application_id in m["text"]]
        expect(len(mine) == 2, "two e-mails: accepted, approved", [m["subject"] for m in mine])
        step.detail = f"{len(mine)} e-mails after {box['deferred'] - deferred_before} deferral"

    async with ctx.step("the console lists what the sinks received"):
        page = await ctx.http("GET", "/sandbox/console/notifications?lang=pt")
        expect(page.status == 200 and ACCEPTED_PT in str(page.body), ACCEPTED_PT, page.status)


async def agency_case_seen(ctx: Context) -> None:
    matter = ctx.matter(HENGQIN)
    cases: dict[str, str] = {}
    for who in (SEEN, UNSEEN):
        async with ctx.step(f"{SUBMITTER} submits {HENGQIN} naming {who}") as step:
            body = encoded(canonical_sample(matter, persona(who)))
            answer = await ctx.signed(SUBMITTER, "POST", "/v1/applications", body)
            expect(answer.status == 202, "202", answer.describe())
            cases[who] = answer.body["application_id"]
            step.detail = cases[who]

    async with ctx.step(f"{SEEN} logs in at high assurance and sees the agency's case"):
        seen, _ = await log_in(ctx, SEEN)
        ids = await seen.applications()
        expect(cases[SEEN] in ids, f"{cases[SEEN]} in the list", ids[-5:])
        view = await seen.ok("GET", f"/v1/me/applications/{cases[SEEN]}")
        expect(view["submitted_by"] == SUBMITTER, SUBMITTER, view["submitted_by"])
        progress = await seen.call("GET", f"/me/applications/{cases[SEEN]}")
        expect(progress.status == 200, "the progress page", progress.status)
        expect(cases[UNSEEN] not in ids, "not someone else's case", ids[-5:])

    async with ctx.step(f"{UNSEEN} logs in at low assurance and does not see his"):
        unseen, _ = await log_in(ctx, UNSEEN)
        ids = await unseen.applications()
        expect(cases[UNSEEN] not in ids, "not in his list", ids[-5:])
        answer = await unseen.call("GET", f"/v1/me/applications/{cases[UNSEEN]}")
        expect(answer.status == 404, "404", answer.describe())


RESIDENT_TOLD = Scenario(
    "resident-told",
    "e-mail in Portuguese: the acceptance reaches the SMTP sink after a 451 retry (Art. 22)",
    resident_told,
)
AGENCY_CASE_SEEN = Scenario(
    "agency-case-seen",
    "an agency's case is seen by its applicant after a high-assurance login, not at low",
    agency_case_seen,
)
