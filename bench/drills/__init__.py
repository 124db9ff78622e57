"""Drills (issue 8): bounded, self-stopping runs that break the gateway on purpose and check
that no accepted work is lost. Not part of ``make test``; run ``python -m bench.drills``.

- ``crash``: SIGKILL under load, restarts; every 202 stored and delivered once, audit intact.
- ``partner-outage``: a partner down for a minute under load; delivered after, retries
  spread, memory flat.
- ``db-restart``: PostgreSQL restarted under load; not ready and 503 while it is away,
  nothing accepted lost.

See docs/drills.md.
"""
