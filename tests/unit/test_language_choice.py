"""How a request's language is chosen: the address first, then Accept-Language."""

from __future__ import annotations

import pytest

from portal.web.i18n import BY_CODE, ENGLISH, NOT_SHIPPED, SHIPPED, choose, language_for


def test_twelve_languages_ship_with_one_right_to_left() -> None:
    codes = [language.code for language in SHIPPED]
    assert codes[0] == "en"
    assert len(codes) >= 12
    assert len(set(codes)) == len(codes)
    for code in ("tl", "zh-Hans", "id", "ru", "uk", "hi", "vi", "my", "ar", "fr", "es"):
        assert code in BY_CODE
    assert [language.code for language in SHIPPED if language.direction == "rtl"] == ["ar"]


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("tl", "tl"),
        ("fil", "tl"),
        ("fil-PH", "tl"),
        ("zh-Hans", "zh-Hans"),
        ("zh-hans", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("ar-EG", "ar"),
        ("AR", "ar"),
        ("pt_BR", None),
        ("zh-TW", None),
        ("zh-Hant", None),
        ("de", None),
        ("", None),
        ("x" * 40, None),
        ("<script>", None),
    ],
)
def test_tags_map_to_shipped_languages(tag: str, code: str | None) -> None:
    language = language_for(tag)
    assert (language.code if language else None) == code


def test_the_address_wins_over_the_browser_and_is_kept_in_links() -> None:
    choice = choose("ar", [("fr", 1.0)])
    assert choice.language.code == "ar"
    assert choice.explicit
    assert choice.notice is None


def test_an_unshipped_language_in_the_address_gives_english_with_a_notice() -> None:
    choice = choose("de", [("ar", 1.0)])
    assert choice.language is ENGLISH
    assert choice.notice == NOT_SHIPPED
    assert not choice.explicit


def test_accept_language_is_a_guess_in_order_of_preference() -> None:
    assert choose(None, [("de", 1.0), ("vi", 0.8), ("en", 0.5)]).language.code == "vi"
    assert not choose(None, [("vi", 1.0)]).explicit
    assert choose(None, [("vi", 0)]).language is ENGLISH


def test_english_from_the_browser_needs_no_notice_but_another_language_does() -> None:
    assert choose(None, [("en-US", 1.0), ("en", 0.9)]).notice is None
    assert choose(None, []).notice is None
    assert choose(None, [("*", 1.0)]).notice is None
    unshipped = choose(None, [("de-DE", 1.0), ("pt", 0.5)])
    assert unshipped.language is ENGLISH
    assert unshipped.notice == NOT_SHIPPED
