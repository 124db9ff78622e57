"""The portal's pages: a sub-application at ``/portal/``, a client of the gateway over HTTP.

The sandbox mounts it (:func:`install`) with the gateway's public URL; it talks to that URL
(loopback in the sandbox) with one aiohttp client session, as any jurisdiction's portal would
over the network. Pages are Jinja2 templates without script under a strict CSP; every POST
form carries the session's CSRF token; tokens never reach the page or a URL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import aiohttp
import jinja2
import jwt
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway.portal import forms, i18n
from gateway.portal.oidc import OidcError, Pending, PortalClient, Tokens
from gateway.portal.sessions import LANG_COOKIE, PATH, Session, SessionStore, csrf_ok

PREFIX = "/portal"
STATE = web.AppKey("portal_state", "PortalState")
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Vary": "Accept-Language, Cookie",
}
MATERIAL_TYPES = ("application/pdf", "image/jpeg", "image/png", "application/ofd")
FORM_TIMEOUT = 120  # seconds for the whole application form, files included
MAX_FILE_BYTES = 20 * 1024 * 1024  # the gateway bounds each material itself as well
CATEGORIES = ("identity", "contact", "address", "application", "materials")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LoginNeeded(Exception):
    """The resident must (again) log in; they come back to ``return_to``."""

    def __init__(self, return_to: str) -> None:
        self.return_to = return_to


class PortalState:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.sessions = SessionStore(secure=self.base_url.startswith("https://"))
        self.http: aiohttp.ClientSession | None = None
        self.client: PortalClient | None = None
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("gateway.portal", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    async def oidc(self) -> PortalClient:
        assert self.client is not None, "the portal's client session is open while serving"
        return await self.client.ready()


def _state(request: web.Request) -> PortalState:
    return request.config_dict[STATE]


# ---- language, sessions, rendering -----------------------------------------------------


def language(request: web.Request) -> str:
    return i18n.negotiate(
        request.query.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("Accept-Language"),
    )


def _here(request: web.Request) -> str:
    """This page's path and query, without ``lang`` (the switcher adds its own)."""
    query = {k: v for k, v in request.query.items() if k != "lang"}
    return str(URL(request.path).with_query(query)) if query else request.path


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    session: Session | None = None,
    status: int = 200,
) -> web.Response:
    state, lang = _state(request), language(request)
    tr = i18n.Translator(lang)
    here = _here(request)
    joiner = "&" if "?" in here else "?"
    body = state.templates.get_template(template).render(
        lang=lang,
        t=tr,
        languages=[
            {**option, "href": f"{here}{joiner}lang={option['code']}"}
            for option in i18n.switcher(lang)
        ],
        session=session,
        logged_in=session is not None and session.tokens is not None,
        csrf=session.csrf if session is not None else "",
        stylesheets=["/static/gateway.css", f"{PREFIX}/static/portal.css"],
        **context,
    )
    response = web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, "Content-Language": lang},
    )
    if request.query.get("lang") in i18n.LANGUAGES:  # remembered for the next pages
        response.set_cookie(
            LANG_COOKIE,
            request.query["lang"],
            path=PATH,
            samesite="Lax",
            httponly=True,
            secure=state.sessions.secure,
            max_age=365 * 86400,
        )
    return response


def _redirect(location: str, session: Session | None = None, request: Any = None) -> web.Response:
    response = web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
    if session is not None and request is not None:
        _state(request).sessions.set_cookie(response, session)
    return response


def _session(request: web.Request) -> Session | None:
    return _state(request).sessions.get(request)


def _local(target: str | None) -> str:
    """Only a path of the portal's own is a place to come back to (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and "\\" not in target and "://" not in target:
        return target
    return PREFIX + "/"


@web.middleware
async def login_needed(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LoginNeeded as needed:
        return _redirect(f"{PREFIX}/login?next={quote(needed.return_to, safe='/')}")
    except web.HTTPNotFound:  # an unknown page or matter: a page in the resident's language
        return render(
            request,
            "error.html",
            {"title_key": "error_not_found", "detail": ""},
            session=_session(request),
            status=404,
        )
    except (OidcError, aiohttp.ClientError) as exc:
        return render(
            request,
            "error.html",
            {"title_key": "error_gateway", "detail": str(exc)},
            session=_session(request),
            status=502,
        )


def _back(request: web.Request) -> str:
    return _here(request) if request.method == "GET" else PREFIX + "/"


async def _tokens(request: web.Request, session: Session | None) -> Tokens:
    """The resident's tokens, refreshed when expired and refreshable; else log in again."""
    if session is None or session.tokens is None:
        raise LoginNeeded(_back(request))
    if session.tokens.expired():
        await _refresh(request, session)
    assert session.tokens is not None
    return session.tokens


async def _refresh(request: web.Request, session: Session) -> Tokens:
    """New tokens for the session's refresh token (rotated); without one, or refused (spent,
    revoked at logout or consent withdrawal, the login ended): log in again."""
    held = session.tokens
    if held is None or not held.refresh_token:
        session.tokens = None
        raise LoginNeeded(_back(request))
    lock = session.refreshing
    async with lock:
        if session.tokens is not held:  # another request of this session refreshed meanwhile
            if session.tokens is None:
                raise LoginNeeded(_back(request))
            return session.tokens
        try:
            session.tokens = await (await _state(request).oidc()).refresh(held)
        except OidcError:
            session.tokens = None
            raise LoginNeeded(_back(request)) from None
    return session.tokens


async def api(
    request: web.Request,
    session: Session | None,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    auth: bool = True,
) -> tuple[int, Any, CIMultiDict[str]]:
    """One call to the gateway's public API; with the resident's access token when ``auth``.

    A 401 (the access token expired at the gateway before the portal's clock said so, or was
    revoked) is answered by one refresh and the same call once more, when the body can be
    sent again (not a streamed ``data``); a refresh refused, or a second 401, means logging
    in again."""
    state = _state(request)
    assert state.http is not None
    sent = {"Accept-Language": language(request), **(headers or {})}
    kwargs: dict[str, Any] = {"headers": sent}
    if json_body is not None:
        kwargs["json"] = json_body
    if data is not None:
        kwargs["data"] = data
    tries = 2 if auth and data is None else 1
    for attempt in range(tries):
        if auth:
            tokens = await _tokens(request, session)
            sent["Authorization"] = f"Bearer {tokens.access_token}"
        async with state.http.request(method, state.base_url + path, **kwargs) as response:
            if response.status == 401 and auth and session is not None:
                if attempt + 1 < tries:
                    await _refresh(request, session)
                    continue
                session.tokens = None  # revoked, or refused again: log in again
                raise LoginNeeded(_back(request))
            if response.content_type.endswith("json"):
                body: Any = await response.json(content_type=None)
            else:
                body = await response.read()
            return response.status, body, CIMultiDict(response.headers)
    raise AssertionError("unreachable: the last try returns or raises")


async def _post_form(request: web.Request) -> tuple[Session, dict[str, str]]:
    """A urlencoded POST of a logged-in session with its CSRF token; else 403, nothing done."""
    session = _session(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise web.HTTPUnsupportedMediaType(text="the form is application/x-www-form-urlencoded")
    form = await request.post()
    if not csrf_ok(session, form.get("csrf") if isinstance(form.get("csrf"), str) else None):
        raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong")
    assert session is not None
    return session, {k: v for k, v in form.items() if isinstance(v, str)}


# ---- start, login, callback, logout ----------------------------------------------------


async def start(request: web.Request) -> web.Response:
    session = _session(request)
    providers: list[str] = []
    name = ""
    try:
        providers = (await _state(request).oidc()).providers
    except (OidcError, aiohttp.ClientError):
        providers = []
    if session is not None and session.tokens is not None:
        name = str(session.tokens.claims.get("name", ""))
    notice = session.notice if session is not None else None
    if session is not None:
        session.notice = None
    return render(
        request,
        "start.html",
        {"providers": providers, "name": name, "notice": notice},
        session=session,
    )


async def login(request: web.Request) -> web.Response:
    state = _state(request)
    client = await state.oidc()
    provider = request.query.get("idp") or None
    if provider is not None and provider not in client.providers:
        raise web.HTTPNotFound(text="no such identity provider")
    session = _session(request) or state.sessions.new()
    pending = Pending.new(provider, _local(request.query.get("next")))
    session.remember(pending)
    response = _redirect(client.authorization_url(pending, language(request)))
    state.sessions.set_cookie(response, session)
    return response


async def callback(request: web.Request) -> web.Response:
    """Back from the OP: the state must be one this browser's session sent; the issuer the
    OP's (RFC 9207); the code is exchanged with the PKCE verifier and the ID token's nonce
    checked. Anything else is refused and nothing is kept."""
    state = _state(request)
    session = _session(request)
    params = request.query
    pending = session.take(params.get("state", "")) if session is not None else None
    refused = None
    if session is None or pending is None:
        refused = "login_state"
    elif "error" in params:
        refused = "login_refused"
    elif params.get("iss") != state.base_url or not params.get("code"):
        refused = "login_state"
    if refused is not None:
        return render(
            request, "error.html", {"title_key": refused, "detail": ""}, session=None, status=400
        )
    assert session is not None
    assert pending is not None
    client = await state.oidc()
    try:
        tokens = await client.exchange(params["code"], pending)
    except OidcError as exc:
        return render(
            request,
            "error.html",
            {"title_key": "login_state", "detail": str(exc)},
            session=None,
            status=400,
        )
    session = state.sessions.renew(session)
    session.tokens = tokens
    return _redirect(pending.return_to, session, request)


async def logout(request: web.Request) -> web.Response:
    session, _ = await _post_form(request)
    state = _state(request)
    client = await state.oidc()
    target = client.logout_url(session.tokens) or f"{PREFIX}/"
    state.sessions.drop(session)
    response = _redirect(target)
    state.sessions.clear_cookie(response)
    return response


# ---- matters -----------------------------------------------------------------------------


async def search(request: web.Request) -> web.Response:
    session = _session(request)
    q = request.query.get("q", "").strip()
    path = "/v1/matters" + (f"?q={quote(q)}" if q else "")
    status, body, _ = await api(request, session, "GET", path, auth=False)
    matters = body.get("items", []) if status == 200 else []
    return render(request, "search.html", {"q": q, "matters": matters}, session=session)


async def _matter(request: web.Request, session: Session | None) -> dict[str, Any]:
    code = request.match_info["code"]
    status, body, _ = await api(request, session, "GET", f"/v1/matters/{quote(code)}", auth=False)
    if status != 200:
        raise web.HTTPNotFound(text="no such matter")
    return dict(body)


async def matter_page(request: web.Request) -> web.Response:
    session = _session(request)
    matter = await _matter(request, session)
    return render(request, "matter.html", {"matter": matter}, session=session)


async def _schema(request: web.Request, code: str) -> dict[str, Any]:
    status, body, _ = await api(
        request, None, "GET", f"/v1/matters/{quote(code)}/schema", auth=False
    )
    if status != 200:
        raise web.HTTPNotFound(text="no schema for this matter")
    return json.loads(body) if isinstance(body, bytes) else dict(body)


async def apply_form(request: web.Request) -> web.Response:
    session = _session(request)
    await _tokens(request, session)
    assert session is not None
    code = request.match_info["code"]
    matter = await _matter(request, session)
    schema = await _schema(request, code)
    _, me, _ = await api(request, session, "GET", "/v1/me")
    draft = session.drafts.get(code, {})
    agent_of = _acting_for(me, code)
    chosen = request.query.get("for", draft.get("on_behalf_of", ""))
    principal = next((d for d in agent_of if d["delegation_id"] == chosen), None)
    fields = forms.fields_of(schema)
    # the login's own particulars are not the principal's: nothing pre-filled for them
    forms.fill(fields, draft.get("values") or ({} if principal else _prefill(fields, me)))
    tr = i18n.Translator(language(request))
    summary = forms.place_errors(fields, draft.get("errors", []), tr)
    material_errors = [
        e for e in summary if e["pointer"].startswith(("/materials", "/commitments"))
    ]
    return render(
        request,
        "apply.html",
        {
            "matter": matter,
            "fields": fields,
            "who": _who(me),
            "agent_of": agent_of,
            "principal": principal,
            "summary": summary,
            "material_errors": material_errors,
            "uploaded": {m["code"]: m for m in draft.get("materials", [])},
            "committed": {c["material"] for c in draft.get("commitments", [])},
            "material_types": ",".join(MATERIAL_TYPES),
        },
        session=session,
        status=422 if summary else 200,
    )


def _acting_for(me: Any, code: str) -> list[dict[str, Any]]:
    """The confirmed delegations in force under which this login may apply for someone else
    for the matter (Art. 24): the principals the form offers to apply for."""
    now = datetime.now(UTC)
    held = me.get("delegations", []) if isinstance(me, Mapping) else []
    return [
        d
        for d in held
        if d.get("role") == "agent"
        and d.get("confirmed_at")
        and not d.get("revoked_at")
        and datetime.fromisoformat(d["until"]) > now
        and ({code, "*"} & set(d.get("matters", [])))
    ]


def _who(me: Any) -> dict[str, Any]:
    """The login's identity as the form shows it (what the gateway attaches by itself)."""
    identity = me.get("identity", {}) if isinstance(me, Mapping) else {}
    names = identity.get("names") or {}
    return {
        "name": identity.get("name", ""),
        "latin": names.get("latin", ""),
        "birthdate": identity.get("birthdate", ""),
        "documents": [
            {"type": str(d.get("type", "")), "number": str(d.get("number", ""))}
            for d in identity.get("gba_documents", [])
        ],
        "assurance": identity.get("assurance", "low"),
    }


def _prefill(fields: list[forms.Field], me: Mapping[str, Any]) -> dict[str, str]:
    """What the login already says, for particulars of the same name (never asked again)."""
    identity = me.get("identity", {}) if isinstance(me, Mapping) else {}
    out = {}
    for item in fields:
        value = identity.get(item.name)
        if isinstance(value, str) and not item.grouped:
            out[item.pointer] = value
    return out


async def _multipart(request: web.Request) -> tuple[Session, dict[str, str], dict[str, Any]]:
    """A multipart form: the CSRF token first (checked before anything else is read), then
    text fields and files; each file (``material:<code>``) is streamed on to
    ``POST /v1/me/materials`` as it arrives. (texts, uploads by material code)."""
    session = _session(request)
    if not request.content_type.startswith("multipart/form-data"):
        raise web.HTTPUnsupportedMediaType(text="the form is multipart/form-data")
    async with asyncio.timeout(FORM_TIMEOUT):
        reader = await request.multipart()
        first = await reader.next()
        token = (
            await first.text()
            if isinstance(first, aiohttp.BodyPartReader) and first.name == "csrf"
            else None
        )
        if not csrf_ok(session, token):
            raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong")
        assert session is not None
        await _tokens(request, session)
        texts: dict[str, str] = {}
        uploads: dict[str, Any] = {}
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                continue
            if part.name.startswith("material:") and part.filename:
                uploads[part.name.removeprefix("material:")] = await _stream_material(
                    request, session, part
                )
            elif part.name.startswith("material:"):
                await part.release()  # a file input left empty
            else:
                texts[part.name] = (await part.text())[:4000]
        return session, texts, uploads


async def apply_submit(request: web.Request) -> web.Response:
    """The application form: particulars (inputs named by pointer, less its "/"), files,
    commitments; kept as the session's draft for the consent page."""
    session, texts, uploads = await _multipart(request)
    code = request.match_info["code"]
    previous = session.drafts.get(code, {})
    values = {"/" + k: v for k, v in texts.items() if k.startswith("particulars/")}
    materials = {m["code"]: m for m in previous.get("materials", []) if "material_id" in m}
    materials.update(uploads)
    commitments = {k.removeprefix("commit:") for k in texts if k.startswith("commit:")}
    schema = await _schema(request, code)
    fields = forms.fields_of(schema)
    document = forms.application(code, fields, values)
    document["materials"] = [
        {"code": c, "material_id": m["material_id"]}
        for c, m in materials.items()
        if c not in commitments and "material_id" in m
    ]
    document["commitments"] = [
        {"material": c, "language": language(request)} for c in sorted(commitments)
    ]
    session.drafts[code] = {
        "on_behalf_of": texts.get("on_behalf_of", ""),
        "values": values,
        "materials": list(materials.values()),
        "commitments": document["commitments"],
        "document": document,
        "key": secrets.token_urlsafe(18),
        "errors": [],
    }
    return _redirect(f"{PREFIX}/matters/{quote(code)}/consent")


async def _stream_material(
    request: web.Request, session: Session, part: aiohttp.BodyPartReader
) -> dict[str, Any]:
    media_type = part.headers.get("Content-Type", "application/octet-stream").split(";")[0]

    async def chunks() -> AsyncIterator[bytes]:
        sent = 0
        while chunk := await part.read_chunk(64 * 1024):
            sent += len(chunk)
            if sent > MAX_FILE_BYTES:
                raise web.HTTPRequestEntityTooLarge(MAX_FILE_BYTES, sent)
            yield chunk

    filename = (part.filename or "file").replace('"', "")[:200]
    status, body, _ = await api(
        request,
        session,
        "POST",
        "/v1/me/materials",
        data=chunks(),
        headers={
            "Content-Type": media_type,
            "Idempotency-Key": "portal-" + secrets.token_urlsafe(18),
            "Content-Disposition": f'attachment; filename="{quote(filename)}"',
        },
    )
    code = str(part.name).removeprefix("material:")
    if status != 201:
        await part.release()
        return {"code": code, "error": status, "filename": filename}
    return {**body, "code": code, "filename": filename}


# ---- consent, submission, receipt -------------------------------------------------------


def _recipients(
    matter: Mapping[str, Any], schema: Mapping[str, Any], tr: i18n.Translator
) -> list[dict[str, Any]]:
    """Which fields go to which agency in which jurisdiction (the route's field lists)."""
    route = matter.get("route", {})
    agencies = route.get("agencies", {})
    out = []
    for agency_id, pointers in route.get("fields", {}).items():
        about = agencies.get(agency_id, {})
        out.append(
            {
                "id": agency_id,
                "name": tr.pick(about.get("names"), agency_id),
                "jurisdiction": about.get("jurisdiction", ""),
                "role": "lead" if agency_id == route.get("lead") else "reviewer",
                "fields": None
                if pointers is None
                else list(
                    dict.fromkeys(forms.label_of_pointer(schema, p, tr, matter) for p in pointers)
                ),
            }
        )
    return out


def _evidence(matter: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Materials the handlers obtain by data sharing: from which issuer's jurisdiction, in
    which consent category (``materials[].evidence`` of ``GET /v1/matters/{code}``)."""
    return [
        {**m["evidence"], "material": m["code"], "material_names": m.get("names", {})}
        for m in matter.get("materials", [])
        if isinstance(m.get("evidence"), dict)
    ]


async def consent_page(request: web.Request) -> web.Response:
    session = _session(request)
    await _tokens(request, session)
    assert session is not None
    code = request.match_info["code"]
    draft = session.drafts.get(code)
    if not draft:
        return _redirect(f"{PREFIX}/matters/{quote(code)}/apply")
    matter = await _matter(request, session)
    schema = await _schema(request, code)
    tr = i18n.Translator(language(request))
    return render(
        request,
        "consent.html",
        {
            "matter": matter,
            "recipients": _recipients(matter, schema, tr),
            "evidence": _evidence(matter),
            "categories": [
                *CATEGORIES,
                *sorted({e["category"] for e in _evidence(matter)} - set(CATEGORIES)),
            ],
            "draft": draft,
            "failed": [m for m in draft.get("materials", []) if "error" in m],
        },
        session=session,
    )


def _consent_for(matter: Mapping[str, Any]) -> dict[str, Any]:
    """The consent the consent page shows for a matter: every data category the form and the
    evidence shared carry, to every jurisdiction its agencies and issuers sit in."""
    evidence = _evidence(matter)
    destinations = sorted(
        {a.get("jurisdiction") for a in matter["route"].get("agencies", {}).values()}
        | {e["jurisdiction"] for e in evidence} - {None}
    )
    return {
        "purpose": "cross_border_application",
        "categories": [*CATEGORIES, *sorted({e["category"] for e in evidence} - set(CATEGORIES))],
        "destinations": destinations,
    }


async def consent_submit(request: web.Request) -> web.Response:
    """The consent, given with the submission (recorded only if the case is), then the case."""
    session, form = await _post_form(request)
    code = request.match_info["code"]
    draft = session.drafts.get(code)
    if not draft:
        return _redirect(f"{PREFIX}/matters/{quote(code)}/apply")
    agent = bool(draft.get("on_behalf_of"))
    if form.get("agree") != "yes" and not agent:  # an agent's case: the principal's consent
        session.notice = "consent_needed"
        return _redirect(f"{PREFIX}/matters/{quote(code)}/consent")
    matter = await _matter(request, session)
    submission: dict[str, Any] = {"application": draft["document"]}
    if agent:
        submission["on_behalf_of"] = draft["on_behalf_of"]
    else:
        submission["consent"] = _consent_for(matter)
    status, body, _ = await api(
        request,
        session,
        "POST",
        "/v1/me/applications",
        json_body=submission,
        headers={"Idempotency-Key": "portal-" + draft["key"]},
    )
    if status == 202:
        session.drafts.pop(code, None)
        session.receipts[body["application_id"]] = {**body, "for": draft.get("on_behalf_of")}
        return _redirect(f"{PREFIX}/applications/{quote(body['application_id'])}/receipt")
    if status == 422 and isinstance(body, dict) and body.get("errors"):
        draft["errors"] = body["errors"]
        draft["key"] = secrets.token_urlsafe(18)  # the corrected document is a new request
        return _redirect(f"{PREFIX}/matters/{quote(code)}/apply")
    return render(
        request,
        "refused.html",
        {"matter": matter, "problem": body if isinstance(body, dict) else {}, "status": status},
        session=session,
        status=status if 400 <= status < 500 else 502,
    )


def _voucher_claims(token: str) -> dict[str, Any]:
    try:
        return dict(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return {}


async def receipt_page(request: web.Request) -> web.Response:
    session = _session(request)
    await _tokens(request, session)
    assert session is not None
    case_id = request.match_info["id"]
    held = session.receipts.get(case_id)
    if held is None:
        raise web.HTTPNotFound(text="no receipt of this session for this application")
    return render(
        request,
        "receipt.html",
        {"receipt": held, "claims": _voucher_claims(held["receipt"])},
        session=session,
    )


async def receipt_download(request: web.Request) -> web.Response:
    session = _session(request)
    await _tokens(request, session)
    assert session is not None
    held = session.receipts.get(request.match_info["id"])
    if held is None:
        raise web.HTTPNotFound(text="no receipt of this session for this application")
    return web.Response(
        text=held["receipt"],
        content_type="application/jwt",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{held["application_id"]}.jwt"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# ---- my applications and their progress ---------------------------------------------------


async def applications(request: web.Request) -> web.Response:
    session = _session(request)
    _, body, _ = await api(request, session, "GET", "/v1/me/applications")
    return render(request, "applications.html", {"items": body.get("items", [])}, session=session)


async def progress(request: web.Request) -> web.Response:
    session = _session(request)
    case_id = request.match_info["id"]
    status, view, _ = await api(request, session, "GET", f"/v1/me/applications/{quote(case_id)}")
    if status != 200:
        raise web.HTTPNotFound(text="not one of your applications")
    _, certificates, _ = await api(request, session, "GET", "/v1/me/certificates")
    mine = [
        c
        for c in (certificates.get("items", []) if isinstance(certificates, dict) else [])
        if c.get("application_id") == case_id
    ]
    _, complaints, _ = await api(
        request, session, "GET", f"/v1/me/applications/{quote(case_id)}/complaints"
    )
    assert session is not None
    notice, session.notice = session.notice, None
    owed = [*view.get("missing", []), *(o.get("material") for o in view.get("owed", []))]
    # materials and agencies by their names in the resident's language, from the public matter
    tr = i18n.Translator(language(request))
    _, matter, _ = await api(
        request, session, "GET", f"/v1/matters/{quote(str(view.get('matter')))}", auth=False
    )
    matter = matter if isinstance(matter, dict) else {}
    names = {m["code"]: tr.pick(m.get("names"), m["code"]) for m in matter.get("materials", [])}
    agencies = {
        agency_id: tr.pick(about.get("names"), agency_id)
        for agency_id, about in matter.get("route", {}).get("agencies", {}).items()
    }
    return render(
        request,
        "progress.html",
        {
            "held_back": _held_back(view),
            "consent_scope": _consent_for(matter) if matter.get("route") else None,
            "view": view,
            "certificates": mine,
            "complaints": complaints.get("items", []) if isinstance(complaints, dict) else [],
            "owed_codes": [c for c in owed if isinstance(c, str)],
            "material_names": names,
            "agency_names": agencies,
            "has_receipt": case_id in session.receipts,
            "notice": notice,
            "material_types": ",".join(MATERIAL_TYPES),
        },
        session=session,
    )


CLOSED = ("withdrawn", "rejected", "not_accepted", "approved", "result_delivered")


def _held_back(view: Mapping[str, Any]) -> bool:
    """An open case with a forward withheld since the applicant last consented."""
    if view.get("status") in CLOSED:
        return False
    held = False
    for event in view.get("timeline", []):
        if event.get("type") == "message.withheld":
            held = True
        elif event.get("type") == "consent.renewed":
            held = False
    return held


async def consent_again(request: web.Request) -> web.Response:
    """The applicant consents again for a case held back by a withdrawn or lapsed consent:
    the same consent the consent page asks for, on this case; its forwards then go on."""
    session, form = await _post_form(request)
    case_id = request.match_info["id"]
    if form.get("agree") != "yes":
        session.notice = "consent_needed"
        return _redirect(f"{PREFIX}/applications/{quote(case_id)}")
    status, view, _ = await api(request, session, "GET", f"/v1/me/applications/{quote(case_id)}")
    if status != 200:
        raise web.HTTPNotFound(text="not one of your applications")
    _, matter, _ = await api(
        request, session, "GET", f"/v1/matters/{quote(str(view.get('matter')))}", auth=False
    )
    status, _, _ = await api(
        request,
        session,
        "POST",
        f"/v1/me/applications/{quote(case_id)}/consent",
        json_body=_consent_for(matter),
        headers={"Idempotency-Key": "portal-" + secrets.token_urlsafe(18)},
    )
    session.notice = "consent_given_again" if status == 200 else "consent_again_refused"
    return _redirect(f"{PREFIX}/applications/{quote(case_id)}")


async def supplement(request: web.Request) -> web.Response:
    """Materials the case still needs (the supplement notice, or owed after acceptance),
    each file streamed on to the materials API, then named in one supplement."""
    session, _, uploads = await _multipart(request)
    case_id = request.match_info["id"]
    materials = [
        {"code": c, "material_id": m["material_id"]}
        for c, m in uploads.items()
        if "material_id" in m
    ]
    status = 0
    if materials:
        status, _, _ = await api(
            request,
            session,
            "POST",
            f"/v1/me/applications/{quote(case_id)}/supplements",
            json_body={"materials": materials},
            headers={"Idempotency-Key": "portal-" + secrets.token_urlsafe(18)},
        )
    session.notice = "supplied" if status in (200, 202) else "supplement_refused"
    return _redirect(f"{PREFIX}/applications/{quote(case_id)}")


async def complain(request: web.Request) -> web.Response:
    session, form = await _post_form(request)
    case_id = request.match_info["id"]
    text = form.get("text", "").strip()[:4000]
    status = 0
    if text:
        status, _, _ = await api(
            request,
            session,
            "POST",
            f"/v1/me/applications/{quote(case_id)}/complaints",
            json_body={"text": text},
            headers={"Idempotency-Key": "portal-" + secrets.token_urlsafe(18)},
        )
    session.notice = "complaint_filed" if status in (200, 201, 202) else "complaint_refused"
    return _redirect(f"{PREFIX}/applications/{quote(case_id)}")


async def _certificate_case(request: web.Request, session: Session | None, cert_id: str) -> str:
    """The application a certificate of the resident's list belongs to ("" if not listed)."""
    _, listed, _ = await api(request, session, "GET", "/v1/me/certificates")
    for item in listed.get("items", []) if isinstance(listed, dict) else []:
        if item.get("certificate_id") == cert_id:
            return str(item.get("application_id", ""))
    return ""


def _certificate_contents(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What a JWS certificate says (its claims, as the resident reads them); the signature is
    the resident's to verify against the issuer's published keys (the page links them)."""
    token = body.get("certificate")
    if not isinstance(token, str):
        return []
    claims = _voucher_claims(token)
    return [
        (name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for name, value in claims.items()
    ]


async def certificate(request: web.Request) -> web.Response:
    """One e-certificate: what it says, who signed it, how to check it, a download. Without
    an ``e_certificate`` consent the gateway refuses it (403): the page says what is needed
    and offers the consent."""
    session = _session(request)
    cert_id = request.match_info["id"]
    status, body, _ = await api(request, session, "GET", f"/v1/me/certificates/{quote(cert_id)}")
    if status == 200:
        context = {"certificate": body, "contents": _certificate_contents(body)}
    elif status == 403:
        case = await _certificate_case(request, session, cert_id)
        context = {"certificate": None, "contents": [], "consent_case": case}
    else:
        raise web.HTTPNotFound(text="not one of your e-certificates")
    return render(
        request,
        "certificate.html",
        {"certificate_id": cert_id, "consent_case": "", **context},
        session=session,
        status=status,
    )


async def certificate_download(request: web.Request) -> web.Response:
    """The certificate to keep: the JWS itself (``.jwt``), or the signed document with its
    detached signature (the gateway's JSON answer), to verify offline."""
    session = _session(request)
    cert_id = request.match_info["id"]
    status, body, _ = await api(request, session, "GET", f"/v1/me/certificates/{quote(cert_id)}")
    if status != 200:
        return _redirect(f"{PREFIX}/certificates/{quote(cert_id)}")
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if isinstance(body.get("certificate"), str):
        return web.Response(
            text=body["certificate"],
            content_type="application/jwt",
            headers={
                **headers,
                "Content-Disposition": f'attachment; filename="certificate-{cert_id}.jwt"',
            },
        )
    return web.Response(
        text=json.dumps(body, ensure_ascii=False, indent=2),
        content_type="application/json",
        headers={
            **headers,
            "Content-Disposition": f'attachment; filename="certificate-{cert_id}.json"',
        },
    )


async def certificate_consent(request: web.Request) -> web.Response:
    """The resident's explicit, optional consent to electronic delivery of the e-certificates
    of one application's matter (``POST /v1/me/consents``, purpose ``e_certificate``): no data
    goes to anyone; the gateway may hand the resident what the agency issued."""
    session, _ = await _post_form(request)
    case_id = request.match_info["id"]
    status, view, _ = await api(request, session, "GET", f"/v1/me/applications/{quote(case_id)}")
    if status != 200:
        raise web.HTTPNotFound(text="not one of your applications")
    status, _, _ = await api(
        request,
        session,
        "POST",
        "/v1/me/consents",
        json_body={
            "purpose": "e_certificate",
            "categories": ["application"],
            "destinations": [],
            "matter": view["matter"],
        },
    )
    session.notice = "certificate_consent_given" if status == 201 else "certificate_consent_refused"
    return _redirect(f"{PREFIX}/applications/{quote(case_id)}")


# ---- consents: what the resident agreed to, and withdrawing it ---------------------------------


def _consent_status(consent: Mapping[str, Any], now: datetime) -> str:
    if consent.get("withdrawn_at"):
        return "withdrawn"
    expires = consent.get("expires_at")
    return "expired" if expires and datetime.fromisoformat(expires) <= now else "in_force"


async def consents(request: web.Request) -> web.Response:
    """Every consent the resident gave, newest first; one still in force can be withdrawn
    here as easily as it was given (PIPL Art. 15): forwards not yet delivered that rely on it
    are then withheld."""
    session = _session(request)
    _, body, _ = await api(request, session, "GET", "/v1/me/consents")
    assert session is not None
    notice, session.notice = session.notice, None
    now = datetime.now(UTC)
    items = body.get("items", []) if isinstance(body, dict) else []
    names: dict[str, Any] = {}
    for code in sorted({str(c["matter"]) for c in items if c.get("matter")}):
        status, matter, _ = await api(
            request, session, "GET", f"/v1/matters/{quote(code)}", auth=False
        )
        names[code] = matter.get("names", {}) if status == 200 else {}
    return render(
        request,
        "consents.html",
        {
            "consents": sorted(
                (
                    {**c, "status": _consent_status(c, now), "names": names.get(c["matter"], {})}
                    for c in items
                ),
                key=lambda c: str(c.get("granted_at", "")),
                reverse=True,
            ),
            "notice": notice,
        },
        session=session,
    )


async def withdraw_consent(request: web.Request) -> web.Response:
    session, _ = await _post_form(request)
    status, _, _ = await api(
        request,
        session,
        "POST",
        f"/v1/me/consents/{quote(request.match_info['id'])}/withdraw",
    )
    session.notice = "consent_withdrawn" if status == 200 else "consent_withdraw_refused"
    return _redirect(f"{PREFIX}/consents")


# ---- delegation to an agent -----------------------------------------------------------------


async def delegations(request: web.Request) -> web.Response:
    session = _session(request)
    _, me, _ = await api(request, session, "GET", "/v1/me")
    assert session is not None
    notice, session.notice = session.notice, None
    return render(
        request,
        "delegations.html",
        {
            "delegations": [
                {
                    **d,
                    "status": "revoked"
                    if d.get("revoked_at")
                    else "confirmed"
                    if d.get("confirmed_at")
                    else "requested",
                }
                for d in (me.get("delegations", []) if isinstance(me, dict) else [])
            ],
            "notice": notice,
            "errors": session.drafts.pop("_delegation_errors", {}).get("errors", []),
        },
        session=session,
    )


async def request_delegation(request: web.Request) -> web.Response:
    """As an agent: ask the holder of a document to let you act for them on one matter."""
    session, form = await _post_form(request)
    until = form.get("until", "").strip()
    status, body, _ = await api(
        request,
        session,
        "POST",
        "/v1/me/delegations",
        json_body={
            "principal": {"type": form.get("type", ""), "number": form.get("number", "")},
            "matters": [m for m in [form.get("matter", "").strip()] if m],
            "until": f"{until}T23:59:59+08:00" if until else "",
        },
    )
    if status == 201:
        session.notice = "delegation_requested"
    else:
        errors = body.get("errors", []) if isinstance(body, dict) else []
        session.drafts["_delegation_errors"] = {"errors": errors}
        session.notice = "delegation_refused"
    return _redirect(f"{PREFIX}/delegations")


async def change_delegation(request: web.Request) -> web.Response:
    """Confirm or revoke a delegation. The principal may consent, for each service it
    names, to what the consent page would ask for that service — on confirming, or later
    (``consent``): the agent cannot consent for them, and the cases the agent files rely on
    it (Art. 24)."""
    session, form = await _post_form(request)
    action, delegation_id = request.match_info["action"], request.match_info["id"]
    matters: list[str] = []
    if action == "consent":
        _, me, _ = await api(request, session, "GET", "/v1/me")
        held = me.get("delegations", []) if isinstance(me, dict) else []
        mine = [
            d for d in held if d["delegation_id"] == delegation_id and d.get("role") == "principal"
        ]
        matters = [m for d in mine for m in d.get("matters", [])]
        session.notice = "delegation_refused"
    else:
        status, body, _ = await api(
            request, session, "POST", f"/v1/me/delegations/{quote(delegation_id)}/{action}"
        )
        done = {"confirm": "delegation_confirmed", "revoke": "delegation_revoked"}[action]
        session.notice = done if status == 200 else "delegation_refused"
        if status == 200 and action == "confirm" and form.get("consent") == "yes":
            matters = body.get("matters", []) if isinstance(body, dict) else []
    if matters and await _consent_to_matters(request, session, matters):
        session.notice = (
            "delegation_consented" if action == "consent" else ("delegation_confirmed_consented")
        )
    return _redirect(f"{PREFIX}/delegations")


async def _consent_to_matters(request: web.Request, session: Session, codes: list[str]) -> bool:
    """The resident's consent for each matter (``*`` names none): True when all were given."""
    given = []
    for code in (c for c in codes if c != "*"):
        found, matter, _ = await api(
            request, session, "GET", f"/v1/matters/{quote(code)}", auth=False
        )
        if found != 200:
            return False
        status, _, _ = await api(
            request,
            session,
            "POST",
            "/v1/me/consents",
            json_body={**_consent_for(matter), "matter": code},
        )
        given.append(status == 201)
    return bool(given) and all(given)


async def withdraw(request: web.Request) -> web.Response:
    session, form = await _post_form(request)
    case_id = request.match_info["id"]
    status, _, _ = await api(
        request,
        session,
        "POST",
        f"/v1/me/applications/{quote(case_id)}/withdrawal",
        json_body={"reason": form.get("reason", "")[:500] or "withdrawn by the applicant"},
        headers={"Idempotency-Key": "portal-" + secrets.token_urlsafe(18)},
    )
    session.notice = "withdrawn" if status in (200, 202) else "withdraw_refused"
    return _redirect(f"{PREFIX}/applications/{quote(case_id)}")


# The host reads every body before its routes run unless the route is marked as reading its
# own (the gateway's ``streamed`` marker, an attribute): these forms' files stream on instead.
apply_submit.__streamed__ = True  # type: ignore[attr-defined]
supplement.__streamed__ = True  # type: ignore[attr-defined]


@functools.cache
def _css() -> bytes:
    return resources.files("gateway.portal").joinpath("static", "portal.css").read_bytes()


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        body=_css(),
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def portal_app(base_url: str) -> web.Application:
    """The portal for the gateway at ``base_url`` (its public URL), to mount at /portal."""
    app = web.Application(middlewares=[login_needed])
    state = PortalState(base_url)
    app[STATE] = state

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            state.http = http
            state.client = PortalClient(
                issuer=state.base_url,
                redirect_uri=f"{state.base_url}{PREFIX}/callback",
                post_logout_uri=f"{state.base_url}{PREFIX}/",
                http=http,
            )
            yield
            state.http = None

    app.cleanup_ctx.append(client_session)
    app.router.add_get("/", start)
    app.router.add_get("/login", login)
    app.router.add_get("/callback", callback)
    app.router.add_post("/logout", logout)
    app.router.add_get("/matters", search)
    app.router.add_get("/matters/{code}", matter_page)
    app.router.add_get("/matters/{code}/apply", apply_form)
    app.router.add_post("/matters/{code}/apply", apply_submit)
    app.router.add_get("/matters/{code}/consent", consent_page)
    app.router.add_post("/matters/{code}/consent", consent_submit)
    app.router.add_get("/applications", applications)
    app.router.add_get("/applications/{id}", progress)
    app.router.add_post("/applications/{id}/withdrawal", withdraw)
    app.router.add_post("/applications/{id}/consent", consent_again)
    app.router.add_post("/applications/{id}/supplements", supplement)
    app.router.add_post("/applications/{id}/complaints", complain)
    app.router.add_get("/certificates/{id}", certificate)
    app.router.add_get("/certificates/{id}/download", certificate_download)
    app.router.add_post("/applications/{id}/certificate-consent", certificate_consent)
    app.router.add_get("/consents", consents)
    app.router.add_post("/consents/{id}/withdraw", withdraw_consent)
    app.router.add_get("/delegations", delegations)
    app.router.add_post("/delegations", request_delegation)
    app.router.add_post("/delegations/{id}/{action:confirm|revoke|consent}", change_delegation)
    app.router.add_get("/applications/{id}/receipt", receipt_page)
    app.router.add_get("/applications/{id}/receipt.jwt", receipt_download)
    app.router.add_get("/static/portal.css", stylesheet)
    return app


def install(app: web.Application, base_url: str) -> PortalState:
    """Mount the portal at ``/portal/`` of the (sandbox) gateway whose public URL it is;
    its state is also at ``app[STATE]`` (tests look at its sessions)."""
    portal = portal_app(base_url)
    app.add_subapp(PREFIX, portal)
    app[STATE] = portal[STATE]
    return portal[STATE]
