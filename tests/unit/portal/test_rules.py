"""One set of rules for both paths: the rules JSON comes from the field table, and the
server words every refusal with its messages (portal/web/field_rules.py, portal/web/report.py)."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from crypto.envelope import seal_bytes
from crypto.header import MAX_STANZAS
from crypto.keys import EncryptionKeyPair
from portal.web.attachment_limits import MIB, browser_attachment_limits, sealed_size, size_text
from portal.web.field_rules import CONTENT_RULE, MESSAGES, PAIRS, form_rules, message
from portal.web.fields import ALL, BY_NAME, FIELDS, Kind
from portal.web.position import parse_coordinate
from portal.web.report import InvalidReportError, build_report

RULES = form_rules(10, 187 * MIB, 187 * MIB, plain_max_file_bytes=25 * MIB,
                   plain_max_total_bytes=200 * MIB)  # fmt: skip


def test_the_rules_list_every_field_as_the_table_has_it() -> None:
    # Left out, as rules.js reads them from the form (wholeRules): the label (but a
    # shorter name for messages) and the choices; and every default.
    assert [rule["name"] for rule in RULES["fields"]] == [f.name for f in FIELDS]
    for rule in RULES["fields"]:
        field = BY_NAME[rule["name"]]
        assert rule["kind"] == field.kind.value
        assert rule["section"] == field.section
        assert rule.get("categories", list(ALL)) == list(field.categories)
        assert ("categories" in rule) is (field.categories != ALL)
        assert rule.get("required", False) is field.required
        assert rule.get("required") is not False
        assert rule["max_length"] == field.max_length
        assert "choices" not in rule
        assert rule.get("label") == (field.short or None)
        assert rule.get("example") == field.extra.get("example")
        if field.kind is Kind.COUNT:
            assert (rule["min"], rule["max"]) == (0, 9999)
        elif field.kind is Kind.COORDINATE:
            assert (rule["min"], rule["max"]) == ((-90, 90) if field.name == "latitude"
                                                  else (-180, 180))  # fmt: skip
        else:
            assert "min" not in rule
            assert "max" not in rule
    assert RULES["pairs"] == [list(pair) for pair in PAIRS]
    assert RULES["content_rule"] == CONTENT_RULE
    assert RULES["messages"] == MESSAGES
    assert RULES["attachments"]["max_count"] == 10
    assert RULES["attachments"]["max_total_text"] == "187 MiB"
    assert RULES["attachments"]["plain_max_file_text"] == "25 MiB"


def test_the_contract_s_message_keys_are_all_there() -> None:
    keys = {"required", "choice", "count", "coordinate", "local_time", "one_line", "too_long",
            "bad_chars", "order", "content", "too_many_files", "file_too_large",
            "total_too_large"}  # fmt: skip
    assert keys <= RULES["messages"].keys()


def test_position_labels_name_both_forms() -> None:
    for name in ("latitude", "longitude"):
        label = BY_NAME[name].label
        assert "decimal degrees" in label
        assert "°" in label  # degrees and minutes, with an example
        assert "'" in label


@pytest.mark.parametrize(("name", "spaced"), [("latitude", "22 16.2N"), ("longitude", "091 48.5E")])
def test_position_fields_say_spaces_work_and_every_example_reads(name: str, spaced: str) -> None:
    f = BY_NAME[name]
    assert "Spaces work instead of ° and '" in f.help
    assert spaced in f.label
    assert spaced in f.help
    examples = [text.strip() for text in f.extra["example"].split(" or ")]
    assert spaced in examples
    for example in examples:  # every example the page gives is one the portal reads
        parse_coordinate(example, name)


@pytest.mark.parametrize(("name", "typed"), [("latitude", "95°10'N"), ("latitude", "-95"),
                                             ("longitude", "181 00E")])  # fmt: skip
def test_a_position_out_of_range_is_told_the_range(name: str, typed: str) -> None:
    form = {"category": ["other"], name: [typed]}
    with pytest.raises(InvalidReportError) as caught:
        build_report(form, [], encrypted_by="server")
    words = str(caught.value)
    most = BY_NAME[name].extra["max"]
    assert f"from -{most} to {most}" in words
    assert f"never more than {most}°" in words


#: a bad value for each kind, and the message key the server must answer with
BAD: list[Any] = [
    ({"category": ""}, "category", "required"),
    ({"category": "aliens"}, "category", "choice"),
    ({"weapons": ["guns", "lasers"]}, "weapons", "choice"),
    ({"place_name": ["a", "b"]}, "place_name", "one_value"),
    ({"crew_injured": "-1"}, "crew_injured", "count"),
    ({"latitude": "22°60'N"}, "latitude", "coordinate"),
    ({"longitude": "22.5N"}, "longitude", "coordinate"),
    ({"latitude": "22°16.2'N 091°48.5'E", "longitude": "3"}, "latitude", "coordinate"),
    ({"incident_local_time": "2026-13-01T00:00"}, "incident_local_time", "local_time"),
    ({"incident_utc_offset": "+01:15"}, "incident_utc_offset", "choice"),
    ({"place_name": "a\nb"}, "place_name", "one_line"),
    ({"place_name": "x" * 201}, "place_name", "too_long"),
    ({"identity_company": "a\x07b"}, "identity_company", "bad_chars"),
    ({"narrative": "private \ue000 use"}, "narrative", "bad_chars"),
    ({"narrative": "damaged \ufffd encoding"}, "narrative", "bad_chars"),
    ({"narrative": "a noncharacter \ufdd0"}, "narrative", "bad_chars"),
    ({"place_name": "plane end \uffff"}, "place_name", "bad_chars"),
    ({"place_name": "plane end \U0001fffe"}, "place_name", "bad_chars"),
    ({"place_name": "last of all \U0010ffff"}, "place_name", "bad_chars"),
    ({"perpetrators_min": "5", "perpetrators_max": "2"}, "perpetrators_max", "order"),
]


@pytest.mark.parametrize(("changes", "field", "key"), BAD)
def test_every_refusal_is_worded_from_the_rules(changes: dict[str, Any], field: str,
                                                key: str) -> None:  # fmt: skip
    form = {"category": ["other"], "narrative": ["something happened"]}
    form.update({k: v if isinstance(v, list) else [v] for k, v in changes.items()})
    with pytest.raises(InvalidReportError) as caught:
        build_report(form, [], encrypted_by="server")
    [problem] = caught.value.problems
    assert (problem.field, problem.key) == (field, key)
    assert key in RULES["messages"]
    f = BY_NAME[field]
    other = {"other": BY_NAME["perpetrators_min"].label} if key == "order" else {}
    assert str(problem) == message(key, f, **other)
    assert str(problem).startswith(f.name_in_messages + ":")


@pytest.mark.parametrize(
    "char",
    ["\U0001fae8", "\U0001fabb", "\U000e0080", "\ufdcf", "\ufdf0", "\ufffc", "\U0001fffd"],
    ids=["shaking-face", "hyacinth", "unassigned-tag", "before-nonchars", "after-nonchars",
         "object-replacement", "before-plane-end"],
)  # fmt: skip
def test_characters_this_python_may_not_know_are_accepted(char: str) -> None:
    """Unicode assigns new characters every year, and browsers know them first (issue 13, F4)."""
    form = {"category": ["other"], "narrative": [f"The crew were shaken {char}"],
            "place_name": [f"Berth {char}"]}  # fmt: skip
    report = build_report(form, [], encrypted_by="server")["report"]
    assert report["narrative"].endswith(char)
    assert report["place_name"].endswith(char)


def test_every_problem_is_found_at_once() -> None:
    form = {"category": ["aliens"], "latitude": ["95"], "crew_killed": ["x"],
            "perpetrators_min": ["4"], "perpetrators_max": ["3"]}  # fmt: skip
    with pytest.raises(InvalidReportError) as caught:
        build_report(form, [], encrypted_by="server")
    found = [(p.field, p.key) for p in caught.value.problems]
    assert found == [("category", "choice"), ("latitude", "coordinate"),
                     ("crew_killed", "count"), ("perpetrators_max", "order")]  # fmt: skip


@pytest.mark.parametrize(
    "form",
    [{"category": ["other"]}, {"category": ["other"], "narrative": ["   "]},
     {"category": ["other"], "identity_company": ["ACME"]}],
    ids=["category-only", "blank-narrative", "identity-only"],
)  # fmt: skip
def test_the_content_rule_is_about_the_whole_form(form: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidReportError) as caught:
        build_report(form, [], encrypted_by="server")
    assert [(p.field, p.key) for p in caught.value.problems] == [(None, "content")]
    assert str(CONTENT_RULE) in str(caught.value)


def test_a_whole_position_in_the_latitude_field_is_split() -> None:
    form = {"category": ["other"], "latitude": ["22°16.2'N 091°48.5'W"], "longitude": [""]}
    report = build_report(form, [], encrypted_by="server")["report"]
    assert (report["latitude"], report["longitude"]) == (22.27, -91.808333)


def test_a_value_in_a_field_of_another_category_is_kept() -> None:
    form = {"category": ["stowaways"], "crew_injured": ["2"]}
    assert build_report(form, [], encrypted_by="server")["report"]["crew_injured"] == 2


@pytest.mark.parametrize("limit_mib", [1, 2, 25, 200, 4096])
@pytest.mark.parametrize("count", [1, 10, 64])
def test_files_within_the_browser_limits_always_fit_once_sealed(limit_mib: int,
                                                                count: int) -> None:  # fmt: skip
    limit = limit_mib * MIB
    most, per_file, total = browser_attachment_limits(limit, count)
    assert most == min(count, 64)
    assert 0 < per_file <= total <= limit
    assert size_text(total).endswith(("MiB", "KiB"))
    assert sealed_size(per_file) <= limit
    generator = random.Random(limit_mib * 100 + count)  # noqa: S311 - repeatable, not secret
    report = sealed_size(256 * 1024)
    assert report + sealed_size(total) <= limit  # one file takes it all
    even = [total // most] * most
    assert report + sum(sealed_size(n) for n in even) <= limit
    for _ in range(200):  # random ways to fill the allowance, the worst (tiny files) too
        sizes = [generator.randint(0, per_file) for _ in range(most)]
        while sum(sizes) > total:
            sizes[generator.randrange(most)] //= 2
        assert report + sum(sealed_size(n) for n in sizes) <= limit


@pytest.mark.parametrize("length", [0, 1, 1023, 1024, 65_535, 65_536, 200_000, 3 * MIB + 5])
def test_sealed_size_is_what_sealing_takes_with_the_most_recipients(length: int) -> None:
    recipients = [EncryptionKeyPair.generate().public for _ in range(MAX_STANZAS)]
    assert len(seal_bytes(bytes(length), recipients)) == sealed_size(length)
    assert len(seal_bytes(bytes(length), recipients[:2])) < sealed_size(length)


def test_size_text_states_whole_units() -> None:
    assert size_text(25 * MIB) == "25 MiB"
    assert size_text(632 * 1024) == "632 KiB"
    assert all(c in string.printable for c in size_text(3 * MIB))
