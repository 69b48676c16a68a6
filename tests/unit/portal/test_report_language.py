"""The report document's ``language`` member, and values typed in other scripts (issue 15)."""

# ruff: noqa: RUF001 -- digits of other scripts are the point of these tests
from __future__ import annotations

import flask
import pytest

from portal.web.report import InvalidReportError, build_report, encode_report, page_language

PIRACY = {"category": ["piracy-or-armed-robbery"]}
SHIPPED = ("en", "tl", "zh-Hans", "id", "ru", "uk", "hi", "vi", "my", "ar", "fr", "es")


def _report(**fields: str) -> dict[str, object]:
    form = {**PIRACY, **{name: [value] for name, value in fields.items()}}
    return build_report(form, [], encrypted_by="server")


@pytest.mark.parametrize("code", SHIPPED)
def test_the_document_names_the_page_language(code: str) -> None:
    """The server path takes it from g.lang_code, set by the i18n layer."""
    app = flask.Flask(__name__)
    with app.test_request_context("/"):
        flask.g.lang_code = code
        document = build_report({**PIRACY, "narrative": ["x"]}, [], encrypted_by="server")
    assert document["language"] == code
    assert list(document)[:3] == ["schema", "encrypted_by", "language"]
    assert document["report"]["category"] == "piracy-or-armed-robbery"  # a slug, never a label


BAD_CODES = ["", "e", "english", "en_US", "en-", "a" * 17, "ar\n", "<b>", 7, None]


@pytest.mark.parametrize("bad", BAD_CODES)
def test_a_malformed_page_language_falls_back_to_english(bad: object) -> None:
    app = flask.Flask(__name__)
    with app.test_request_context("/"):
        flask.g.lang_code = bad
        assert page_language() == "en"


def test_outside_a_request_the_language_is_english() -> None:
    assert page_language() == "en"
    assert _report(narrative="x")["language"] == "en"


def test_an_explicit_language_must_be_well_formed() -> None:
    form = {**PIRACY, "narrative": ["x"]}
    document = build_report(form, [], encrypted_by="server", language="zh-Hans")
    assert document["language"] == "zh-Hans"
    with pytest.raises(ValueError, match="language"):
        build_report(form, [], encrypted_by="server", language="zh_Hans")


def test_numbers_times_and_positions_in_other_scripts() -> None:
    report = _report(
        crew_injured="٣",
        crew_killed="۱۲",
        crew_missing="१०",
        crew_hostage="၉",
        perpetrators_max="١٬٢٣٤",
        incident_local_time="٢٠٢٦-١١-٢١T٠٢:١٠",
        incident_utc_offset="\u2212٠٥:٠٠",
        latitude="٢٢٫٢٧",
        longitude="091°48,5'E",
    )["report"]
    assert report["crew_injured"] == 3
    assert report["crew_killed"] == 12
    assert report["crew_missing"] == 10
    assert report["crew_hostage"] == 9
    assert report["perpetrators_max"] == 1234
    assert report["incident_local_time"] == "2026-11-21T02:10"
    assert report["incident_utc_offset"] == "-05:00"
    assert (report["latitude"], report["longitude"]) == (22.27, 91.808333)


@pytest.mark.parametrize(
    ("latitude", "expected"),
    [
        ("22°16,2'N, 091°48,5'E", (22.27, 91.808333)),
        ("22,27N,91,8E", (22.27, 91.8)),
        ("N 22,27, E 91,8", (22.27, 91.8)),
        ("٢٢°١٦٫٢'N ٠٩١°٤٨٫٥'E", (22.27, 91.808333)),
    ],
)
def test_a_whole_position_with_decimal_commas_in_the_latitude_field(
    latitude: str, expected: tuple[float, float]
) -> None:
    report = _report(latitude=latitude)["report"]
    assert (report["latitude"], report["longitude"]) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("crew_injured", "²"),
        ("crew_injured", "1,5"),
        ("crew_injured", "١٢٬٣٤"),
        ("latitude", "22, 27"),
    ],
)
def test_what_is_no_number_is_still_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidReportError):
        _report(**{field: value})


def test_free_text_arrives_byte_exact() -> None:
    narrative = "صعد ٣ رجال عند ٢٢٫٥ شمالاً، الساعة ٠٢:١٠ — २ नावें, ２ boats"
    document = _report(narrative=narrative, place_name="رصيف ٤")
    assert document["report"]["narrative"] == narrative
    assert document["report"]["place_name"] == "رصيف ٤"
    assert narrative.encode() in encode_report(document)
