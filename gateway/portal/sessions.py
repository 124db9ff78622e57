"""Server-side sessions of the portal: a random id in a cookie, everything else on the server.

The cookie ``portal_session`` carries 256 random bits only (``HttpOnly``, ``SameSite=Lax``,
``Path=/portal/``, ``Secure`` when the public URL is https); tokens, the login in progress
(state, nonce, PKCE verifier), drafts and receipts stay in :class:`SessionStore`, in memory.
The id is replaced at login (no session fixation) and dropped at logout. Every POST form
carries the session's CSRF token, compared in constant time before anything is read further.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.portal.oidc import Pending, Tokens

COOKIE = "portal_session"
LANG_COOKIE = "portal_lang"
PATH = "/portal/"
IDLE = 8 * 3600  # a session unused for this long is forgotten
PENDING_LIFETIME = 600  # a login not completed within ten minutes is forgotten
MAX_PENDING = 5
MAX_SESSIONS = 10_000


@dataclass
class Session:
    id: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    pending: dict[str, Pending] = field(default_factory=dict)
    tokens: Tokens | None = None
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    notice: str | None = None
    used: float = field(default_factory=time.monotonic)
    # one refresh at a time: the refresh token rotates, so two at once would spend it twice
    # (the gateway then revokes the family as a replay)
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def remember(self, pending: Pending) -> None:
        now = time.monotonic()
        self.pending = {s: p for s, p in self.pending.items() if now - p.created < PENDING_LIFETIME}
        while len(self.pending) >= MAX_PENDING:
            self.pending.pop(next(iter(self.pending)))
        self.pending[pending.state] = pending

    def take(self, state: str) -> Pending | None:
        """The login in progress with this state, removed (a state is good once)."""
        for known in list(self.pending):
            if secrets.compare_digest(known, state):
                pending = self.pending.pop(known)
                if time.monotonic() - pending.created < PENDING_LIFETIME:
                    return pending
        return None


class SessionStore:
    def __init__(self, *, secure: bool) -> None:
        self.secure = secure
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, request: web.Request) -> Session | None:
        sid = request.cookies.get(COOKIE, "")
        session = self._sessions.get(sid) if sid else None
        if session is None:
            return None
        now = time.monotonic()
        if now - session.used > IDLE:
            self._sessions.pop(sid, None)
            return None
        session.used = now
        return session

    def new(self) -> Session:
        if len(self._sessions) >= MAX_SESSIONS:
            self._expire()
        session = Session(secrets.token_urlsafe(32))
        self._sessions[session.id] = session
        return session

    def renew(self, session: Session) -> Session:
        """The same session under a new id and a new CSRF token (at login)."""
        self._sessions.pop(session.id, None)
        session.id = secrets.token_urlsafe(32)
        session.csrf = secrets.token_urlsafe(32)
        self._sessions[session.id] = session
        return session

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid, session in list(self._sessions.items()):
            if now - session.used > IDLE:
                del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))

    def set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            path=PATH,
            httponly=True,
            samesite="Lax",
            secure=self.secure,
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path=PATH)


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return (
        session is not None
        and isinstance(token, str)
        and bool(token)
        and secrets.compare_digest(session.csrf, token)
    )
