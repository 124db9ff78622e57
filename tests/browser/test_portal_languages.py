"""Every page of the reference portal in every language (Art. 15), checked by axe-core.

One login and two submitted cases per language (zh-Hant, zh-Hans, en, pt), then a walk through
every page the portal has: the start page, the gateway's own provider chooser, the sandbox
identity provider's persona page, search results, the matter, the form, the form refused with
its problems, the consent, the receipt, the progress with a material owed, my applications,
the progress after complaining and after withdrawing, a second case's progress after supplying
what it owed, the consents page after withdrawing one, the delegations
page, a certificate the resident cannot have, an unknown matter, a matter refused for its
assurance level, the gateway's progress page opened with the OP session cookie, and the start
page after logging out. On each: ``<html lang>`` is the language chosen, axe-core finds no
violation of any impact, and (portal and gateway pages) no text of a known English label,
material name or problem message is shown in place of its translation. Screenshots of each
step go to the ``artifacts`` folder as ``portal-all-<lang>-<step>-<page>.png``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.documents import MESSAGES
from gateway.domain.values import local_date
from gateway.portal.i18n import _catalog as portal_messages
from gateway.sandbox.agencies import SANDBOX_AGENCIES
from gateway.web.i18n import catalog as gateway_messages
from gateway.web.keys import DEPENDENCIES
from tests.browser.test_portal_browser import HENGQIN_BUSINESS, PDF, Journey
from tests.conftest import RunningGateway

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

MEDICAL = "11440300MB2C00091K3440120007000"  # needs high assurance; the personas have substantial
# language -> (browser locale, Accept-Language, provider on the gateway's chooser, persona,
#              search text, the "required" problem as the form must show it)
LANGUAGES = {
    "zh-Hant": ("zh-HK", "zh-HK,zh", "hk", "chan-tai-man", "個體工商戶", "此欄位必須填寫"),
    "zh-Hans": ("zh-CN", "zh-CN,zh", "hk", "leung-mei-ling", "个体工商户", "此字段必须填写"),
    "en": ("en-GB", "en-GB,en", "hk", "chan-tai-man", "individual business", "required"),
    "pt": ("pt-PT", "pt-PT,pt", "macau", "lei-sio-meng", "empresário comercial", "obrigatório"),
}


def _english_texts(gateway: RunningGateway, lang: str) -> set[str]:
    """English texts that must not appear on a page in ``lang``: every label of the portal
    and of the gateway's pages, the Hengqin matter's names, materials and particulars, and
    every field-problem message and every sandbox agency's name, wherever ``lang`` has its
    own, different, text."""
    pairs: list[tuple[str, str | None]] = []
    for entry in portal_messages().values():
        pairs.append((entry.get("en", ""), entry.get(lang)))
    for section in gateway_messages().values():
        pairs += [(entry.get("en", ""), entry.get(lang)) for entry in section.values()]
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN_BUSINESS, local_date(deps.clock.now()))
    names = [matter.names, *(m.names for m in matter.materials)]
    names += [p.labels for p in matter.particulars]
    for item in names:
        pairs.append((item.en, item.as_dict().get(lang)))
    for agency in SANDBOX_AGENCIES:
        pairs.append((agency.names["en"], agency.names.get(lang)))
    for message in MESSAGES.values():
        pairs.append((message.en, message.as_dict().get(lang)))
    # a text missing in ``lang`` counts (the page falls back to English); one the same in both
    # does not, nor do short words ("Capital", "PDF"): only sentences and names count
    return {en for en, other in pairs if len(en) >= 12 and other != en and "{" not in en}


def _names(gateway: RunningGateway, lang: str) -> tuple[str, str]:
    """The proof of premises and the Hengqin bureau, as the progress page names them."""
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN_BUSINESS, local_date(deps.clock.now()))
    premises = next(m for m in matter.materials if m.code == "PREMISES_PROOF")
    lead = next(a for a in SANDBOX_AGENCIES if a.id == "gd-hq-csb")
    return premises.names.as_dict()[lang], lead.names[lang]


class Walk(Journey):
    """A :class:`Journey` that also checks ``<html lang>`` and, unless told otherwise, that no
    known English text stands in for a translation."""

    def __init__(self, *args: Any, lang: str, english: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lang, self.english = lang, english
        self.untranslated: list[str] = []

    async def check(self, label: str, *, translated: bool = True) -> None:
        html_lang = await self.page.locator("html").get_attribute("lang")
        if translated and html_lang != self.lang:
            self.untranslated.append(f"{self.name}/{label}: <html lang={html_lang!r}>")
        if translated and self.lang != "en":
            text = await self.page.locator("body").inner_text()
            shown = sorted(en for en in self.english if en in text)
            if shown:
                self.untranslated.append(f"{self.name}/{label}: English {shown}")
        await super().check(label)

    async def log_in_at_the_gateway_s_chooser(self, provider: str, persona_id: str) -> None:
        page = self.page
        await page.goto(f"{self.gateway.url}/portal/")
        await self.check("start")
        await page.locator("#login-chooser").click()
        await page.wait_for_selector(f"#provider-{provider}")  # the gateway's chooser
        await self.check("gateway-chooser")
        await page.locator(f"#provider-{provider}").click()
        await page.wait_for_selector(f'input[value="{persona_id}"]')  # the sandbox IdP's page
        await self.check("idp-persona", translated=False)  # one page in all four languages
        await page.locator(f'input[value="{persona_id}"]').check()
        await page.locator('button[type="submit"]').click()
        await page.wait_for_url("**/portal/")
        assert await page.locator("#greeting").count() == 1
        await self.check("logged-in")


async def _walk(browser: Any, gateway: RunningGateway, artifacts: Path, lang: str) -> Walk:
    locale, accept, provider, persona_id, search, required = LANGUAGES[lang]
    context = await browser.new_context(
        locale=locale,
        extra_http_headers={"Accept-Language": accept},
        viewport={"width": 1000, "height": 800},
    )
    page = await context.new_page()
    walk = Walk(
        page, gateway, artifacts, f"all-{lang}", lang=lang, english=_english_texts(gateway, lang)
    )
    if lang != "en":  # what the check looks for: a material's name and a problem in English
        known = {"Proof of use of the business premises", "This field is required"}
        assert known | {"Hengqin Commercial Services Bureau"} <= walk.english
    await walk.log_in_at_the_gateway_s_chooser(provider, persona_id)
    await walk.find(search)

    # sent incomplete: every problem beside its field, in this language
    await page.locator("#f-particulars-employees").fill("many")
    await page.locator("#continue").click()
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/consent")
    await page.locator("#agree").check()
    await page.locator("#submit").click()
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/apply")
    assert await page.locator("#error-summary li").count() >= 4
    control = page.locator("#f-particulars-business_name")
    described = (await control.get_attribute("aria-describedby") or "").split()
    assert required in await page.locator(f"#{described[0]}").inner_text()
    await walk.check("form-refused")

    # the case: no proof of premises, so one material is owed
    await walk.fill_form("Lei Tea House", commit=False)
    case_id = await walk.consent_and_submit()
    await page.locator("#see-progress").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator("#s-PREMISES_PROOF").count() == 1
    premises, lead = _names(gateway, lang)
    assert await page.locator('label[for="s-PREMISES_PROOF"]').inner_text() == premises
    assert await page.locator('#agencies tr[data-agency="gd-hq-csb"] th').inner_text() == lead
    await walk.check("progress-owed")
    await page.goto(f"{gateway.url}/portal/applications")
    assert await page.locator(f'tr[data-application="{case_id}"]').count() == 1
    await walk.check("applications")

    await page.goto(f"{gateway.url}/portal/applications/{case_id}")
    await page.locator("#complaint-text").fill("櫃檯兩次叫我改日再來。")
    await page.locator("#complain").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator("#complaints li[data-complaint]").count() == 1
    await walk.check("complained")
    await page.locator("#withdraw").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator('#summary dd[data-status="withdrawn"]').count() == 1
    assert await page.locator("#s-PREMISES_PROOF").count() == 0  # nothing to supply any more
    await walk.check("withdrawn")

    # a second case, its proof of premises supplied afterwards (complete, it is decided)
    await page.goto(f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/apply")
    await walk.fill_form("Lei Noodle Bar", commit=False)
    await page.locator("#continue").click()
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/consent")
    await page.locator("#agree").check()
    await page.locator("#submit").click()
    await page.wait_for_url("**/portal/applications/*/receipt")
    case_id = page.url.rsplit("/", 2)[-2]
    await page.goto(f"{gateway.url}/portal/applications/{case_id}")
    await page.locator("#s-PREMISES_PROOF").set_input_files(
        {"name": "lease.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    await page.locator("#supply").click()
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator("#s-PREMISES_PROOF").count() == 0
    await walk.check("progress-supplied")

    # the gateway's own progress page, opened with the OP session cookie alone
    response = await page.goto(f"{gateway.url}/me/applications/{case_id}")
    assert response is not None
    assert response.status == 200
    await walk.check("gateway-progress")

    # the consents given with the cases (this persona's, in every language): one withdrawn
    await page.goto(f"{gateway.url}/portal/consents")
    in_force = page.locator('#consents tr[data-status="in_force"]')
    assert await in_force.count() >= 2
    consent_id = await in_force.first.get_attribute("data-consent")
    await in_force.first.locator("button").click()
    await page.wait_for_url("**/portal/consents")
    withdrawn = page.locator(f'#consents tr[data-consent="{consent_id}"]')
    assert await withdrawn.get_attribute("data-status") == "withdrawn"
    assert await withdrawn.locator("button").count() == 0
    await walk.check("consents")

    await page.goto(f"{gateway.url}/portal/delegations")
    assert await page.locator("#ask").count() == 1
    await walk.check("delegations")
    response = await page.goto(f"{gateway.url}/portal/certificates/no-such-certificate")
    assert response is not None
    assert response.status == 404
    await walk.check("certificate-refused")
    response = await page.goto(f"{gateway.url}/portal/matters/11440400MB2C00089Z9999999999000")
    assert response is not None
    assert response.status == 404
    await walk.check("matter-unknown")

    # a matter that needs more assurance than this login has: refused, saying why
    await page.goto(f"{gateway.url}/portal/matters/{MEDICAL}/apply")
    await page.locator("#continue").click()
    await page.wait_for_url(f"**/portal/matters/{MEDICAL}/consent")
    await page.locator("#agree").check()
    await page.locator("#submit").click()
    await page.locator("#refusal").wait_for()
    await walk.check("refused-assurance")

    await page.locator("#logout").click()
    await page.wait_for_url("**/portal/")
    assert await page.locator("#greeting").count() == 0
    assert await page.locator(f"#login-{provider}").count() == 1
    await walk.check("logged-out")
    await context.close()
    return walk


async def test_every_portal_page_in_every_language_has_no_axe_violation_and_no_english(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    started = time.monotonic()
    violations: list[str] = []
    untranslated: list[str] = []
    # the four languages side by side, each in its own browser context: one quarter the wait
    walks = await asyncio.gather(*(_walk(browser, gateway, artifacts, lang) for lang in LANGUAGES))
    for lang, walk in zip(LANGUAGES, walks, strict=True):
        assert walk.step == 22, lang  # every page, each checked and photographed
        violations += walk.violations
        untranslated += walk.untranslated
    assert untranslated == [], "\n".join(untranslated)
    assert violations == [], "\n".join(violations)
    print(f"every page in four languages: {time.monotonic() - started:.1f} s")  # noqa: T201
