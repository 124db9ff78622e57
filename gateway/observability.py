"""Structured logs: JSON lines with a request id, and never an identity number or a token.

The code logs ids, codes, digests and key ids only. As a second line of defence, the
:func:`redact` processor replaces anything shaped like an HKID, a Macao BIR, a Home Return
Permit, an 18-digit identity or residence-permit number, or a JWS/JWT before a line is
written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SENSITIVE = re.compile(
    r"eyJ[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*){1,2}"  # JWS / JWT
    r"|\b[HM][0-9]{8}(?:[0-9]{2})?\b"  # Home Return Permit
    r"|\b[0-9]{17}[0-9X]\b"  # mainland RIC, residence permit
    r"|\b[A-Z]{1,2}[0-9]{6}(?:\([0-9A]\)|[0-9A]\b)"  # HKID
    r"|\b[157][0-9]{6}(?:\([0-9]\)|[0-9]\b)"  # Macao BIR
)
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SENSITIVE.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        event[key] = _scrub(value)
    return event


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog once per process (the CLI calls this before serving)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
