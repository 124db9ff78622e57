"""The tracer flow, narrated: one cross-border application from Hong Kong to Guangdong.

The sandbox HK agency (IRD) submits the HK-format XML of 陳大文 / CHAN Tai Man's individual
business registration in Hengqin, signed with its key. The demo then checks everything a
partner system should check: the gateway's response signature (against the published JWKS),
the receipt (a JWS, against the same JWKS), and follows the case until the Guangdong agency's
decision is on the timeline.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import hk_individual_business, legal_basis_headers
from gateway.trust.httpsig import HttpMessage
from gateway.trust.keys import (
    HTTP,
    PURPOSE_MEMBER,
    SigningKey,
    VerificationKey,
    alg_for_public_key,
    public_key_from_jwk,
)
from gateway.trust.profile import sign_request, verify_response
from gateway.trust.receipts import verify_receipt

Say = Callable[[str], None]


_UNSIGNED_REFUSALS = frozenset({400, 401})  # the answers to a request that did not verify


class DemoError(RuntimeError):
    """The tracer flow did not complete; the message says at which step."""


def _jwks_resolver(jwks: dict[str, Any]) -> Callable[[str], VerificationKey]:
    def resolve(kid: str) -> VerificationKey:
        for jwk in jwks.get("keys", []):
            if jwk.get("kid") == kid and jwk.get(PURPOSE_MEMBER) == HTTP:
                public = public_key_from_jwk(jwk)
                return VerificationKey(kid, "gateway", public, alg_for_public_key(public))
        raise DemoError(f"the gateway signed with {kid}, which its JWKS does not publish")

    return resolve


class PartnerClient:
    """A partner system's view of the gateway: every call signed, every answer verified."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, key: SigningKey, jwks: dict[str, Any]
    ) -> None:
        self._session = session
        self._url = url.rstrip("/")
        self._key = key
        self._resolve = _jwks_resolver(jwks)

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        status, answer, headers = await self.raw(method, path, body, content_type, extra_headers)
        return status, json.loads(answer), headers

    async def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """A signed call whose answer (verified like any) is returned as its bytes: a file.
        ``extra_headers``: a ``GBA-Channel`` among them is signed too."""
        url = self._url + path
        idempotency = secrets.token_urlsafe(16) if method == "POST" else None
        headers = sign_request(
            method=method,
            url=url,
            key=self._key,
            now=datetime.now(UTC),
            body=body,
            content_type=content_type,
            idempotency_key=idempotency,
            extra_headers=extra_headers,
        )
        async with self._session.request(method, url, data=body, headers=headers) as response:
            answer = await response.read()
            if response.status in _UNSIGNED_REFUSALS and "Signature" not in response.headers:
                # The gateway did not authenticate the request, so it does not sign its
                # answer: reported as the refusal it is, never taken as a success.
                return response.status, answer, dict(response.headers)
            verify_response(
                HttpMessage.response(response.status, list(response.headers.items())),
                answer,
                request=HttpMessage.request(method, url, headers),
                resolve_key=self._resolve,
                now=datetime.now(UTC),
            )
            return response.status, answer, dict(response.headers)


async def run_demo(
    url: str, data_dir: Path, *, patience: float = 30.0, say: Say = print
) -> dict[str, Any]:
    """Run the tracer flow against the sandbox at ``url``; return the final case view."""
    url = url.rstrip("/")
    hk = sandbox_agency("hk-ird")
    key = ensure_agency_key(data_dir, hk)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        async with session.get(url + "/readyz") as response:
            if response.status != 200:
                raise DemoError(f"the gateway at {url} is not ready ({response.status})")
        say(f"1. gateway ready at {url}")
        async with session.get(url + "/.well-known/jwks.json") as response:
            jwks = await response.json()
        say(f"2. fetched the JWKS: {', '.join(k['kid'] for k in jwks['keys'])}")
        client = PartnerClient(session, url, key, jwks)

        applicant = persona("chan-tai-man")
        document = hk_individual_business(applicant)
        say(
            f"3. {hk.names['en']} ({hk.id}) submits the HK-format XML ({len(document)} bytes) "
            f"for {applicant.name_original} / {applicant.family_name_latin} "
            f"{applicant.given_names_latin}, signed with {key.kid}, declaring the legal "
            "basis it sends the applicant's data on (GBA-Legal-Basis, signed too)"
        )
        status, body, headers = await client.call(
            "POST", "/v1/applications", document, "application/xml", legal_basis_headers()
        )
        if status != 202:
            raise DemoError(f"the submission was refused: {status} {body.get('title')}")
        application_id = body["application_id"]
        say(
            f"4. 202 Accepted, status {body['status']}, Location {headers.get('Location')}; "
            "the response signature verified against the JWKS"
        )
        claims = verify_receipt(body["receipt"], jwks)
        say(
            f"5. receipt verified (JWS {claims['jti']}): matter {claims['matter']}, "
            f"content digest {claims['content_digest'][:24]}…, deadline {claims['deadline']}"
        )

        seen = 0
        deadline = time.monotonic() + patience
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status, view, _ = await client.call("GET", f"/v1/applications/{application_id}")
            for event in view["timeline"][seen:]:
                say(f"   · {event['at']}  {event['type']:<34} by {event['actor']}")
            seen = len(view["timeline"])
            if view["status"] in ("approved", "rejected"):
                break
            await asyncio.sleep(0.2)
        else:
            raise DemoError(f"no decision within {patience:.0f} s (status {view.get('status')})")
        handlers = ", ".join(f"{h['agency_id']}: {h['state']}" for h in view["handlers"])
        say(f"6. case {application_id} is {view['status']} ({handlers})")
        return view
