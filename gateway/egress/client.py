"""The one factory of the gateway's outbound HTTP sessions: :func:`client_session`.

Every session it makes applies the :class:`~gateway.egress.policy.EgressPolicy` and never
follows a redirect:

- a :class:`PolicyResolver` wraps aiohttp's resolver and drops every resolved address the
  policy refuses, at connect time (aiohttp connects only to what the resolver returned; its
  DNS cache keeps only what passed); none left is a connection error;
- on request start, the URL is judged: its scheme, and its host when it is an IP literal
  (aiohttp does not resolve those, so the resolver never sees them);
- on a redirect, the request stops with :class:`RedirectRefusedError`. Callers also pass
  ``allow_redirects=False`` and treat a 3xx as a failure; this is the backstop for one that
  forgets, so a partner's ``Location`` is never posted to.

Refusals are :class:`DestinationRefusedError`, an ``aiohttp.ClientOSError``: callers that
translate ``aiohttp.ClientError`` already handle them. The reason (with the address) is for
the logs only; what callers record where others can read it must not map the network.
"""

from __future__ import annotations

import errno
import socket
from types import SimpleNamespace
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from gateway.egress.policy import EgressPolicy

log = structlog.get_logger("gateway.egress")


class DestinationRefusedError(aiohttp.ClientOSError):
    """The egress policy refuses this destination (scheme, address class or host)."""


class RedirectRefusedError(aiohttp.ClientConnectionError):
    """The answer was a redirect: the gateway does not follow them."""


class PolicyResolver(AbstractResolver):
    """Resolves with ``resolver`` (aiohttp's threaded one by default) and keeps only the
    addresses the policy allows for that host."""

    def __init__(self, policy: EgressPolicy, resolver: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        resolved = await self._resolver.resolve(host, port, family)
        kept, refused = [], []
        for entry in resolved:
            reason = self._policy.address_refusal(host, entry["host"])
            if reason is None:
                kept.append(entry)
            else:
                refused.append(reason)
        if refused:
            log.warning("egress.address_refused", host=host, reasons=refused)
        if not kept:
            reason = "; ".join(refused) or "no address"
            raise DestinationRefusedError(
                errno.EACCES, f"the egress policy refuses {host}: {reason}"
            )
        return kept

    async def close(self) -> None:
        await self._resolver.close()


def client_session(
    policy: EgressPolicy,
    *,
    timeout: aiohttp.ClientTimeout,
    limit: int = 16,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """An outbound session under ``policy``: the only way the gateway makes one.

    ``resolver`` is a seam for tests (a fake that answers any address without DNS).
    """
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_judge_url(policy))
    trace.on_request_redirect.append(_refuse_redirect)
    return aiohttp.ClientSession(
        timeout=timeout,
        connector=aiohttp.TCPConnector(limit=limit, resolver=PolicyResolver(policy, resolver)),
        trace_configs=[trace],
        trust_env=False,  # no proxy from the environment: the policy judges the real peer
        raise_for_status=False,
    )


def _judge_url(policy: EgressPolicy) -> Any:
    async def on_request_start(
        _session: aiohttp.ClientSession,
        _ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        reason = policy.url_refusal(str(params.url))
        if reason is not None:
            log.warning("egress.url_refused", host=params.url.host, reason=reason)
            raise DestinationRefusedError(
                errno.EACCES, f"the egress policy refuses the URL: {reason}"
            )

    return on_request_start


async def _refuse_redirect(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    params: aiohttp.TraceRequestRedirectParams,
) -> None:
    status = params.response.status
    log.warning("egress.redirect_refused", host=params.url.host, status=status)
    raise RedirectRefusedError(f"redirect (HTTP {status}) not followed")
