"""The identity broker's protocol state in SQL (``gateway.identity.ports.OidcRecords``).

``gateway.store`` and ``gateway.identity`` are independent layers: the records to save are
read by attribute (``dataclasses.asdict``), and rows are answered as plain mappings.

Each method is one short transaction of its own: no connection is ever held while the
broker talks HTTP to an identity provider. Single use is enforced by the database, so it
holds across processes: a pending login is taken by deleting its row (one taker wins), a code
is redeemed by setting ``used_at`` where it is still NULL (one redeemer wins), and a second
redemption marks the code replayed and revokes the tokens issued from it. A refresh token is
rotated the same way (``used_at`` set where NULL, one presenter wins); presenting a used one
revokes its whole family — every refresh and access token issued from the same code
(RFC 9700 §4.14.2). Expired rows are purged as new ones are written.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gateway.store.delivery import SqlNonces
from gateway.store.tables import (
    agencies,
    oidc_clients,
    oidc_codes,
    oidc_refresh_tokens,
    oidc_sessions,
    oidc_subjects,
    oidc_tokens,
    oidc_transactions,
)
from gateway.store.unit_of_work import SqlUnitOfWorkFactory

CODE_RETENTION = timedelta(minutes=15)  # a used code is kept past expiry to catch replays
Row = Mapping[str, Any]


def _row(row: Any) -> dict[str, Any] | None:
    return None if row is None else dict(row._mapping)


class SqlOidcStore:
    def __init__(self, db: SqlUnitOfWorkFactory) -> None:
        self._engine = db  # begin() / connect(): gated connections (unit_of_work.py)

    # ---- pending upstream logins ------------------------------------------------------

    async def save_transaction(self, transaction: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                oidc_transactions.delete().where(
                    oidc_transactions.c.expires_at < transaction.created_at
                )
            )
            await conn.execute(oidc_transactions.insert().values(**asdict(transaction)))

    async def take_transaction(self, provider: str, state: str, now: datetime) -> Row | None:
        where = (oidc_transactions.c.state == state, oidc_transactions.c.provider == provider)
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(oidc_transactions).where(*where))).first()
            if row is None:
                return None
            taken = await conn.execute(oidc_transactions.delete().where(*where))
            if taken.rowcount != 1 or row.expires_at <= now:
                return None
        return _row(row)

    # ---- sessions, codes, tokens ------------------------------------------------------

    async def save_session(self, session: Any, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                oidc_sessions.delete().where(
                    sa.or_(
                        oidc_sessions.c.login_id == session.login_id,
                        oidc_sessions.c.expires_at < now,
                    )
                )
            )
            await conn.execute(oidc_sessions.insert().values(**asdict(session)))

    async def session(self, login_id: str, now: datetime) -> Row | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(oidc_sessions).where(
                        oidc_sessions.c.login_id == login_id, oidc_sessions.c.expires_at > now
                    )
                )
            ).first()
        return _row(row)

    async def save_code(self, code: Any, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                oidc_codes.delete().where(oidc_codes.c.expires_at < now - CODE_RETENTION)
            )
            await conn.execute(
                oidc_tokens.delete().where(oidc_tokens.c.expires_at < now - CODE_RETENTION)
            )
            await conn.execute(oidc_codes.insert().values(**asdict(code)))

    async def redeem_code(self, code_hash: str, now: datetime) -> tuple[Row, bool] | None:
        by_hash = oidc_codes.c.code_hash == code_hash
        async with self._engine.begin() as conn:
            first = await conn.execute(
                oidc_codes.update()
                .where(by_hash, oidc_codes.c.used_at.is_(None))
                .values(used_at=now)
            )
            row = (await conn.execute(sa.select(oidc_codes).where(by_hash))).first()
            if row is None:
                return None
            if first.rowcount != 1:  # a replay: revoke what the first use issued
                await conn.execute(oidc_codes.update().where(by_hash).values(replayed_at=now))
                await _revoke_family(conn, code_hash, now)
        return dict(row._mapping), first.rowcount == 1

    async def record_tokens(self, tokens: list[Any]) -> bool:
        async with self._engine.begin() as conn:
            for token in tokens:
                await conn.execute(oidc_tokens.insert().values(**asdict(token)))
            hashes = {t.code_hash for t in tokens}
            replayed = (
                await conn.execute(
                    sa.select(oidc_codes.c.replayed_at).where(
                        oidc_codes.c.code_hash.in_(hashes), oidc_codes.c.replayed_at.is_not(None)
                    )
                )
            ).first()
            if replayed is not None:  # the code was replayed while these were being signed
                for family in hashes:
                    await _revoke_family(conn, family, replayed.replayed_at)
        return replayed is None

    async def token(self, jti: str) -> Row | None:
        async with self._engine.connect() as conn:
            found = await conn.execute(sa.select(oidc_tokens).where(oidc_tokens.c.jti == jti))
            return _row(found.first())

    # ---- refresh tokens, logout, browser sessions ------------------------------------------

    async def save_refresh(self, token: Any, now: datetime) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(
                oidc_refresh_tokens.delete().where(
                    oidc_refresh_tokens.c.expires_at < now - CODE_RETENTION
                )
            )
            await conn.execute(oidc_refresh_tokens.insert().values(**asdict(token)))
            replayed = (
                await conn.execute(
                    sa.select(oidc_codes.c.replayed_at).where(
                        oidc_codes.c.code_hash == token.family,
                        oidc_codes.c.replayed_at.is_not(None),
                    )
                )
            ).first()
            ended = (
                await conn.execute(  # revoked meanwhile: a reuse, a logout, a withdrawal
                    sa.select(oidc_refresh_tokens.c.revoked_at).where(
                        oidc_refresh_tokens.c.family == token.family,
                        oidc_refresh_tokens.c.revoked_at.is_not(None),
                    )
                )
            ).first()
            if replayed is not None or ended is not None:
                await _revoke_family(conn, token.family, now)
        return replayed is None and ended is None

    async def rotate_refresh(
        self, token_hash: str, client_id: str, now: datetime
    ) -> tuple[Row, bool] | None:
        by_hash = oidc_refresh_tokens.c.token_hash == token_hash
        async with self._engine.begin() as conn:
            first = await conn.execute(
                oidc_refresh_tokens.update()
                .where(
                    by_hash,
                    oidc_refresh_tokens.c.client_id == client_id,
                    oidc_refresh_tokens.c.used_at.is_(None),
                    oidc_refresh_tokens.c.revoked_at.is_(None),
                    oidc_refresh_tokens.c.expires_at > now,
                )
                .values(used_at=now)
            )
            row = (await conn.execute(sa.select(oidc_refresh_tokens).where(by_hash))).first()
            if row is None:
                return None
            reused = row.used_at is not None and row.client_id == client_id
            if first.rowcount != 1 and reused:
                await _revoke_family(conn, row.family, now)  # a rotated token came back
        return dict(row._mapping), first.rowcount == 1

    async def end_login(self, login_id: str, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(oidc_sessions.delete().where(oidc_sessions.c.login_id == login_id))
            for table in (oidc_refresh_tokens, oidc_tokens):
                await conn.execute(
                    table.update()
                    .where(table.c.login_id == login_id, table.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                )

    async def browser_session(self, browser_hash: str, now: datetime) -> Row | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(oidc_sessions).where(
                        oidc_sessions.c.browser_hash == browser_hash,
                        oidc_sessions.c.expires_at > now,
                    )
                )
            ).first()
        return _row(row)

    # ---- pairwise subjects --------------------------------------------------------------

    async def subject(self, agency_id: str, person_id: str) -> str:
        where = (oidc_subjects.c.agency_id == agency_id, oidc_subjects.c.person_id == person_id)
        for _ in range(3):
            try:
                async with self._engine.begin() as conn:
                    found = (
                        await conn.execute(sa.select(oidc_subjects.c.subject).where(*where))
                    ).scalar_one_or_none()
                    if found is not None:
                        return str(found)
                    subject = secrets.token_urlsafe(24)
                    await conn.execute(
                        oidc_subjects.insert().values(
                            agency_id=agency_id,
                            person_id=person_id,
                            subject=subject,
                            created_at=datetime.now(UTC),
                        )
                    )
                    return subject
            except IntegrityError:  # another process created it first: read it again
                continue
        raise RuntimeError("cannot allocate a pairwise subject")

    async def person_of(self, agency_id: str, subject: str) -> str | None:
        async with self._engine.connect() as conn:
            found = await conn.execute(
                sa.select(oidc_subjects.c.person_id).where(
                    oidc_subjects.c.agency_id == agency_id, oidc_subjects.c.subject == subject
                )
            )
            return found.scalar_one_or_none()

    # ---- clients, replay, agencies ------------------------------------------------------

    async def client(self, client_id: str) -> Row | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(oidc_clients).where(oidc_clients.c.client_id == client_id)
                )
            ).first()
        if row is None:
            return None
        data = row.metadata
        return {
            "client_id": row.client_id,
            "redirect_uris": data["redirect_uris"],
            "jwks": data["jwks"],
            "agency_id": row.agency_id,
            "channel": data.get("channel", "online"),
            "name": data.get("client_name", ""),
            "sandbox": row.sandbox,
            "identity_documents": data.get("identity_documents", False),
            "post_logout_redirect_uris": data.get("post_logout_redirect_uris", []),
        }

    async def save_client(self, client: Any, now: datetime) -> None:
        values = {
            "metadata": {
                "redirect_uris": list(client.redirect_uris),
                "jwks": client.jwks,
                "channel": client.channel,
                "client_name": client.name,
                "identity_documents": client.identity_documents,
                "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
            },
            "agency_id": client.agency_id,
            "sandbox": client.sandbox,
            "updated_at": now,
        }
        async with self._engine.begin() as conn:
            updated = await conn.execute(
                oidc_clients.update()
                .where(oidc_clients.c.client_id == client.client_id)
                .values(**values)
            )
            if updated.rowcount == 0:
                await conn.execute(
                    oidc_clients.insert().values(client_id=client.client_id, **values)
                )

    async def use_jti(self, issuer: str, jti: str, now: datetime, expires_at: datetime) -> bool:
        async with self._engine.begin() as conn:
            return await SqlNonces(conn).use(issuer, jti, now=now, expires_at=expires_at)

    async def agency_exists(self, agency_id: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.execute(sa.select(agencies.c.id).where(agencies.c.id == agency_id))
            return found.first() is not None


async def _revoke_family(conn: Any, family: str, now: datetime) -> None:
    """Every access and refresh token issued from one code, revoked (RFC 9700 §4.5, §4.14)."""
    for table, column in (
        (oidc_tokens, oidc_tokens.c.code_hash),
        (oidc_refresh_tokens, oidc_refresh_tokens.c.family),
    ):
        await conn.execute(
            table.update()
            .where(column == family, table.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
