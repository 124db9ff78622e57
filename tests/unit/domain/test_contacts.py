"""The resident's contact preferences (Art. 22): checked whole, in a language we write in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.domain.contacts import language_of, preferences_from_request, preferred_language
from gateway.domain.errors import ValidationFailedError

AT = datetime(2026, 9, 22, 2, 0, tzinfo=UTC)


def test_a_valid_choice_is_kept_with_its_channels_once() -> None:
    chosen = preferences_from_request(
        "per_1",
        {
            "email": "chan.taiman@example.hk",
            "phone": "+85291234567",
            "channels": ["sms", "email", "sms"],
            "language": "pt",
        },
        AT,
    )
    assert chosen.channels == ("sms", "email")
    assert (chosen.address("email"), chosen.address("sms")) == (
        "chan.taiman@example.hk",
        "+85291234567",
    )
    assert chosen.language == "pt"
    assert chosen.source == "resident"


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValidationFailedError) as refused:
        preferences_from_request(
            "per_1",
            {
                "email": "two@@example.hk",
                "phone": "91234567",  # not E.164
                "channels": ["email", "pigeon"],
                "language": "fr",
                "name": "陳大文",
            },
            AT,
        )
    problems = {(p.pointer, p.code) for p in refused.value.errors}
    assert problems == {
        ("/name", "unexpected_field"),
        ("/email", "invalid_value"),
        ("/phone", "invalid_phone"),
        ("/channels", "invalid_value"),
        ("/language", "invalid_value"),
    }


@pytest.mark.parametrize(("channels", "pointer"), [(["email"], "/email"), (["sms"], "/phone")])
def test_a_channel_needs_its_address(channels: list[str], pointer: str) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        preferences_from_request("per_1", {"channels": channels}, AT)
    assert [(p.pointer, p.code) for p in refused.value.errors] == [(pointer, "required")]


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "zh-Hant"),
        ("pt-PT,pt;q=0.9,en;q=0.8", "pt"),
        ("fr-FR, zh-CN;q=0.7", "zh-Hans"),
        ("zh-HK", "zh-Hant"),
        ("en;q=0, pt", "pt"),
        ("de, fr", "zh-Hant"),
    ],
)
def test_without_a_language_the_request_says_which(header: str | None, language: str) -> None:
    assert preferred_language(header) == language
    chosen = preferences_from_request("per_1", {}, AT, accept_language=header)
    assert (chosen.language, chosen.channels) == (language, ())


def test_language_tags_map_to_the_scripts_we_write() -> None:
    assert [language_of(t) for t in ("zh-MO", "zh-Hans-CN", "EN-gb", "pt-BR", "ja", "")] == [
        "zh-Hant",
        "zh-Hans",
        "en",
        "pt",
        None,
        None,
    ]
