"""The whole portal journey by keyboard alone (WCAG 2.1 AA 2.1.1 Keyboard, 2.4.7 Focus Visible).

A Hong Kong resident, in Traditional Chinese, goes from the start page to the progress of a
filed application pressing keys only: Tab and Shift+Tab move the focus, Enter follows a link or
presses a button, Space ticks a box or opens the file chooser, the arrow keys pick a persona and
an option, and text is typed into the focused field. No element is clicked, checked or filled.

On every portal page the first Tab stop is the skip link, which moves the focus to the main
content. Every Tab stop on the way is checked: the focused element is on screen, and its
computed outline or box-shadow differs from its own unfocused look (read once the focus has
moved on). axe runs on every page and a screenshot of each step is written (``Journey``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_portal_browser import HENGQIN_BUSINESS, PDF, Journey
from tests.conftest import RunningGateway

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

_LOOK = """e => { const s = getComputedStyle(e);
  return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(" | "); }"""
_ON_SCREEN = """e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
    && r.top < innerHeight && r.left < innerWidth
    && s.visibility !== "hidden" && s.display !== "none" && Number(s.opacity) > 0; }"""


def _indicated(look: str) -> bool:
    outline_style, outline_width, _, shadow = look.split(" | ")
    return (outline_style != "none" and outline_width != "0px") or shadow != "none"


class Keyboard:
    """The resident's hands on the keyboard: every focus move is a key press, and each stop
    is checked for a visible element with a visible focus indicator."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.previous: tuple[Any, str] | None = None  # the last stop and its focused look
        self.stops: list[str] = []

    async def focused(self) -> Any:
        return await self.page.evaluate_handle("() => document.activeElement")

    async def arrived(self) -> Any:
        element = await self.focused()
        look = await element.evaluate(_LOOK)
        name = await element.evaluate(
            "e => e.id || e.className || e.getAttribute('href') || e.tagName"
        )
        self.stops.append(name)
        assert await element.evaluate("e => e !== document.body"), "the focus left the page"
        assert await element.evaluate(_ON_SCREEN), f"{name} is focused but not on screen"
        assert _indicated(look), f"no focus indicator on {name}: {look}"
        if self.previous is not None:
            await self._compare(*self.previous)
        self.previous = (element, look)
        return element

    async def _compare(self, element: Any, focused_look: str) -> None:
        if not await element.evaluate("e => e.isConnected && e !== document.activeElement"):
            return
        unfocused = await element.evaluate(_LOOK)
        name = await element.evaluate("e => e.id || e.className || e.tagName")
        assert unfocused != focused_look, f"{name} looks the same focused and not: {unfocused}"

    async def tab(self, *, back: bool = False) -> Any:
        await self.page.keyboard.press("Shift+Tab" if back else "Tab")
        return await self.arrived()

    async def tab_to(self, selector: str, limit: int = 40) -> Any:
        """Tab (forwards only) until the focus is on ``selector``."""
        for _ in range(limit):
            element = await self.tab()
            if await element.evaluate("(e, s) => e.matches(s)", selector):
                return element
        raise AssertionError(f"{selector} not reached in {limit} Tab presses: {self.stops}")

    async def indicator_differs_here(self, *, first: bool = False) -> None:
        """The element about to be activated: Shift+Tab away and Tab back (the other way round
        for the page's first stop), comparing its look unfocused with its look focused."""
        here = await self.focused()
        await self.tab(back=not first)
        again = await self.tab(back=first)
        assert await again.evaluate("(e, h) => e === h", here), "the focus did not come back"

    async def new_page(self) -> None:
        """A page loaded: nothing focused yet, the first Tab stop is expected fresh."""
        self.previous = None

    async def skip_to_main(self) -> None:
        """The first Tab stop is the skip link; Enter puts the focus on the main content."""
        await self.new_page()
        link = await self.tab()
        assert await link.evaluate("e => e.classList.contains('skip-link')"), self.stops[-1]
        assert await link.evaluate("e => e.getAttribute('href')") == "#main"
        await self.indicator_differs_here(first=True)
        await self.page.keyboard.press("Enter")
        assert await self.page.evaluate("() => document.activeElement.id") == "main"
        self.previous = None  # main is a target, not a Tab stop

    async def press(self, key: str) -> None:
        await self.indicator_differs_here()
        await self.page.keyboard.press(key)


async def test_a_resident_completes_the_journey_by_keyboard_alone(
    browser: Any, gateway: RunningGateway, artifacts: Path
) -> None:
    page = await browser.new_page(locale="zh-HK")
    journey = Journey(page, gateway, artifacts, "keyboard-only")
    keys = Keyboard(page)

    # Start page: the skip link first, then the provider (iAM Smart)
    await page.goto(f"{gateway.url}/portal/")
    await journey.check("start")
    await keys.skip_to_main()
    await keys.tab_to("#login-hk")
    await keys.press("Enter")

    # The sandbox IdP's persona page: into the radio group, arrows to the persona, then submit
    radio = 'input[name="persona"]'
    await page.wait_for_selector(radio)
    await journey.check("idp-persona")
    await keys.new_page()
    first = await keys.tab()  # nothing precedes the choice on this page: no block to skip
    assert await first.evaluate("(e, s) => e.matches(s)", radio), keys.stops[-1]
    for _ in range(await page.locator(radio).count()):
        if await page.evaluate("() => document.activeElement.value") == "chan-tai-man":
            break
        await page.keyboard.press("ArrowDown")
    chosen = await keys.arrived()
    assert await chosen.evaluate("e => e.value") == "chan-tai-man"
    assert await chosen.evaluate("e => e.checked")  # arrows move the choice, not just focus
    await keys.tab_to('button[type="submit"]')
    await keys.press("Enter")
    await page.wait_for_url("**/portal/")
    assert await page.locator("#greeting").count() == 1
    await journey.check("logged-in")

    # Search from the start page's search box; Enter in the field submits
    await keys.skip_to_main()
    await keys.tab_to("#q")
    await page.keyboard.type("個體工商戶")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/portal/matters?q=*")
    await journey.check("search")
    await keys.skip_to_main()
    await keys.tab_to(f'li[data-matter="{HENGQIN_BUSINESS}"] a')
    await keys.press("Enter")
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}")
    await journey.check("matter")
    await keys.skip_to_main()
    await keys.tab_to("#apply")
    await keys.press("Enter")
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/apply")
    await journey.check("form")

    # The form: typed, an option picked with the arrows, a file chosen, a box ticked
    await keys.skip_to_main()
    await keys.tab_to("#f-particulars-business_name")
    await page.keyboard.type("大文茶餐廳")
    await keys.tab_to("#f-particulars-business_address-text")
    await page.keyboard.type("橫琴粵澳深度合作區示例大道 88 號")
    jurisdiction = await keys.tab_to("#f-particulars-business_address-jurisdiction")
    for _ in range(10):
        if await jurisdiction.evaluate("e => e.value") == "GD":
            break
        await page.keyboard.press("ArrowDown")
    assert await jurisdiction.evaluate("e => e.value") == "GD"
    await keys.tab_to("#f-particulars-business_scope")
    await page.keyboard.type("餐飲服務")
    await keys.tab_to("#f-particulars-employees")
    await page.keyboard.type("3")
    await keys.tab_to("#m-APPLICATION_FORM")
    async with page.expect_file_chooser() as choosing:
        await page.keyboard.press("Space")
    chooser = await choosing.value
    assert await chooser.element.evaluate("e => e.id") == "m-APPLICATION_FORM"
    await chooser.set_files({"name": "form.pdf", "mimeType": "application/pdf", "buffer": PDF})
    assert await page.evaluate("() => document.activeElement.files[0].name") == "form.pdf"
    await keys.tab_to("#c-PREMISES_PROOF")
    await page.keyboard.press("Space")
    assert await page.evaluate("() => document.activeElement.checked")
    await journey.check("form-filled")
    await keys.tab_to("#continue")
    await keys.press("Enter")
    await page.wait_for_url(f"**/portal/matters/{HENGQIN_BUSINESS}/consent")
    assert await page.locator("#error-summary").count() == 0
    await journey.check("consent")

    # Consent: Space ticks the agreement, Enter on the button submits
    await keys.skip_to_main()
    await keys.tab_to("#agree")
    await page.keyboard.press("Space")
    assert await page.evaluate("() => document.activeElement.checked")
    await keys.tab_to("#submit")
    await keys.press("Enter")
    await page.wait_for_url("**/portal/applications/*/receipt")
    case_id = page.url.rsplit("/", 2)[-2]
    await journey.check("receipt")

    # Receipt → progress
    await keys.skip_to_main()
    await keys.tab_to("#see-progress")
    await keys.press("Enter")
    await page.wait_for_url(f"**/portal/applications/{case_id}")
    assert await page.locator('#timeline li[data-event="application.received"]').count() == 1
    assert await page.locator('#agencies tr[data-agency="gd-hq-csb"]').count() == 1
    await journey.check("progress")
    await keys.skip_to_main()
    await keys.tab()  # the first stop inside the progress page is visible and indicated too

    assert "m-PREMISES_PROOF" in keys.stops  # the optional upload was passed, not skipped over
    assert journey.violations == [], "\n".join(journey.violations)
