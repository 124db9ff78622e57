"""The kit's checks of the gateway's material routes, as a tester's agency sees them (issue 16).

``gba-gateway conformance materials --gateway URL --agency ID --key FILE`` acts as the
tester's own registered agency (its private key) towards a **sandbox** gateway:

- ``material-upload``: the agency uploads a PDF with a signed ``POST /v1/materials``; the
  answer is 201, signed by the gateway (verified against its published JWKS), with the
  RFC 9530 ``sha-256`` digest of exactly the bytes sent, their size and type.
- ``material-fetch-handler``: a throwaway submitting agency the kit registers in the sandbox
  uploads a file and submits a case of the individual-business matter naming it, routed
  with the tester's agency as reviewer (the route is put back afterwards). Once the
  gateway queued the tester's forward, the tester's agency fetches the file at the case's
  ``href`` with a signed GET: 200, signed, and the bytes, ``Content-Digest`` and the listed
  digest agree.
- ``material-fetch-unrelated``: the tester's agency fetches another upload of the submitter,
  bound to no case of its own, and an id that does not exist: both 404, the same problem.

Each check's verdict is pass, fail, or skip (when an earlier step it needs failed).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from gateway.conformance.envelope import KIT_LEGAL_BASIS, MATTER, canonical_application
from gateway.conformance.judges import Verdict
from gateway.domain.legal_basis import HEADER as LEGAL_BASIS_HEADER
from gateway.trust.httpsig import HttpMessage
from gateway.trust.keys import (
    HTTP,
    PURPOSE_MEMBER,
    SigningKey,
    VerificationKey,
    alg_for_public_key,
    generate_private_key,
    public_key_from_jwk,
)
from gateway.trust.profile import sign_request, verify_response

Say = Callable[[str], None]
PDF = "application/pdf"
CHECK_IDS = ("material-upload", "material-fetch-handler", "material-fetch-unrelated")


def _pdf(label: str) -> bytes:
    return f"%PDF-1.7\n% {label}\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".encode()


def _digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


class KitStepError(Exception):
    """A step did not get what it needed; the message says what came instead."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class GatewayClient:
    """Signed calls to the gateway as one agency; every signed answer is verified."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, key: SigningKey, jwks: dict[str, Any]
    ) -> None:
        self.session, self.url, self.key, self._jwks = session, url.rstrip("/"), key, jwks

    def _resolve(self, kid: str) -> VerificationKey:
        for jwk in self._jwks.get("keys", []):
            if jwk.get("kid") == kid and jwk.get(PURPOSE_MEMBER, HTTP) == HTTP:
                public = public_key_from_jwk(jwk)
                return VerificationKey(kid, "gateway", public, alg_for_public_key(public))
        raise KitStepError(f"the gateway signed with {kid}, which its JWKS does not publish")

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Reply:
        """A signed call (``extra_headers`` of the profile, e.g. ``GBA-Legal-Basis``, are
        signed too) whose signed answer is verified."""
        url = path if path.startswith("http") else self.url + path
        headers = sign_request(
            method=method,
            url=url,
            key=self.key,
            now=datetime.now(UTC),
            body=body,
            content_type=content_type,
            idempotency_key=secrets.token_urlsafe(16) if method == "POST" else None,
            extra_headers=extra_headers,
        )
        async with self.session.request(method, url, data=body, headers=headers) as response:
            data = await response.read()
            reply = Reply(response.status, data, dict(response.headers))
            if "Signature" not in response.headers:
                raise KitStepError(f"{method} {path}: {response.status}, answer not signed")
            verify_response(
                HttpMessage.response(response.status, list(response.headers.items())),
                data,
                request=HttpMessage.request(method, url, headers),
                resolve_key=self._resolve,
                now=datetime.now(UTC),
            )
            return reply


@dataclass(frozen=True)
class MaterialResult:
    check_id: str
    verdict: Verdict


async def _upload(client: GatewayClient, data: bytes) -> dict[str, Any]:
    reply = await client.call("POST", "/v1/materials", data, PDF)
    answer = reply.json()
    if reply.status != 201 or not isinstance(answer, dict):
        raise KitStepError(f"POST /v1/materials: {reply.status} {reply.body[:160]!r}")
    wanted = {"digest": _digest(data), "size": len(data), "media_type": PDF}
    got = {k: answer.get(k) for k in wanted}
    if got != wanted or not str(answer.get("material_id", "")).startswith("mat_"):
        raise KitStepError(f"POST /v1/materials answered {got}, not {wanted}")
    return answer


async def _sandbox(session: aiohttp.ClientSession, method: str, url: str, body: Any) -> Any:
    async with session.request(method, url, json=body) as response:
        if response.status not in (200, 201):
            raise KitStepError(f"{method} {url}: {response.status} {await response.text()}")
        return await response.json()


async def _forwarded_case(
    session: aiohttp.ClientSession,
    gateway: str,
    agency_id: str,
    jwks: dict[str, Any],
) -> tuple[GatewayClient, str, dict[str, Any], bytes]:
    """A throwaway submitter's case naming an upload, forwarded to ``agency_id``: the
    submitter's client, the application id, the listed material and its bytes."""
    submitter_id = f"conformance-submitter-{secrets.token_hex(4)}"
    key = SigningKey(f"{submitter_id}-key-1", generate_private_key("ed25519"), "ed25519")
    await _sandbox(
        session,
        "POST",
        f"{gateway}/sandbox/v1/agencies",
        {
            "agency_id": submitter_id,
            "jurisdiction": "HK",
            "names": {"en": "Conformance kit submitter"},
            "keys": [key.jwk()],
            "matters": ["*"],
        },
    )
    submitter = GatewayClient(session, gateway, key, jwks)
    data = _pdf(f"conformance {submitter_id}")
    uploaded = await _upload(submitter, data)
    document = canonical_application()
    document["materials"] = [{"code": "APPLICATION_FORM", "material_id": uploaded["material_id"]}]
    reply = await submitter.call(
        "POST",
        "/v1/applications",
        json.dumps(document, ensure_ascii=False).encode(),
        "application/json",
        {LEGAL_BASIS_HEADER: KIT_LEGAL_BASIS.header()},  # every agency's submission declares it
    )
    answer = reply.json()
    if reply.status != 202 or not isinstance(answer, dict):
        raise KitStepError(f"POST /v1/applications: {reply.status} {reply.body[:200]!r}")
    application_id = str(answer["application_id"])
    for _ in range(100):
        view = (await submitter.call("GET", f"/v1/applications/{application_id}")).json()
        queued = [
            e
            for e in view.get("timeline", [])
            if e.get("type") == "message.queued" and e.get("agency") == agency_id
        ]
        if queued:
            listed = [
                m
                for e in view["timeline"]
                if e.get("type") == "application.received"
                for m in e.get("materials", [])
            ]
            return submitter, application_id, listed[0], data
        await asyncio.sleep(0.1)
    raise KitStepError(f"no forward to {agency_id} was queued for {application_id}")


async def run_material_checks(
    gateway: str,
    agency_id: str,
    key: SigningKey,
    *,
    say: Say = lambda line: None,
    request_timeout: float = 10.0,
) -> list[MaterialResult]:
    """Run the three checks against the sandbox gateway at ``gateway`` as ``agency_id``."""
    gateway = gateway.rstrip("/")
    results: list[MaterialResult] = []

    def verdict(check_id: str, found: Verdict) -> None:
        results.append(MaterialResult(check_id, found))
        say(f"  {check_id:<26} {found.outcome.upper():<4}  {found.reason}")

    timeout = aiohttp.ClientTimeout(total=request_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(f"{gateway}/.well-known/jwks.json") as response:
            jwks = await response.json()
        tester = GatewayClient(session, gateway, key, jwks)
        say(f"gba-gateway conformance materials: {gateway} as {agency_id} ({key.kid})")
        try:
            uploaded = await _upload(tester, _pdf(f"conformance upload {agency_id}"))
            verdict("material-upload", Verdict.passed(f"201, {uploaded['digest']}"))
        except (KitStepError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            verdict("material-upload", Verdict.failed(str(exc)))

        routes = await _sandbox(session, "GET", f"{gateway}/sandbox/v1/routes", None)
        before = next((r for r in routes.get("items", []) if r.get("matter") == MATTER), None)
        lead = before["lead"] if before else ""
        try:
            await _sandbox(
                session,
                "PUT",
                f"{gateway}/sandbox/v1/routes/{MATTER}",
                # the tester's agency needs the files (data minimisation: a reviewer is sent,
                # and may fetch, only the materials its declared fields name)
                {"lead": lead, "reviewers": [agency_id], "fields": {agency_id: ["/materials"]}},
            )
            submitter, application_id, listed, data = await _forwarded_case(
                session, gateway, agency_id, jwks
            )
            reply = await tester.call("GET", listed["href"])
            ok = (
                reply.status == 200
                and _digest(reply.body) == listed["digest"] == _digest(data)
                and reply.headers.get("Content-Digest") == listed["digest"]
            )
            verdict(
                "material-fetch-handler",
                Verdict.passed(f"200, {listed['digest']} matches")
                if ok
                else Verdict.failed(
                    f"{reply.status}, Content-Digest {reply.headers.get('Content-Digest')}, "
                    f"bytes {_digest(reply.body)}, listed {listed['digest']}"
                ),
            )
            other = await _upload(submitter, _pdf(f"unbound {application_id}"))
            refused = await tester.call("GET", f"/v1/materials/{other['material_id']}")
            unknown = await tester.call("GET", "/v1/materials/mat_00000000000000000000000000")
            same = (refused.json() or {}).get("type") == (unknown.json() or {}).get("type")
            verdict(
                "material-fetch-unrelated",
                Verdict.passed("404, as for an unknown id")
                if (refused.status, unknown.status) == (404, 404) and same
                else Verdict.failed(f"{refused.status} and {unknown.status} (404 and 404 wanted)"),
            )
        except (KitStepError, aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            for check_id in CHECK_IDS[len(results) :]:
                verdict(check_id, Verdict.failed(str(exc)))
        finally:
            if before is not None:
                await _sandbox(
                    session,
                    "PUT",
                    f"{gateway}/sandbox/v1/routes/{MATTER}",
                    {"lead": before["lead"], "reviewers": before.get("reviewers", [])},
                )
    return results
