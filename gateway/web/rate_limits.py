"""Rate limits: token buckets per signing key and per client address, answered with 429.

* **Per signing key**, on every signed partner request: :func:`gateway.web.auth.verify`
  charges the key's bucket once the signature verified (so nobody can spend another
  agency's budget with requests it cannot sign) and before the nonce is recorded (so a
  refused request stores nothing). ``rate_limit_partner`` requests per second after a burst
  of ``rate_limit_partner_burst``.
* **Per client address**, on the routes anyone may call without credentials and that start
  work or store something: :data:`ADDRESS_LIMITED` (``/oauth2/authorize``, OIDC dynamic
  client registration, RP-initiated logout, the upstream login, every sandbox route, sandbox
  agency registration included, but not the sandbox identity providers' discovery and key-set
  documents, which the gateway fetches itself from the same loopback address).
  ``rate_limit_address`` per second after a burst of ``rate_limit_address_burst``.
  The address is the TCP peer; only when the peer is one of ``trusted_proxies`` is
  ``X-Forwarded-For`` read, from the right, to the first address that is not a trusted
  proxy. IPv6 addresses share a bucket per /64, the block one subscriber usually holds.

An empty bucket answers 429 ``rate-limited`` with ``Retry-After`` (whole seconds). A rate
of 0 turns a limit off. Buckets live in this process's memory, at most
:data:`MAX_BUCKETS` per kind (the least recently used is forgotten first): a database row
per request would cost more than what it protects, so with N processes a client may get up
to N times the rate (docs/deploy.md says what the reverse proxy should add).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.domain.errors import RateLimitedError
from gateway.settings import Settings

__all__ = ["ADDRESS_LIMITED", "RateLimits", "TokenBuckets", "address_limited", "client_address"]

ADDRESS_LIMITED = (
    "/oauth2/authorize",
    "/oauth2/register",
    "/oauth2/logout",
    "/auth/",
    "/sandbox/",
)
# Published documents of the sandbox identity providers, which the gateway itself fetches
# from the same loopback address as its tester (discovery at start, key sets): static, cheap
# and not limited, so the gateway never spends its tester's budget nor refuses itself.
ADDRESS_EXEMPT_SUFFIXES = ("/.well-known/openid-configuration", "/jwks")
MAX_BUCKETS = 100_000
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = MAX_BUCKETS,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._capacity = capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when there was one, else the seconds until one."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, then = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._capacity:
            self._buckets.popitem(last=False)
        return wait

    def charge(self, key: str, what: str) -> None:
        """Take a token for ``key`` or raise :class:`RateLimitedError` (``what`` names it)."""
        wait = self.take(key)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise RateLimitedError(
                f"too many requests {what}; retry after {seconds} s",
                headers={"Retry-After": str(seconds)},
            )


@dataclass(frozen=True)
class RateLimits:
    """This process's buckets, and whose ``X-Forwarded-For`` to believe."""

    partner: TokenBuckets
    address: TokenBuckets
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            TokenBuckets(settings.rate_limit_partner, settings.rate_limit_partner_burst),
            TokenBuckets(settings.rate_limit_address, settings.rate_limit_address_burst),
            tuple(ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies),
        )


def address_limited(path: str) -> bool:
    """Whether requests to ``path`` are limited per client address."""
    if path.startswith("/sandbox/idp/") and path.endswith(ADDRESS_EXEMPT_SUFFIXES):
        return False
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in ADDRESS_LIMITED)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The address a request's limit is kept under (see the module's docstring)."""
    address = _address(request.remote)
    if address is None:
        return "unknown"
    if trusted and any(address in network for network in trusted):
        hops = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
        for hop in reversed(hops):
            forwarded = _address(hop)
            if forwarded is None:
                break  # a hop a proxy of ours did not write: stop at the last one it did
            address = forwarded
            if not any(forwarded in network for network in trusted):
                break
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def limit_by_address(limits: RateLimits) -> Any:
    """Charge the client address's bucket on the routes of :data:`ADDRESS_LIMITED`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if address_limited(request.path):
            limits.address.charge(
                client_address(request, limits.trusted_proxies), "from this client address"
            )
        return await handler(request)

    return middleware
