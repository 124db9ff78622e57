"""Compact JWS encoding for :mod:`gateway.trust.jws`: canonical base64url and strict JSON.

One spelling only: unpadded base64url whose unused bits are zero (so ``…A`` and ``…B`` are not
the same signature), JSON in UTF-8 without a BOM, duplicate member names, ``NaN`` or
``Infinity`` (pyjwt and the standard library let the last duplicate win).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, NoReturn


class JwsRefused(Exception):
    """A token that does not verify: ``reason`` is a short code, the message names the check."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def refuse(reason: str, message: str) -> NoReturn:
    raise JwsRefused(reason, message)


def compact(value: Mapping[str, Any]) -> bytes:
    text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(segment: str) -> bytes:
    """Canonical unpadded base64url only; other spellings of the same bytes are refused."""
    if len(segment) % 4 == 1:
        refuse("not-base64url", "a token segment is not base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if b64encode(data) != segment:
        refuse("non-canonical-base64url", "a token segment is not canonical base64url")
    return data


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            refuse("duplicate-member", "a token segment repeats a member name")
        members[name] = value
    return members


def _no_constant(_name: str) -> NoReturn:
    refuse("non-finite-number", "a token segment is not strict JSON")


def json_object(data: bytes, reason: str) -> dict[str, Any]:
    """Strict JSON: UTF-8 only (no BOM), no duplicate member names, no NaN or Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        refuse("not-utf8", "a token segment is not UTF-8")
    try:
        value = json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        refuse(reason, "a token segment is not a JSON object")
    return value
