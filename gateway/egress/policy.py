"""Where the gateway may send a request: the destination policy, standard library only.

Every outbound call of the gateway — forwards to partners, webhook notifications, identity
provider discovery, key sets and token requests — goes through one client factory
(:mod:`gateway.egress.client`) that applies this policy twice: to the URL before anything is
sent (scheme, and a host that is an IP literal) and to every address a host name resolves to,
at connect time. Checking only at registration would let a name that resolves elsewhere
later (DNS rebinding) reach an internal address.

Addresses fall into classes (:func:`address_class`), decided on the address the socket would
really reach (an IPv4-mapped, NAT64 or 6to4 IPv6 address is judged by the IPv4 it carries):

=================  =====================================  ===========  ===============
class              examples                               production   sandbox
=================  =====================================  ===========  ===============
``metadata``       169.254.169.254, fd00:ec2::254,        never        never
                   100.100.100.200, 168.63.129.16
``multicast``      224.0.0.0/4, ff00::/8, broadcast       never        never
``link-local``     169.254.0.0/16, fe80::/10              if allowed   never
``unspecified``    0.0.0.0/8, ::                          never        yes (this host)
``loopback``       127.0.0.0/8, ::1                       if allowed   yes
``private``        10/8, 172.16/12, 192.168/16, fc00::/7, if allowed   yes
                   100.64/10, reserved and documentation
``public``         everything globally routable           yes          yes
=================  =====================================  ===========  ===============

"If allowed" means listed by the operator in ``egress_allow``: a CIDR containing the address,
or the host name being resolved. The unspecified address reaches this very host, like
loopback: the sandbox allows it (bound to ``0.0.0.0``, its own agencies are there), production
never. Plain ``http`` is refused in production unless the host is
listed in ``egress_allow_http``; the sandbox allows it (testers' endpoints on loopback).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata and platform services: never reachable, whatever is allowed.
METADATA: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, Huawei Cloud IMDS
        "169.254.169.253/32",  # AWS DNS
        "169.254.169.123/32",  # AWS time sync
        "169.254.170.2/32",  # AWS ECS task metadata
        "169.254.0.23/32",  # Tencent Cloud metadata
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure WireServer
        "192.0.0.192/32",  # Oracle Cloud metadata (legacy)
        "fd00:ec2::/32",  # AWS IMDS and services over IPv6 (fd00:ec2::254)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NEVER = frozenset({"metadata", "unspecified", "multicast"})  # in production
_SANDBOX_OPEN = frozenset({"public", "private", "loopback", "unspecified"})
_HOST = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")


def carried(address: Address) -> Address:
    """The address a socket really reaches: the IPv4 inside a mapped, NAT64 or 6to4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_class(address: Address) -> str:
    """``metadata``, ``unspecified``, ``multicast``, ``link-local``, ``loopback``,
    ``private`` or ``public`` (the table in the module docstring)."""
    for candidate in {address, carried(address)}:
        if any(
            candidate in network for network in METADATA if network.version == candidate.version
        ):
            return "metadata"
    address = carried(address)
    if address.is_unspecified or address in _THIS_NETWORK:
        return "unspecified"
    if address.is_multicast or address == _BROADCAST:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback:
        return "loopback"
    if not address.is_global or address.is_reserved or address in _SHARED:
        return "private"
    return "public"


def normal_host(host: str) -> str:
    """A host as compared against the lists: lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def ip_literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(normal_host(host))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which destinations the gateway may call (see the module docstring)."""

    sandbox: bool = False
    allow_networks: tuple[Network, ...] = ()
    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    http_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(
        cls, *, sandbox: bool, allow: Iterable[str] = (), allow_http: Iterable[str] = ()
    ) -> EgressPolicy:
        """From the settings ``egress_allow`` and ``egress_allow_http``; ValueError lists
        every entry that is neither a CIDR nor a host name."""
        networks, hosts, http, bad = [], set(), set(), []
        for entry in allow:
            try:
                networks.append(ipaddress.ip_network(normal_host(entry), strict=False))
            except ValueError:
                if _HOST.fullmatch(normal_host(entry)):
                    hosts.add(normal_host(entry))
                else:
                    bad.append(f"egress_allow: {entry!r} is neither a CIDR nor a host name")
        for entry in allow_http:
            if _HOST.fullmatch(normal_host(entry)) or ip_literal(entry) is not None:
                http.add(normal_host(entry))
            else:
                bad.append(f"egress_allow_http: {entry!r} is not a host name")
        if bad:
            raise ValueError("; ".join(bad))
        return cls(sandbox, tuple(networks), frozenset(hosts), frozenset(http))

    def address_refusal(self, host: str, address: str) -> str | None:
        """Why ``host``, resolved to ``address``, may not be called; None when it may."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return f"{address!r} is not an IP address"
        kind = address_class(ip)
        if kind == "public":
            return None
        if self.sandbox:
            return None if kind in _SANDBOX_OPEN else f"{address} is a {kind} address"
        if kind in NEVER:
            return f"{address} is a {kind} address"
        if normal_host(host) in self.allow_hosts or self._allowed(ip):
            return None
        return f"{address} is a {kind} address not listed in egress_allow"

    def url_refusal(self, url: str) -> str | None:
        """Why ``url`` may not be called, judged before any lookup: the scheme, and the
        address when the host is an IP literal. None when it may (so far)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return "the URL does not parse"
        if parts.scheme not in ("https", "http") or not host:
            return "only http and https URLs with a host are called"
        if parts.scheme == "http" and not self.sandbox and normal_host(host) not in self.http_hosts:
            return "production calls https only (unless the host is listed in egress_allow_http)"
        literal = ip_literal(host)
        return None if literal is None else self.address_refusal(host, str(literal))

    def _allowed(self, address: Address) -> bool:
        return any(
            candidate in network
            for candidate in {address, carried(address)}
            for network in self.allow_networks
            if network.version == candidate.version
        )
