"""The destination policy: which addresses and URLs the gateway may call, in each mode.

Judged by resolution and by reading URLs only: nothing here opens a connection (this
machine's network rules forbid traffic to private and public ranges anyway).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.domain.errors import ConfigurationError
from gateway.egress.client import DestinationRefusedError, PolicyResolver
from gateway.egress.policy import EgressPolicy, address_class
from gateway.settings import load_settings

PRODUCTION = EgressPolicy(sandbox=False)
SANDBOX = EgressPolicy(sandbox=True)

METADATA = [
    "169.254.169.254",
    "169.254.170.2",
    "fd00:ec2::254",
    "100.100.100.200",
    "168.63.129.16",
    "::ffff:169.254.169.254",  # the same, written as IPv4-mapped IPv6
    "64:ff9b::a9fe:a9fe",  # the same, through NAT64
]
LINK_LOCAL = ["169.254.1.1", "fe80::1", "fe80::1%eth0", "::ffff:169.254.1.1"]
LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "2002:7f00:1::1"]
PRIVATE = [
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "fc00::1",
    "fd12:3456::1",
    "198.18.0.1",  # benchmarking
    "240.0.0.1",  # reserved
    "::7f00:1",  # IPv4-compatible (deprecated)
]
UNSPECIFIED = ["0.0.0.0", "0.1.2.3", "::"]  # noqa: S104  # judged, never bound
NEVER_ELSE = [
    "224.0.0.1",
    "239.1.2.3",
    "ff02::1",
    "255.255.255.255",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "64:ff9b::808:808"]


@pytest.mark.parametrize(
    ("address", "kind"),
    [(a, "metadata") for a in METADATA]
    + [(a, "link-local") for a in LINK_LOCAL]
    + [(a, "loopback") for a in LOOPBACK]
    + [(a, "private") for a in PRIVATE]
    + [(a, "public") for a in PUBLIC],
)
def test_each_address_is_judged_by_what_a_socket_would_reach(address: str, kind: str) -> None:
    assert address_class(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", METADATA + LINK_LOCAL + LOOPBACK + PRIVATE + UNSPECIFIED + NEVER_ELSE
)
def test_production_refuses_every_address_that_is_not_public(address: str) -> None:
    assert PRODUCTION.address_refusal("partner.example", address) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_production_calls_public_addresses(address: str) -> None:
    assert PRODUCTION.address_refusal("partner.example", address) is None


@pytest.mark.parametrize("address", METADATA + LINK_LOCAL + NEVER_ELSE)
def test_the_sandbox_never_calls_link_local_or_metadata_addresses(address: str) -> None:
    assert SANDBOX.address_refusal("tester.example", address) is not None


@pytest.mark.parametrize("address", LOOPBACK + UNSPECIFIED + PRIVATE + PUBLIC)
def test_the_sandbox_calls_testers_on_loopback_and_private_addresses(address: str) -> None:
    assert SANDBOX.address_refusal("tester.example", address) is None


def test_the_operator_opens_private_ranges_and_hosts_but_never_metadata() -> None:
    policy = EgressPolicy.parse(
        sandbox=False,
        allow=["10.20.0.0/16", "Partner.Internal.", "169.254.0.0/16", "0.0.0.0/0"],
    )
    assert policy.address_refusal("any.example", "10.20.3.4") is None
    assert policy.address_refusal("any.example", "::ffff:10.20.3.4") is None
    assert policy.address_refusal("partner.internal", "192.168.7.7") is None
    assert policy.address_refusal("any.example", "169.254.1.1") is None  # listed link-local
    for address in METADATA + UNSPECIFIED + NEVER_ELSE:  # not even by 0.0.0.0/0
        assert policy.address_refusal("partner.internal", address) is not None
    narrow = EgressPolicy.parse(sandbox=False, allow=["10.20.0.0/16"])
    assert narrow.address_refusal("any.example", "10.21.0.1") is not None
    assert narrow.address_refusal("other.internal", "192.168.7.7") is not None


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://partner.example/in", False),
        ("http://partner.example/in", True),
        ("HTTP://PARTNER.EXAMPLE/in", True),
        ("ftp://partner.example/in", True),
        ("https:///in", True),
        ("https://169.254.169.254/latest/meta-data", True),
        ("https://[fd00:ec2::254]/", True),
        ("https://127.0.0.1:8443/in", True),
        ("https://10.0.0.5/in", True),
        ("https://[::ffff:127.0.0.1]/in", True),
        ("https://8.8.8.8/in", False),
    ],
)
def test_production_urls_are_https_to_allowed_hosts(url: str, refused: bool) -> None:
    assert (PRODUCTION.url_refusal(url) is not None) is refused


def test_the_operator_lists_hosts_production_may_call_over_http() -> None:
    policy = EgressPolicy.parse(sandbox=False, allow_http=["legacy.partner.example"])
    assert policy.url_refusal("http://legacy.partner.example/in") is None
    assert policy.url_refusal("http://other.partner.example/in") is not None


def test_the_sandbox_calls_http_but_not_metadata_literals() -> None:
    assert SANDBOX.url_refusal("http://127.0.0.1:9000/inbox") is None
    assert SANDBOX.url_refusal("http://10.0.0.5/inbox") is None
    assert SANDBOX.url_refusal("http://169.254.169.254/latest/meta-data") is not None
    assert SANDBOX.url_refusal("http://[fe80::1]/inbox") is not None


def test_egress_settings_come_from_toml_lists_or_comma_separated_variables(tmp_path: Any) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('egress_allow = ["10.20.0.0/16", "partner.internal"]\n')
    settings = load_settings(
        config, environ={"GBA_EGRESS_ALLOW_HTTP": "legacy.example, other.example"}
    )
    assert settings.egress_allow == ("10.20.0.0/16", "partner.internal")
    assert settings.egress_allow_http == ("legacy.example", "other.example")
    assert settings.egress.allow_hosts == {"partner.internal"}
    assert settings.egress.http_hosts == {"legacy.example", "other.example"}
    assert not settings.egress.sandbox
    assert load_settings(environ={}, mode="sandbox").egress.sandbox


def test_a_bad_egress_entry_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match=r"egress_allow: 'not a host!'"):
        load_settings(environ={"GBA_EGRESS_ALLOW": "10.0.0.0/8,not a host!"})
    with pytest.raises(ConfigurationError, match=r"egress_allow_http: '10\.0\.0\.0/8'"):
        load_settings(environ={"GBA_EGRESS_ALLOW_HTTP": "10.0.0.0/8"})


class FakeResolver(AbstractResolver):
    """Answers what it is told, for any name: no DNS, no traffic."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in self.addresses
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "169.254.169.254", "fd00:ec2::254"])
async def test_production_refuses_a_name_that_resolves_inside(address: str) -> None:
    resolver = PolicyResolver(PRODUCTION, FakeResolver(address))
    with pytest.raises(DestinationRefusedError, match=address.split("%")[0]) as refused:
        await resolver.resolve("partner.example", 443)
    assert isinstance(refused.value, aiohttp.ClientError)  # callers translate it as any


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "fe80::1"])
async def test_the_sandbox_refuses_a_name_that_resolves_to_metadata(address: str) -> None:
    with pytest.raises(DestinationRefusedError):
        await PolicyResolver(SANDBOX, FakeResolver(address)).resolve("tester.example", 80)


async def test_only_the_allowed_addresses_of_a_name_are_kept() -> None:
    resolver = PolicyResolver(PRODUCTION, FakeResolver("10.0.0.5", "8.8.8.8", "169.254.169.254"))
    kept = await resolver.resolve("partner.example", 443)
    assert [entry["host"] for entry in kept] == ["8.8.8.8"]
    sandbox = PolicyResolver(SANDBOX, FakeResolver("127.0.0.1", "169.254.169.254"))
    assert [e["host"] for e in await sandbox.resolve("tester.example", 80)] == ["127.0.0.1"]
