"""Chinese text renders as glyphs in the browser tests' Chromium, not as boxes.

Without a CJK font every Han character falls back to the same ``.notdef`` box, so different
characters render to the same pixels; with one, each renders as itself. The page is also
written out as a screenshot beside the others (``GBA_BROWSER_ARTIFACTS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.conftest import cjk_fonts

# from the matter catalogue and the progress page, in both scripts, and Portuguese
TEXT = {
    "zh-Hant": "個體工商戶 申請進度",
    "zh-Hans": "个体工商户 申请进度",
    "pt": "Empresário em nome individual",
}
CHARACTERS = "個体戶户申請请進进"
PAGE = """<!doctype html><html lang="zh-Hant"><head><meta charset="utf-8"><title>字型</title>
<style>body{{font-family:sans-serif;font-size:28px;margin:16px}}
.c{{display:inline-block;width:40px;height:40px;line-height:40px;text-align:center}}</style>
</head><body>{lines}<p>{cells}</p></body></html>"""


async def test_han_characters_render_as_themselves(
    browser: Any, artifacts: Path, chromium: str
) -> None:
    assert any("CJK" in family for family in cjk_fonts())
    lines = "".join(f'<p lang="{lang}">{text}</p>' for lang, text in TEXT.items())
    cells = "".join(f'<span class="c" id="c{i}">{c}</span>' for i, c in enumerate(CHARACTERS))
    page = await browser.new_page()
    try:
        await page.set_content(PAGE.format(lines=lines, cells=cells))
        shots = [await page.locator(f"#c{i}").screenshot() for i in range(len(CHARACTERS))]
        await page.screenshot(path=str(artifacts / "cjk-text.png"), full_page=True)
    finally:
        await page.close()
    assert len(set(shots)) == len(CHARACTERS), "Han characters render alike: boxes, no CJK font"
