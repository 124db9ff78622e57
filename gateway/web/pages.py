"""Server-rendered pages: the template environment, the stylesheet and the progress page.

The applicant's progress page (Art. 22) is ``GET /me/applications/{id}``: the resident's
bearer token or, in a browser, the OP session cookie (:mod:`gateway.web.sessions`), the same
read as the JSON API (:func:`gateway.services.queries.application_view`) and one Jinja2
template, in zh-Hant, zh-Hans, en or pt (:mod:`gateway.web.i18n`). Templates are
package data in ``templates/``, rendered with autoescaping on; ``GET /static/gateway.css`` is
the one stylesheet. Pages carry no script, so a strict Content-Security-Policy holds.
The sandbox console (:mod:`gateway.sandbox.console`) renders through the same environment.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from gateway.domain.commands import Caller
from gateway.domain.errors import UnknownMatterError
from gateway.domain.matters import Matter
from gateway.domain.values import local_date
from gateway.services import queries
from gateway.services.handlers import Dependencies
from gateway.web import i18n, sessions
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES
from gateway.web.openapi import operation, query

TEMPLATES = web.AppKey("templates", jinja2.Environment)
STYLESHEET = "/static/gateway.css"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would send forms "Origin: null"
    "Cache-Control": "no-store",
    "Vary": "Accept-Language",
}
routes = web.RouteTableDef()


def environment() -> jinja2.Environment:
    """The templates shipped with the package; autoescaping on, undefined names fail."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["stylesheet"] = STYLESHEET
    return env


def ensure_pages(app: web.Application) -> jinja2.Environment:
    """The app's template environment and stylesheet route, set up once per app."""
    if TEMPLATES not in app:
        app[TEMPLATES] = environment()
        app.router.add_get(STYLESHEET, stylesheet)
    return app[TEMPLATES]


def install_pages(app: web.Application) -> None:
    """Mount the pages that exist in every mode: the applicant's progress page."""
    ensure_pages(app)
    app.add_routes(routes)


def language(request: web.Request) -> str:
    """``?lang=``, else the first of OpenID ``ui_locales`` we speak, else Accept-Language."""
    chosen = request.query.get("lang")
    if not i18n.supported(chosen):
        locales = (request.query.get("ui_locales") or "").split()[:10]
        chosen = next((tag for tag in locales if i18n.supported(tag)), chosen)
    return i18n.negotiate(chosen, request.headers.get("Accept-Language"))


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    lang: str,
    status: int = 200,
) -> web.Response:
    """One page in ``lang``: ``t`` translates, ``languages`` feeds the switcher."""
    tr = i18n.Translator(lang)
    body = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            lang=lang,
            t=tr,
            languages=[
                {**option, "href": str(request.rel_url.update_query(lang=option["code"]))}
                for option in i18n.switcher(lang)
            ],
            path=request.path,
            **context,
        )
    )
    headers = {**PAGE_HEADERS, "Content-Language": lang}
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=headers
    )


@functools.cache
def _css() -> bytes:
    return resources.files("gateway.web").joinpath("static", "gateway.css").read_bytes()


@operation(
    summary="The stylesheet of the server-rendered pages",
    tag="pages",
    responses={200: "text/css"},
)
async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        body=_css(),
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@routes.get("/me/applications/{application_id}")
@operation(
    summary="The applicant's progress page (HTML, Art. 22): status, agencies, deadlines, "
    "missing materials and timeline",
    tag="pages",
    parameters=[query("lang", "zh-Hant, zh-Hans, en or pt (else Accept-Language)")],
    responses={
        200: "The progress page (text/html)",
        401: "No valid Bearer access token and no live session cookie (gba_session)",
        404: "Not one of the resident's cases",
    },
)
async def my_progress(request: web.Request) -> web.Response:
    if "Authorization" in request.headers:
        grant = await authenticate_resident(request)
        caller = Caller.resident(grant.person_id, grant.login_id)
    else:  # a browser: the OP session cookie set when the resident logged in
        caller = Caller.resident(*await sessions.browser_resident(request))
    deps = request.app[DEPENDENCIES]
    view = await queries.application_view(deps, caller, request.match_info["application_id"])
    return await render_progress(request, view)


async def render_progress(
    request: web.Request, view: Mapping[str, Any], *, preview: bool = False
) -> web.Response:
    """The progress page of ``view`` (what ``application_view`` returns), as the applicant
    sees it; ``preview`` marks the sandbox console's copy."""
    deps = request.app[DEPENDENCIES]
    lang = language(request)
    context = progress_context(view, deps, await agency_names(deps), i18n.Translator(lang))
    return render(request, "progress.html", {**context, "preview": preview}, lang=lang)


async def agency_names(deps: Dependencies) -> dict[str, Mapping[str, str]]:
    """Every registered agency's names, by id."""
    async with deps.uow() as uow:
        return {agency.id: dict(agency.names) for agency, _ in await uow.agencies.all()}


def _matter(deps: Dependencies, code: str, received_at: str) -> Matter | None:
    try:
        return deps.catalog.get(code, local_date(datetime.fromisoformat(received_at)))
    except (UnknownMatterError, ValueError):
        return None


def progress_context(
    view: Mapping[str, Any],
    deps: Dependencies,
    names: Mapping[str, Mapping[str, str]],
    tr: i18n.Translator,
) -> dict[str, Any]:
    """What the progress template shows, every label already in ``tr``'s language."""
    matter = _matter(deps, view["matter"], view["received_at"])
    materials = {m.code: tr.pick(m.names.as_dict()) for m in matter.materials} if matter else {}
    labels = Labels(tr, names, materials)
    deadlines = view["deadlines"]
    return {
        "case": view,
        "matter_name": tr.pick(matter.names.as_dict()) if matter else view["matter"],
        "status": view["status"],
        "handlers": [
            {
                "agency": labels.agency(h["agency_id"]),
                "agency_id": h["agency_id"],
                "role": tr(h["role"], "roles"),
                "state": h["state"],
                "state_label": tr(h["state"], "handler_states"),
                "reasons": h["reasons"],
            }
            for h in view["handlers"]
        ],
        "deadlines": deadlines,
        "accepted": bool(deadlines.get("promised")),
        "missing": [{"code": code, "name": materials.get(code, code)} for code in view["missing"]],
        "timeline": [labels.entry(e) for e in reversed(view["timeline"])],
    }


class Labels:
    """Timeline entries and actors in words, without codes where a name exists."""

    def __init__(
        self,
        tr: i18n.Translator,
        agencies: Mapping[str, Mapping[str, str]],
        materials: Mapping[str, str],
    ) -> None:
        self.tr, self.agencies, self.materials = tr, agencies, materials

    def agency(self, agency_id: str) -> str:
        return self.tr.pick(self.agencies.get(agency_id), agency_id)

    def actor(self, actor: str) -> str:
        if actor == "gateway" or actor.startswith("gateway:"):
            return self.tr("the_gateway")
        if actor == "resident" or actor.startswith("resident:"):
            return self.tr("the_applicant")
        return self.agency(actor)

    def entry(self, event: Mapping[str, Any]) -> dict[str, Any]:
        tr, kind = self.tr, event["type"]
        details: list[str] = []
        if isinstance(event.get("agency"), str):
            details.append(f"{tr('agency')}: {self.agency(event['agency'])}")
        if kind == "voucher.issued" and event.get("kind"):
            details.append(f"{tr('voucher_kind')}: {tr(event['kind'], 'vouchers')}")
        if kind == "decision.recorded" and event.get("decision"):
            details.append(f"{tr('decision')}: {tr(event['decision'], 'decisions')}")
        if kind == "complaint.answered" and event.get("outcome"):
            details.append(f"{tr('outcome')}: {tr(event['outcome'], 'decisions')}")
        if event.get("deemed"):
            details.append(tr("deemed_accepted"))
        for key, label in (("missing", "missing_heading"), ("provided", "materials_provided")):
            if isinstance(event.get(key), list) and event[key]:
                separator = ", " if tr.lang in ("en", "pt") else "、"
                items = separator.join(self.materials.get(str(c), str(c)) for c in event[key])
                details.append(f"{tr(label)}: {items}")
        if kind == "application.result_delivered" and event.get("channel"):
            details.append(f"{tr('delivery_channel')}: {tr(event['channel'], 'channels')}")
        if kind == "message.retry_scheduled" and event.get("next_attempt_at"):
            details.append(f"{tr('next_attempt')}: {tr.moment(event['next_attempt_at'])}")
        if kind == "deadline.overdue" and event.get("deadline"):
            details.append(f"{tr('deadline_was')} {tr.date(event['deadline'])}")
        reasons = [str(r) for r in event.get("reasons") or []]
        return {
            "type": kind,
            "label": tr.event(kind),
            "at": event["at"],
            "actor": self.actor(str(event.get("actor", ""))),
            "details": details,
            "reasons": reasons,
            "appeal": self.appeal(event.get("appeal")),
        }

    def appeal(self, appeal: Any) -> list[dict[str, Any]]:
        """Art. 21: the routes of redress a rejection names, with their last days."""
        if not isinstance(appeal, dict):
            return []
        return [
            {
                "name": self.tr.pick(route.get("names"), str(route.get("route", ""))),
                "basis": route.get("basis"),
                "last_day": route.get("last_day"),
            }
            for routes_ in appeal.values()
            if isinstance(routes_, list)
            for route in routes_
            if isinstance(route, dict)
        ]
