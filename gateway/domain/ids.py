"""Identifiers: time-ordered, unguessable, URL-safe (ULID layout, Crockford base32)."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_application_id() -> str:
    return "app_" + _ulid()


def new_message_id() -> str:
    return "msg_" + _ulid()


def new_receipt_id() -> str:
    return "rcp_" + _ulid()


def new_person_id() -> str:
    return "per_" + _ulid()


def new_login_id() -> str:
    return "lgn_" + _ulid()


def new_consent_id() -> str:
    return "cns_" + _ulid()


def new_delegation_id() -> str:
    return "dlg_" + _ulid()


def new_notification_id() -> str:
    return "ntf_" + _ulid()


def new_complaint_id() -> str:
    return "cmp_" + _ulid()


def new_certificate_id() -> str:
    return "crt_" + _ulid()


def new_material_id() -> str:
    return "mat_" + _ulid()
