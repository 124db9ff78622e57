"""A ``revoked_at`` added to the registry file later revokes the key already imported.

The registry file is imported at every start; the test restarts the gateway on the same
database (SQLite and PostgreSQL) after editing the file, as an operator would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
import yaml

from gateway.bootstrap import Overrides, create_app
from gateway.settings import Settings
from gateway.store.tables import agency_keys, nonces
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_request
from gateway.web.keys import STORE
from tests.conftest import Database, sandbox_settings

AGENCY = "hk-file-agency"


@dataclass
class Registry:
    path: Path
    settings: Settings
    start: Callable[[], Awaitable[Any]]  # (re)starts the gateway: the file is imported again

    def write(self, key: SigningKey, **key_fields: str) -> None:
        entry = {
            "id": AGENCY,
            "jurisdiction": "HK",
            "names": {"en": "An agency of the registry file"},
            "matters": ["*"],
            "keys": [{"jwk": key.jwk(), "kid": key.kid, **key_fields}],
        }
        self.path.write_text(yaml.safe_dump({"agencies": [entry]}))


@pytest.fixture
async def registry(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[Registry]:
    path = tmp_path / "agencies.yaml"
    settings = sandbox_settings(tmp_path, database, agencies_file=path)
    servers: list[Any] = []

    async def start() -> Any:
        if servers:
            await servers.pop().close()
        app = create_app(settings, Overrides())
        servers.append(await aiohttp_server(app, host="127.0.0.1", port=settings.port))
        return app

    yield Registry(path, settings, start)
    for server in servers:
        await server.close()


async def _work_list(settings: Settings, key: SigningKey) -> tuple[int, dict[str, Any]]:
    url = settings.base_url + "/v1/applications"
    headers = sign_request(method="GET", url=url, key=key, now=datetime.now(UTC))
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def _stored(app: Any, kid: str) -> tuple[datetime | None, int]:
    """The key's stored revocation time, and how many nonces the gateway holds."""
    async with app[STORE]() as uow:
        conn = uow.applications._conn  # the same transaction's connection
        revoked = (
            await conn.execute(sa.select(agency_keys.c.revoked_at).where(agency_keys.c.kid == kid))
        ).scalar_one()
        used = (await conn.execute(sa.select(sa.func.count()).select_from(nonces))).scalar_one()
    return revoked, used


async def test_revoked_at_added_to_the_file_later_revokes_the_imported_key(
    registry: Registry,
) -> None:
    key = SigningKey("hk-file-agency-1", generate_private_key("ed25519"), "ed25519")
    registry.write(key)
    app = await registry.start()
    status, _ = await _work_list(registry.settings, key)
    assert status == 200
    assert (await _stored(app, key.kid)) == (None, 1)

    revoked_at = datetime.now(UTC) - timedelta(minutes=1)
    registry.write(key, revoked_at=revoked_at.isoformat())
    app = await registry.start()  # the operator restarts: the file is imported again

    status, problem = await _work_list(registry.settings, key)
    assert status == 401
    assert problem["type"].endswith("/problems/unknown-key")
    assert (await _stored(app, key.kid)) == (revoked_at, 1)  # refused: no nonce kept


async def test_a_revocation_is_never_undone_or_postponed_by_the_file(registry: Registry) -> None:
    key = SigningKey("hk-file-agency-2", generate_private_key("ed25519"), "ed25519")
    first = datetime.now(UTC) - timedelta(hours=1)
    registry.write(key, revoked_at=first.isoformat())
    await registry.start()
    registry.write(key, revoked_at=(first + timedelta(days=30)).isoformat())  # later
    await registry.start()
    registry.write(key)  # and dropped altogether
    app = await registry.start()
    assert (await _stored(app, key.kid))[0] == first
    assert (await _work_list(registry.settings, key))[0] == 401
