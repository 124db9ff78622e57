"""Schemathesis against the running sandbox's own ``/openapi.json``.

Every operation of the document is called with generated requests, valid ones (positive) and
ones that break the document's own constraints (negative), twice over:

* **credentialed**: signed operations are signed as the sandbox agency ``hk-ird`` (RFC 9421
  over exactly the bytes sent, by a ``requests`` auth hook), every other operation carries a
  resident's gateway access token (陳大文, logged in through the sandbox iAM Smart). So the
  generated bodies and parameters reach the handlers behind the 401. (The token lives five
  minutes: a very long run ends with 401s, which the document lists.)
* **anonymous**: no credentials at all. Signed partner operations and the resident's own
  operations answer 401, which the document must say.

Any 5xx fails the test, and so does an answer that the document does not describe: an
undocumented status code, an undocumented content type, or a body that does not match the
documented schema. The budget is a fixed number of examples per operation and mode
(``GBA_FUZZ_EXAMPLES`` raises it, ``tests/fuzz/conftest.py``).

The sandbox gateway (``gateway`` fixture) serves inside the test's event loop, and
schemathesis calls it synchronously (``requests``), so the whole run happens in a worker
thread (``asyncio.to_thread``) while the loop serves.

Schemathesis only sends what a schema can describe: ``test_fuzz_hostile_requests.py`` sends
the bytes no schema generates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from gateway.trust.keys import SigningKey
from gateway.trust.profile import sign_request
from tests.conftest import RunningGateway
from tests.fuzz.conftest import Credentials, examples

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ANONYMOUS_EXAMPLES = 4  # per operation and mode: the 401s and the public routes
CREDENTIALED_EXAMPLES = 8  # per operation and mode, past the 401
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@dataclass(frozen=True)
class Finding:
    run: str
    operation: str
    mode: str
    status: int
    message: str


@dataclass
class Run:
    """One pass over the document: its name, credentials, budget and what it found."""

    name: str
    per_operation: int
    credentials: Callable[[Any], dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    calls: int = 0
    skipped: list[str] = field(default_factory=list)  # no negative case could be made


class SignAsAgency(requests.auth.AuthBase):
    """Sign the prepared request, over the very bytes and URL sent, as a sandbox agency."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        for name in ("Signature-Input", "Signature", "Content-Digest"):
            request.headers.pop(name, None)  # the generated placeholders
        try:
            headers = sign_request(
                method=str(request.method),
                url=str(request.url),
                key=self.key,
                now=datetime.now(UTC),
                body=body,
                content_type=request.headers.get("Content-Type"),
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        except ValueError:  # a generated value no signature can cover (not ASCII ...)
            return request  # sent unsigned: 401
        request.headers.update(headers)
        return request


def _is_signed(operation: Any) -> bool:
    return bool(operation.definition.raw.get("security"))


def _fuzz_operation(operation: Any, mode: GenerationMode, run: Run, base_url: str) -> None:
    session = requests.Session()

    @settings(
        max_examples=run.per_operation,
        phases=[Phase.explicit, Phase.generate],
        # filter_too_much stays on: it ends a negative pass that can produce nothing quickly.
        suppress_health_check=[h for h in HealthCheck if h is not HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        run.calls += 1
        response = case.call(
            base_url=base_url,
            session=session,
            timeout=30,
            allow_redirects=False,
            **run.credentials(operation),
        )
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            run.findings.append(
                Finding(run.name, operation.label, mode.value, response.status_code, str(group))
            )

    try:
        call()
    except (Unsatisfiable, FailedHealthCheck):
        # Nothing to break: no negative case survives serialization (an operation with no
        # parameters, or with only string path parameters and form fields).
        if mode is not GenerationMode.NEGATIVE:
            raise
        run.skipped.append(operation.label)
    finally:
        session.close()


def _fuzz(base_url: str, runs: list[Run]) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    for run in runs:
        for operation in operations:
            for mode in MODES:
                _fuzz_operation(operation, mode, run, base_url)


def _report(findings: list[Finding]) -> str:
    """The first request of each distinct failure (run, operation, mode, status, titles)."""
    first: dict[tuple[str, ...], Finding] = {}
    counts: dict[tuple[str, ...], int] = {}
    for finding in findings:
        titles = " / ".join(
            line.strip() for line in finding.message.splitlines() if line.startswith("- ")
        )
        key = (finding.run, finding.operation, finding.mode, str(finding.status), titles)
        first.setdefault(key, finding)
        counts[key] = counts.get(key, 0) + 1
    return "\n\n".join(
        f"{' '.join(key[:4])} ({counts[key]}x): {key[4]}\n{first[key].message}" for key in first
    )


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_sandbox_api_answers_as_its_openapi_document_says(
    gateway: RunningGateway, credentials: Credentials
) -> None:
    agency = SignAsAgency(credentials.agency_key)
    bearer = {"headers": {"Authorization": f"Bearer {credentials.access_token}"}}

    def credentials_for(operation: Any) -> dict[str, Any]:
        return {"auth": agency} if _is_signed(operation) else bearer

    runs = [  # credentialed first, while the access token (5 minutes) is fresh
        Run("credentialed", examples(CREDENTIALED_EXAMPLES), credentials_for),
        Run("anonymous", examples(ANONYMOUS_EXAMPLES), lambda _: {}),
    ]
    await asyncio.to_thread(_fuzz, gateway.url, runs)

    findings = [finding for run in runs for finding in run.findings]
    assert all(run.calls for run in runs)
    assert not findings, f"{len(findings)} finding(s):\n\n{_report(findings)}"
