"""Identifier detection, identity matching and text redaction (reviewer_tool.redaction.detect)."""

from __future__ import annotations

import pytest

from reviewer_tool.redaction import (
    Finding,
    detect_identifiers,
    identity_values_in,
    imo_check_digit_ok,
    imo_company_check_ok,
    mmsi_plausible,
    redact_text,
)


def _kinds(text: str, identity_values: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(kind, text) of each finding."""
    return [(f.kind, f.text) for f in detect_identifiers(text, identity_values)]


def _only(text: str, identity_values: tuple[str, ...] = ()) -> Finding:
    """The single finding in ``text``."""
    findings = detect_identifiers(text, identity_values)
    assert len(findings) == 1, findings
    return findings[0]


# --- check digits (../shared/DOMAIN.md) ---


def test_imo_check_digit_example_from_domain_notes() -> None:
    """9074729: 63+0+35+16+21+4 = 139, check digit 9."""
    assert imo_check_digit_ok("9074729")
    assert not imo_check_digit_ok("9074728")


@pytest.mark.parametrize("bad", ["907472", "90747290", "907472x", "", "9074 29"])
def test_imo_check_digit_needs_seven_digits(bad: str) -> None:
    """Anything but exactly seven digits fails."""
    assert not imo_check_digit_ok(bad)


def test_imo_company_check_digit() -> None:
    """1234565: 8+12+12+8+45+42 = 127, (11 - 127 mod 11) mod 10 = 5."""
    assert imo_company_check_ok("1234565")
    assert not imo_company_check_ok("1234566")
    assert not imo_company_check_ok("123456")


@pytest.mark.parametrize(
    ("number", "plausible"),
    [
        ("538001234", True),  # ship station, MID 538 (Marshall Islands)
        ("023512345", True),  # group
        ("002351234", True),  # coast station
        ("111235123", True),  # SAR aircraft
        ("992351234", True),  # aid to navigation
        ("982351234", True),  # craft of a parent ship
        ("823512345", True),  # handheld
        ("970123456", True),  # AIS-SART
        ("972123456", True),  # MOB
        ("974123456", True),  # EPIRB-AIS
        ("123456789", False),
        ("776123456", False),
        ("975123456", False),
    ],
)
def test_mmsi_plausible(number: str, plausible: bool) -> None:
    """A MID of 201..775 where the MMSI format puts one, or a SART/MOB/EPIRB prefix."""
    assert mmsi_plausible(number) is plausible


# --- each kind ---


@pytest.mark.parametrize(
    "text",
    [
        "Vessel IMO 9074729 boarded",
        "IMO no. 9074729",
        "IMO No.9074729",
        "IMO: 9074729",
        "IMO9074729",
        "imo number 9074729.",
        "(IMO #9074729)",
    ],
)
def test_labelled_imo_number(text: str) -> None:
    """The label may take many forms; the number is the finding."""
    finding = _only(text)
    assert (finding.kind, finding.text, finding.note) == ("imo", "9074729", "")
    assert finding.confidence >= 0.95


def test_imo_number_failing_check_is_still_reported() -> None:
    """Many real ships carry numbers that fail the check: flag them, with a note."""
    finding = _only("IMO 9074728")
    assert (finding.kind, finding.text, finding.note) == ("imo", "9074728", "check digit fails")
    assert 0.5 <= finding.confidence < 0.95


def test_bare_seven_digits_are_reported_with_lower_confidence() -> None:
    """Seven contiguous digits are some identifier; without a label confidence is lower."""
    valid = _only("the ship 9074729 was boarded")
    invalid = _only("the ship 9074728 was boarded")
    assert valid.kind == invalid.kind == "imo"
    assert valid.confidence < 0.95
    assert invalid.confidence < valid.confidence
    assert "check digit fails" in invalid.note


def test_imo_company_number_when_labelled() -> None:
    """A number labelled as the company's is an imo_company, not a ship's."""
    finding = _only("Owner IMO number 1234565 informed")
    assert (finding.kind, finding.text, finding.note) == ("imo_company", "1234565", "")
    assert _only("company no. 1234566").note == "check digit fails"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("MMSI 538001234", "538001234"),
        ("MMSI: 538 001 234.", "538 001 234"),
        ("mmsi no. 563012345", "563012345"),
    ],
)
def test_labelled_mmsi(text: str, number: str) -> None:
    """Labelled MMSIs, spaced or not, with high confidence."""
    finding = _only(text)
    assert (finding.kind, finding.text) == ("mmsi", number)
    assert finding.confidence >= 0.95


def test_bare_mmsi_needs_a_plausible_mid() -> None:
    """Nine bare digits are an MMSI only with a MID; a label raises confidence."""
    bare = _only("AIS showed 538001234 nearby")
    assert (bare.kind, bare.text) == ("mmsi", "538001234")
    assert bare.confidence < _only("MMSI 538001234").confidence
    assert _kinds("reference 123456789 closed") == []


def test_labelled_mmsi_without_mid_is_noted() -> None:
    """A labelled MMSI is reported even when its MID is not allocated."""
    finding = _only("MMSI 123456789")
    assert (finding.kind, finding.note) == ("mmsi", "no valid MID")


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("call sign 3EJH2 was heard", "3EJH2"),
        ("Callsign: 9VAB2", "9VAB2"),
        ('C/S "V7AB3"', "V7AB3"),
        ("her call-sign is D5XY9.", "D5XY9"),
    ],
)
def test_labelled_call_sign(text: str, sign: str) -> None:
    """Call signs are found after a label."""
    assert _kinds(text) == [("call_sign", sign)]


@pytest.mark.parametrize(
    "text",
    [
        "call sign HELLO received",  # no digit
        "C/S 090/12 maintained",  # no letter
        "robbers armed with an AK47 and a G3",  # no label
        "VHF16 and 3EJH2 mentioned",  # no label
    ],
)
def test_unlabelled_or_wordlike_call_signs_are_left(text: str) -> None:
    """Without a label, or without both letters and digits, nothing is flagged."""
    assert _kinds(text) == []


def test_call_sign_given_as_identity_value() -> None:
    """An unlabelled call sign is found when the caller knows it."""
    assert _kinds("heard 3EJH2 on VHF", ("3EJH2",)) == [("identity", "3EJH2")]
    assert _kinds("heard 3E JH2 on VHF", ("3EJH2",)) == [("identity", "3E JH2")]


def test_email_and_url() -> None:
    """Addresses end before trailing sentence punctuation."""
    text = "Write to ops@cosmic-shipping.com, see https://example.com/a?b=1. or www.example.org."
    assert _kinds(text) == [
        ("email", "ops@cosmic-shipping.com"),
        ("url", "https://example.com/a?b=1"),
        ("url", "www.example.org"),
    ]


@pytest.mark.parametrize(
    "number",
    [
        "+65 6123 4567",
        "+44 (0)20 7946 0958",
        "+1 (555) 123-4567",
        "+63-917-555-0123",
        "+2348031234567",
        "0065 6123 4567",
        "0812 3456 7890",
        "(021) 555-1234",
        "021-555 1234",
        "08123456789",
    ],
)
def test_phone_numbers(number: str) -> None:
    """International and local forms are found whole."""
    finding = _only(f"Agent on {number}, available")
    assert (finding.kind, finding.text) == ("phone", number)


@pytest.mark.parametrize("number", ["+870 773 123 456", "+870773123456", "00870 773123456"])
def test_inmarsat_numbers(number: str) -> None:
    """+870 and nine digits is an Inmarsat number."""
    finding = _only(f"Ship's sat phone {number}.")
    assert (finding.kind, finding.text, finding.note) == ("phone", number, "Inmarsat")


def test_labelled_short_phone() -> None:
    """A short local number needs a label."""
    assert _kinds("Tel: 555-1234 after hours") == [("phone", "555-1234")]
    assert _kinds("ref 555-1234 after hours") == []


def test_phone_stops_at_fifteen_digits() -> None:
    """A time written right after a number may join it, but never past E.164's 15 digits."""
    assert _only("call +65 6123 4567 2235 UTC").text == "+65 6123 4567 2235"
    assert _only("call +44 20 7946 0958 2235 UTC").text == "+44 20 7946 0958"
    assert _only("call +65 6123 4567 at 2235 UTC").text == "+65 6123 4567"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Capt. Juan dela Cruz reported", "Juan dela Cruz"),
        ("the master Ivan Petrov raised the alarm", "Ivan Petrov"),
        ("Master JOHN SMITH.", "JOHN SMITH"),
        ("AB Santos was tied up", "Santos"),
        ("C/O R. Kumar informed", "R. Kumar"),
        ("Chief Officer Li Wei's cabin", "Li Wei"),
        ("Mrs Okafor and", "Okafor"),
    ],
)
def test_person_after_title_or_rank(text: str, name: str) -> None:
    """The name is redacted, the rank stays."""
    assert _kinds(text) == [("person", name)]


@pytest.mark.parametrize(
    "text",
    [
        "informed Master. Alarm raised",
        "Master raised the alarm",
        "Captain, Chief Engineer and crew",
        "Chief Officer and Chief Engineer came",
        "Posn: MRS Terminal, ALPHA-Jetty",
        "the duty AB with a knife",
        "Master The robbers escaped",
        "a cook Cameroon",
    ],
)
def test_ranks_without_names_are_left(text: str) -> None:
    """Ranks followed by ordinary words, punctuation or places are not names."""
    assert _kinds(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "19.02.2016: 1445 LT: Posn: 21:14.4N – 072:16.6E, Around 11nm SSE of Alang, India.",
        "at 2359 LT and again at 0030 UTC on 01 05 2016",
        "position 1.2345 103.5 and -6.123456, 106.876543",
        "decimal +1.234567, +103.456789",
        "speed 12.5 knots, 150 crew, 3000 tonnes, year 2016, 2015-02-19",
        "between 0230-0415 LT; 28.01.2015: 2230; 1,234,567 USD",
        "tanker of 105,000 dwt built 1998 at 01:19.41N 104:12.37E",
    ],
)
def test_non_identifiers_are_not_flagged(text: str) -> None:
    """Dates, times, positions, speeds, counts and years are not phones, MMSIs or IMOs."""
    assert _kinds(text) == []


# --- identity values ---


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("MV Cosmic Leader", "the mv  cosmic-leader was"),
        ("Cosmic Leader", "the Cosmic Leader's was"),
        ("MV Cosmic Leader", "the COSMIC LEADER was"),
        ("Cosmic Leader", "the M/V Cosmic Leader was"),
        ("Mv Cosmic Leader", "the MT COSMIC LEADER was"),
        ("M.V. Cosmic Leader", "the SS Cosmic Leader was"),
        ("Leão Star", "the LEAO STAR was"),
        ("Großmann Reederei", "the GROSSMANN REEDEREI was"),
        ("IMO 9074729", "the 9074729 was"),
        ("9074729", "the 907 4729 was"),
        ("+65 6123 4567", "the 65-6123-4567 was"),
        ("0065 6123 4567", "the +65 6123 4567 was"),
        ("538001234", "the 538 001 234 was"),
        ("ops@acme.sg", "the OPS @ ACME.SG was"),
    ],
)
def test_identity_value_variations(value: str, text: str) -> None:
    """Case, accents, spacing, punctuation, vessel prefixes or number labels hide no value."""
    found = identity_values_in(text, [value])
    assert [(f.kind, f.text) for f in found] == [("identity", text[4:-4].removesuffix("'s"))]


def test_identity_number_glued_to_its_label() -> None:
    """A bare value is found after a label with no space; the label stays."""
    assert [f.text for f in identity_values_in("the IMO9074729 was", ["9074729"])] == ["9074729"]


def test_vessel_prefix_in_text_is_redacted_with_the_name() -> None:
    """A prefix written before a known name is part of the match."""
    assert _only("the MV Cosmic Leader was", ("Cosmic Leader",)).text == "MV Cosmic Leader"


def test_short_identity_values_need_word_boundaries() -> None:
    """Under four characters a value inside a longer word is not a match."""
    assert identity_values_in("the Bluebird and Sunrise", ["Blu", "Sun"]) == []
    assert [f.text for f in identity_values_in("MV Blu at berth", ["Blu"])] == ["MV Blu"]


def test_numbers_are_found_inside_longer_numbers_but_names_only_as_words() -> None:
    """A number run together with others still matches; "Star" is not in "Starboard"."""
    found = identity_values_in("the Starboard side and 19074729", ["Star", "9074729"])
    assert [f.text for f in found] == ["9074729"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("我们是中远海运的船员", "中远海运"),  # no spaces between words
        ("write to ops@cosmicleadershipping.com", "Cosmic Leader"),
        ("Acme Tankers crew were threatened", "Acme Tankers GmbH"),
        ("the agents, Cosmic Shipping, called", "Cosmic Shipping Co., Ltd."),
        ("call him on 6123 4567 tonight", "Ann Lee, +65 6123 4567"),
    ],
)
def test_hard_check_catches_common_ways_a_value_is_rewritten(text: str, value: str) -> None:
    assert identity_values_in(text, [value]) != []


def test_short_identity_values_are_ignored_but_digits_are_not() -> None:
    """Two letters ("PA") would match everywhere; digits never occur as words."""
    assert identity_values_in("PA system and Panama", ["PA", " ", ""]) == []
    assert [f.text for f in identity_values_in("cabin 42 was", ["42"])] == ["42"]


def test_identity_parts_inside_a_contact_value() -> None:
    """A contact field's phone, address and name are each found on their own."""
    contact = "Capt. Ann Lee; ops@acme.sg\n+65 6123 4567"
    text = "Ann Lee wrote from OPS@ACME.SG and 6561234567."
    assert [f.text for f in identity_values_in(text, [contact])] == [
        "Ann Lee",
        "OPS@ACME.SG",
        "6561234567",
    ]


def test_identity_wins_over_generic_kind() -> None:
    """Where an identity value and a generic finding share a span, one identity finding stays."""
    finding = _only("vessel IMO 9074729 boarded", ("IMO 9074729",))
    assert (finding.kind, finding.text, finding.confidence) == ("identity", "IMO 9074729", 1.0)


def test_findings_sorted_and_merged() -> None:
    """Overlapping findings merge into one span; the list is sorted by start."""
    text = "Call +870 773 123 456 or ops@acme.sg; MV Sea Star IMO 9074729"
    findings = detect_identifiers(text, ["Sea Star"])
    assert [(f.kind, f.text) for f in findings] == [
        ("phone", "+870 773 123 456"),
        ("email", "ops@acme.sg"),
        ("identity", "MV Sea Star"),
        ("imo", "9074729"),
    ]
    assert [f.start for f in findings] == sorted(f.start for f in findings)


# --- redaction ---


def test_redact_text() -> None:
    """Each span becomes ``[redacted: KIND]``; everything else is kept."""
    text = "Capt. Ann Lee of MV Sea Star (IMO 9074728) on +65 6123 4567."
    findings = detect_identifiers(text, ["Sea Star"])
    assert redact_text(text, findings) == (
        "Capt. [redacted: person] of [redacted: identity] (IMO [redacted: imo]) "
        "on [redacted: phone]."
    )


def test_redact_text_merges_overlapping_findings() -> None:
    """Overlapping findings given by a caller leave one marker, not garbled text."""
    text = "abc 0123456789 def"
    findings = [Finding("phone", 4, 12, "", 0.5), Finding("identity", 8, 14, "", 1.0)]
    assert redact_text(text, findings) == "abc [redacted: identity] def"


def test_redact_text_refuses_spans_outside_the_text() -> None:
    """Findings for another text are an error, not a silent no-op."""
    with pytest.raises(ValueError, match="outside"):
        redact_text("short", [Finding("email", 2, 40, "", 1.0)])


def test_finding_to_json() -> None:
    """``note`` appears only when there is one."""
    plain = Finding("email", 0, 3, "a@b", 0.99)
    noted = Finding("imo", 4, 11, "9074728", 0.8, "check digit fails")
    assert plain.to_json() == {
        "kind": "email",
        "start": 0,
        "end": 3,
        "text": "a@b",
        "confidence": 0.99,
    }
    assert noted.to_json()["note"] == "check digit fails"
    assert set(noted.to_json()) == {"kind", "start", "end", "text", "confidence", "note"}


@pytest.mark.parametrize(  # Greek and Cyrillic on purpose
    ("text", "value", "expected"),
    [
        ("Ο ΠΛΟΙΑΡΧΟΣ ΝΙΚΟΛΑΟΣ ΠΑΠΑΣ ανέφερε", "Νικόλαος Παπάς", "ΝΙΚΟΛΑΟΣ ΠΑΠΑΣ"),  # noqa: RUF001
        ("ο πλοίαρχος νικόλαος παπάς ανέφερε", "ΝΙΚΟΛΑΟΣ ΠΑΠΑΣ", "νικόλαος παπάς"),  # noqa: RUF001
        ("капитан ИВАН ПЕТРОВ", "Иван Петров", "ИВАН ПЕТРОВ"),
        ("Kapitän MÜLLER an Bord", "Müller", "MÜLLER"),
    ],
)
def test_an_identity_value_is_found_in_capitals_or_small_letters_of_any_script(
    text: str, value: str, expected: str
) -> None:
    """A capital and its small letter fold alike (ICU's skeleton of Greek capital kappa is
    "K" but of small kappa a non-ASCII letter): the hard check must not depend on case."""
    assert [f.text for f in identity_values_in(text, [value])] == [expected]
