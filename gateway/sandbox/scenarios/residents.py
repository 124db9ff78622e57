"""``agent-submission`` and ``low-assurance``: residents applying through a portal.

Residents log in through the sandbox identity providers with the browserless
:class:`~gateway.sandbox.portal.SandboxPortal` (RFC 7591 registration, PKCE, private_key_jwt,
``login_hint``), as ``gba-gateway sandbox login`` does; their ID token is verified against
the gateway's JWKS, and the portal applies with their access token (``/v1/me/...``).

``agent-submission`` (Art. 24): the agent persona asks her principal for a delegation; an
application before he confirms is refused; he confirms and consents to the transfer; she
applies for him, and the case is his (in his list, his identity) with her named as agent; a
matter that needs the applicant in person refuses her; the case is decided.

``low-assurance``: a persona with a low-assurance account is refused 403
``insufficient-assurance`` for matters that need more, and nothing is stored: his
applications and consents are as they were (none).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from gateway.domain.matters import Assurance, Matter
from gateway.sandbox.agencies import sandbox_agency
from gateway.sandbox.personas import Persona, persona
from gateway.sandbox.portal import SandboxPortal, Tokens
from gateway.sandbox.samples import canonical_sample
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Answer, Context, case_summary, encoded
from gateway.sandbox.scenarios.review import HENGQIN

AGENT = "leung-mei-ling"
LOW = "wong-siu-ming"
CATEGORIES = ["identity", "contact", "address", "application", "materials"]


@dataclass
class Resident:
    """A persona logged in through a portal: calls the applicant API with their token."""

    ctx: Context
    who: Persona
    tokens: Tokens

    async def call(self, method: str, path: str, body: Any = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.tokens.access_token}"}
        if method == "POST":
            headers["Idempotency-Key"] = "scenario-" + secrets.token_urlsafe(12)
        return await self.ctx.http(method, path, body, headers)

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        answer = await self.call(method, path, body)
        expect(answer.status == status, f"{status} from {method} {path}", answer.describe())
        return answer.body

    async def applications(self) -> list[str]:
        """The ids of every one of the resident's applications, page after page."""
        ids: list[str] = []
        path = "/v1/me/applications"
        while path:
            page = await self.ok("GET", path)
            ids += [a["application_id"] for a in page["items"]]
            path = f"/v1/me/applications?after={page['next']}" if page["next"] else ""
        return ids


async def log_in(ctx: Context, persona_id: str) -> tuple[Resident, dict[str, Any]]:
    """Log the persona in at its home provider; verify the ID token; read ``/v1/me``."""
    who = persona(persona_id)
    portal = await SandboxPortal.register(ctx.url, name="gba-gateway sandbox scenario")
    tokens = await portal.login(who.providers()[0], who.id)
    header = jwt.get_unverified_header(tokens.id_token)
    keys = [k for k in (await ctx.jwks())["keys"] if k.get("kid") == header.get("kid")]
    expect(keys, f"the ID token's key {header.get('kid')} in the JWKS", "not published")
    claims = jwt.decode(
        tokens.id_token,
        jwt.PyJWK.from_dict(keys[0]).key,
        algorithms=["ES256"],
        audience=portal.client_id,
    )
    acr = f"urn:gba:loa:{who.assurance}"
    expect(claims.get("acr") == acr, f"acr {acr}", claims.get("acr"))
    resident = Resident(ctx, who, tokens)
    me = await resident.ok("GET", "/v1/me")
    expect(me["identity"]["assurance"] == who.assurance, who.assurance, me["identity"])
    return resident, claims


def application(matter: Matter, who: Persona) -> dict[str, Any]:
    """The matter's sample without ``applicant``: the identity comes from the login."""
    document = canonical_sample(matter, who)
    document.pop("applicant")
    return document


def destinations(matter: Matter, who: Persona) -> list[str]:
    handlers = {sandbox_agency(a).jurisdiction for a in matter.route.handlers}
    return sorted(handlers - {who.jurisdiction})


async def agent_submission(ctx: Context) -> None:
    matter = ctx.matter(HENGQIN)
    agent_persona = persona(AGENT)
    principal_persona = persona(agent_persona.acts_for[0])
    doc_type, number = principal_persona.documents[0]
    in_person = next(
        m
        for m in ctx.catalog()
        if not m.agent_allowed and m.min_assurance.rank <= Assurance(agent_persona.assurance).rank
    )

    async with ctx.step(f"{AGENT} logs in through the sandbox identity provider") as step:
        agent, claims = await log_in(ctx, AGENT)
        step.detail = f"ID token verified, acr {claims['acr']}"
    async with ctx.step(f"{principal_persona.id}, her principal, logs in"):
        principal, _ = await log_in(ctx, principal_persona.id)

    async with ctx.step(f"{AGENT} asks {principal_persona.id} ({doc_type}) for a delegation"):
        until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        asked = await agent.ok(
            "POST",
            "/v1/me/delegations",
            {
                "principal": {"type": doc_type, "number": number},
                "matters": [HENGQIN, str(in_person.code)],
                "until": until,
            },
            status=201,
        )
        expect(asked["confirmed_at"] is None, "awaiting confirmation", asked)
        delegation = asked["delegation_id"]

    submission: dict[str, Any] = {"application": application(matter, principal_persona)}
    submission["on_behalf_of"] = delegation
    async with ctx.step("an application before the principal confirms is refused"):
        answer = await agent.call("POST", "/v1/me/applications", submission)
        expect(
            (answer.status, answer.problem) == (403, "delegation-required")
            and "not confirmed" in str(answer.body.get("detail")),
            "403 delegation-required: not confirmed",
            answer.describe(),
        )

    async with ctx.step(f"{principal_persona.id} confirms the delegation and consents"):
        path = f"/v1/me/delegations/{delegation}/confirm"
        confirmed = await principal.ok("POST", path)
        expect(confirmed["confirmed_at"], "confirmed_at set", confirmed)
        consent = {
            "categories": CATEGORIES,
            "destinations": destinations(matter, principal_persona),
            "matter": HENGQIN,
        }
        given = await principal.ok("POST", "/v1/me/consents", consent, status=201)
        submission["consent_id"] = given["consent_id"]

    async with ctx.step(f"{AGENT} applies for {HENGQIN} for him") as step:
        answer = await agent.call("POST", "/v1/me/applications", submission)
        expect(answer.status == 202, "202", answer.describe())
        application_id = answer.body["application_id"]
        status = answer.body["status"]
        await ctx.receipt(
            answer.body["receipt"],
            application_id=application_id,
            matter=HENGQIN,
            status=status,
            body=encoded(submission),
        )
        step.detail = f"{application_id} {status}, receipt verified"

    async with ctx.step(f"the case is {principal_persona.id}'s, with {AGENT} as agent"):
        ids = await principal.applications()
        expect(application_id in ids, f"{application_id} in his applications", ids[-5:])
        his = await principal.ok("GET", f"/v1/me/applications/{application_id}")
        hers = await agent.ok("GET", f"/v1/me/applications/{application_id}")
        agent_id = his["timeline"][0].get("agent")
        expect(agent_id, "the agent on the first event", his["timeline"][0])
        submitted = hers["submitted_by"]
        expect(submitted == f"resident:{agent_id}", f"submitted by resident:{agent_id}", submitted)

    async with ctx.step(f"{in_person.code} needs the applicant in person: refused"):
        other = {**submission, "application": application(in_person, principal_persona)}
        other.pop("consent_id")
        answer = await agent.call("POST", "/v1/me/applications", other)
        expect(
            (answer.status, answer.problem) == (403, "delegation-required")
            and "in person" in str(answer.body.get("detail")),
            "403 delegation-required: the applicant in person",
            answer.describe(),
        )

    async with ctx.step("the case is approved, as its applicant sees it"):
        path = f"/v1/me/applications/{application_id}"
        await ctx.until(
            lambda: principal.ok("GET", path),
            lambda view: view["status"] == "approved",
            expected="approved",
            seen=case_summary,
            hopeless=lambda view: view["status"] in ("rejected", "not_accepted", "withdrawn"),
        )


async def low_assurance(ctx: Context) -> None:
    who = persona(LOW)
    refused = [
        next(m for m in ctx.catalog() if m.min_assurance is level)
        for level in (Assurance.SUBSTANTIAL, Assurance.HIGH)
    ]
    async with ctx.step(f"{LOW} logs in through the sandbox identity provider") as step:
        resident, claims = await log_in(ctx, LOW)
        step.detail = f"ID token verified, acr {claims['acr']}"
    async with ctx.step("his applications and consents before"):
        before = await resident.ok("GET", "/v1/me/applications")
        consents = await resident.ok("GET", "/v1/me/consents")
    for matter in refused:
        level = matter.min_assurance.value
        async with ctx.step(f"{matter.code} needs {level}: 403 insufficient-assurance"):
            body = {
                "application": application(matter, who),
                "consent": {"categories": CATEGORIES, "destinations": destinations(matter, who)},
            }
            answer = await resident.call("POST", "/v1/me/applications", body)
            expect(
                (answer.status, answer.problem) == (403, "insufficient-assurance"),
                "403 insufficient-assurance",
                answer.describe(),
            )
            kind = answer.headers.get("Content-Type", "")
            expect(kind.startswith("application/problem+json"), "problem+json", kind)
    async with ctx.step("nothing stored: no application, no consent"):
        after = await resident.ok("GET", "/v1/me/applications")
        expect(after["items"] == before["items"] == [], "no applications", after["items"])
        now = await resident.ok("GET", "/v1/me/consents")
        expect(now["items"] == consents["items"], consents["items"], now["items"])


AGENT_SUBMISSION = Scenario(
    "agent-submission",
    "an agent applies for her principal under a delegation he confirmed (Art. 24)",
    agent_submission,
)
LOW_ASSURANCE = Scenario(
    "low-assurance",
    "a low-assurance login is refused 403 insufficient-assurance and nothing is stored",
    low_assurance,
)
