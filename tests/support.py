"""Helpers for tests that talk to a running gateway as a partner agency would."""

from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from gateway.domain.legal_basis import HEADER as LEGAL_BASIS_HEADER
from gateway.domain.legal_basis import LegalBasis
from gateway.jurisdictions import Jurisdictions, registered
from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS, hk_individual_business
from gateway.settings import Settings
from gateway.store.database import create_engine
from gateway.store.tables import (
    applications,
    consents,
    delegations,
    idempotency_keys,
    identity_accounts,
    identity_links,
    logins,
    outbox,
    persons,
    timeline,
)
from gateway.trust.keys import SigningKey
from gateway.trust.profile import sign_request


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def agency_key(settings: Settings, agency_id: str) -> SigningKey:
    return ensure_agency_key(settings.sandbox_dir, sandbox_agency(agency_id))


def copied_jurisdictions(target: Path) -> Jurisdictions:
    """Each registered jurisdiction's folder copied under ``target`` (to change in a test),
    and the registry of the copies: their codecs read the copied field maps and schemas."""
    copies = []
    for jurisdiction in registered():
        folder = target / jurisdiction.folder.name
        shutil.copytree(jurisdiction.folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(replace(jurisdiction, folder=folder))
    return Jurisdictions(tuple(copies))


def sample_xml() -> bytes:
    return hk_individual_business(persona("chan-tai-man"))


async def send(
    settings: Settings,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    agency: str = "hk-ird",
    idempotency_key: str | None = None,
    sign: bool = True,
    headers: dict[str, str] | None = None,
    now: datetime | None = None,
    legal_basis: LegalBasis | None = SANDBOX_LEGAL_BASIS,
) -> Answer:
    """One request to the gateway, signed by a sandbox agency unless ``sign`` is False
    (at ``now``: the gateway's clock, when a test fixes it). A signed submission
    (``POST /v1/applications``) declares ``legal_basis`` in its signed ``GBA-Legal-Basis``
    header, as every agency's must (None: it declares none; a header in ``headers`` wins)."""
    url = settings.base_url + path
    out = dict(headers or {})
    if (
        sign
        and method == "POST"
        and path == "/v1/applications"
        and legal_basis is not None
        and not any(name.lower() == LEGAL_BASIS_HEADER.lower() for name in out)
    ):
        out[LEGAL_BASIS_HEADER] = legal_basis.header()
    if sign:
        if method == "POST" and idempotency_key is None:
            idempotency_key = secrets.token_urlsafe(12)
        out = sign_request(
            method=method,
            url=url,
            key=agency_key(settings, agency),
            now=now or datetime.now(UTC),
            body=body,
            content_type=content_type,
            idempotency_key=idempotency_key,
            extra_headers=out,
        )
    elif content_type:
        out.setdefault("Content-Type", content_type)
    data = io.BytesIO(body) if body is not None and len(body) > 512 * 1024 else body
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=out) as response,
    ):
        return Answer(response.status, await response.read(), dict(response.headers))


CASE_TABLES = (applications, timeline, outbox, idempotency_keys)
RESIDENT_TABLES = (persons, identity_accounts, identity_links, logins, consents, delegations)


async def row_counts(
    settings: Settings, tables: Sequence[sa.Table] = CASE_TABLES
) -> dict[str, int]:
    """How many rows each table holds (to assert that a refusal stored nothing)."""
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            return {
                table.name: (
                    await conn.execute(sa.select(sa.func.count()).select_from(table))
                ).scalar_one()
                for table in tables
            }
    finally:
        await engine.dispose()


FIXTURES = Path(__file__).parent / "fixtures"


INSURANCE = "11440400MB2C00031J3442030001000"  # social insurance: lead mo-fss, reviewer zh-hrss


def examined_by_its_lead(mappings: Path) -> None:
    """The social-insurance matter of a copied ``mappings`` folder with ``acceptance: agency``
    and no automatic decision: its Macau lead ``mo-fss`` examines and decides itself."""
    matter = mappings / "matters" / f"{INSURANCE}.yaml"
    text = matter.read_text("utf-8")
    text, count = re.subn(r"(?ms)^automatic_decision:\n.*?^(?=route:)", "", text)
    assert count == 1
    matter.write_text(text + "acceptance: agency\n", "utf-8")


async def refused_at_the_gateway(base_url: str, access_token: str) -> None:
    """Wait (bounded, polling) until the gateway itself refuses this access token as expired:
    its ``exp`` and the verifier's clock-skew leeway have passed."""
    async with aiohttp.ClientSession() as client:
        for _ in range(100):
            async with client.get(
                f"{base_url}/oauth2/userinfo",
                headers={"Authorization": f"Bearer {access_token}"},
            ) as response:
                if response.status == 401:
                    assert "invalid_token" in response.headers["WWW-Authenticate"]
                    return
                assert response.status == 200
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway never refused the access token")
