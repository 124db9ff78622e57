"""Every log line of the end-to-end and integration tests, checked for personal data and secrets.

:func:`log_capture` (an autouse fixture in ``tests/e2e/conftest.py`` and
``tests/integration/conftest.py``) records, for the whole of each test:

- every structlog event as the production pipeline (:func:`configure_logging`) builds it, at
  ``debug``, *before* the :func:`~gateway.observability.redact` safety net: the code itself
  must log ids and digests, never rely on the net;
- every standard-library log record at ``INFO`` and above, with SQLAlchemy's statement log
  switched on (``sqlalchemy.engine`` at ``INFO``, as an operator debugging SQL would), so SQL
  parameters show up here unless the engines hide them; except ``aiohttp.access``: the
  gateway serves with ``access_log=None``, only the test server logs access lines.

A test fails if any line holds a sandbox persona's identity document number, name, birth
date, phone, e-mail or address, a bearer or JWS token, PEM private-key material, an HTTP
signature value, a secret-named member, or SQL parameters. ``test_log_capture.py`` shows that a
deliberately leaked value is caught on both paths.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog

from gateway.observability import configure_logging, redact
from gateway.sandbox.personas import PERSONAS

NOT_PRODUCTION_OUTPUT = ("aiohttp.access",)  # production serves with access_log=None
SQL_LOG = "sqlalchemy.engine"


def _distinctive(number: str) -> bool:
    """A form of a number worth looking for: "12345678" alone is any number's substring."""
    return len(number) >= 9 or any(c.isalpha() for c in number)


def _persona_values() -> dict[str, str]:
    """Each persona's personal data in the forms it may take, named for the report."""
    values: dict[str, str] = {}
    for p in PERSONAS:
        for kind, number in p.documents:
            bare = re.sub(r"[()\s]", "", number)  # as normalised, and without its check digit
            for form in (number, bare, number.split("(")[0]):
                if _distinctive(form):
                    values[form] = f"{p.id} {kind}"
        for name in (
            p.name_original,
            f"{p.family_name_latin} {p.given_names_latin}",
            f"{p.given_names_latin} {p.family_name_latin}",
        ):
            values[name] = f"{p.id} name"
        if len(p.given_names_latin) >= 6:
            values[p.given_names_latin] = f"{p.id} given names"
        values[p.birth_date] = f"{p.id} birth date"
        values[p.phone] = f"{p.id} phone"
        values[p.email] = f"{p.id} e-mail"
        values[p.address] = f"{p.id} address"
    return values


PERSONAL = _persona_values()
_PERSONAL = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    + "|".join(re.escape(v) for v in sorted(PERSONAL, key=len, reverse=True))
    + r")(?![A-Za-z0-9])"
)
SECRETS: dict[str, re.Pattern[str]] = {
    "private key": re.compile(r"PRIVATE KEY"),
    "JWS or JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    "bearer token": re.compile(r"(?i)\b(?:bearer|dpop)\s+[A-Za-z0-9._~+/=-]{8,}"),
    "signature value": re.compile(r"[:=]\s*:?[A-Za-z0-9+/]{80,}={0,2}:"),
    "secret member": re.compile(
        r"(?i)[\"']?\b(?:access_token|refresh_token|id_token|client_secret|password|"
        r"code_verifier|private_key|authorization)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._~+/-]{8,}"
    ),
    "SQL parameters": re.compile(
        r"\[parameters: |\[(?:generated in|cached since|raw sql|no key)[^\]]*\] "
        r"(?!\[SQL parameters hidden|\(\)|\[\]|\{\})"
    ),
}


def leaks_in(line: str) -> list[str]:
    """What ``line`` gives away, by name ([] when nothing)."""
    found = dict.fromkeys(
        f"personal data ({PERSONAL[m.group()]})" for m in _PERSONAL.finditer(line)
    )
    return [*found, *[name for name, pattern in SECRETS.items() if pattern.search(line)]]


class _Handler(logging.Handler):
    def __init__(self, capture: LogCapture) -> None:
        super().__init__(logging.INFO)
        self.capture = capture
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(NOT_PRODUCTION_OUTPUT):
            return
        self.capture.lines.append(self.format(record))


class LogCapture:
    """Records structlog events (before redaction) and standard-library records."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._handler = _Handler(self)
        self._levels = {"": logging.INFO, SQL_LOG: logging.NOTSET}

    def _record(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        self.lines.append(json.dumps(dict(event), ensure_ascii=False, default=repr))
        return event

    def install(self) -> None:
        configure_logging("debug", "json", io.StringIO())
        processors = list(structlog.get_config()["processors"])
        processors.insert(processors.index(redact), self._record)
        structlog.configure(processors=processors)
        for name in self._levels:
            self._levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger().addHandler(self._handler)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self._handler)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)

    def text(self) -> str:
        return "\n".join(self.lines)

    def leaks(self) -> list[str]:
        return [
            f"{', '.join(found)}: {line[:300]}" for line in self.lines if (found := leaks_in(line))
        ]

    def forget(self) -> None:
        self.lines.clear()


@pytest.fixture(autouse=True)
def log_capture() -> Iterator[LogCapture]:
    """Fail the test when any of its log lines holds personal data or a secret."""
    capture = LogCapture()
    capture.install()
    try:
        yield capture
    finally:
        capture.uninstall()
    leaks = capture.leaks()
    assert not leaks, f"{len(leaks)} log line(s) leak:\n" + "\n".join(leaks[:20])
