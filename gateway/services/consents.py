"""Consent as a resident gives it in a request body (the applicant API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.domain import ids
from gateway.domain.documents import problem
from gateway.domain.errors import ValidationFailedError
from gateway.domain.identity import Consent


def consent_from_request(
    data: Mapping[str, Any],
    *,
    person_id: str,
    at: datetime,
    matter: str | None = None,
    recipients: Sequence[str] = (),
) -> Consent:
    """A consent as the applicant gave it in a request body; every problem in one answer."""
    expires = data.get("expires_at")
    problems = []
    expires_at = None
    if expires is not None:
        try:
            expires_at = datetime.fromisoformat(str(expires))
        except ValueError:
            problems.append(problem("/expires_at", "invalid_date"))
        if expires_at is not None and expires_at.tzinfo is None:
            problems.append(problem("/expires_at", "invalid_date"))
    for name in ("categories", "destinations"):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(problem(f"/{name}", "wrong_type"))
    if not isinstance(data.get("purpose", "cross_border_application"), str):
        problems.append(problem("/purpose", "wrong_type"))
    if problems:
        raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
    return Consent.grant(
        consent_id=ids.new_consent_id(),
        person_id=person_id,
        purpose=data.get("purpose", "cross_border_application"),
        categories=data.get("categories", []),
        destinations=data.get("destinations", []),
        at=at,
        expires_at=expires_at,
        matter=matter or data.get("matter"),
        recipients=recipients,
    )
