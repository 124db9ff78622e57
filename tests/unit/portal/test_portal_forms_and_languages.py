"""The portal's form generation, problem placement and language choice, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.portal import forms
from gateway.portal.i18n import LANGUAGES, Translator, negotiate
from gateway.portal.oidc import Pending
from gateway.portal.sessions import Session

SCHEMA: dict[str, Any] = {
    "$defs": {
        "address": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "district": {"type": "string"},
                "jurisdiction": {"enum": ["HK", "MO", "GD"]},
            },
        },
        "money": {
            "type": "object",
            "properties": {"amount": {"type": "string"}, "currency": {"enum": ["CNY", "HKD"]}},
        },
    },
    "properties": {
        "particulars": {
            "required": ["name", "premises"],
            "properties": {
                "name": {"type": "string", "x-kind": "text", "x-labels": {"en": "Name"}},
                "premises": {
                    "$ref": "#/$defs/address",
                    "x-kind": "address",
                    "x-labels": {"en": "Premises", "pt": "Local"},
                },
                "capital": {"$ref": "#/$defs/money", "x-kind": "money"},
                "opened": {"type": "string", "x-kind": "date"},
                "kind": {"enum": ["a", "b"], "x-kind": "text"},
            },
        }
    },
}


def test_each_particular_becomes_inputs_by_its_kind() -> None:
    fields = {f.name: f for f in forms.fields_of(SCHEMA)}
    assert [e.pointer for e in fields["premises"].inputs] == [
        "/particulars/premises/text",
        "/particulars/premises/district",
        "/particulars/premises/jurisdiction",
    ]
    assert fields["premises"].inputs[2].options == ("HK", "MO", "GD")
    assert fields["premises"].grouped
    assert fields["premises"].required
    assert not fields["capital"].required
    assert [e.kind for e in fields["capital"].inputs] == ["text", "select"]
    assert fields["opened"].inputs[0].kind == "date"
    assert fields["kind"].inputs[0].options == ("a", "b")


def test_the_application_leaves_out_what_was_not_filled() -> None:
    fields = forms.fields_of(SCHEMA)
    values = {
        "/particulars/name": " 大文茶餐廳 ",
        "/particulars/premises/text": "橫琴 1 號",
        "/particulars/premises/district": "",
        "/particulars/capital/amount": "",
    }
    assert forms.application("M1", fields, values) == {
        "matter": "M1",
        "particulars": {"name": "大文茶餐廳", "premises": {"text": "橫琴 1 號"}},
    }


def test_every_problem_is_placed_at_its_field_or_particular_and_summarised() -> None:
    fields = forms.fields_of(SCHEMA)
    errors = [
        {"pointer": "/particulars/name", "code": "required", "message": {"en": "Required"}},
        {"pointer": "/particulars/premises", "code": "required", "message": {"en": "Needed"}},
        {"pointer": "/particulars/capital/amount", "code": "invalid_amount"},
        {"pointer": "/materials/0", "code": "missing", "message": {"en": "A file"}},
    ]
    summary = forms.place_errors(fields, errors, Translator("pt"))
    by_name = {f.name: f for f in fields}
    assert [e["message"] for e in by_name["name"].inputs[0].errors] == ["Required"]
    assert [e["message"] for e in by_name["premises"].errors] == ["Needed"]
    assert [e["message"] for e in by_name["capital"].inputs[0].errors] == ["invalid_amount"]
    assert [(e["target"], e["label"]) for e in summary] == [
        ("f-particulars-name", "Name"),
        ("f-particulars-premises-text", "Local"),
        ("f-particulars-capital-amount", "capital"),
        ("", "/materials/0"),
    ]
    assert len({e["id"] for e in summary}) == 4


@pytest.mark.parametrize(
    ("asked", "remembered", "accept", "chosen"),
    [
        ("pt", "en", "zh-CN", "pt"),
        (None, "en", "zh-CN", "en"),
        ("xx", None, "pt-PT,pt;q=0.9,en;q=0.8", "pt"),
        (None, None, "en;q=0.5, zh-HK;q=0.9", "zh-Hant"),
        (None, None, "zh-MO", "zh-Hant"),
        (None, None, "zh-Hans-CN", "zh-Hans"),
        (None, None, "fr, de;q=0.5", "zh-Hant"),
        (None, None, None, "zh-Hant"),
        (None, None, "pt-BR;q=0", "zh-Hant"),
    ],
)
def test_the_language_is_asked_remembered_negotiated_or_zh_hant(
    asked: str | None, remembered: str | None, accept: str | None, chosen: str
) -> None:
    assert negotiate(asked, remembered, accept) == chosen


def test_every_label_exists_in_all_four_languages() -> None:
    from gateway.portal.i18n import _catalog

    incomplete = [
        k for k, v in _catalog().items() if set(v) != set(LANGUAGES) or not all(v.values())
    ]
    assert incomplete == []


def test_a_login_state_is_good_once() -> None:
    session = Session("s")
    pending = Pending.new("hk", "/portal/")
    session.remember(pending)
    assert session.take(pending.state + "x") is None
    assert session.take(pending.state) is pending
    assert session.take(pending.state) is None


def test_every_label_a_template_names_is_in_the_catalog() -> None:
    import re
    from importlib import resources

    from gateway.portal.i18n import _catalog

    templates = resources.files("gateway.portal").joinpath("templates")
    named = set()
    for template in templates.iterdir():
        named |= set(re.findall(r'\bt\("([a-z_]+)"\)', template.read_text("utf-8")))
    assert len(named) > 50
    assert sorted(named - set(_catalog())) == []
