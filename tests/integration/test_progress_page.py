"""The applicant's progress page and the sandbox console over HTTP, without a browser.

The progress page needs the resident's bearer token and shows only their own case, in the
language asked for; the console exists in sandbox mode only; its fault form refuses a POST
without its token (or from another site) and then changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from gateway.bootstrap import create_app
from gateway.domain.values import local_date
from gateway.sandbox.console.routes import CSRF_TOKEN
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.routes import FAULTS
from gateway.sandbox.samples import canonical_sample
from gateway.store.tables import audit_head, audit_log
from gateway.trust import keystore
from gateway.web.i18n import LANGUAGES, Translator, catalog, negotiate
from gateway.web.keys import DEPENDENCIES, STORE
from tests.conftest import RunningGateway
from tests.unit.web.test_settings_and_startup import ROUTED, _ca, _production, _registry

HENGQIN_BUSINESS = "11440400MB2C00081P4440120002000"
CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}
LOGINS = {"chan-tai-man": "hk", "lei-sio-meng": "macau"}
FAULTS_OF = "/sandbox/v1/agencies/{}/faults"


async def log_in(gateway: RunningGateway, persona_id: str) -> str:
    """A sandbox portal logs the persona in; their gateway access token."""
    portal = await SandboxPortal.register(gateway.url)
    return (await portal.login(LOGINS[persona_id], persona_id)).access_token


async def apply_as(
    gateway: RunningGateway, persona_id: str, *, complete: bool = True
) -> tuple[str, str]:
    """The persona logs in and applies for the Hengqin business matter: (token, case id).
    Not ``complete``: without the commitment that replaces the proof of premises."""
    token = await log_in(gateway, persona_id)
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN_BUSINESS, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona(persona_id))
    leave_out = {"applicant"} if complete else {"applicant", "commitments"}
    body = {
        "application": {k: v for k, v in sample.items() if k not in leave_out},
        "consent": CONSENT,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/v1/me/applications",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"page-{persona_id}"},
        ) as response,
    ):
        answer = await response.json()
        assert response.status == 202, answer
    return token, answer["application_id"]


async def fetch(
    gateway: RunningGateway, method: str, path: str, **kwargs: Any
) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, allow_redirects=False, **kwargs) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', page)
    assert found, page[:200]
    return found.group(1)


def test_the_language_is_lang_then_accept_language_then_traditional_chinese() -> None:
    assert negotiate("en", "zh-CN") == "en"
    assert negotiate("zh-hk", None) == "zh-Hant"
    assert negotiate("klingon", "fr;q=0.9, zh-CN;q=0.5, en;q=0.8") == "en"
    assert negotiate(None, "zh-Hant-TW, en;q=0.1") == "zh-Hant"
    assert negotiate(None, "zh;q=0.9, en;q=0") == "zh-Hans"  # q=0 means "not this"
    assert negotiate(None, "fr, de") == negotiate(None, None) == "zh-Hant"
    assert negotiate(None, "pt-MO, zh-Hant;q=0.8") == "pt"  # Macau's other official language
    assert negotiate("pt", "en") == negotiate("pt-PT", None) == "pt"


def test_labels_and_dates_read_plainly_in_each_language() -> None:
    en, hant, hans = Translator("en"), Translator("zh-Hant"), Translator("zh-Hans")
    assert en.event("voucher.issued") == "Signed voucher issued"
    assert hant.event("voucher.issued") == "已發出電子憑證"
    assert hans.event("voucher.issued") == "已发出电子凭证"
    assert en.event("something.new") == hant.event("something.new") == "something.new"
    assert en.date("2026-12-04") == "Friday, 4 December 2026"
    assert hant.date("2026-12-04") == "2026年12月4日（星期五）"
    assert en.moment("2026-11-27T17:05:00+00:00") == "28 November 2026, 01:05"  # UTC+8
    assert hans.moment("2026-11-27T17:05:00+00:00") == "2026年11月28日 01:05"
    pt = Translator("pt")
    assert pt.event("voucher.issued") == "Emitido comprovativo assinado"
    assert pt.date("2026-12-04") == "sexta-feira, 4 de dezembro de 2026"
    assert pt.moment("2026-11-27T17:05:00+00:00") == "28 de novembro de 2026, 01:05"


def test_every_label_is_in_all_four_languages() -> None:
    missing = [
        f"{section}.{key}"
        for section, labels in catalog().items()
        for key, texts in labels.items()
        if set(texts) != set(LANGUAGES) or not all(texts.values())
    ]
    assert missing == []
    assert LANGUAGES == ("zh-Hant", "zh-Hans", "en", "pt")


async def test_the_progress_page_shows_the_residents_own_case_in_their_language(
    gateway: RunningGateway,
) -> None:
    token, case_id = await apply_as(gateway, "chan-tai-man")
    path = f"/me/applications/{case_id}"
    bearer = {"Authorization": f"Bearer {token}"}

    status, _, headers = await fetch(gateway, "GET", path)
    assert status == 401
    assert headers["Content-Type"].startswith("application/problem+json")
    assert headers["WWW-Authenticate"].startswith("Bearer")

    status, page, headers = await fetch(gateway, "GET", path + "?lang=en", headers=bearer)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Language"] == "en"
    assert headers["Cache-Control"] == "no-store"
    assert "script-src" not in headers["Content-Security-Policy"]  # no script at all
    assert html_lang(page) == "en"
    assert "Application progress" in page
    assert case_id in page
    assert "Application received" in page  # the first event, by its label

    expected = {
        "zh-HK,zh;q=0.8": ("zh-Hant", "申請進度", "已收到申請"),
        "zh-CN": ("zh-Hans", "申请进度", "已收到申请"),
        "en-GB,en;q=0.9": ("en", "Application progress", "Application received"),
    }
    for accept, (lang, title, received) in expected.items():
        status, page, _ = await fetch(
            gateway, "GET", path, headers={**bearer, "Accept-Language": accept}
        )
        assert status == 200
        assert (html_lang(page), title in page, received in page) == (lang, True, True)
    # ?lang= wins over Accept-Language
    _, page, _ = await fetch(
        gateway, "GET", path + "?lang=zh-Hans", headers={**bearer, "Accept-Language": "en"}
    )
    assert html_lang(page) == "zh-Hans"


async def test_the_progress_page_lists_every_missing_material_by_name(
    gateway: RunningGateway,
) -> None:
    token, case_id = await apply_as(gateway, "chan-tai-man", complete=False)
    bearer = {"Authorization": f"Bearer {token}"}
    expected = {
        "en": ("Waiting for missing materials", "Proof of use of the business premises"),
        "zh-Hant": ("待補正材料", "經營場所使用證明"),
    }
    for lang, (status_label, material) in expected.items():
        status, page, _ = await fetch(
            gateway, "GET", f"/me/applications/{case_id}?lang={lang}", headers=bearer
        )
        assert status == 200
        missing = page.split('id="missing-heading"')[1].split("</section>")[0]
        assert material in missing
        assert "PREMISES_PROOF" in missing
        assert status_label in page
        assert 'data-event="application.supplement_requested"' in page


async def test_the_progress_page_is_not_shown_for_someone_elses_case(
    gateway: RunningGateway,
) -> None:
    _, case_id = await apply_as(gateway, "chan-tai-man")
    other = await log_in(gateway, "lei-sio-meng")
    bearer = {"Authorization": f"Bearer {other}"}

    answers = []
    for path in (f"/me/applications/{case_id}", "/me/applications/app_does_not_exist"):
        status, body, headers = await fetch(gateway, "GET", path, headers=bearer)
        assert status == 404
        assert headers["Content-Type"].startswith("application/problem+json")
        problem = json.loads(body)
        answers.append((problem["title"], problem["detail"]))
    assert answers[0] == answers[1]  # someone else's case looks like no case at all
    status, _, _ = await fetch(
        gateway,
        "GET",
        f"/me/applications/{case_id}",
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert status == 401


async def test_the_console_shows_a_case_and_its_applicant_view(gateway: RunningGateway) -> None:
    _, case_id = await apply_as(gateway, "chan-tai-man")
    sections = ("", "/agencies", "/agencies/hk-ird", "/cases", "/messages", "/notifications")
    for section in (*sections, "/audit"):
        status, _, headers = await fetch(gateway, "GET", "/sandbox/console" + section)
        assert status == 200, section
        assert headers["Content-Type"].startswith("text/html")
    _, cases, _ = await fetch(gateway, "GET", "/sandbox/console/cases")
    assert f'href="/sandbox/console/cases/{case_id}?lang=' in cases
    _, case, _ = await fetch(gateway, "GET", f"/sandbox/console/cases/{case_id}?lang=en")
    assert 'data-event="application.received"' in case
    assert f"/sandbox/console/cases/{case_id}/progress?lang=en" in case
    status, preview, _ = await fetch(
        gateway, "GET", f"/sandbox/console/cases/{case_id}/progress?lang=zh-Hant"
    )
    assert status == 200
    assert html_lang(preview) == "zh-Hant"
    assert "沙盒預覽" in preview
    _, audit, _ = await fetch(gateway, "GET", "/sandbox/console/audit?lang=en")
    assert "Intact" in audit
    status, _, _ = await fetch(gateway, "GET", "/sandbox/console/cases/app_unknown")
    assert status == 404


async def test_the_console_says_when_the_audit_chain_is_broken(gateway: RunningGateway) -> None:
    await apply_as(gateway, "chan-tai-man")
    _, page, _ = await fetch(gateway, "GET", "/sandbox/console/audit?lang=en")
    assert "Intact" in page
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        await uow.connection.execute(sa.select(audit_head.c.seq).with_for_update())
        row = (await uow.connection.execute(audit_log.select().where(audit_log.c.seq == 2))).one()
        forged = row.entry.replace(b'"kind":"', b'"kind":"forged.', 1)
        assert forged != row.entry
        await uow.connection.execute(
            audit_log.update().where(audit_log.c.seq == 2).values(entry=forged)
        )
        await uow.commit()

    _, page, _ = await fetch(gateway, "GET", "/sandbox/console/audit?lang=en")
    assert "Broken" in page
    assert "an entry was modified (Seq 2)" in page


async def test_the_console_shows_an_acknowledgement_refused_for_its_signature(
    gateway: RunningGateway,
) -> None:
    gateway.app[FAULTS].update("gd-hq-csb", {"signature": "wrong"})  # type: ignore[index]
    _, case_id = await apply_as(gateway, "chan-tai-man")
    for _ in range(150):
        _, page, _ = await fetch(gateway, "GET", f"/sandbox/console/cases/{case_id}?lang=en")
        if 'data-ack="refused"' in page:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the refused acknowledgement never showed")
    row = page.split('data-ack="refused"')[1].split("</td>")[0]
    assert "Refused" in row
    assert "acknowledgement does not verify" in row


async def _faults(gateway: RunningGateway, agency: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + FAULTS_OF.format(agency)) as response,
    ):
        return await response.json()


async def test_the_fault_form_needs_its_token_and_a_same_site_origin(
    gateway: RunningGateway,
) -> None:
    agency = "gd-hq-csb"
    token = gateway.app[CSRF_TOKEN]  # type: ignore[index]
    path = f"/sandbox/console/agencies/{agency}/faults"
    form = {"down": "on", "latency_ms": "0", "signature": "valid", "action": "save"}

    refused = [
        ({}, form),
        ({}, {**form, "csrf": "stale-token"}),
        ({"Origin": "https://attacker.example"}, {**form, "csrf": token}),
        ({"Sec-Fetch-Site": "cross-site"}, {**form, "csrf": token}),
    ]
    for headers, data in refused:
        status, body, answer = await fetch(gateway, "POST", path, data=data, headers=headers)
        assert status == 403, (headers, body)
        assert answer["Content-Type"].startswith("application/problem+json")
        assert (await _faults(gateway, agency))["healthy"] is True

    status, page, _ = await fetch(
        gateway,
        "POST",
        path + "?lang=en",
        data={**form, "csrf": token, "latency_ms": "slow", "error_status": "404"},
    )
    assert status == 422
    assert 'role="alert"' in page
    assert "The value is not valid" in page
    assert page.count('aria-invalid="true"') == 2  # both problems, at once
    assert (await _faults(gateway, agency))["healthy"] is True

    status, _, headers = await fetch(
        gateway, "POST", path + "?lang=en", data={**form, "csrf": token}
    )
    assert status == 303
    assert headers["Location"] == f"/sandbox/console/agencies/{agency}?done=saved&lang=en"
    assert (await _faults(gateway, agency))["down"] is True

    status, _, _ = await fetch(gateway, "POST", path, data={"csrf": token, "action": "reset"})
    assert status == 303
    assert (await _faults(gateway, agency))["healthy"] is True


def _production_app(tmp_path: Path) -> web.Application:
    keystore.generate(tmp_path / "keys", sandbox=False)
    return create_app(
        _production(
            tmp_path,
            keys_dir=tmp_path / "keys",
            trust_anchors_dir=_ca(tmp_path / "certs"),
            agencies_file=_registry(tmp_path, *ROUTED),
        )
    )


async def test_production_serves_the_progress_page_but_no_console(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(_production_app(tmp_path))
    for method, path in [
        ("GET", "/sandbox/console"),
        ("GET", "/sandbox/console/agencies"),
        ("GET", "/sandbox/console/cases/app_x/progress"),
        ("POST", "/sandbox/console/agencies/gd-hq-csb/faults"),
    ]:
        response = await client.request(method, path)
        assert response.status == 404, path
    response = await client.get("/me/applications/app_x")
    assert response.status == 401
    css = await client.get("/static/gateway.css")
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")
