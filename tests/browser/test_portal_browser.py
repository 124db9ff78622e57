"""The reference resident portal (/portal/) in headless Chromium, as residents use it.

An HK persona (iAM Smart, zh-Hant) logs in through the gateway's OP and the sandbox IdP's
persona page, finds the Hengqin individual-business matter by its Traditional Chinese name,
sends an incomplete form and sees every problem beside its field, corrects it with a file
upload and a commitment, consents to exactly the fields and agencies listed, submits, downloads
the signed receipt (verified against the gateway's JWKS) and follows the progress to the
result: the lead's approval, with an e-certificate (the sandbox lead's fault switch) that the
resident receives after consenting on the result page, downloads and verifies against the
agency's published keys. A Macau persona does the same in Portuguese, a Guangdong persona in
Simplified Chinese, each to the result; a low-assurance persona is refused clearly and nothing
is filed; a session survives a real access-token expiry at the gateway mid-form. The journey
also runs with JavaScript off (axe needs it, so that run is not checked by axe). axe-core
finds no violation on any page; the form is reachable by keyboard alone with a visible focus,
and no page scrolls sideways at 200 % zoom. Screenshots of each step go to the ``artifacts``
folder (docs/portal.md names them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import sqlalchemy as sa
from axe_playwright_python.async_playwright import Axe

from gateway.bootstrap import Overrides, create_app
from gateway.identity.tokens import refresh_hash
from gateway.portal.app import STATE
from gateway.sandbox.routes import PARTNERS
from gateway.store.tables import applications, logins, oidc_refresh_tokens
from gateway.web.keys import STORE
from tests.conftest import RunningGateway, sandbox_settings
from tests.support import refused_at_the_gateway

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

HENGQIN_BUSINESS = "11440400MB2C00081P4440120002000"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class Journey:
    """One resident's browser tab: every page visited is checked by axe and photographed."""

    def __init__(
        self, page: Any, gateway: RunningGateway, artifacts: Path, name: str, *, axe: bool = True
    ) -> None:
        self.page, self.gateway, self.artifacts, self.name = page, gateway, artifacts, name
        self.axe = axe
        self.violations: list[str] = []
        self.step = 0

    async def check(self, label: str) -> None:
        self.step += 1
        results = await Axe().run(self.page) if self.axe else None
        for violation in results.response["violations"] if results else ():
            self.violations.append(
                f"{self.name}/{label}: {violation['id']} ({violation['impact']})\n"
                + results.generate_report(violation["id"])
            )
        shot = self.artifacts / f"portal-{self.name}-{self.step:02d}-{label}.png"
        await self.page.screenshot(path=str(shot), full_page=True)

    async def log_in(self, provider: str, persona_id: str) -> None:
        page = self.page
        await page.goto(f"{self.gateway.url}/portal/")
        await self.check("start")
        await page.locator(f"#login-{provider}").click()
        await page.wait_for_selector(f'input[value="{persona_id}"]')  # the IdP's persona page
        await self.check("idp-persona")
        await page.locator(f'input[value="{persona_id}"]').check()
        await page.locator('button[type="submit"]').click()
        await page.wait_for_url("**/portal/")
        assert await page.locator("#greeting").count() == 1
        await self.check("logged-in")

    async def find(self, text: str) -> None:
        page = self.page
        await page.locator("#q").fill(text)
        await page.locator('form[role="search"] button').click()
        await page.wait_for_url("**/portal/matters?q=*")
        assert await page.locator(f'li[data-matter="{HENGQIN_BUSINESS}"]').count() == 1
        await self.check("search")
        await page.locator(f'li[data-matter="{HENGQIN_BUSINESS}"] a').click()
        await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}")
        await self.check("matter")
        await page.locator("#apply").click()
        await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/apply")
        await self.check("form")

    async def fill_form(self, name: str, *, commit: bool = True) -> None:
        page = self.page
        await page.locator("#f-particulars-business_name").fill(name)
        await page.locator("#f-particulars-business_address-text").fill(
            "橫琴粵澳深度合作區示例大道 88 號"
        )
        await page.locator("#f-particulars-business_address-jurisdiction").select_option("GD")
        await page.locator("#f-particulars-business_scope").fill("餐飲服務")
        await page.locator("#f-particulars-employees").fill("3")
        await page.locator("#m-APPLICATION_FORM").set_input_files(
            {"name": "form.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        if commit:
            await page.locator("#c-PREMISES_PROOF").check()

    async def consent_and_submit(self) -> str:
        page = self.page
        await page.locator("#continue").click()
        await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/consent")
        row = page.locator('#recipients tr[data-agency="gd-hq-csb"]')
        assert await row.locator("td[data-jurisdiction]").get_attribute("data-jurisdiction") == "GD"
        await self.check("consent")
        if await page.locator("#principal-consent").count() == 0:  # an agent is not asked
            await page.locator("#agree").check()
        await page.locator("#submit").click()
        await page.wait_for_url("**/portal/applications/*/receipt")
        await self.check("receipt")
        return page.url.rsplit("/", 2)[-2]

    async def progress(self, case_id: str) -> None:
        page = self.page
        await page.locator("#see-progress").click()
        await page.wait_for_url(f"**/portal/applications/{case_id}")
        assert await page.locator('#timeline li[data-event="application.received"]').count() == 1
        assert await page.locator('#agencies tr[data-agency="gd-hq-csb"]').count() == 1
        await self.check("progress")
        await page.get_by_role("link", name=await _label(page, "nav_applications")).click()
        await page.wait_for_url("**/portal/applications")
        assert await page.locator(f'tr[data-application="{case_id}"]').count() == 1
        await self.check("applications")

    async def result(self, case_id: str, decision: str = "approved") -> None:
        """Back on the progress page until the lead agency's decision shows (the sandbox lead
        decides on its own within a second or two): reloaded, at most 60 times."""
        page = self.page
        await page.goto(f"{self.gateway.url}/portal/applications/{case_id}")
        for _ in range(60):
            if await page.locator("#result").count():
                break
            await page.wait_for_timeout(250)
            await page.reload()
        result = page.locator("#result")
        assert await result.get_attribute("data-status") == decision
        assert await page.locator(f'#summary dd[data-status="{decision}"]').count() == 1
        decided = f'#timeline li[data-event="application.{decision}"]'
        assert await page.locator(decided).count() == 1
        assert await page.locator('#agencies tr[data-agency="gd-hq-csb"]').count() == 1
        await self.check("result")


async def _label(page: Any, key: str) -> str:
    from gateway.portal.i18n import Translator

    return Translator(await page.locator("html").get_attribute("lang"))(key)


async def _verified_receipt(gateway: RunningGateway, voucher: str, case_id: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/.well-known/jwks.json") as response,
    ):
        keys = jwt.PyJWKSet.from_dict(await response.json())
    kid = jwt.get_unverified_header(voucher)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims = jwt.decode(voucher, key.key, algorithms=["ES256"], options={"verify_aud": False})
    assert claims["sub"] == case_id
    return dict(claims)


async def _agency_keys(gateway: RunningGateway, agency_id: str) -> jwt.PyJWKSet:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/v1/agencies/{agency_id}/jwks.json") as response,
    ):
        assert response.status == 200
        return jwt.PyJWKSet.from_dict(await response.json())


async def _switch(gateway: RunningGateway, agency_id: str, faults: dict[str, Any]) -> None:
    """A sandbox agency's fault switches, through the sandbox API (as a tester would)."""
    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            f"{gateway.url}/sandbox/v1/agencies/{agency_id}/faults", json=faults
        ) as response,
    ):
        assert response.status == 200, await response.text()
        body = await response.json()
        assert all(body[k] == v for k, v in faults.items())


async def test_a_hong_kong_resident_applies_in_traditional_chinese(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    """From login to the result, with the e-certificate the lead agency attaches to its
    approval: refused without the resident's consent, which the result page explains and
    offers; given, the certificate is shown, downloaded and verified against the issuing
    agency's published keys."""
    await _switch(gateway, "gd-hq-csb", {"e_certificate": "jws"})
    context = await browser.new_context(locale="zh-HK", accept_downloads=True)
    page = await context.new_page()
    journey = Journey(page, gateway, artifacts, "hk-zh-Hant")
    await journey.log_in("hk", "chan-tai-man")
    assert await page.locator("html").get_attribute("lang") == "zh-Hant"
    await journey.find("個體工商戶")
    assert "個體工商戶" in await page.locator("h1").inner_text()

    # Sent incomplete: every problem at once, beside its field, associated for screen readers
    await page.locator("#f-particulars-employees").fill("many")
    await page.locator("#continue").click()
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/consent")
    await page.locator("#agree").check()
    await page.locator("#submit").click()
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/apply")
    summary = page.locator("#error-summary li")
    assert await summary.count() >= 4
    for field in ("business_name", "business_scope", "employees"):
        control = page.locator(f"#f-particulars-{field}")
        assert await control.get_attribute("aria-invalid") == "true"
        described = (await control.get_attribute("aria-describedby") or "").split()
        assert described, field
        assert "此欄位必須填寫" in await page.locator(f"#{described[0]}").inner_text() or (
            field == "employees"
        )
    assert await page.locator("#f-particulars-employees").input_value() == "many"  # kept
    address = page.locator('fieldset[data-particular="business_address"]')
    assert await address.get_attribute("aria-describedby")
    await journey.check("form-refused")

    await journey.fill_form("大文茶餐廳")
    case_id = await journey.consent_and_submit()
    async with page.expect_download() as waiting:
        await page.locator("#download-receipt").click()
    download = await waiting.value
    voucher = (await download.path()).read_bytes().decode().strip()
    claims = await _verified_receipt(gateway, voucher, case_id)
    assert claims["matter"] == HENGQIN_BUSINESS
    await journey.progress(case_id)
    await journey.result(case_id)
    assert await page.locator("#result p").inner_text() == "您的申請已獲批准。"

    # the approval carries an e-certificate: delivered only with the resident's consent
    listed = page.locator("#certificates li[data-certificate]")
    assert await listed.count() == 1
    assert await listed.get_attribute("data-consent") == "no"
    assert "須先同意以電子證照送達" in await listed.inner_text()
    cert_id = await listed.get_attribute("data-certificate")
    await listed.locator("a").click()
    await page.wait_for_url(f"**/portal/certificates/{cert_id}")
    assert "只在您同意以電子方式送達後提供" in await page.get_by_role("alert").inner_text()
    assert await page.locator("#download-certificate").count() == 0  # nothing delivered
    assert (
        "不會把任何資料送往其他機關" in await page.locator("#certificate-consent-help").inner_text()
    )
    await journey.check("certificate-needs-consent")
    await page.locator("#certificate-consent").click()  # the explicit, optional choice
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert "已記錄您的同意" in await page.get_by_role("status").inner_text()
    assert await listed.get_attribute("data-consent") == "yes"
    assert await page.locator("#certificate-consent").count() == 0
    await journey.check("result-consented")
    await listed.locator("a").click()
    await page.wait_for_url(f"**/portal/certificates/{cert_id}")
    assert await page.locator('#certificate dd[data-issuer="gd-hq-csb"]').count() == 1
    assert await page.locator('#certificate dd[data-status="valid"]').count() == 1
    await journey.check("certificate")
    async with page.expect_download() as waiting:
        await page.locator("#download-certificate").click()
    download = await waiting.value
    assert download.suggested_filename == f"certificate-{cert_id}.jwt"
    certificate = (await download.path()).read_bytes().decode().strip()
    header = jwt.get_unverified_header(certificate)
    assert header["typ"] == "gba-certificate+jwt"
    key = next(
        k for k in (await _agency_keys(gateway, "gd-hq-csb")).keys if k.key_id == header["kid"]
    )
    signed = jwt.decode(
        certificate, key.key, algorithms=["ES256", "EdDSA"], options={"verify_aud": False}
    )
    assert signed["iss"] == "gd-hq-csb"
    assert signed["jti"]
    await context.close()
    assert journey.violations == [], "\n".join(journey.violations)


async def test_the_journey_works_without_javascript(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    context = await browser.new_context(locale="en-GB", java_script_enabled=False)
    page = await context.new_page()
    journey = Journey(page, gateway, artifacts, "no-js-en", axe=False)
    await journey.log_in("hk", "chan-tai-man")
    await journey.find("individual business")
    await journey.fill_form("Chan's Tea House")
    case_id = await journey.consent_and_submit()
    await journey.progress(case_id)
    await context.close()


async def test_without_a_provider_the_gateway_s_chooser_asks_in_the_resident_s_language(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page(locale="zh-CN")
    journey = Journey(page, gateway, artifacts, "chooser-zh-Hans")
    await page.goto(f"{gateway.url}/portal/")
    await page.locator("#login-chooser").click()
    await page.wait_for_selector("#provider-guangdong")  # the gateway's own chooser page
    await journey.check("gateway-chooser")
    await page.locator("#provider-guangdong").click()
    await page.locator('input[value="zhang-wei"]').check()
    await page.locator('button[type="submit"]').click()
    await page.wait_for_url("**/portal/")
    assert await page.locator("#greeting").count() == 1
    await journey.check("logged-in")
    assert journey.violations == [], "\n".join(journey.violations)


async def test_a_macau_resident_applies_in_portuguese(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    context = await browser.new_context(
        locale="pt-PT", extra_http_headers={"Accept-Language": "pt-PT,pt;q=0.9"}
    )
    page = await context.new_page()
    journey = Journey(page, gateway, artifacts, "macau-pt")
    await journey.log_in("macau", "lei-sio-meng")
    assert await page.locator("html").get_attribute("lang") == "pt"
    assert await page.locator("h1").inner_text() == "Pedir serviços públicos transfronteiriços"
    await journey.find("empresário comercial")
    assert "empresário comercial" in await page.locator("h1").inner_text()
    await journey.fill_form("Casa de Chá Lei")
    case_id = await journey.consent_and_submit()
    assert await page.locator("h1").inner_text() == "Recibo"
    await journey.progress(case_id)
    assert await page.locator("h1").inner_text() == "Os meus pedidos"
    await journey.result(case_id)
    assert await page.locator("#result p").inner_text() == "O seu pedido foi aprovado."
    await context.close()
    assert journey.violations == [], "\n".join(journey.violations)


async def test_a_case_held_back_by_a_withdrawn_consent_goes_on_once_consented_again(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    """In Portuguese: the lead agency is down, so the case's forward waits; the resident
    withdraws the consent on the consents page, the forward is withheld, and the progress
    page says the case waits for a consent; given again, the case goes on and is decided."""
    partners = gateway.app[PARTNERS]  # type: ignore[index]
    partners.faults.update("gd-hq-csb", {"down": True})
    context = await browser.new_context(
        locale="pt-PT", extra_http_headers={"Accept-Language": "pt-PT,pt;q=0.9"}
    )
    page = await context.new_page()
    journey = Journey(page, gateway, artifacts, "held-back-pt")
    await journey.log_in("macau", "lei-sio-meng")
    await journey.find("empresário comercial")
    await journey.fill_form("Casa de Chá Lei")
    case_id = await journey.consent_and_submit()

    await page.get_by_role("link", name="Consentimentos").click()
    await page.wait_for_url("**/portal/consents")
    await page.locator('#consents tr[data-status="in_force"] button').click()
    await page.wait_for_url("**/portal/consents")
    assert await page.locator('#consents tr[data-status="withdrawn"]').count() == 1
    await journey.check("consent-withdrawn")
    await page.goto(f"{gateway.url}/portal/applications/{case_id}")
    assert await page.locator("#consent-again h2").inner_text() == (
        "Este pedido aguarda o seu consentimento"
    )
    await journey.check("progress-held-back")

    partners.faults.update("gd-hq-csb", {"down": False})
    await page.locator("#agree-again").check()
    await page.locator("#consent-again-button").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert "o pedido prossegue" in await page.get_by_role("status").inner_text()
    assert await page.locator("#consent-again").count() == 0
    renewed = '#timeline li[data-event="consent.renewed"]'
    assert await page.locator(renewed).count() == 1
    await journey.check("progress-consented-again")
    await journey.result(case_id)  # delivered to the lead now, and decided
    assert await page.locator("#result p").inner_text() == "O seu pedido foi aprovado."
    await context.close()
    assert journey.violations == [], "\n".join(journey.violations)


async def test_a_guangdong_resident_applies_in_simplified_chinese(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    journey = Journey(page, gateway, artifacts, "gd-zh-Hans")
    await journey.log_in("guangdong", "zhang-wei")
    assert await page.locator("html").get_attribute("lang") == "zh-Hans"
    await journey.find("个体工商户")
    await journey.fill_form("张记小吃店")
    case_id = await journey.consent_and_submit()
    await journey.progress(case_id)
    await journey.result(case_id)
    assert await page.locator("#result p").inner_text() == "您的申请已获批准。"
    await context.close()
    assert journey.violations == [], "\n".join(journey.violations)


async def test_a_low_assurance_login_is_refused_clearly_and_nothing_is_filed(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page(locale="en-GB")
    journey = Journey(page, gateway, artifacts, "low-assurance-en")
    await journey.log_in("hk", "wong-siu-ming")
    await journey.find("individual business")
    await journey.fill_form("Wong's Tea House")
    await page.locator("#continue").click()
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/consent")
    await page.locator("#agree").check()
    await page.locator("#submit").click()
    refusal = page.locator("#refusal")
    await refusal.wait_for()
    assert "identity assurance is too low" in await refusal.inner_text()
    await journey.check("refused")
    await page.goto(f"{gateway.url}/portal/applications")
    assert await page.locator("tr[data-application]").count() == 0
    assert journey.violations == [], "\n".join(journey.violations)


async def test_every_language_is_switchable_and_remembered_without_violations(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page(locale="en-GB")
    journey = Journey(page, gateway, artifacts, "languages")
    titles = {
        "zh-Hant": "搜尋服務事項",
        "zh-Hans": "搜索服务事项",
        "en": "Find a service",
        "pt": "Procurar um serviço",
    }
    for lang, title in titles.items():
        await page.goto(f"{gateway.url}/portal/matters?q=Hengqin")
        await page.locator(f'nav.languages a[hreflang="{lang}"]').click()
        await page.wait_for_url(f"**lang={lang}")
        assert await page.locator("html").get_attribute("lang") == lang
        assert await page.locator("h1").inner_text() == title
        await journey.check(f"search-{lang}")
        await page.goto(f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}")  # no ?lang=
        assert await page.locator("html").get_attribute("lang") == lang  # the cookie
        await journey.check(f"matter-{lang}")
        await page.goto(f"{gateway.url}/portal/")
        await journey.check(f"start-{lang}")
    assert journey.violations == [], "\n".join(journey.violations)


async def test_the_form_is_reachable_by_keyboard_alone_with_a_visible_focus(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page(locale="en-GB")
    journey = Journey(page, gateway, artifacts, "keyboard")
    await journey.log_in("hk", "chan-tai-man")
    await page.goto(f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/apply")
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.className") == "skip-link"
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement.id") == "main"
    expected = [
        "f-particulars-business_name",
        "f-particulars-business_address-text",
        "f-particulars-business_address-district",
        "f-particulars-business_address-area_code",
        "f-particulars-business_address-jurisdiction",
        "f-particulars-business_scope",
        "f-particulars-capital-amount",
        "f-particulars-capital-currency",
        "f-particulars-employees",
        "m-APPLICATION_FORM",
        "m-PREMISES_PROOF",
        "c-PREMISES_PROOF",
        "continue",
    ]
    reached = []
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => [document.activeElement.id, getComputedStyle(document.activeElement)"
            ".outlineStyle, getComputedStyle(document.activeElement).outlineWidth]"
        )
        if focused[0] in expected:
            reached.append(focused[0])
            assert focused[1] != "none", f"no visible focus on {focused[0]}"
            assert focused[2] != "0px", f"no visible focus on {focused[0]}"
        if focused[0] == "continue":
            break
    assert reached == expected
    await journey.check("keyboard-continue")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/consent")


async def test_after_submitting_a_resident_supplies_complains_withdraws_and_delegates(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page(locale="en-GB")
    journey = Journey(page, gateway, artifacts, "after-en")
    await journey.log_in("hk", "chan-tai-man")
    await journey.find("individual business")
    await journey.fill_form("Chan's Tea House", commit=False)  # no proof of premises
    case_id = await journey.consent_and_submit()
    await page.locator("#see-progress").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator("#s-PREMISES_PROOF").count() == 1  # what the case still needs
    await journey.check("progress-owed")
    await page.locator("#complaint-text").fill("The counter told me to come back twice.")
    await page.locator("#complain").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator("#complaints li[data-complaint]").count() == 1
    await journey.check("complained")
    await page.locator("#withdraw").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator('#summary dd[data-status="withdrawn"]').count() == 1
    assert await page.locator("#withdraw").count() == 0
    await journey.check("withdrawn")

    # a second case: the proof of premises supplied afterwards, streamed on as a supplement
    await page.goto(f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/apply")
    await journey.fill_form("Chan's Noodle Bar", commit=False)
    case_id = await journey.consent_and_submit()
    await page.goto(f"{gateway.url}/portal/applications/{case_id}")
    await page.locator("#s-PREMISES_PROOF").set_input_files(
        {"name": "lease.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    await page.locator("#supply").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert "The documents were sent." in await page.get_by_role("status").inner_text()
    assert await page.locator("#s-PREMISES_PROOF").count() == 0
    supplied = '#timeline li[data-event="application.supplement_provided"]'
    assert await page.locator(supplied).count() == 1
    await journey.check("progress-supplied")

    # 陳大文 asks to act for 李小明 (by his Macao BIR); 李小明 confirms in his own browser
    await page.get_by_role("link", name="Agents").click()
    await page.wait_for_url("**/portal/delegations")
    await page.locator("#d-type").select_option("MO_BIR")
    await page.locator("#d-number").fill("1234567(8)")
    await page.locator("#d-matter").fill(HENGQIN_BUSINESS)
    await page.locator("#d-until").fill("2030-12-31")
    await page.locator("#ask").click()
    await page.wait_for_url("**/portal/delegations")
    assert await page.locator("tr[data-delegation]").count() == 1
    await journey.check("delegation-asked")

    principal = await browser.new_page(locale="en-GB")
    other = Journey(principal, gateway, artifacts, "principal-en")
    await other.log_in("macau", "lei-sio-meng")
    await principal.goto(f"{gateway.url}/portal/delegations")
    await principal.locator("tr[data-delegation] input[id^=consent-]").check()
    await principal.locator("tr[data-delegation] button[id^=confirm-]").click()
    await principal.wait_for_url("**/portal/delegations")
    assert await principal.get_by_role("status").inner_text() == (
        "Delegation confirmed, and your consent recorded."
    )
    await other.check("delegation-confirmed")
    await page.reload()
    assert "Confirmed" in await page.locator("tr[data-delegation]").inner_text()

    # 陳大文 applies for 李小明: his document instead of her identity, his consent relied on
    await page.goto(f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/apply")
    await page.locator("#for").select_option(index=1)
    await page.locator("#choose-for").click()
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/apply?for=*")
    assert "1234567(8)" in await page.locator("#principal").inner_text()
    assert await page.locator("#identity").count() == 0
    await journey.check("form-for-principal")
    await journey.fill_form("Lei's Tea House")
    case_id = await journey.consent_and_submit()
    assert await page.locator("#principal-follows").count() == 1  # his case: he is told
    await page.goto(f"{gateway.url}/portal/applications")
    assert await page.locator(f'tr[data-application="{case_id}"]').count() == 1  # she filed it
    await principal.goto(f"{gateway.url}/portal/applications")
    assert await principal.locator(f'tr[data-application="{case_id}"]').count() == 1
    violations = journey.violations + other.violations
    assert violations == [], "\n".join(violations)


INVESTOR_ENTERPRISE = "11440300MB2C00011B3440120001000"


async def test_consent_names_each_agency_its_fields_and_the_evidence_shared(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    """A joint matter: the lead in Shenzhen gets everything, the tax bureau the enterprise's
    particulars, Macao's IPIM two particulars and two documents; the HK business
    registration extract is obtained from its issuer by data sharing."""
    page = await browser.new_page(locale="zh-HK")
    journey = Journey(page, gateway, artifacts, "joint-zh-Hant")
    await journey.log_in("hk", "chan-tai-man")
    await page.goto(f"{gateway.url}/portal/matters/{INVESTOR_ENTERPRISE}/apply")
    evidence = 'p.evidence[data-material="INVESTOR_BR_EXTRACT"]'
    assert await page.locator(evidence).count() == 1  # not asked for
    await page.locator("#f-particulars-company_name").fill("大文貿易（深圳）有限公司")
    await page.locator("#f-particulars-registered_address-text").fill("深圳市前海示例路 1 號")
    await page.locator("#f-particulars-registered_address-jurisdiction").select_option("GD")
    await page.locator("#f-particulars-business_scope").fill("貿易")
    await page.locator("#f-particulars-registered_capital-amount").fill("1000000.00")
    await page.locator("#f-particulars-registered_capital-currency").select_option("HKD")
    await page.locator("#f-particulars-legal_representative").fill("陳大文")
    for upload in await page.locator('input[type="file"]').all():
        await upload.set_input_files(
            {"name": "document.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
    await page.locator("#c-DOMICILE_PROOF").check()
    await page.locator("#continue").click()
    await page.wait_for_url(f"**/portal/matters/{INVESTOR_ENTERPRISE}/consent")

    rows = {
        agency: page.locator(f'#recipients tr[data-agency="{agency}"]')
        for agency in ("sz-amr", "gd-tax", "mo-ipim")
    }
    where = {
        a: await r.locator("td[data-jurisdiction]").get_attribute("data-jurisdiction")
        for a, r in rows.items()
    }
    assert where == {"sz-amr": "GD", "gd-tax": "GD", "mo-ipim": "MO"}
    assert "整份申請" in await rows["sz-amr"].inner_text()
    ipim = await rows["mo-ipim"].locator("li").all_inner_texts()
    assert "企業名稱" in ipim
    assert "註冊資本" in ipim
    assert any(text.startswith("投資者主體資格證明") for text in ipim)
    assert "經營範圍" not in ipim  # the tax bureau's, not IPIM's
    assert "經營範圍" in await rows["gd-tax"].locator("li").all_inner_texts()
    item = page.locator('#evidence li[data-evidence="hk-br-extract"]')
    assert "香港" in await item.inner_text()
    await journey.check("consent")

    await page.locator("#agree").check()
    await page.locator("#submit").click()
    await page.wait_for_url("**/portal/applications/*/receipt")
    await page.locator("#see-progress").click()
    shown = page.locator('#evidence li[data-evidence="hk-br-extract"]')
    await shown.wait_for()
    # asked of its issuer (the consent covered it): requested, or already answered
    assert await shown.get_attribute("data-state") in ("requested", "received", "refused")
    await journey.check("progress")
    assert journey.violations == [], "\n".join(journey.violations)


async def test_at_200_percent_zoom_no_page_scrolls_sideways(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    """WCAG 1.4.4/1.4.10: a 1280 px window at 200 % is a 640 CSS px viewport; text wraps and
    nothing but a wide table (scrolling inside itself) needs sideways scrolling."""
    context = await browser.new_context(
        locale="pt-PT", viewport={"width": 640, "height": 900}, device_scale_factor=2
    )
    page = await context.new_page()
    journey = Journey(page, gateway, artifacts, "zoom-200-pt")
    await journey.log_in("macau", "lei-sio-meng")
    for label, path in (
        ("search", "/portal/matters?q=Hengqin"),
        ("matter", f"/portal/matters/{HENGQIN_BUSINESS}"),
        ("form", f"/portal/matters/{HENGQIN_BUSINESS}/apply"),
        ("matter-joint", f"/portal/matters/{INVESTOR_ENTERPRISE}"),
    ):
        await page.goto(gateway.url + path)
        wide = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0, f"{label} scrolls sideways by {wide}px"
        await journey.check(label)
    await context.close()
    assert journey.violations == [], "\n".join(journey.violations)


@pytest.fixture
async def short_token_gateway(
    tmp_path: Path, database: Any, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway whose access tokens live two seconds (``access_token_seconds``)."""
    settings = sandbox_settings(tmp_path, database, access_token_seconds=2)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def _scalar(gateway: RunningGateway, query: Any) -> Any:
    async with gateway.app[STORE].engine.connect() as conn:  # type: ignore[attr-defined]
        return (await conn.execute(query)).scalar()


async def test_a_session_survives_a_real_access_token_expiry_mid_form(
    browser: Any, short_token_gateway: RunningGateway, artifacts: Path
) -> None:
    """The resident fills in the form; meanwhile the gateway's access token really expires
    (the gateway itself refuses it). Continuing, the portal refreshes with the rotating refresh
    token: no new login, the refresh token presented is spent at the gateway, the application
    is filed."""
    gateway = short_token_gateway
    page = await browser.new_page(locale="en-GB")
    journey = Journey(page, gateway, artifacts, "expiry-en")
    await journey.log_in("hk", "chan-tai-man")
    await journey.find("individual business")
    await journey.fill_form("Chan's Tea House")
    (session,) = [s for s in gateway.app[STATE].sessions._sessions.values() if s.tokens]  # type: ignore[attr-defined]
    held = session.tokens
    assert held is not None
    assert held.refresh_token is not None
    logins_before = await _scalar(gateway, sa.select(sa.func.count()).select_from(logins))
    await refused_at_the_gateway(gateway.url, held.access_token)  # really expired, at the gateway
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))

    case_id = await journey.consent_and_submit()  # the form (and its file) sent after expiry
    assert await page.locator("h1").inner_text() == "Receipt"
    assert all("/portal/" in url for url in visited), visited  # never sent to log in again
    assert session.tokens is not None
    assert session.tokens.access_token != held.access_token
    spent = sa.select(oidc_refresh_tokens.c.used_at).where(
        oidc_refresh_tokens.c.token_hash == refresh_hash(held.refresh_token)
    )
    assert await _scalar(gateway, spent) is not None  # rotated at the gateway
    assert await _scalar(gateway, sa.select(sa.func.count()).select_from(logins)) == logins_before
    filed = sa.select(applications.c.id).where(applications.c.id == case_id)
    assert await _scalar(gateway, filed) == case_id
    assert journey.violations == [], "\n".join(journey.violations)
