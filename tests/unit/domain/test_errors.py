"""The error tree: what a caller can receive, and how a problem in a document is described."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.domain import errors
from gateway.domain.errors import (
    ConfigurationError,
    DeliveryError,
    FieldProblem,
    GatewayError,
    Localized,
    PermanentDeliveryError,
    TransientDeliveryError,
    renderable_errors,
)

PROBLEM_PAGES = Path(__file__).parents[3] / "docs" / "problems"
RENDERABLE = renderable_errors()
MESSAGE = Localized("此欄位必須填寫", "此字段必须填写", "This field is required")


def test_renderable_slugs_are_unique() -> None:
    slugs = [cls.slug for cls in RENDERABLE]

    assert len(slugs) == len(set(slugs)), sorted(slugs)


@pytest.mark.parametrize("cls", RENDERABLE, ids=lambda cls: cls.__name__)
def test_renderable_error_has_a_slug_a_title_and_an_error_status(
    cls: type[GatewayError],
) -> None:
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", cls.slug)
    assert cls.title.strip()
    assert 400 <= cls.status <= 599
    assert cls().detail == cls.title  # the title stands in for a missing detail


def test_delivery_and_configuration_errors_are_not_renderable() -> None:
    hidden = {DeliveryError, TransientDeliveryError, PermanentDeliveryError, ConfigurationError}

    assert hidden.isdisjoint(RENDERABLE)
    assert GatewayError in RENDERABLE


def test_every_error_class_of_the_module_is_renderable_or_hidden() -> None:
    defined = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, GatewayError)
    }
    hidden = {DeliveryError, TransientDeliveryError, PermanentDeliveryError, ConfigurationError}

    assert defined == set(RENDERABLE) | hidden


def _documented_tree() -> list[tuple[str, int, str]]:
    doc = errors.__doc__ or ""
    return [(m[1], int(m[2]), m[3]) for m in re.finditer(r"(\w+Error)\s+(\d{3})\s+([a-z-]+)", doc)]


def test_the_drawn_tree_matches_the_classes() -> None:
    drawn = _documented_tree()

    assert len(drawn) == len(RENDERABLE) - 1  # every renderable class but the root is drawn
    for name, status, slug in drawn:
        cls = getattr(errors, name)
        assert (cls.status, cls.slug) == (status, slug), name


def test_error_keeps_detail_problems_and_headers() -> None:
    problem = FieldProblem("required", MESSAGE, pointer="/applicant/birth_date")
    error = errors.ValidationFailedError(
        "1 problem(s) found", errors=[problem], headers={"Retry-After": "5"}
    )

    assert str(error) == "1 problem(s) found"
    assert error.errors == (problem,)
    assert error.headers == {"Retry-After": "5"}


def test_field_problem_with_a_pointer() -> None:
    problem = FieldProblem("required", MESSAGE, pointer="/applicant/birth_date")

    assert problem.as_dict() == {
        "pointer": "/applicant/birth_date",
        "code": "required",
        "message": {
            "zh-Hant": "此欄位必須填寫",
            "zh-Hans": "此字段必须填写",
            "en": "This field is required",
        },
    }


def test_field_problem_with_an_xpath() -> None:
    problem = FieldProblem("required", MESSAGE, xpath="/hk:Application/hk:Applicant/hk:Name")

    assert problem.as_dict() == {
        "xpath": "/hk:Application/hk:Applicant/hk:Name",
        "code": "required",
        "message": {
            "zh-Hant": "此欄位必須填寫",
            "zh-Hans": "此字段必须填写",
            "en": "This field is required",
        },
    }


def test_field_problem_without_a_location_points_at_the_whole_document() -> None:
    assert FieldProblem("required", MESSAGE).as_dict()["pointer"] == ""


@pytest.mark.parametrize("cls", RENDERABLE, ids=lambda cls: cls.slug)
def test_every_renderable_problem_type_has_its_page(cls: type[GatewayError]) -> None:
    page = PROBLEM_PAGES / f"{cls.slug}.md"

    assert page.is_file(), f"missing problem page docs/problems/{cls.slug}.md"
    assert page.read_text("utf-8").strip()
