"""Requests no schema describes, to every operation that takes a body, and past crashes.

Schemathesis (``test_fuzz_openapi.py``) sends what the document can describe. Here every
operation with a request body gets bytes no schema generates: not UTF-8, a NUL, JSON or XML
nested far deeper than any parser recurses, an XML entity declaration, each as every media
type the operation takes and with an unknown ``charset``; signed as the sandbox agency
``hk-ird`` or with the sandbox resident's access token, so that they reach the body parsers.
Each must be answered with a status the document lists and never a 5xx (mostly a 4xx;
token introspection rightly answers ``{"active": false}``). Then the requests that answered 500
before the fixes of ``docs/fuzzing.md``, and those still known to fail (owned elsewhere).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from gateway.trust.profile import sign_request
from tests.conftest import RunningGateway
from tests.fuzz.conftest import Credentials

HOSTILE_BODIES = {
    "not UTF-8": b"\xff\xfe\xfd",
    "a NUL": b"\x00",
    "JSON arrays nested 100000 deep": b"[" * 100_000,
    "JSON objects nested 50000 deep": b'{"a":' * 50_000,
    "XML nested 100000 deep": b"<a>" * 100_000,
    "an XML entity declaration": b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
}


# Known failures not fixed yet (docs/fuzzing.md): the operation, and why it fails. Each must
# still fail here: once it is fixed, it must leave this list (as a strict xfail would ask).
KNOWN_FAILURES: dict[str, str] = {}


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the statuses its operation documents."""

    label: str
    operation: str
    method: str
    path: str
    body: bytes
    content_type: str
    signed: bool
    documented: frozenset[str]


def _hostile_requests(document: dict[str, Any]) -> list[Hostile]:
    """Every hostile body, as every media type an operation takes (and an unknown charset)."""
    out = []
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            media_types = list(operation.get("requestBody", {}).get("content", {}))
            values = _path_values(operation)
            path = re.sub(r"\{([^}]+)\}", lambda match, values=values: values[match[1]], route)
            for name, body in HOSTILE_BODIES.items():
                for media_type in media_types:
                    for content_type in (media_type, f"{media_type}; charset=no-such-charset"):
                        out.append(
                            Hostile(
                                label=f"{method.upper()} {route} with {name} as {content_type}",
                                operation=f"{method.upper()} {route}",
                                method=method.upper(),
                                path=path,
                                body=body,
                                content_type=content_type,
                                signed=bool(operation.get("security")),
                                documented=frozenset(operation["responses"]),
                            )
                        )
    return out


def _path_values(operation: dict[str, Any]) -> dict[str, str]:
    """A value for each path parameter: the first of its enum (a real provider ...), or x0."""
    return {
        parameter["name"]: str(parameter["schema"].get("enum", ["x0"])[0])
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    }


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_bodies_no_schema_describes_get_a_documented_answer_never_a_5xx(
    gateway: RunningGateway, credentials: Credentials
) -> None:
    key, token = credentials.agency_key, credentials.access_token
    wrong: dict[str, list[str]] = {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.url}/openapi.json") as answer:
            document = await answer.json()
        hostile = _hostile_requests(document)
        for request in hostile:
            url = gateway.url + request.path
            headers = {"Content-Type": request.content_type, "Idempotency-Key": "hostile-0001"}
            if request.signed:
                headers = sign_request(
                    method=request.method,
                    url=url,
                    key=key,
                    now=datetime.now(UTC),
                    body=request.body,
                    content_type=request.content_type,
                    idempotency_key=headers["Idempotency-Key"],
                )
            else:
                headers["Authorization"] = f"Bearer {token}"
            async with session.request(
                request.method, url, data=request.body, headers=headers, allow_redirects=False
            ) as answer:
                if answer.status >= 500 or str(answer.status) not in request.documented:
                    found = f"{request.label}: {answer.status} {await answer.text()}"
                    wrong.setdefault(request.operation, []).append(found)
    assert len(hostile) > 100
    unexpected = [line for op, lines in wrong.items() if op not in KNOWN_FAILURES for line in lines]
    assert not unexpected, f"{len(unexpected)} of {len(hostile)}:\n" + "\n".join(unexpected)
    fixed = set(KNOWN_FAILURES) - set(wrong)
    assert not fixed, f"fixed now, remove from KNOWN_FAILURES: {sorted(fixed)}"


# A JWS whose header segment is JSON nested 3000 deep: within aiohttp's 8 KiB header line.
DEEP_TOKEN = base64.urlsafe_b64encode(b"[" * 3_000).rstrip(b"=").decode() + ".e30.c2ln"
# Requests that answered 500 before the fixes of docs/fuzzing.md, and their answer now.
REGRESSIONS = [
    (
        "POST",
        "/sandbox/v1/agencies",
        {"Content-Type": "application/json"},
        b'{"agency_id": "tester-1", "jurisdiction": "HK", "keys": 5}',
        422,
    ),
    ("GET", "/v1/me", {"Authorization": f"Bearer {DEEP_TOKEN}"}, b"", 401),
    ("GET", "/oauth2/userinfo", {"Authorization": f"Bearer {DEEP_TOKEN}"}, b"", 401),
    (
        "POST",
        "/oauth2/register",
        {"Content-Type": "application/json"},
        HOSTILE_BODIES["JSON arrays nested 100000 deep"],
        400,
    ),
    (
        "POST",
        "/sandbox/idp/hk/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"grant_type=\xff",
        400,
    ),
]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_requests_that_crashed_the_sandbox_are_refused(gateway: RunningGateway) -> None:
    answers = []
    async with aiohttp.ClientSession() as session:
        for method, path, headers, body, _ in REGRESSIONS:
            async with session.request(
                method, gateway.url + path, data=body, headers=headers
            ) as answer:
                answers.append(answer.status)
    assert answers == [status for *_, status in REGRESSIONS]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_lax_sandbox_inbox_refuses_json_nested_too_deeply(gateway: RunningGateway) -> None:
    inbox = f"{gateway.url}/sandbox/partners/gd-hq-csb/messages"
    async with aiohttp.ClientSession() as session:
        faults = f"{gateway.url}/sandbox/v1/agencies/gd-hq-csb/faults"
        async with session.put(faults, json={"lax": True}) as answer:
            assert answer.status == 200
        body = HOSTILE_BODIES["JSON arrays nested 100000 deep"]
        headers = {"Content-Type": "application/json"}
        async with session.post(inbox, data=body, headers=headers) as answer:
            assert answer.status == 400


# Media types no operation of the gateway takes, and a multipart body with a broken boundary:
# aiohttp's multipart reader raises ValueError on these if a route hands them to request.post().
UNEXPECTED_CONTENT_TYPES = (
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "multipart/form-data; boundary=",
    "multipart/mixed; boundary=x",
    "text/plain",
    "application/octet-stream",
)
UNEXPECTED_BODIES = (b"", b"a=b", b"--x\r\n\r\n", b"\xff\xfe")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_unexpected_content_types_get_a_4xx_problem_never_a_5xx(
    gateway: RunningGateway, credentials: Credentials
) -> None:
    """Every operation taking a body answers a 4xx problem (or the OAuth error JSON its
    document names) to a content type it does not take: never a 500 from a body parser."""
    key, token = credentials.agency_key, credentials.access_token
    wrong, sent = [], 0
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.url}/openapi.json") as answer:
            document = await answer.json()
        for route, operations in document["paths"].items():
            for method, operation in operations.items():
                if "requestBody" not in operation:
                    continue
                values = _path_values(operation)
                path = re.sub(r"\{([^}]+)\}", lambda m, v=values: v[m[1]], route)
                url = gateway.url + path
                for content_type in UNEXPECTED_CONTENT_TYPES:
                    for body in UNEXPECTED_BODIES:
                        headers = {"Content-Type": content_type, "Idempotency-Key": "odd-type-01"}
                        if operation.get("security"):
                            headers = sign_request(
                                method=method.upper(),
                                url=url,
                                key=key,
                                now=datetime.now(UTC),
                                body=body,
                                content_type=content_type,
                                idempotency_key=headers["Idempotency-Key"],
                            )
                        else:
                            headers["Authorization"] = f"Bearer {token}"
                        async with session.request(
                            method, url, data=body, headers=headers, allow_redirects=False
                        ) as answer:
                            sent += 1
                            media = answer.content_type
                            if not 400 <= answer.status < 500 or media not in (
                                "application/problem+json",
                                "application/json",
                            ):
                                text = (await answer.text())[:200]
                                wrong.append(
                                    f"{method.upper()} {route} as {content_type} {body!r}: "
                                    f"{answer.status} {media} {text}"
                                )
    assert sent > 50
    assert not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong)
