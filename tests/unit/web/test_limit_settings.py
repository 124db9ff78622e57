"""The limits on what clients may send are settings, read from GBA_* and validated."""

from __future__ import annotations

import pytest

from gateway.domain.errors import ConfigurationError
from gateway.settings import load_settings


def test_the_limits_have_defaults_that_cut_a_trickle_well_under_a_minute() -> None:
    settings = load_settings(environ={})
    assert settings.header_timeout < 60
    assert settings.body_timeout < 60
    assert settings.keepalive_timeout < 3630  # aiohttp's own default
    assert settings.http_max_headers * settings.http_max_field_size < 1024 * 1024
    assert settings.trusted_proxies == ()


def test_the_limits_are_read_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "GBA_HEADER_TIMEOUT": "2.5",
            "GBA_MAX_CONNECTIONS": "10",
            "GBA_RATE_LIMIT_ADDRESS": "0",
            "GBA_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
        }
    )
    assert settings.header_timeout == 2.5
    assert settings.max_connections == 10
    assert settings.rate_limit_address == 0
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("GBA_HEADER_TIMEOUT", "0", "header_timeout must be above 0"),
        ("GBA_BODY_TIMEOUT", "-1", "body_timeout must be above 0"),
        ("GBA_HTTP_MAX_FIELD_SIZE", "100", "http_max_field_size must be 4096-65536"),
        ("GBA_HTTP_MAX_HEADERS", "5000", "http_max_headers must be 16-1024"),
        ("GBA_MAX_CONNECTIONS", "0", "max_connections must be at least 1"),
        ("GBA_RATE_LIMIT_PARTNER", "-1", "rate_limit_partner must be 0"),
        ("GBA_RATE_LIMIT_ADDRESS_BURST", "0", "rate_limit_address_burst must be at least 1"),
        ("GBA_TRUSTED_PROXIES", "10.0.0.0/8,nope", "'nope' is not an address"),
    ],
)
def test_a_wrong_limit_refuses_to_start(name: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        load_settings(environ={name: value})
