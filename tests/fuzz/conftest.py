"""The fuzzing budget: small enough for ``make test``, raised with ``GBA_FUZZ_EXAMPLES``.

Every Hypothesis test in ``tests/fuzz`` states its own budget with :func:`examples`, the
number of examples it runs in ``make test``. ``GBA_FUZZ_EXAMPLES=N`` runs every one of them
with at least ``N`` examples instead (and schemathesis with ``N`` per operation and mode), for
a longer run on a developer's machine::

    GBA_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/fuzz -q

The session's ``gba`` profile (``tests/conftest.py``: no deadline, no example database)
applies as everywhere else. The ``credentials`` fixture gives the HTTP fuzzers a sandbox
agency's signing key and a sandbox resident's access token, so that generated requests get
past the 401. ``docs/fuzzing.md`` lists what is fuzzed and what was found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from gateway.sandbox.portal import SandboxPortal
from gateway.trust.keys import SigningKey
from tests.conftest import RunningGateway
from tests.support import agency_key

FUZZ_EXAMPLES_ENV = "GBA_FUZZ_EXAMPLES"


def _override() -> int | None:
    raw = os.environ.get(FUZZ_EXAMPLES_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{FUZZ_EXAMPLES_ENV} must be a positive integer, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{FUZZ_EXAMPLES_ENV} must be a positive integer, not {raw!r}")
    return value


def examples(default: int) -> int:
    """A test's number of examples: ``default``, or more when ``GBA_FUZZ_EXAMPLES`` says so."""
    override = _override()
    return default if override is None else max(default, override)


@dataclass(frozen=True)
class Credentials:
    """Who the fuzzers speak as: a sandbox agency's signing key, a sandbox resident's token."""

    agency_key: SigningKey
    access_token: str


SIGNING_AGENCY = "hk-ird"
RESIDENT = ("hk", "chan-tai-man")  # identity provider, sandbox persona (陳大文)


@pytest.fixture
async def credentials(gateway: RunningGateway) -> Credentials:
    """``hk-ird``'s key (signed partner operations) and 陳大文's access token (``/v1/me``)."""
    portal = await SandboxPortal.register(gateway.url)
    tokens = await portal.login(*RESIDENT)
    return Credentials(agency_key(gateway.settings, SIGNING_AGENCY), tokens.access_token)
