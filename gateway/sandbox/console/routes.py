"""The sandbox console's routes: server-rendered pages, one per section, and the fault form.

``GET /sandbox/console`` (overview), ``/agencies``, ``/agencies/{id}``, ``/cases``,
``/cases/{id}``, ``/cases/{id}/progress`` (the applicant's page, same template),
``/messages``, ``/notifications`` and ``/audit``. ``POST /sandbox/console/agencies/{id}/faults``
changes a sandbox agency's fault switches (post-redirect-get). The form carries a
per-process token, and a POST whose ``Origin`` or ``Sec-Fetch-Site`` says it comes from
another site is refused either way: a page elsewhere cannot flip the switches through a
tester's browser.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web

from gateway.domain.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from gateway.domain.values import local_date
from gateway.sandbox.console import views
from gateway.sandbox.console.form import changes_from_form, field_errors
from gateway.sandbox.routes import FAULTS
from gateway.web import pages
from gateway.web.i18n import supported
from gateway.web.keys import DEPENDENCIES, SETTINGS
from gateway.web.openapi import operation, query

CSRF_TOKEN = web.AppKey("console_csrf_token", str)
BASE = "/sandbox/console"
FORM = "application/x-www-form-urlencoded"
routes = web.RouteTableDef()
_LANG = [query("lang", "zh-Hant, zh-Hans, en or pt (else Accept-Language)")]


def install_console(app: web.Application) -> None:
    """Mount the console (sandbox mode only: only ``install_sandbox`` calls this). Its
    templates live here and extend the gateway's (``base.html``, ``_messages.html``)."""
    env = pages.ensure_pages(app)
    if env.loader is not None:
        env.loader = jinja2.ChoiceLoader(
            [env.loader, jinja2.PackageLoader("gateway.sandbox.console", "templates")]
        )
    app[CSRF_TOKEN] = secrets.token_urlsafe(32)
    app.add_routes(routes)


def _page(
    request: web.Request, template: str, section: str, status: int = 200, **context: Any
) -> web.Response:
    lang = pages.language(request)
    return pages.render(
        request,
        template,
        {"section": section, "base": BASE, **context},
        lang=lang,
        status=status,
    )


def _console(summary: str, missing: str | None = None) -> Any:
    """The OpenAPI operation of a console page (``missing``: what its 404 means)."""
    responses: dict[int, str | tuple[str, dict[str, Any]]] = {200: "An HTML page"}
    if missing:
        responses[404] = missing
    return operation(
        summary=summary,
        tag="sandbox-console",
        parameters=_LANG,
        responses=responses,
        sandbox_only=True,
    )


@routes.get(BASE)
@_console("Sandbox console: overview and links to each section")
async def overview(request: web.Request) -> web.Response:
    return _page(
        request, "console_overview.html", "overview", counts=await views.overview(request.app)
    )


@routes.get(BASE + "/agencies")
@_console("Sandbox console: every registered agency and its fault switches' state")
async def agencies(request: web.Request) -> web.Response:
    return _page(
        request,
        "console_agencies.html",
        "agencies",
        agencies=await views.agencies(request.app),
        faults_available=FAULTS in request.app,
    )


@routes.get(BASE + "/agencies/{agency_id}")
@_console("Sandbox console: one agency, its keys and its fault switches", "No such agency")
async def agency(request: web.Request) -> web.Response:
    return await _agency_page(request)


async def _agency_page(
    request: web.Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
) -> web.Response:
    shown = await views.agency(request.app, request.match_info["agency_id"])
    done = request.query.get("done")
    return _page(
        request,
        "console_agency.html",
        "agencies",
        status=status,
        agency=shown,
        csrf=request.app[CSRF_TOKEN],
        done=done if done in ("saved", "reset") else None,
        errors=errors or {},
        values=submitted if submitted is not None else _values(shown),
    )


def _values(shown: dict[str, Any]) -> dict[str, Any]:
    return shown["faults"].to_json() if shown["faults"] is not None else {}


def _check_origin(request: web.Request) -> None:
    """Refuse a POST that a browser says comes from another site."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise ForbiddenError("the console accepts forms from its own pages only")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    own = {f"{request.scheme}://{request.host}", _origin(request.app[SETTINGS].base_url)}
    if origin not in own:
        raise ForbiddenError("the console accepts forms from its own pages only")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@routes.post(BASE + "/agencies/{agency_id}/faults")
@operation(
    summary="Sandbox console: change or reset a sandbox agency's fault switches (form)",
    tag="sandbox-console",
    request={FORM: {"type": "object"}},
    responses={
        303: "Changed; see the agency's page",
        400: "A form that is not UTF-8, or names a charset that does not exist",
        403: "No valid form token, or a form from another site",
        404: "No such sandbox agency",
        415: "Not a URL-encoded form (the console's form is never multipart)",
        422: "Invalid switches (the page again, every problem listed)",
    },
    sandbox_only=True,
)
async def change_faults(request: web.Request) -> web.Response:
    _check_origin(request)
    if request.content_type != FORM:  # aiohttp's multipart reader raises on a bad boundary
        raise UnsupportedMediaTypeError(f"the console's form is sent as {FORM}")
    try:
        form = await request.post()
    except (UnicodeDecodeError, LookupError):  # not UTF-8, or a charset Python does not know
        raise BadRequestError("the form is not valid UTF-8 form data") from None
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(
        token.encode(), request.app[CSRF_TOKEN].encode()
    ):
        raise ForbiddenError("the form token is missing or stale; reload the console")
    board = request.app.get(FAULTS)
    agency_id = request.match_info["agency_id"]
    if board is None or agency_id not in board.all():
        raise NotFoundError("no such sandbox agency")
    lang = supported(request.query.get("lang"))
    done = "reset" if form.get("action") == "reset" else "saved"
    if done == "reset":
        board.reset(agency_id)
    else:
        changes = changes_from_form(form)
        try:
            board.update(agency_id, changes)
        except ValidationFailedError as exc:
            return await _agency_page(
                request,
                status=422,
                errors=field_errors(exc.errors, pages.language(request)),
                submitted=changes,
            )
    params = {"done": done, **({"lang": lang} if lang else {})}
    location = f"{BASE}/agencies/{agency_id}?{urlencode(params)}"
    return web.Response(status=303, headers={"Location": location})


@routes.get(BASE + "/cases")
@_console("Sandbox console: recent cases of every agency")
async def cases(request: web.Request) -> web.Response:
    return _page(
        request,
        "console_cases.html",
        "cases",
        cases=await views.cases(request.app),
        catalog=_names(request),
    )


@routes.get(BASE + "/cases/{application_id}")
@_console("Sandbox console: one case, its whole timeline and its forwards", "No such case")
async def case(request: web.Request) -> web.Response:
    shown = await views.case(request.app, request.match_info["application_id"])
    return _page(request, "console_case.html", "cases", catalog=_names(request), **shown)


@routes.get(BASE + "/cases/{application_id}/progress")
@_console("Sandbox console: the applicant's progress page of any case", "No such case")
async def progress(request: web.Request) -> web.Response:
    view = await views.applicant_view(request.app, request.match_info["application_id"])
    return await pages.render_progress(request, view, preview=True)


@routes.get(BASE + "/messages")
@_console("Sandbox console: forwarded messages and their acknowledgements' signatures")
async def messages(request: web.Request) -> web.Response:
    return _page(
        request, "console_messages.html", "messages", messages=await views.messages(request.app)
    )


@routes.get(BASE + "/notifications")
@_console("Sandbox console: the notifications recorded, and what the e-mail and SMS sinks received")
async def notifications(request: web.Request) -> web.Response:
    return _page(
        request,
        "console_notifications.html",
        "notifications",
        recorded=views.notifications(request.app),
        sinks=views.sinks(request.app),
    )


@routes.get(BASE + "/audit")
@_console("Sandbox console: the audit chain's length, head, last checkpoint and verification")
async def audit(request: web.Request) -> web.Response:
    return _page(request, "console_audit.html", "audit", audit=await views.audit(request.app))


def _names(request: web.Request) -> Any:
    """Matter names by code (the catalog in force today), for the case lists."""
    deps = request.app[DEPENDENCIES]
    today = local_date(deps.clock.now())
    return {str(m.code): m.names.as_dict() for m in deps.catalog.all(today)}
