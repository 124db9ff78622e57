"""A sandbox agency fetches the materials its forward lists, as a real agency system would.

Each material of a received case that has an ``href`` is fetched with a GET signed by the
agency's key; the gateway's signature on the answer is verified (bound to the request), and
the bytes' SHA-256 must be both the ``digest`` the signed forward listed and the answer's
``Content-Digest``. Only addresses below the gateway's own base URL are fetched (a forward
naming anything else is not followed). What each fetch found is kept on the agency's inbox
(:class:`Fetched`), for testers (the console) and tests.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import structlog

from gateway.domain.errors import GatewayError
from gateway.trust.httpsig import HttpMessage
from gateway.trust.keys import SigningKey, VerificationKey
from gateway.trust.profile import sign_request, verify_response
from gateway.web.messages import client_response_message

log = structlog.get_logger("gateway.sandbox")


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch of a listed material: the answer's status and whether the digest held."""

    material_id: str
    status: int
    digest_ok: bool
    size: int = 0


def listed(materials: object, base_url: str) -> list[Mapping[str, Any]]:
    """The fetchable items of a received application's ``materials`` (an ``href`` below the
    gateway's base URL, a material id and a digest)."""
    if not isinstance(materials, list):
        return []
    prefix = base_url.rstrip("/") + "/"
    return [
        m
        for m in materials
        if isinstance(m, Mapping)
        and isinstance(m.get("href"), str)
        and m["href"].startswith(prefix)
        and isinstance(m.get("material_id"), str)
        and isinstance(m.get("digest"), str)
    ]


def _sha256(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


async def fetch_all(
    session: aiohttp.ClientSession,
    key: SigningKey,
    materials: Iterable[Mapping[str, Any]],
    *,
    gateway_key: Callable[[str], VerificationKey],
    now: Callable[[], datetime],
) -> list[Fetched]:
    """Fetch each listed material with a signed GET; what each answer was."""
    found = []
    for material in materials:
        url = str(material["href"])
        headers = sign_request(method="GET", url=url, key=key, now=now())
        try:
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                verify_response(
                    client_response_message(response),
                    body,
                    request=HttpMessage.request("GET", url, headers),
                    resolve_key=gateway_key,
                    now=now(),
                )
                ok = (
                    response.status == 200
                    and _sha256(body) == material["digest"]
                    and response.headers.get("Content-Digest") == material["digest"]
                )
                found.append(Fetched(str(material["material_id"]), response.status, ok, len(body)))
        except (aiohttp.ClientError, TimeoutError, GatewayError) as exc:
            log.warning("sandbox.material_fetch_failed", url=url, error=type(exc).__name__)
            found.append(Fetched(str(material["material_id"]), 0, False))
            continue
        log.info(
            "sandbox.material_fetched",
            material_id=material["material_id"],
            status=found[-1].status,
            digest_ok=found[-1].digest_ok,
        )
    return found
