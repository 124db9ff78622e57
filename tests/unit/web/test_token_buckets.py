"""Token buckets and the client address a limit is kept under."""

from __future__ import annotations

import ipaddress

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.domain.errors import RateLimitedError
from gateway.web.rate_limits import TokenBuckets, address_limited, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(2.0, 3, clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("k") == 0.0
    assert buckets.take("other") == 0.0  # one bucket per key
    clock.now += 60
    assert [buckets.take("k") for _ in range(4)][-1] > 0  # never more than the burst


def test_an_empty_bucket_raises_with_retry_after_in_whole_seconds() -> None:
    buckets = TokenBuckets(0.25, 1, clock=Clock())
    buckets.charge("k", "from this client address")
    with pytest.raises(RateLimitedError) as refused:
        buckets.charge("k", "from this client address")
    assert refused.value.headers == {"Retry-After": "4"}
    assert refused.value.status == 429


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    buckets = TokenBuckets(0, 1, clock=Clock())
    assert all(buckets.take("k") == 0.0 for _ in range(1000))


def test_the_least_recently_used_bucket_is_forgotten_beyond_capacity() -> None:
    buckets = TokenBuckets(0.001, 1, clock=Clock(), capacity=2)
    for key in ("a", "b", "c"):
        buckets.take(key)
    assert buckets.take("a") == 0.0  # forgotten: a fresh bucket
    assert buckets.take("c") > 0


@pytest.mark.parametrize(
    ("path", "limited"),
    [
        ("/oauth2/authorize", True),
        ("/oauth2/register", True),
        ("/auth/hk/login", True),
        ("/sandbox/v1/agencies", True),
        ("/sandbox/console/cases", True),
        ("/sandbox/idp/hk/authorize", True),
        ("/sandbox/idp/hk/token", True),
        ("/sandbox/idp/hk/.well-known/openid-configuration", False),
        ("/sandbox/idp/{provider}/jwks", False),
        ("/oauth2/token", False),
        ("/oauth2/authorizex", False),
        ("/v1/applications", False),
        ("/healthz", False),
    ],
)
def test_which_routes_are_limited_per_address(path: str, limited: bool) -> None:
    assert address_limited(path) is limited


def _request(peer: str, forwarded: str | None = None) -> object:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/oauth2/authorize", headers=headers)
    return request.clone(remote=peer)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "address"),
    [
        ("192.0.2.1", "203.0.113.9", (), "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", None, (), "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", None, (), "192.0.2.1"),
        ("10.0.0.2", "203.0.113.9, 10.0.0.1", ("10.0.0.0/8",), "203.0.113.9"),
        ("10.0.0.2", "203.0.113.9, bogus", ("10.0.0.0/8",), "10.0.0.2"),
        ("192.0.2.1", "203.0.113.9", ("10.0.0.0/8",), "192.0.2.1"),
        ("not-an-address", None, (), "unknown"),
    ],
)
def test_the_client_address(
    peer: str, forwarded: str | None, trusted: tuple[str, ...], address: str
) -> None:
    networks = tuple(ipaddress.ip_network(n) for n in trusted)
    assert client_address(_request(peer, forwarded), networks) == address  # type: ignore[arg-type]
