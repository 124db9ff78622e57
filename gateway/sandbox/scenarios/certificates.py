"""``certificate``: an e-certificate as the result (Art. 22), from issue to revocation.

The Hengqin sandbox agency is switched to attach a signed e-certificate (JWS) to its
approvals (``PATCH /sandbox/v1/agencies/gd-hq-csb/faults {"e_certificate": "jws"}``). A
resident applies through a portal and the case is approved with a certificate; the resident
sees it listed but cannot fetch it without an ``e_certificate`` consent (403); with one, gets
it, and it verifies offline against the agency's keys from ``/v1/agencies/{id}/jwks.json``
(as ``gba-gateway certificates verify`` does); the agency revokes it with a signed call; the
public status then reads revoked and carries no personal data. The switch is reset even when
a step fails.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.sandbox.scenarios.base import Check, Scenario, expect
from gateway.sandbox.scenarios.context import Context, case_summary
from gateway.sandbox.scenarios.residents import CATEGORIES, application, destinations, log_in
from gateway.sandbox.scenarios.review import HENGQIN
from gateway.trust.e_certificates import CertificateRefused, verify_token

RESIDENT = "chan-tai-man"
ISSUER = "gd-hq-csb"
STATUS_KEYS = {"certificate_id", "status", "revoked_at", "issuer"}


async def certificate(ctx: Context) -> None:
    faults = f"/sandbox/v1/agencies/{ISSUER}/faults"
    try:
        async with ctx.step(f"{ISSUER} attaches a signed e-certificate to its approvals"):
            answer = await ctx.http("PATCH", faults, {"e_certificate": "jws"})
            expect(answer.status == 200, f"200 from PATCH {faults}", answer.describe())
        await _issue_deliver_revoke(ctx)
    finally:
        async with ctx.step(f"{ISSUER} back to approvals without certificates"):
            answer = await ctx.http("PATCH", faults, {"e_certificate": "none"})
            expect(answer.status == 200, f"200 from PATCH {faults}", answer.describe())


async def _issue_deliver_revoke(ctx: Context) -> None:
    async with ctx.step(f"{RESIDENT} logs in and applies for {HENGQIN}") as step:
        resident, _ = await log_in(ctx, RESIDENT)
        who = resident.who
        body = {
            "application": application(ctx.matter(HENGQIN), who),
            "consent": {
                "categories": CATEGORIES,
                "destinations": destinations(ctx.matter(HENGQIN), who),
            },
        }
        submitted = await resident.ok("POST", "/v1/me/applications", body, status=202)
        application_id = submitted["application_id"]
        step.detail = application_id

    async with ctx.step("the case is approved with an e-certificate") as step:
        path = f"/v1/me/applications/{application_id}"
        view = await ctx.until(
            lambda: resident.ok("GET", path),
            lambda view: (
                view["status"] == "approved"  # every handler, not the lead alone
                and any(e["type"] == "certificate.issued" for e in view["timeline"])
            ),
            expected="approved, certificate.issued on the timeline",
            seen=case_summary,
            hopeless=lambda view: view["status"] in ("rejected", "not_accepted", "withdrawn"),
        )
        expect(view["status"] == "approved", "approved", view["status"])
        listed = await resident.ok("GET", "/v1/me/certificates")
        mine = [c for c in listed["items"] if c["application_id"] == application_id]
        expect(len(mine) == 1, "one certificate of this case", listed["items"])
        certificate_id = mine[0]["certificate_id"]
        step.detail = certificate_id

    async with ctx.step("without an e_certificate consent it is not delivered: 403"):
        answer = await resident.call("GET", f"/v1/me/certificates/{certificate_id}")
        expect(
            (answer.status, answer.problem) == (403, "consent-required"),
            "403 consent-required",
            answer.describe(),
        )

    async with ctx.step("with the consent the resident gets it; it verifies offline") as step:
        consent = {"purpose": "e_certificate", "categories": ["application"], "destinations": []}
        await resident.ok("POST", "/v1/me/consents", consent, status=201)
        fetched = await resident.ok("GET", f"/v1/me/certificates/{certificate_id}")
        jwks = await ctx.get_ok(f"/v1/agencies/{ISSUER}/jwks.json")
        try:
            verified = verify_token(fetched["certificate"], jwks, now=datetime.now(UTC))
        except CertificateRefused as refused:
            raise Check("a certificate that verifies", str(refused)) from None
        expect(verified.issuer == ISSUER, f"issued by {ISSUER}", verified.issuer)
        step.detail = f"kid {verified.kid}"

    status_path = f"/v1/certificates/{certificate_id}/status"
    async with ctx.step(f"{ISSUER} revokes it; the public status reads revoked"):
        path = f"/v1/certificates/{certificate_id}/revocation"
        answer = await ctx.signed(ISSUER, "POST", path, {"reason": "sandbox scenario"})
        expect(answer.status == 200, "200 from the revocation", answer.describe())
        status = await ctx.get_ok(status_path)
        expect(status.get("status") == "revoked", "revoked", status)
        expect(set(status) == STATUS_KEYS, f"only {sorted(STATUS_KEYS)}", sorted(status))


CERTIFICATE = Scenario(
    "certificate",
    "an approval's e-certificate: delivered under consent, verified offline, revoked (Art. 22)",
    certificate,
)
