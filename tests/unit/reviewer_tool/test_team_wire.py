"""Signed team updates and the key directories that admit them (crypto/SPEC.md §17).

Each test pins one rule of §17.1-§17.9 that the wire and directory modules
implement; what the bundles carry is tests/integration/test_team_exchange.py's.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crypto import _base64url as base64url
from crypto.directory import sign_directory
from crypto.envelope import seal_bytes
from crypto.keyfile import KeyBundle
from crypto.keys import EncryptionKeyPair, SigningKeyPair
from reviewer_tool.errors import ReviewerError
from reviewer_tool.team import directories, wire
from reviewer_tool.team.wire import NotForYouError, TeamUpdateError
from reviewer_tool.workspace import Workspace

REPORT = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
AUTHOR = SigningKeyPair.generate()
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)

GOOD_VALUES: dict[str, dict[str, Any]] = {
    "triage": {"status": "confirmed", "grade": "B2", "duplicate_of": None},
    "assignee": {"label": "reviewer-2"},
    "label": {"name": "piracy hot-spot", "present": True},
    "link": {"other": OTHER, "present": False},
    "note": {"note_id": secrets.token_hex(16), "text": "Seen twice.\nCheck the AIS gap."},
    "reply": {
        "reply_id": secrets.token_hex(16),
        "status": "under-review",
        "message": None,
        "written_on": "2026-11-21",
        "in_reply_to": None,
    },
}


def signed(field: str = "triage", value: dict[str, Any] | None = None, **options: Any) -> bytes:
    settings: dict[str, Any] = {"clock": 3, "directory_serial": 1, "made_at": NOW, **options}
    signer = settings.pop("signer", AUTHOR)
    return wire.make_signed(
        signer, report=REPORT, field=field, value=value or GOOD_VALUES[field], **settings
    )


def payload(**changes: Any) -> dict[str, Any]:
    """A well-formed update payload, as a dict, with ``changes`` applied."""
    base = {"schema": "cso-team-update/v1", "id": secrets.token_hex(16),
            "author": str(AUTHOR.token), "directory_serial": 1, "clock": 3,
            "made_at": "2026-11-21T08:00:00Z", "report": REPORT, "field": "triage",
            "value": GOOD_VALUES["triage"]}  # fmt: skip
    return {**base, **changes}


def raw_signed(update_bytes: bytes, signer: SigningKeyPair = AUTHOR, **document: Any) -> bytes:
    """A signed document around ``update_bytes`` exactly as given, signed properly."""
    fields = {
        "schema": "cso-team-signed/v1",
        "payload": base64url.encode(update_bytes),
        "signature": base64url.encode(signer.sign(wire.SIGNING_CONTEXT + update_bytes)),
        **document,
    }
    return json.dumps(fields).encode()


def refused(data: bytes, words: str) -> None:
    with pytest.raises(TeamUpdateError) as caught:
        wire.check_signed(data)
    assert words in caught.value.diagnostics()


# --- the signed document (§17.1, §17.2, §17.4) ----------------------------------------------


def test_a_signed_update_reads_back_as_made() -> None:
    update_id = secrets.token_hex(16)
    update = wire.check_signed(signed(update_id=update_id))
    assert update == wire.Update(
        id=update_id, author=str(AUTHOR.token), directory_serial=1, clock=3,
        made_at="2026-11-21T08:00:00Z", report=REPORT, field="triage",
        value=GOOD_VALUES["triage"],
    )  # fmt: skip
    assert hash(update)  # usable in sets although it carries a dict


@pytest.mark.parametrize("field", wire.FIELDS)
def test_every_field_round_trips(field: str) -> None:
    assert wire.check_signed(signed(field)).value == GOOD_VALUES[field]


def test_a_tampered_signature_is_refused() -> None:
    document = json.loads(signed())
    signature = bytearray(base64url.decode(document["signature"]) or b"")
    signature[0] ^= 1
    document["signature"] = base64url.encode(bytes(signature))
    refused(json.dumps(document).encode(), "signature does not verify")


def test_a_changed_payload_no_longer_matches_its_signature() -> None:
    document = json.loads(signed())
    update = json.loads(base64url.decode(document["payload"]) or b"")
    update["value"]["grade"] = "A1"
    document["payload"] = base64url.encode(json.dumps(update).encode())
    refused(json.dumps(document).encode(), "signature does not verify")


def test_a_signature_by_another_key_than_the_author_is_refused() -> None:
    update_bytes = json.dumps(payload()).encode()
    refused(raw_signed(update_bytes, signer=SigningKeyPair.generate()), "does not verify")


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: {**d, "extra": 1}, "exactly the members"),
        (lambda d: {k: v for k, v in d.items() if k != "signature"}, "exactly the members"),
        (lambda d: {**d, "schema": "cso-team-signed/v2"}, "not a cso-team-signed/v1"),
        (lambda d: {**d, "payload": d["payload"] + "="}, "canonical base64url"),
        (lambda d: {**d, "signature": d["signature"][:-4]}, "canonical base64url"),
    ],
)
def test_a_document_of_the_wrong_shape_is_refused(
    mutate: Callable[[dict[str, Any]], dict[str, Any]], words: str
) -> None:
    refused(json.dumps(mutate(json.loads(signed()))).encode(), words)


def test_repeated_members_are_refused_in_the_document_and_the_payload() -> None:
    document = signed().decode()
    refused(document[:-1].encode() + b',"schema":"cso-team-signed/v1"}', "repeats a member")
    update_bytes = json.dumps(payload()).encode()
    inner = update_bytes[:-1] + b',"clock":999}'
    refused(raw_signed(inner), "repeats a member")
    nested = update_bytes.replace(b'"grade": "B2"', b'"grade": "B2", "grade": "A1"')
    assert nested != update_bytes
    refused(raw_signed(nested), "repeats a member")


def test_a_document_over_64_kib_is_refused_before_parsing() -> None:
    refused(b"{" + b" " * wire.MAX_SIGNED_BYTES + b"}", "larger than 64 KiB")


@pytest.mark.parametrize(
    ("literal", "words"),
    [
        (b"true", "not an integer"),
        (b"3.0", "plain digits"),
        (b"3e0", "plain digits"),
        (b"-3", "plain digits"),
        (b"NaN", "plain digits"),
        (b"0", "not an integer from 1"),
        (b"9007199254740992", "not an integer from 1"),
        (b'"3"', "not an integer"),
    ],
)
def test_the_clock_is_a_plain_positive_integer(literal: bytes, words: str) -> None:
    update_bytes = json.dumps(payload(clock=424242)).encode().replace(b"424242", literal)
    refused(raw_signed(update_bytes), words)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"schema": "cso-team-update/v2"}, "not a cso-team-update/v1"),
        ({"id": "0123456789ABCDEF0123456789ABCDEF"}, "id is not 32"),
        ({"report": REPORT[:-1]}, "report is not 32"),
        ({"author": str(AUTHOR.token).upper()}, "canonical form"),
        ({"author": str(EncryptionKeyPair.generate().token)}, "not a csosig1"),
        ({"directory_serial": -1}, "plain digits"),
        ({"made_at": "2026-11-21 08:00:00Z"}, "made_at"),
        ({"made_at": "2026-02-30T08:00:00Z"}, "made_at"),
        ({"field": "status"}, "field is not one of"),
        ({"field": ["triage"]}, "field is not one of"),
        ({"value": ["confirmed"]}, "exactly the members"),
    ],
)
def test_a_payload_of_the_wrong_shape_is_refused_before_its_signature(
    changes: dict[str, Any], words: str
) -> None:
    update = payload(**changes)
    update_bytes = json.dumps(update).encode()
    # signed by a key that is not the author: a shape error must still show first
    refused(raw_signed(update_bytes, signer=SigningKeyPair.generate()), words)


def test_a_payload_with_a_missing_or_extra_member_is_refused() -> None:
    missing = {k: v for k, v in payload().items() if k != "made_at"}
    refused(raw_signed(json.dumps(missing).encode()), "exactly the members")
    refused(raw_signed(json.dumps({**payload(), "note": "x"}).encode()), "exactly the members")


# --- values (§17.3) ---------------------------------------------------------------------


def _with(field: str, **changes: Any) -> dict[str, Any]:
    return {**GOOD_VALUES[field], **changes}


BAD_VALUES = [
    ("triage", _with("triage", status="confirmed "), "status"),
    ("triage", _with("triage", grade="G1"), "grade"),
    ("triage", _with("triage", grade="b2"), "grade"),
    ("triage", _with("triage", duplicate_of=OTHER.upper()), "duplicate_of"),
    ("triage", {"status": "confirmed", "grade": "B2"}, "exactly the members"),
    ("assignee", _with("assignee", label=" reviewer"), "assignee"),
    ("assignee", _with("assignee", label=7), "assignee"),
    ("label", _with("label", name=" leading"), "label is 1 to 40"),
    ("label", _with("label", name="trailing "), "label is 1 to 40"),
    ("label", _with("label", name="x" * 41), "label is 1 to 40"),
    ("label", _with("label", name="pîracy"), "label is 1 to 40"),
    ("label", _with("label", name="a<b>"), "label is 1 to 40"),
    ("label", _with("label", present="yes"), "present"),
    ("label", _with("label", present=1), "present"),
    ("link", _with("link", other="not hex"), "other"),
    ("note", _with("note", text=""), "text"),
    ("note", _with("note", text="   \n"), "text"),
    ("note", _with("note", text="x" * 5001), "text"),
    ("note", _with("note", text="bell \x07"), "control character"),
    ("note", _with("note", text="escape \x1b[2J"), "control character"),
    ("note", _with("note", text="lone \ud800 surrogate"), "lone surrogate"),
    ("note", _with("note", extra=True), "exactly the members"),
    ("reply", _with("reply", status=None, message=None), "neither a message nor a status"),
    ("reply", _with("reply", status="open"), "status"),
    ("reply", _with("reply", message="x" * 20_001), "message"),
    ("reply", _with("reply", written_on="2026-02-30"), "written_on"),
    ("reply", _with("reply", written_on="21/11/2026"), "written_on"),
    ("reply", _with("reply", in_reply_to=""), "in_reply_to"),
    # §17.3: ``shortened`` has one form, true, and only beside a message
    ("reply", _with("reply", message="cut", shortened=False), "shortened"),
    ("reply", _with("reply", message="cut", shortened=1), "shortened"),
    ("reply", _with("reply", message=None, shortened=True), "shortened"),
    ("reply", _with("reply", message="cut", cut=True), "exactly the members"),
    ("note", _with("note", shortened=True), "exactly the members"),
]


@pytest.mark.parametrize(("field", "value", "words"), BAD_VALUES)
def test_a_value_of_the_wrong_shape_is_refused_by_reader_and_writer(
    field: str, value: dict[str, Any], words: str
) -> None:
    with pytest.raises(TeamUpdateError) as caught:
        wire.check_value(field, value)
    assert words in caught.value.diagnostics()
    with pytest.raises(TeamUpdateError):
        signed(field, value)  # §17.4: a writer does not sign what a reader refuses
    update_bytes = json.dumps(payload(field=field, value=value)).encode()
    refused(raw_signed(update_bytes), words)


def test_a_lone_surrogate_sent_as_a_json_escape_is_refused() -> None:
    update_bytes = json.dumps(payload(field="note", value=GOOD_VALUES["note"])).encode()
    escaped = update_bytes.replace(b"Seen twice.", b"Seen \\udc80twice.")
    assert escaped != update_bytes
    refused(raw_signed(escaped), "lone surrogate")


def test_values_at_their_limits_are_accepted() -> None:
    assert wire.check_value("label", _with("label", name="a" * 40))["name"] == "a" * 40
    assert wire.check_value("note", _with("note", text="é" * 5000))
    assert wire.check_value("reply", _with("reply", status=None, message="tab\tand\r\nlines"))
    assert wire.check_value("assignee", {"label": None}) == {"label": None}
    shortened = _with("reply", message="the start", shortened=True)
    assert wire.check_value("reply", shortened) == shortened
    assert wire.check_signed(signed("reply", shortened)).value["shortened"] is True


@pytest.mark.parametrize(("field", "member"), [("triage", "duplicate_of"), ("link", "other")])
def test_a_report_cannot_be_linked_to_itself(field: str, member: str) -> None:
    value = _with(field, **{member: REPORT})
    with pytest.raises(TeamUpdateError, match="to itself"):
        signed(field, value)
    refused(raw_signed(json.dumps(payload(field=field, value=value)).encode()), "to itself")


def test_a_change_too_large_to_relay_is_refused_when_made() -> None:
    # 20,000 characters of three UTF-8 bytes each: allowed as text, too large to seal
    reply = _with("reply", message="海" * 20_000)
    assert wire.check_value("reply", reply)
    with pytest.raises(TeamUpdateError, match="too large to share"):
        signed("reply", reply)
    assert signed("reply", _with("reply", message="x" * 20_000))  # a long Latin reply fits
    author = str(AUTHOR.token)
    assert not wire.shareable(author, REPORT, "reply", reply)
    assert wire.shareable(author, REPORT, "reply", _with("reply", message="x" * 20_000))


def test_shareable_measures_the_longest_clock_serial_and_time() -> None:
    """A value judged shareable is signed at any clock up to the cap (§17.5, §17.12)."""
    author = str(AUTHOR.token)
    low, high = 1, 20_000
    while high - low > 1:  # the longest message of 3-byte characters judged shareable
        middle = (low + high) // 2
        value = _with("reply", message="海" * middle)
        low, high = (
            (middle, high) if wire.shareable(author, REPORT, "reply", value) else (low, middle)
        )
    value = _with("reply", message="海" * low)
    assert signed("reply", value, clock=wire.MAX_CLOCK, directory_serial=wire.MAX_INTEGER)
    with pytest.raises(TeamUpdateError, match="too large to share"):
        signed("reply", _with("reply", message="海" * (low + 40)), clock=1, directory_serial=0)


# --- sealing (§17.5, §17.6) -------------------------------------------------------------


def test_an_update_opens_only_for_its_recipients() -> None:
    mine, theirs = EncryptionKeyPair.generate(), EncryptionKeyPair.generate()
    document = signed()
    envelope = wire.seal_update(document, [mine.public])
    assert wire.open_update(envelope, mine) == document
    with pytest.raises(NotForYouError):
        wire.open_update(envelope, theirs)


def test_every_failure_to_open_says_the_same() -> None:
    mine = EncryptionKeyPair.generate()
    envelope = wire.seal_update(signed(), [mine.public])
    messages = set()
    for damaged in (
        envelope[:40],  # header cut short
        envelope[:-1],  # payload cut short
        envelope[:-20] + bytes(20),  # last chunk altered
        envelope[:170] + bytes([envelope[170] ^ 1]) + envelope[171:],  # header MAC
        b"\x00" * (wire.MAX_ENVELOPE_BYTES + 1),  # too large to open
    ):
        with pytest.raises(TeamUpdateError) as caught:
            wire.open_update(damaged, mine)
        assert not isinstance(caught.value, NotForYouError)
        messages.add(caught.value.diagnostics())
    assert messages == {"a team update could not be opened"}


def test_sealing_needs_one_to_64_recipients() -> None:
    with pytest.raises(TeamUpdateError):
        wire.seal_update(signed(), [])
    keys = [EncryptionKeyPair.generate().public for _ in range(65)]
    with pytest.raises(TeamUpdateError):
        wire.seal_update(signed(), keys)


def test_an_opened_document_larger_than_the_cap_is_refused() -> None:
    mine = EncryptionKeyPair.generate()
    envelope = seal_bytes(b" " * (wire.MAX_SIGNED_BYTES + 1), [mine.public])
    assert len(envelope) > wire.MAX_ENVELOPE_BYTES  # refused unopened, as it should be
    with pytest.raises(TeamUpdateError, match="could not be opened"):
        wire.open_update(envelope, mine)


# --- key directories and admission (§17.8, §17.9) -------------------------------------------

ORGANISATION = SigningKeyPair.generate()


class Team:
    """Reviewers with both keys, and directories listing some of them."""

    def __init__(self, size: int = 3) -> None:
        self.members = [KeyBundle.new_reviewer() for _ in range(size)]

    def entry(self, index: int) -> tuple[str, Any, Any]:
        member = self.members[index]
        assert member.encryption is not None
        return (f"reviewer-{index + 1}", member.encryption.token, member.signing.token)

    def directory(
        self,
        serial: int,
        listed: list[int],
        *,
        organisation: SigningKeyPair = ORGANISATION,
        issued_at: datetime = NOW,
    ) -> bytes:
        return sign_directory(
            organisation, [self.entry(i) for i in listed], serial=serial,
            issued_at=issued_at, valid_for=timedelta(days=30),
        )  # fmt: skip

    def update(self, index: int, serial: int) -> wire.Update:
        made = signed(signer=self.members[index].signing, directory_serial=serial)
        return wire.check_signed(made)


def new_workspace(root: Path, keys: KeyBundle) -> Workspace:
    root.mkdir(mode=0o700)
    return Workspace(root, keys)


@pytest.fixture
def team() -> Team:
    return Team()


@pytest.fixture
def ws(tmp_path: Path, team: Team) -> Workspace:
    """Member 0's workspace, with the organisation key pinned."""
    workspace = new_workspace(tmp_path / "ws", team.members[0])
    directories.pin_organisation(workspace, str(ORGANISATION.token))
    return workspace


def test_pinning_checks_the_token_and_keeps_the_first_key(tmp_path: Path, team: Team) -> None:
    workspace = new_workspace(tmp_path / "ws", team.members[0])
    assert directories.organisation_key(workspace) is None
    with pytest.raises(ReviewerError, match="organisation key"):
        directories.pin_organisation(workspace, str(ORGANISATION.token)[:-2])
    with pytest.raises(ReviewerError):
        directories.pin_organisation(workspace, str(team.members[0].encryption.token))  # type: ignore[union-attr]
    directories.pin_organisation(workspace, str(ORGANISATION.token))
    directories.pin_organisation(workspace, " " + str(ORGANISATION.token) + "\n")  # the same
    assert directories.store_directory(workspace, team.directory(1, [0, 1]))
    other = SigningKeyPair.generate()
    with pytest.raises(ReviewerError, match="another organisation key is pinned"):
        directories.pin_organisation(workspace, str(other.token))
    directories.pin_organisation(workspace, str(other.token), replace=True)
    assert directories.organisation_key(workspace) == other.token
    assert directories.held(workspace) == []  # signed by the old key: forgotten


def test_no_directory_is_kept_without_a_pinned_key(tmp_path: Path, team: Team) -> None:
    workspace = new_workspace(tmp_path / "ws", team.members[0])
    with pytest.raises(ReviewerError, match="trust-org"):
        directories.store_directory(workspace, team.directory(1, [0]))
    assert directories.held(workspace) == []


def test_a_directory_signed_by_another_organisation_key_is_refused(
    ws: Workspace, team: Team
) -> None:
    forged = team.directory(1, [0, 1], organisation=SigningKeyPair.generate())
    with pytest.raises(ReviewerError, match="key directory refused"):
        directories.store_directory(ws, forged)
    assert directories.newest(ws) is None


def test_every_verified_directory_is_kept_and_the_first_copy_of_a_serial_stays(
    ws: Workspace, team: Team
) -> None:
    first = team.directory(2, [0, 1])
    assert directories.store_directory(ws, first) is not None
    assert directories.store_directory(ws, first) is None  # already held
    # long expired: still kept, it says who was a reviewer back then
    old = team.directory(1, [0], issued_at=NOW - timedelta(days=400))
    assert directories.store_directory(ws, old) is not None
    with pytest.raises(ReviewerError, match="differs from the one already held"):
        directories.store_directory(ws, team.directory(2, [0, 2]))
    assert [d.serial for d in directories.held(ws)] == [1, 2]
    newest = directories.newest(ws)
    assert newest is not None
    assert len(newest.reviewers) == 2
    assert newest.reviewers[1].label == "reviewer-2"  # the first copy of serial 2


def test_labels_come_from_the_directories(ws: Workspace, team: Team) -> None:
    assert directories.my_label(ws) == "this workstation"
    directories.store_directory(ws, team.directory(1, [0, 1, 2]))
    directories.store_directory(ws, team.directory(2, [0, 1]))
    assert directories.my_label(ws) == "reviewer-1"
    assert directories.label_of(ws, str(team.members[1].signing.token)) == "reviewer-2"
    # removed since, but their earlier work still shows their name
    assert directories.label_of(ws, str(team.members[2].signing.token)) == "reviewer-3"
    assert directories.label_of(ws, str(SigningKeyPair.generate().token)) is None


def test_admission_with_no_directory_keeps_updates_pending(ws: Workspace, team: Team) -> None:
    assert directories.admission(ws, team.update(1, 1))[0] == "pending"
    assert directories.admission(ws, team.update(0, 1))[0] == "accepted"  # our own


def test_an_author_not_in_the_directory_is_refused(ws: Workspace, team: Team) -> None:
    directories.store_directory(ws, team.directory(1, [0, 1]))
    state, reason = directories.admission(ws, team.update(2, 1))
    assert (state, reason) == ("refused", "its author is not listed in key directory 1")


def test_a_removed_reviewer_naming_the_newest_directory_is_refused(
    ws: Workspace, team: Team
) -> None:
    directories.store_directory(ws, team.directory(1, [0, 1, 2]))
    directories.store_directory(ws, team.directory(2, [0, 1]))
    assert directories.admission(ws, team.update(2, 2))[0] == "refused"
    # the same reviewer's update made while an older directory listed them stays accepted
    assert directories.admission(ws, team.update(2, 1)) == (
        "accepted",
        "its author is listed in key directory 1",
    )


def test_a_future_serial_is_pending_until_its_directory_arrives(ws: Workspace, team: Team) -> None:
    directories.store_directory(ws, team.directory(1, [0]))
    newcomer = team.update(1, 2)
    assert directories.admission(ws, newcomer) == (
        "pending",
        "it names key directory 2, not held yet",
    )
    directories.store_directory(ws, team.directory(2, [0, 1]))
    assert directories.admission(ws, newcomer)[0] == "accepted"


def test_the_directory_judging_is_the_greatest_serial_not_above_the_named_one(
    ws: Workspace, team: Team
) -> None:
    directories.store_directory(ws, team.directory(3, [0, 1]))
    directories.store_directory(ws, team.directory(7, [0, 2]))
    assert directories.admission(ws, team.update(1, 5))[0] == "accepted"  # judged by 3
    assert directories.admission(ws, team.update(2, 5))[0] == "refused"
    assert directories.admission(ws, team.update(2, 7))[0] == "accepted"
    # older than every directory held (0: made before its author held one): the oldest judges
    assert directories.admission(ws, team.update(1, 0))[0] == "accepted"
    assert directories.admission(ws, team.update(2, 0))[0] == "refused"


def test_a_directory_entry_without_a_signing_key_admits_no_one(ws: Workspace, team: Team) -> None:
    member = team.members[1]
    assert member.encryption is not None
    directories.store_directory(
        ws,
        sign_directory(ORGANISATION, [("reviewer-2", member.encryption.token)], serial=1,
                       issued_at=NOW, valid_for=timedelta(days=30)),
    )  # fmt: skip
    assert directories.admission(ws, team.update(1, 1))[0] == "refused"
