"""The registry of jurisdictions: the installed three, in order, looked up every way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway import jurisdictions
from gateway.domain.errors import ConfigurationError
from gateway.jurisdictions import Jurisdictions


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    jurisdictions.reset()
    yield
    jurisdictions.reset()


def test_the_entry_points_register_hong_kong_macau_and_guangdong_in_order() -> None:
    registered = jurisdictions.registered()

    assert registered.codes == ("HK", "MO", "GD")
    assert registered.formats == ("hk", "macau", "guangdong")
    assert registered.providers == ("hk", "macau", "guangdong")
    assert registered.format_codes() == {"hk": "HK", "macau": "MO", "guangdong": "GD"}
    assert registered.receivable() == ("HK", "MO", "GD", "canonical")
    assert registered.by_code("mo").format == "macau"
    assert registered.by_provider("guangdong").code == "GD"
    assert registered.parse_code("hk") == "HK"
    with pytest.raises(ValueError, match="unknown jurisdiction 'XX'"):
        registered.parse_code("XX")


def test_each_folder_holds_its_own_files() -> None:
    for adapter in jurisdictions.registered():
        assert (
            adapter.folder == Path(jurisdictions.__file__).parents[1] / "adapters" / adapter.format
        )
        assert adapter.identity is not None
        assert adapter.identity.provider == adapter.provider
        assert adapter.identity.jurisdiction == adapter.code
        assert adapter.sandbox_idp is not None
        assert adapter.working_days is not None
        assert adapter.calling_code.isdigit()


def test_two_jurisdictions_may_not_share_a_code_format_or_provider() -> None:
    hk = jurisdictions.registered().by_code("HK")

    with pytest.raises(ConfigurationError, match="two jurisdictions have the code 'HK'"):
        Jurisdictions((hk, replace(hk, format="hk2", provider="hk2")))
    with pytest.raises(ConfigurationError, match="the format 'hk'"):
        Jurisdictions((hk, replace(hk, code="H2", provider="hk2")))


def test_a_build_without_the_entry_points_says_to_reinstall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jurisdictions, "_entries", list)

    with pytest.raises(ConfigurationError, match=r"no jurisdiction is installed .* reinstall"):
        jurisdictions.registered()


def test_a_folder_without_a_package_is_refused(tmp_path: Path) -> None:
    jurisdictions.configure([tmp_path])

    with pytest.raises(ConfigurationError, match=r"has no __init__\.py"):
        jurisdictions.registered()


def test_a_folder_whose_package_exports_no_adapter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("ADAPTER = 'not one'\n", "utf-8")
    jurisdictions.configure([tmp_path])

    with pytest.raises(ConfigurationError, match="is not a JurisdictionAdapter"):
        jurisdictions.registered()
