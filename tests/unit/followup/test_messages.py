"""Message texts: every kind in every language, personal, honest, never a placeholder."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.followup.messages import (
    KINDS,
    LANGUAGES,
    first_name,
    language_for,
    render,
    usable_name,
)

NEXT = datetime(2030, 5, 6, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_language(kind: str, language: str) -> None:
    out = render(
        kind, language, customer_name="Maria Virtanen", assignee_name="Aino Laine", next_update=NEXT
    )
    assert out.language == language
    assert "Maria Virtanen" in out.text  # greeted by name
    assert out.text.rstrip().endswith("Aino")  # signed by the assignee's first name
    # No template residue and no "insert name here".
    assert not re.search(r"[{}]|insert|\[name\]|<name>", out.text, re.I)
    if kind == "interim_update":
        assert "2030-05-06 14:30 UTC" in out.text  # when the customer hears from us next


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_names_there_is_no_placeholder(language: str) -> None:
    out = render("interim_update", language, next_update=NEXT)
    assert "{" not in out.text and "None" not in out.text
    first_line = out.text.splitlines()[0]
    assert len(first_line) < 20  # a plain greeting, no blank where a name would go


def test_interim_update_apologises_and_is_honest() -> None:
    text = render(
        "interim_update", "en", customer_name="Ann", assignee_name="Bo", next_update=NEXT
    ).text
    assert text.startswith("Hello Ann,")
    assert "sorry" in text and "not resolved yet" in text and "Bo is still working" in text
    assert "Next step" in text


def test_unknown_and_regional_languages_fall_back_sensibly() -> None:
    assert language_for("de-AT") == "de"
    assert language_for("pt") == "en"
    assert language_for(None) == "en"
    assert language_for("und") == "en"
    assert language_for("ms") == "id"  # the detector's Malay is our Indonesian
    assert render("thank_you", "pt").language == "en"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann   Lee ", "Ann Lee"),
        ("ann@example.com", None),
        ("twitter:@ann", None),
        ("+358401234567", None),
        ("", None),
        (None, None),
        ("x" * 80, None),
    ],
)
def test_usable_name(raw: str | None, expected: str | None) -> None:
    assert usable_name(raw) == expected


def test_first_name() -> None:
    assert first_name("Aino Laine") == "Aino"
    assert first_name(None) is None


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError):
        render("coupon", "en")
