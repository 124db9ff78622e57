"""What the identity broker keeps, and the storage port it keeps it through.

The broker's protocol state is short-lived and must survive a change of process (any gateway
process may receive a callback or a token request): pending upstream logins, authorization
codes, issued tokens (for revocation), pairwise subjects, registered clients and the login
sessions userinfo answers from. ``gateway.store.oidc`` implements :class:`OidcStore` with
SQLAlchemy; nothing here knows about a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

CHANNELS = ("online", "kiosk", "counter", "mobile")


@dataclass(frozen=True, slots=True)
class Client:
    """A portal, kiosk or counter system acting for residents; bound to one partner agency."""

    client_id: str
    redirect_uris: tuple[str, ...]
    jwks: dict[str, Any]  # public keys for private_key_jwt, the only client authentication
    agency_id: str  # the audience of every access token issued to this client
    channel: str = "online"
    name: str = ""
    sandbox: bool = False
    identity_documents: bool = False  # may be released document numbers (scope below)
    post_logout_redirect_uris: tuple[str, ...] = ()  # RP-initiated logout: where to return

    def metadata(self) -> dict[str, Any]:
        """The RFC 7591 client metadata, as answered to a registration."""
        return {
            "client_id": self.client_id,
            "client_name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "jwks": self.jwks,
            "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "agency_id": self.agency_id,
            "channel": self.channel,
            "identity_documents": self.identity_documents,
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
        }


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A portal's validated authorization request, kept while the resident logs in upstream."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str
    scope: str

    def as_dict(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "scope": self.scope,
        }


@dataclass(frozen=True, slots=True)
class LoginTransaction:
    """One pending upstream login: single-use, found by ``state`` at one provider only."""

    state: str
    provider: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    request: AuthorizationRequest
    created_at: datetime
    expires_at: datetime
    browser_hash: str = ""  # SHA-256 of the login cookie of the browser that started it


@dataclass(frozen=True, slots=True)
class Session:
    """A completed upstream login as the broker serves it: who, how surely, what claims."""

    login_id: str
    person_id: str
    acr: str  # urn:gba:loa:...
    auth_time: int
    claims: dict[str, Any]  # the canonical identity claims (CanonicalIdentity.claims())
    expires_at: datetime
    browser_hash: str | None = None  # SHA-256 of the OP session cookie set at the callback


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A downstream authorization code (stored by its SHA-256, never in clear)."""

    code_hash: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    scope: str
    login_id: str
    person_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Redemption:
    """What redeeming a code found: the code, and whether this was its first use."""

    code: IssuedCode
    first_use: bool


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An issued token, kept until it expires so that it can be revoked and introspected."""

    jti: str
    kind: str  # access | id
    code_hash: str
    client_id: str
    agency_id: str
    channel: str
    login_id: str
    person_id: str
    expires_at: datetime
    revoked_at: datetime | None = field(default=None)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token (stored by its SHA-256). Its family is the code the login's first
    tokens were issued from: every rotation stays in it, and a reuse revokes all of it."""

    token_hash: str
    family: str  # the code_hash of the authorization code that started the family
    client_id: str
    agency_id: str
    channel: str
    login_id: str
    person_id: str
    scope: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = field(default=None)
    revoked_at: datetime | None = field(default=None)


@dataclass(frozen=True, slots=True)
class Rotation:
    """What presenting a refresh token found: the token, and whether it was still live.

    ``live`` False: used before (a replay: the family is now revoked), revoked or expired."""

    token: RefreshToken
    live: bool


Row = Mapping[str, Any]


class OidcRecords(Protocol):
    """Durable protocol state, as the store keeps it; every method is one short transaction.

    ``gateway.store`` may not import this package, so the store reads the records it is
    given by attribute and answers plain mappings (``dataclasses.asdict`` shapes);
    :class:`OidcStore` turns those back into the records above.
    """

    async def save_transaction(self, transaction: LoginTransaction) -> None: ...

    async def take_transaction(self, provider: str, state: str, now: datetime) -> Row | None:
        """The pending login of ``provider`` with ``state``, deleted as it is read."""
        ...

    async def save_session(self, session: Session, now: datetime) -> None: ...

    async def session(self, login_id: str, now: datetime) -> Row | None: ...

    async def save_code(self, code: IssuedCode, now: datetime) -> None: ...

    async def redeem_code(self, code_hash: str, now: datetime) -> tuple[Row, bool] | None:
        """The code and whether this was its first use; a second use revokes its tokens."""
        ...

    async def record_tokens(self, tokens: list[TokenRecord]) -> bool:
        """Store issued tokens; False (and the tokens revoked) if their code was replayed."""
        ...

    async def token(self, jti: str) -> Row | None: ...

    async def save_refresh(self, token: RefreshToken, now: datetime) -> bool:
        """Store a new refresh token; False (and it revoked) if its family was revoked."""
        ...

    async def rotate_refresh(
        self, token_hash: str, client_id: str, now: datetime
    ) -> tuple[Row, bool] | None:
        """The refresh token and whether it was live for ``client_id``: a live one of that
        client is used up as it is read; a used one presented again by its client revokes its
        whole family (and the family's access tokens); another client's is left untouched."""
        ...

    async def end_login(self, login_id: str, now: datetime) -> None:
        """Logout: the login's session, refresh tokens and access tokens end now."""
        ...

    async def browser_session(self, browser_hash: str, now: datetime) -> Row | None:
        """The live login session an OP session cookie (by its hash) belongs to."""
        ...

    async def subject(self, agency_id: str, person_id: str) -> str:
        """The pairwise subject of a person for one agency, created on first use."""
        ...

    async def person_of(self, agency_id: str, subject: str) -> str | None: ...

    async def client(self, client_id: str) -> Row | None: ...

    async def save_client(self, client: Client, now: datetime) -> None: ...

    async def use_jti(self, issuer: str, jti: str, now: datetime, expires_at: datetime) -> bool:
        """False when ``jti`` from ``issuer`` was already seen within its window."""
        ...

    async def agency_exists(self, agency_id: str) -> bool: ...


def _only(cls: type, row: Row) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in row.items() if k in names}


class OidcStore:
    """The broker's typed view of its :class:`OidcRecords`."""

    def __init__(self, records: OidcRecords) -> None:
        self._records = records
        self.save_transaction = records.save_transaction
        self.save_session = records.save_session
        self.save_code = records.save_code
        self.record_tokens = records.record_tokens
        self.save_refresh = records.save_refresh
        self.end_login = records.end_login
        self.subject = records.subject
        self.person_of = records.person_of
        self.save_client = records.save_client
        self.use_jti = records.use_jti
        self.agency_exists = records.agency_exists

    async def take_transaction(
        self, provider: str, state: str, now: datetime
    ) -> LoginTransaction | None:
        row = await self._records.take_transaction(provider, state, now)
        if row is None:
            return None
        request = AuthorizationRequest(**_only(AuthorizationRequest, row["request"]))
        return LoginTransaction(**{**_only(LoginTransaction, row), "request": request})

    async def session(self, login_id: str, now: datetime) -> Session | None:
        row = await self._records.session(login_id, now)
        return None if row is None else Session(**_only(Session, row))

    async def redeem_code(self, code_hash: str, now: datetime) -> Redemption | None:
        found = await self._records.redeem_code(code_hash, now)
        if found is None:
            return None
        row, first_use = found
        return Redemption(IssuedCode(**_only(IssuedCode, row)), first_use)

    async def rotate_refresh(
        self, token_hash: str, client_id: str, now: datetime
    ) -> Rotation | None:
        found = await self._records.rotate_refresh(token_hash, client_id, now)
        if found is None:
            return None
        row, live = found
        return Rotation(RefreshToken(**_only(RefreshToken, row)), live)

    async def browser_session(self, browser_hash: str, now: datetime) -> Session | None:
        row = await self._records.browser_session(browser_hash, now)
        return None if row is None else Session(**_only(Session, row))

    async def token(self, jti: str) -> TokenRecord | None:
        row = await self._records.token(jti)
        return None if row is None else TokenRecord(**_only(TokenRecord, row))

    async def client(self, client_id: str) -> Client | None:
        row = await self._records.client(client_id)
        if row is None:
            return None
        return Client(
            **{
                **_only(Client, row),
                "redirect_uris": tuple(row["redirect_uris"]),
                "post_logout_redirect_uris": tuple(row.get("post_logout_redirect_uris", ())),
            }
        )
