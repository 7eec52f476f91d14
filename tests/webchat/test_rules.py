"""What a resident or agent types is cleaned the same way whichever path the text takes."""
import pytest

from crm.errors import ValidationFailed
from crm.webchat.rules import clean_text


def test_ordinary_text_is_kept_as_typed_less_surrounding_space():
    assert clean_text("  My bin wasn't collected on Tuesday, ref 123/45  ", "body", 2000) == \
        "My bin wasn't collected on Tuesday, ref 123/45"


def test_control_and_format_characters_go_but_line_breaks_and_tabs_stay():
    typed = "Line one\r\nLine\ttwo\x00\x07 with a zero\u200bwidth space\u202e"
    assert clean_text(typed, "body", 2000) == "Line one\nLine\ttwo with a zerowidth space"


def test_other_spaces_and_letters_are_kept():
    assert clean_text("Ffordd\u00a0y Castell \u2013 caf\u00e9", "body", 2000) == "Ffordd\u00a0y Castell \u2013 caf\u00e9"


def test_text_of_nothing_but_control_characters_is_refused_as_empty():
    with pytest.raises(ValidationFailed):
        clean_text("\x00\x01\u200b", "body", 2000)


def test_the_limit_counts_what_is_left_after_cleaning():
    assert clean_text("ab\x00\x00", "body", 2) == "ab"
    with pytest.raises(ValidationFailed):
        clean_text("abc", "body", 2)
