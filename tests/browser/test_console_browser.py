"""The sandbox console and the applicant's progress page in headless Chromium.

A persona applies; the case is in the console with its timeline and its forward's verified
acknowledgement; its progress page reads in zh-Hant, zh-Hans and en. A fault switch flipped
from the keyboard in the console form shows in the fault API and in the sandbox agency's
inbox (503). axe-core finds nothing serious or critical on any page, and the keyboard reaches
the skip link first and every fault control.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from axe_playwright_python.async_playwright import Axe

from tests.conftest import RunningGateway
from tests.integration.test_progress_page import apply_as

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

AGENCY = "gd-hq-csb"  # the lead of the Hengqin business matter, a sandbox agency
SERIOUS = {"serious", "critical"}
LABELS = {
    "zh-Hant": ("申請進度", "已收到申請", "各辦理機關的進度"),
    "zh-Hans": ("申请进度", "已收到申请", "各办理机关的进度"),
    "en": ("Application progress", "Application received", "Progress at each agency"),
}
FAULT_CONTROLS = [
    f"f-{name}"
    for name in (
        "down",
        "timeout",
        "latency_ms",
        "error_status",
        "signature",
        "clock_skew_s",
        "duplicates",
        "out_of_order",
        "lax",
    )
]


async def _json(method: str, url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        if response.content_type.endswith("json"):
            return response.status, await response.json(content_type=None)
        return response.status, await response.text()


async def _until_acknowledged(page: Any, gateway: RunningGateway, case_id: str) -> None:
    """Reload the case page until the forward's acknowledgement shows as verified."""
    deadline = time.monotonic() + 20
    while True:
        await page.goto(f"{gateway.url}/sandbox/console/cases/{case_id}?lang=en")
        if await page.locator('td[data-ack="verified"]').count():
            return
        assert time.monotonic() < deadline, "the forward was never acknowledged"
        await asyncio.sleep(0.3)


async def test_a_persona_case_shows_in_the_console_and_on_its_progress_page(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    token, case_id = await apply_as(gateway, "chan-tai-man")
    page = await browser.new_page()

    await page.goto(f"{gateway.url}/sandbox/console/cases?lang=en")
    await page.get_by_role("link", name=case_id).click()
    await page.wait_for_url(f"**/sandbox/console/cases/{case_id}?lang=en")
    await _until_acknowledged(page, gateway, case_id)
    received = page.locator('tr[data-event="application.received"]')
    assert await received.locator("strong").inner_text() == "Application received"
    assert await page.locator('tr[data-event="message.delivered"]').count() >= 1
    await page.screenshot(path=str(artifacts / "console-case.png"), full_page=True)

    await page.get_by_role("link", name="See the applicant's progress page").click()
    await page.wait_for_url(f"**/cases/{case_id}/progress?lang=en")
    assert await page.locator("html").get_attribute("lang") == "en"
    for lang in ("zh-Hant", "zh-Hans", "en"):  # through the language switcher
        await page.locator(f'nav.languages a[hreflang="{lang}"]').click()
        await page.wait_for_url(f"**?lang={lang}")
        title, event, agencies = LABELS[lang]
        assert await page.locator("html").get_attribute("lang") == lang
        assert title in await page.locator("h1").inner_text()
        assert await page.locator('li[data-event="application.received"] h3').inner_text() == event
        assert await page.get_by_role("heading", name=agencies).count() == 1
        await page.screenshot(path=str(artifacts / f"progress-preview-{lang}.png"), full_page=True)

    # The resident's own page, with their token, is the same page.
    resident = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
    own = await resident.new_page()
    for lang, (title, event, _) in LABELS.items():
        answer = await own.goto(f"{gateway.url}/me/applications/{case_id}?lang={lang}")
        assert answer is not None
        assert answer.status == 200
        assert await own.locator("html").get_attribute("lang") == lang
        assert title in await own.locator("h1").inner_text()
        assert await own.locator('li[data-event="application.received"] h3').inner_text() == event
        await own.screenshot(path=str(artifacts / f"progress-{lang}.png"), full_page=True)
    await resident.close()


async def test_a_fault_switch_set_from_the_keyboard_takes_effect(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page()
    await page.goto(f"{gateway.url}/sandbox/console/agencies?lang=en")
    await page.get_by_role("link", name=AGENCY).click()
    await page.wait_for_url(f"**/sandbox/console/agencies/{AGENCY}?lang=en")
    down = page.locator("#f-down")
    assert not await down.is_checked()

    await down.focus()
    await page.keyboard.press("Space")
    assert await down.is_checked()
    await page.locator("#save").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/sandbox/console/agencies/{AGENCY}?done=saved&lang=en")
    assert AGENCY in await page.get_by_role("status").inner_text()
    assert await page.locator("#f-down").is_checked()
    await page.screenshot(path=str(artifacts / "console-agency-down.png"), full_page=True)
    await page.goto(f"{gateway.url}/sandbox/console/agencies?lang=en")
    row = page.locator(f'tr[data-agency="{AGENCY}"]')
    assert "Faults on" in await row.inner_text()
    await page.goto(f"{gateway.url}/sandbox/console/agencies/{AGENCY}?lang=en")

    status, faults = await _json("GET", f"{gateway.url}/sandbox/v1/agencies/{AGENCY}/faults")
    assert (status, faults["down"], faults["healthy"]) == (200, True, False)
    status, _ = await _json("POST", f"{gateway.url}/sandbox/partners/{AGENCY}/messages")
    assert status == 503

    await page.locator("#reset").click()
    await page.wait_for_url(f"**/sandbox/console/agencies/{AGENCY}?done=reset&lang=en")
    assert not await page.locator("#f-down").is_checked()
    _, faults = await _json("GET", f"{gateway.url}/sandbox/v1/agencies/{AGENCY}/faults")
    assert faults["healthy"] is True
    status, _ = await _json("POST", f"{gateway.url}/sandbox/partners/{AGENCY}/messages")
    assert status != 503  # up again: it refuses the unsigned call instead


async def _axe(page: Any, name: str, found: dict[str, list[str]]) -> list[str]:
    """Run axe-core on the page; note every violation, return the serious and critical."""
    results = await Axe().run(page)
    serious = []
    for violation in results.response["violations"]:
        line = f"{name}: {violation['id']} ({violation['impact']}, {len(violation['nodes'])})"
        found.setdefault(violation["impact"] or "unknown", []).append(line)
        if violation["impact"] in SERIOUS:
            serious.append(line + "\n" + results.generate_report(violation["id"]))
    return serious


async def test_axe_finds_nothing_serious_on_any_page(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page()
    await page.set_content('<html><body><img src="x.png"><input></body></html>')
    assert await _axe(page, "a page known to fail", {}) != []  # axe runs and reports

    token, case_id = await apply_as(gateway, "chan-tai-man")
    await _until_acknowledged(page, gateway, case_id)
    console = f"{gateway.url}/sandbox/console"
    pages = {
        "overview": f"{console}?lang=en",
        "agencies": f"{console}/agencies?lang=zh-Hant",
        "agency": f"{console}/agencies/{AGENCY}?lang=en",
        "cases": f"{console}/cases?lang=zh-Hans",
        "case": f"{console}/cases/{case_id}?lang=en",
        "messages": f"{console}/messages?lang=en",
        "notifications": f"{console}/notifications?lang=en",
        "audit": f"{console}/audit?lang=en",
        **{f"preview-{lang}": f"{console}/cases/{case_id}/progress?lang={lang}" for lang in LABELS},
    }
    found: dict[str, list[str]] = {}
    serious: list[str] = []
    for name, url in pages.items():
        await page.goto(url)
        serious += await _axe(page, name, found)
        await page.screenshot(path=str(artifacts / f"axe-{name}.png"), full_page=True)

    # the fault form refused, with its error summary and invalid fields
    await page.goto(f"{console}/agencies/{AGENCY}?lang=en")
    await page.locator("#f-latency_ms").fill("-5")
    await page.locator("#f-error_status").fill("404")
    await page.locator("#save").click()
    await page.wait_for_selector("#faults-errors")
    serious += await _axe(page, "agency-refused", found)
    await page.screenshot(path=str(artifacts / "console-agency-refused.png"), full_page=True)

    resident = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
    own = await resident.new_page()
    for lang in LABELS:
        await own.goto(f"{gateway.url}/me/applications/{case_id}?lang={lang}")
        serious += await _axe(own, f"progress-{lang}", found)
    await resident.close()

    print("axe violations by impact:", {k: len(v) for k, v in found.items()} or "none")  # noqa: T201
    for impact, lines in sorted(found.items()):
        for line in lines:
            print(f"  [{impact}] {line}")  # noqa: T201
    assert serious == []


async def test_the_keyboard_reaches_the_skip_link_first_and_every_fault_control(
    browser: Any, gateway: RunningGateway
) -> None:
    page = await browser.new_page()
    await page.goto(f"{gateway.url}/sandbox/console/agencies/{AGENCY}?lang=en")

    await page.keyboard.press("Tab")
    first = await page.evaluate("() => [document.activeElement.className, location.hash]")
    assert first == ["skip-link", ""]
    assert await page.locator(".skip-link").is_visible()  # visible once focused
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement.id") == "main"

    await page.locator(f"#{FAULT_CONTROLS[0]}").focus()
    reached = [await page.evaluate("() => document.activeElement.id")]
    for _ in range(len(FAULT_CONTROLS) + 1):
        await page.keyboard.press("Tab")
        reached.append(
            await page.evaluate("() => document.activeElement.id || document.activeElement.value")
        )
    assert reached == [*FAULT_CONTROLS, "save", "reset"]
