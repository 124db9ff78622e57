"""Driving the reference portal over HTTP as a browser would, without one: log in through the
sandbox identity provider, read a page's CSRF token."""

from __future__ import annotations

import html
import re

import aiohttp
from yarl import URL

from tests.conftest import RunningGateway

FORM = re.compile(r'<form method="post" action="([^"]+)">')
HANDLE = re.compile(r'name="interaction" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def persona_page(
    client: aiohttp.ClientSession, gateway: RunningGateway, idp: str = "hk"
) -> str:
    """Start a login at the portal and follow it to the sandbox IdP's persona page."""
    async with client.get(f"{gateway.url}/portal/login?idp={idp}") as response:
        assert response.status == 200, await response.text()
        return await response.text()


async def returned(
    client: aiohttp.ClientSession, gateway: RunningGateway, page: str, persona: str
) -> str:
    """Pick the persona; the URL the OP sends the browser back to (not followed)."""
    action = html.unescape(FORM.search(page).group(1))  # type: ignore[union-attr]
    handle = html.unescape(HANDLE.search(page).group(1))  # type: ignore[union-attr]
    url = str(URL(gateway.url).join(URL(action)))
    async with client.post(
        url, data={"interaction": handle, "persona": persona}, allow_redirects=False
    ) as response:
        location = response.headers["Location"]
    for _ in range(5):
        if "/portal/callback" in location:
            return location
        async with client.get(location, allow_redirects=False) as response:
            location = response.headers["Location"]
    raise AssertionError(f"never back at the portal: {location}")


async def log_in(
    client: aiohttp.ClientSession,
    gateway: RunningGateway,
    persona: str = "chan-tai-man",
    idp: str = "hk",
) -> None:
    page = await persona_page(client, gateway, idp)
    back = await returned(client, gateway, page, persona)
    async with client.get(back) as response:
        assert response.status == 200
        assert 'id="greeting"' in await response.text()


async def csrf_of(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(url) as response:
        return CSRF.search(await response.text()).group(1)  # type: ignore[union-attr]


def application_form(csrf: str | None, *extra: tuple[str, str]) -> aiohttp.FormData:
    """The Hengqin business form, its application form attached and the proof of premises
    replaced by a commitment; ``extra`` fields go right after the CSRF token."""
    form = aiohttp.FormData()
    if csrf is not None:
        form.add_field("csrf", csrf)
    for name, value in extra:
        form.add_field(name, value)
    form.add_field("particulars/business_name", "大文茶餐廳")
    form.add_field("particulars/business_address/text", "橫琴示例大道 88 號")
    form.add_field("particulars/business_address/jurisdiction", "GD")
    form.add_field("particulars/business_scope", "餐飲服務")
    form.add_field(
        "material:APPLICATION_FORM", PDF, filename="form.pdf", content_type="application/pdf"
    )
    form.add_field("commit:PREMISES_PROOF", "yes")
    return form
