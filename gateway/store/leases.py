"""What the outbox and the notification queue share: leased rows whose failed attempt goes
back to ``pending`` for a later try, or to ``dead`` with its last error."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa


def failed_attempt(
    table: sa.Table, row_id: str, error: str, *, retry_at: datetime | None
) -> sa.Update:
    """Count a failed attempt on a row still in flight: due again at ``retry_at``, or dead
    when there is none. A row no longer in flight (delivered meanwhile) is left alone."""
    values: dict[str, object] = {
        "lease_until": None,
        "attempts": table.c.attempts + 1,
        "last_error": error[:2000],
    }
    if retry_at is None:
        values["status"] = "dead"
    else:
        values.update(status="pending", next_attempt_at=retry_at)
    return table.update().where(table.c.id == row_id, table.c.status == "in_flight").values(values)
