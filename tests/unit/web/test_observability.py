"""Logs never carry identity numbers or tokens, even if a caller logs one by mistake."""

from __future__ import annotations

import io
import json

import structlog

from gateway.observability import configure_logging


def test_identity_numbers_and_tokens_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    structlog.get_logger("t").info(
        "oops",
        hkid="A123456(3)",
        nested={"permit": "H12345678", "rp": ["810000198803150123"]},
        text="BIR 1234567(8) and token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        kid="sandbox-hk-ird-1",
    )
    line = json.loads(stream.getvalue())
    assert line["hkid"] == "[redacted]"
    assert line["nested"] == {"permit": "[redacted]", "rp": ["[redacted]"]}
    assert line["text"] == "BIR [redacted] and token [redacted]"
    assert line["kid"] == "sandbox-hk-ird-1"
