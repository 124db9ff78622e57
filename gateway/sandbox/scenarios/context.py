"""What a scenario works with: the running sandbox over HTTP, as its agencies and testers see it.

Signed calls go through the demo's :class:`~gateway.sandbox.demo.PartnerClient` (RFC 9421 on
the request, the gateway's response signature verified against the published JWKS), with the
sandbox agencies' private keys from ``<data dir>/keys/agencies/``. Receipts and vouchers are
verified against the same JWKS. Sample applications come from the local catalog
(``mappings/``), which the first scenario checks is the one the sandbox serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from gateway.domain.matters import Matter
from gateway.domain.values import local_date
from gateway.mapping.catalog import Catalog
from gateway.sandbox.agencies import agency_key_path, ensure_agency_key, sandbox_agency
from gateway.sandbox.demo import PartnerClient
from gateway.sandbox.samples import legal_basis_headers
from gateway.sandbox.scenarios.base import Check, OnStep, Steps, expect
from gateway.trust.digest import content_digest
from gateway.trust.receipts import verify_receipt

JSON = "application/json"
DECIDED = ("approved", "rejected", "not_accepted", "withdrawn", "result_delivered")


@dataclass(frozen=True, slots=True)
class Options:
    url: str
    data_dir: Path  # the sandbox's data folder: keys/agencies/<id>.pem
    mappings_dir: Path  # the catalog the samples are built from
    patience: float = 30.0  # seconds to wait for anything the sandbox does on its own
    token: str | None = None  # the sandbox access token, sent to /sandbox/v1 (beyond loopback)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def problem(self) -> str:
        """The problem type's slug of an RFC 9457 answer ('' for anything else)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("type"), str):
            return str(self.body["type"]).rsplit("/", 1)[-1]
        return ""

    def describe(self) -> str:
        if self.problem:
            return f"{self.status} {self.problem}: {self.body.get('detail') or ''}".rstrip(": ")
        text = json.dumps(self.body, ensure_ascii=False)
        return f"{self.status} {text[:160]}{'…' if len(text) > 160 else ''}"


class Context(Steps):
    def __init__(self, session: aiohttp.ClientSession, options: Options, on_step: OnStep) -> None:
        super().__init__(on_step=on_step, patience=options.patience)
        self.session = session
        self.options = options
        self.url = options.url.rstrip("/")
        self._jwks: dict[str, Any] | None = None
        self._clients: dict[str, PartnerClient] = {}
        self._catalog: Catalog | None = None

    # ---- the local catalog ----------------------------------------------------------------

    def catalog(self) -> list[Matter]:
        """The matters in force today in the local ``mappings/``, by code."""
        if self._catalog is None:
            self._catalog = Catalog.load(self.options.mappings_dir / "matters")
        return sorted(self._catalog.all(local_date(datetime.now(UTC))), key=lambda m: str(m.code))

    def matter(self, code: str) -> Matter:
        found = [m for m in self.catalog() if str(m.code) == code]
        expect(found, f"matter {code} in {self.options.mappings_dir / 'matters'}", "no such matter")
        return found[0]

    # ---- plain HTTP: public and sandbox routes --------------------------------------------

    async def http(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {**({"Content-Type": JSON} if data is not None else {}), **(headers or {})}
        if self.options.token and path.startswith("/sandbox/v1/"):
            headers.setdefault("Authorization", f"Bearer {self.options.token}")
        async with self.session.request(
            method, self.url + path, data=data, headers=headers
        ) as response:
            raw = await response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            return Answer(response.status, parsed, dict(response.headers))

    async def get_ok(self, path: str) -> Any:
        answer = await self.http("GET", path)
        expect(answer.status == 200, f"200 from GET {path}", answer.describe())
        return answer.body

    async def jwks(self) -> dict[str, Any]:
        if self._jwks is None:
            jwks = await self.get_ok("/.well-known/jwks.json")
            expect(
                isinstance(jwks, dict) and jwks.get("keys"), "a JWKS with keys", repr(jwks)[:120]
            )
            self._jwks = jwks
        return self._jwks

    # ---- signed calls as a sandbox agency -------------------------------------------------

    async def agency(self, agency_id: str) -> PartnerClient:
        """A partner client signing as ``agency_id`` with its key from the data folder."""
        if agency_id not in self._clients:
            path = agency_key_path(self.options.data_dir, agency_id)
            expect(
                path.is_file(),
                f"the private key of {agency_id} at {path}",
                "no such file (is --data-dir the sandbox's data folder?)",
            )
            key = ensure_agency_key(self.options.data_dir, sandbox_agency(agency_id))
            client = PartnerClient(self.session, self.url, key, await self.jwks())
            self._clients[agency_id] = client
        return self._clients[agency_id]

    async def signed(
        self,
        agency_id: str,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        legal_basis: bool = True,
    ) -> Answer:
        """One call signed by ``agency_id`` (with ``headers``, signed too when they are part
        of the profile: ``GBA-Channel``, ``GBA-Legal-Basis``); the gateway's answer must
        verify too. A submission (``POST /v1/applications``) declares the sandbox's legal
        basis, as every agency's must, unless ``legal_basis`` is False."""
        client = await self.agency(agency_id)
        data = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
        if legal_basis and method == "POST" and path == "/v1/applications":
            headers = {**legal_basis_headers(), **(headers or {})}
        status, answer, headers = await client.call(
            method, path, data, JSON if data is not None else None, headers
        )
        return Answer(status, answer, headers)

    async def case(self, agency_id: str, application_id: str) -> dict[str, Any]:
        answer = await self.signed(agency_id, "GET", f"/v1/applications/{application_id}")
        expect(
            answer.status == 200,
            f"200 from GET /v1/applications/{application_id} as {agency_id}",
            answer.describe(),
        )
        return dict(answer.body)

    async def follow(self, agency_id: str, application_id: str, status: str) -> dict[str, Any]:
        """Follow the case (as ``agency_id``) until it is ``status``; a case decided
        otherwise fails at once."""
        return await self.until(
            lambda: self.case(agency_id, application_id),
            lambda view: view["status"] == status,
            expected=f"the case {status}",
            seen=case_summary,
            hopeless=lambda view: view["status"] in DECIDED,
        )

    async def received_by(self, agency_id: str, application_id: str) -> int:
        """How many messages of this case the sandbox agency's inbox kept."""
        inbox = await self.get_ok(f"/sandbox/partners/{agency_id}/messages")
        return sum(1 for m in inbox["items"] if m.get("application_id") == application_id)

    # ---- receipts and vouchers ------------------------------------------------------------

    async def receipt(
        self, token: str, *, application_id: str, matter: str, status: str, body: bytes
    ) -> dict[str, Any]:
        """Verify a receipt against the JWKS and check that it is about this submission."""
        claims = verify_receipt(token, await self.jwks())
        wanted = {
            "sub": application_id,
            "matter": matter,
            "status": status,
            "content_digest": content_digest(body),
        }
        got = {name: claims.get(name) for name in wanted}
        expect(got == wanted, f"receipt claims {wanted}", f"{got}")
        return claims

    async def voucher(self, view: dict[str, Any], kind: str) -> dict[str, Any]:
        """The case's last voucher of ``kind``, verified against the JWKS."""
        found = [
            e for e in view["timeline"] if e["type"] == "voucher.issued" and e.get("kind") == kind
        ]
        kinds = [e.get("kind") for e in view["timeline"] if e["type"] == "voucher.issued"]
        expect(found, f"a {kind} voucher on the timeline", f"vouchers: {kinds}")
        claims = verify_receipt(found[-1]["voucher"], await self.jwks())
        expect(
            claims.get("sub") == view["application_id"] and claims.get("kind") == kind,
            f"a {kind} voucher for {view['application_id']}",
            f"sub {claims.get('sub')}, kind {claims.get('kind')}",
        )
        return claims


def case_summary(view: dict[str, Any]) -> str:
    handlers = ", ".join(f"{h['agency_id']} {h['state']}" for h in view.get("handlers", []))
    return f"{view.get('status')} ({handlers})"


def events(view: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in view["timeline"] if e["type"] == kind]


def encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


__all__ = ["Answer", "Check", "Context", "Options", "case_summary", "encoded", "events"]
