"""The gateway's OpenID Provider in headless Chromium: the provider chooser, the login and the
progress page opened with the OP session cookie alone, in zh-Hant, zh-Hans, en and pt.

The resident reaches the chooser from a portal's authorization request without ``idp_hint``,
picks a provider from the keyboard, logs in as a sandbox persona and comes back to the portal
(a loopback redirect URI, as sandbox mode allows). The portal applies with its access token; the
browser then opens the progress page with no Authorization header. axe-core reports no
violation at all on the chooser or the progress page in any language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from axe_playwright_python.async_playwright import Axe

from gateway.domain.values import local_date
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import Returned, SandboxPortal
from gateway.sandbox.samples import canonical_sample
from gateway.web.keys import DEPENDENCIES
from gateway.web.sessions import SESSION_COOKIE
from tests.conftest import RunningGateway
from tests.integration.test_progress_page import CONSENT, HENGQIN_BUSINESS

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

CHOOSER = {
    "zh-Hant": ("選擇登入方式", "澳門公共服務一戶通"),
    "zh-Hans": ("选择登录方式", "澳门公共服务一户通"),
    "en": ("Choose how to log in", "Macao One Account"),
    "pt": ("Escolha como iniciar sessão", "Conta Única de Macau"),
}
PROGRESS = {
    "zh-Hant": "申請進度",
    "zh-Hans": "申请进度",
    "en": "Application progress",
    "pt": "Andamento do pedido",
}


async def _violations(page: Any, name: str) -> list[str]:
    results = await Axe().run(page)
    return [
        f"{name}: {v['id']} ({v['impact']})\n{results.generate_report(v['id'])}"
        for v in results.response["violations"]
    ]


async def test_a_resident_chooses_a_provider_and_follows_the_case_by_cookie(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    # the portal's redirect URI on loopback (allowed in sandbox mode): the browser lands there
    redirect_uri = gateway.url + "/test-portal/callback"
    portal = await SandboxPortal.register(gateway.url, redirect_uri=redirect_uri)
    context = await browser.new_context(locale="pt-PT")
    page = await context.new_page()

    def at_portal(url: str) -> bool:
        return url.startswith(redirect_uri + "?")

    url, pending = portal.authorization_url(None, "lei-sio-meng")
    violations: list[str] = []

    for lang, (title, macau) in CHOOSER.items():
        await page.goto(f"{url}&lang={lang}")
        assert await page.locator("html").get_attribute("lang") == lang
        assert await page.locator("h1").inner_text() == title
        assert await page.get_by_role("link", name=macau).count() == 1
        violations += await _violations(page, f"chooser-{lang}")
        await page.screenshot(path=str(artifacts / f"chooser-{lang}.png"), full_page=True)
    assert violations == []

    # Portuguese from the browser's own language, then the keyboard alone
    await page.goto(url)
    assert await page.locator("html").get_attribute("lang") == "pt"
    await page.keyboard.press("Tab")  # the skip link comes first
    assert await page.evaluate("document.activeElement.className") == "skip-link"
    link = page.get_by_role("link", name=CHOOSER["pt"][1])
    await link.focus()
    outline = await link.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"  # visible focus
    await page.keyboard.press("Enter")
    await page.wait_for_url(at_portal)
    params = dict(parse_qsl(urlsplit(page.url).query))
    assert params["state"] == pending.state
    tokens = await portal.exchange(Returned(page.url, params, pending))
    cookies = {c["name"]: c for c in await context.cookies(gateway.url + "/me/")}
    assert cookies[SESSION_COOKIE]["httpOnly"] is True
    assert cookies[SESSION_COOKIE]["sameSite"] == "Lax"

    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN_BUSINESS, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona("lei-sio-meng"))
    body = {"application": {k: v for k, v in sample.items() if k != "applicant"}}
    body["consent"] = CONSENT
    headers = {"Authorization": f"Bearer {tokens.access_token}", "Idempotency-Key": "op-browser-1"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/v1/me/applications", json=body, headers=headers) as answer,
    ):
        assert answer.status == 202, await answer.text()
        case_id = (await answer.json())["application_id"]

    for lang, title in PROGRESS.items():  # no Authorization header: the OP session cookie
        response = await page.goto(f"{gateway.url}/me/applications/{case_id}?lang={lang}")
        assert response is not None
        assert response.status == 200
        assert await page.locator("html").get_attribute("lang") == lang
        assert title in await page.locator("h1").inner_text()
        violations += await _violations(page, f"progress-{lang}")
        await page.screenshot(path=str(artifacts / f"progress-cookie-{lang}.png"), full_page=True)
    assert violations == []

    status, _ = await portal.logout(tokens)
    assert status == 302
    response = await page.goto(f"{gateway.url}/me/applications/{case_id}")
    assert response is not None
    assert response.status == 401  # logged out: the cookie no longer opens the page
    await context.close()
