"""Members, invitations, passkeys, recovery codes, sessions and the audit log, on both databases.

The store runs against real SQLite and real PostgreSQL (migrated by the real
migrations); the append-only audit log is checked with raw SQL, so that it is
the database itself that refuses, not the code.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from incident_db.cli import main
from incident_db.db import open_database
from incident_db.members import store
from incident_db.members.models import (
    AuditEvent,
    Invitation,
    Member,
    MemberSession,
    Passkey,
    RecoveryCode,
    WebAuthnChallenge,
)
from incident_db.members.store import MemberError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ESCAPE = "ev\x1b]0;owned\x07il"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The migrated database."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """One session; tests commit where a second session or raw SQL must see the change."""
    with Session(engine) as session:
        yield session


def _count(session: Session, model: type, **where: object) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return int(session.scalar(query) or 0)


def _joined(db: Session, handle: str, role: str = "member") -> Member:
    """A member who used their invitation and registered a passkey."""
    member = store.consume_invitation(db, store.invite(db, handle, role, actor="cli", now=T0), T0)
    store.add_passkey(db, member, handle.encode(), b"cose-key", 0, now=T0)
    return member


# -- invitations --------------------------------------------------------------------------


def test_an_invitation_works_once(db: Session) -> None:
    token = store.invite(db, "Alice@Example.org", "admin", actor="cli", now=T0)
    assert len(token) == 43
    assert "=" not in token
    assert _count(db, Invitation, token_hash=token) == 0  # only the hash is stored
    assert store.invitation_member(db, token, now=T0).handle == "Alice@Example.org"
    member = store.consume_invitation(db, token, now=T0 + timedelta(minutes=5))
    assert (member.handle, member.role, member.created_day) == ("Alice@Example.org", "admin",
                                                                T0.date())  # fmt: skip
    assert len(member.user_handle) == 64
    with pytest.raises(MemberError, match="already used"):
        store.consume_invitation(db, token, now=T0 + timedelta(minutes=6))
    with pytest.raises(MemberError):
        store.invitation_member(db, token, now=T0 + timedelta(minutes=6))
    with pytest.raises(MemberError):
        store.invitation_member(db, token + "x", now=T0)
    db.commit()
    [event] = store.audit_events(db)
    assert (event.actor, event.action, event.subject) == ("cli", "member.invite",
                                                          "Alice@Example.org")  # fmt: skip
    assert event.details["role"] == "admin"
    assert event.at == T0


def test_an_invitation_expires(db: Session) -> None:
    token = store.invite(db, "alice", "member", actor="cli", now=T0)
    almost = T0 + store.INVITATION_LIFETIME - timedelta(seconds=1)
    assert store.invitation_member(db, token, now=almost).handle == "alice"
    with pytest.raises(MemberError):
        store.consume_invitation(db, token, now=T0 + store.INVITATION_LIFETIME)
    short = store.invite(db, "alice", "member", actor="cli", lifetime=timedelta(hours=1), now=T0)
    with pytest.raises(MemberError):
        store.consume_invitation(db, short, now=T0 + timedelta(hours=1, seconds=1))
    assert store.consume_invitation(db, short, now=T0 + timedelta(minutes=59)).handle == "alice"


def test_a_used_link_is_refused_even_to_a_session_that_saw_it_unused(engine: Engine) -> None:
    """The conditional UPDATE decides, not what a session read earlier."""
    with Session(engine) as setup:
        token = store.invite(setup, "alice", "admin", actor="cli", now=T0)
        setup.commit()
    with Session(engine) as late, Session(engine) as early:
        assert store.invitation_member(late, token, now=T0).handle == "alice"
        # both requests have read the link as unused before either writes
        seen = late.scalars(select(Invitation)).one()
        assert seen.used_at is None
        store.consume_invitation(early, token, now=T0)
        early.commit()
        with pytest.raises(MemberError):
            store.consume_invitation(late, token, now=T0)


def test_a_new_invitation_replaces_the_old_one(db: Session) -> None:
    first = store.invite(db, "alice", "admin", actor="cli", now=T0)
    second = store.invite(db, "ALICE", "admin", actor="cli", now=T0)
    with pytest.raises(MemberError):
        store.invitation_member(db, first, now=T0)
    assert store.consume_invitation(db, second, now=T0).handle == "alice"
    assert [m.handle for m in store.members(db)] == ["alice"]


def test_a_removed_member_can_be_invited_again(db: Session) -> None:
    _joined(db, "admin", "admin")
    bob = _joined(db, "bob")
    old_user_handle = bob.user_handle
    store.remove(db, "bob", actor="admin", now=T0)
    assert store.member_by_handle(db, "bob") is None
    token = store.invite(db, "Bob", "editor", actor="admin", now=T0 + timedelta(days=3))
    again = store.consume_invitation(db, token, now=T0 + timedelta(days=3))
    assert again.id == bob.id
    assert (again.handle, again.role, again.removed_day) == ("Bob", "editor", None)
    assert again.user_handle != old_user_handle  # old authenticators' entries match nothing
    assert store.passkeys_of(db, again) == []


@pytest.mark.parametrize(
    "handle",
    [ESCAPE, "a\nb", "a\u202eb", "a\u200bb", "a\u2028b", "a\x85b", "\ufeffa", "", "   ",
     "x" * 121, "\U000f0000"],
)  # fmt: skip
def test_hostile_handles_are_refused(db: Session, handle: str) -> None:
    with pytest.raises(MemberError) as refused:
        store.invite(db, handle, "member", actor="cli", now=T0)
    assert handle.strip() == "" or handle not in str(refused.value)
    assert store.members(db) == []
    assert store.member_by_handle(db, handle) is None


def test_handles_are_trimmed_and_compared_without_case(db: Session) -> None:
    store.invite(db, "  Ann   Lee  ", "member", actor="cli", now=T0)
    assert [m.handle for m in store.members(db)] == ["Ann Lee"]
    assert store.member_by_handle(db, "ANN LEE") is not None
    assert store.member_by_handle(db, "\uff41nn lee") is not None  # fullwidth: NFKC
    store.invite(db, "ann lee", "member", actor="cli", now=T0)
    assert len(store.members(db)) == 1
    assert store.invite(db, "x" * 120, "member", actor="cli", now=T0)


# -- roles and removal ---------------------------------------------------------------------


def test_roles_change_and_are_audited(db: Session) -> None:
    _joined(db, "alice", "admin")
    _joined(db, "bob", "member")
    store.set_role(db, "BOB", "editor", actor="alice", now=T0)
    assert store.member_by_handle(db, "bob").role == "editor"  # type: ignore[union-attr]
    with pytest.raises(MemberError, match="role is one of"):
        store.set_role(db, "bob", "owner", actor="alice")
    with pytest.raises(MemberError, match="no member"):
        store.set_role(db, "carol", "editor", actor="alice")
    event = store.audit_events(db, limit=1)[0]
    assert (event.actor, event.action, event.subject) == ("alice", "member.role", "bob")
    assert event.details == {"from": "member", "to": "editor"}


def test_the_last_admin_stays(db: Session) -> None:
    _joined(db, "alice", "admin")
    with pytest.raises(MemberError, match="last admin"):
        store.remove(db, "alice", actor="cli")
    with pytest.raises(MemberError, match="last admin"):
        store.set_role(db, "alice", "editor", actor="cli")
    with pytest.raises(MemberError, match="last admin"):
        store.invite(db, "alice", "member", actor="cli", reset_access=True, now=T0)
    assert len(store.passkeys_of(db, store.member_by_handle(db, "alice"))) == 1  # nothing reset
    _joined(db, "bob", "admin")
    store.set_role(db, "alice", "editor", actor="bob")
    with pytest.raises(MemberError, match="last admin"):
        store.remove(db, "bob", actor="cli")
    store.set_role(db, "alice", "admin", actor="bob")
    store.remove(db, "bob", actor="alice")
    assert [(m.handle, m.role) for m in store.members(db)] == [("alice", "admin")]


def test_a_removed_member_is_signed_out_at_once(engine: Engine) -> None:
    with Session(engine) as db:
        _joined(db, "alice", "admin")
        bob = _joined(db, "bob")
        bob_id = bob.id
        codes = store.new_recovery_codes(db, bob)
        cookie = store.start_session(db, bob, now=T0)
        db.commit()
        assert store.session_member(db, cookie, now=T0 + timedelta(seconds=5)) is not None
    with Session(engine) as admin:
        store.remove(admin, "bob", actor="alice", now=T0 + timedelta(seconds=10))
        admin.commit()
    with Session(engine) as db:
        assert store.session_member(db, cookie, now=T0 + timedelta(seconds=11)) is None
        for model in (MemberSession, Passkey, RecoveryCode, Invitation):
            assert _count(db, model, member_id=bob_id) == 0, model
        assert store.use_recovery_code(db, "bob", codes[0]) is None
        with pytest.raises(MemberError):
            store.start_session(db, db.get(Member, bob_id))  # type: ignore[arg-type]
        assert db.get(Member, bob_id).removed_day == T0.date()  # type: ignore[union-attr]
        assert store.audit_events(db, limit=1)[0].action == "member.remove"


# -- sessions --------------------------------------------------------------------------------


def test_a_session_ends_when_idle(db: Session) -> None:
    alice = _joined(db, "alice", "admin")
    cookie = store.start_session(db, alice, now=T0)
    assert _count(db, MemberSession, token_hash=cookie) == 0  # only the hash is stored
    assert store.session_member(db, cookie, now=T0 + timedelta(minutes=29)) is not None
    # that use moved the idle clock
    assert store.session_member(db, cookie, now=T0 + timedelta(minutes=58)) is not None
    assert store.session_member(db, cookie, now=T0 + timedelta(minutes=88, seconds=1)) is None
    assert _count(db, MemberSession) == 0
    assert store.session_member(db, cookie, now=T0 + timedelta(minutes=58)) is None


def test_a_session_ends_at_its_maximum_age(db: Session) -> None:
    alice = _joined(db, "alice", "admin")
    cookie = store.start_session(db, alice, now=T0)
    moment = T0
    while moment + timedelta(minutes=20) <= T0 + store.SESSION_MAX:
        moment += timedelta(minutes=20)
        assert store.session_member(db, cookie, now=moment) is not None
    assert (
        store.session_member(db, cookie, now=T0 + store.SESSION_MAX + timedelta(minutes=1)) is None
    )


def test_last_seen_is_written_at_most_once_a_minute(engine: Engine) -> None:
    with Session(engine) as db:
        cookie = store.start_session(db, _joined(db, "alice", "admin"), now=T0)
        db.commit()
        store.session_member(db, cookie, now=T0 + timedelta(seconds=50))
        assert not db.dirty
        assert not db.new
        db.commit()
        row = db.scalars(select(MemberSession)).one()
        assert row.last_seen_at == T0
        store.session_member(db, cookie, now=T0 + timedelta(seconds=70))
        db.commit()
        db.expire_all()
        assert db.scalars(select(MemberSession)).one().last_seen_at == T0 + timedelta(seconds=70)


def test_signing_out(db: Session) -> None:
    alice = _joined(db, "alice", "admin")
    cookies = [store.start_session(db, alice, now=T0) for _ in range(3)]
    store.end_session(db, cookies[0])
    store.end_session(db, "no such cookie")
    assert store.session_member(db, cookies[0], now=T0) is None
    assert store.session_member(db, cookies[1], now=T0) is not None
    assert store.end_all_sessions(db, alice) == 2
    assert store.session_member(db, cookies[2], now=T0) is None
    assert store.session_member(db, "x" * 10_000, now=T0) is None


def test_stale_sessions_are_swept(db: Session) -> None:
    alice = _joined(db, "alice", "admin")
    store.start_session(db, alice, now=T0)
    fresh = store.start_session(db, alice, now=T0 + timedelta(minutes=20))
    assert store.end_stale_sessions(db, now=T0 + timedelta(minutes=40)) == 1
    assert store.session_member(db, fresh, now=T0 + timedelta(minutes=40)) is not None


# -- passkeys and recovery codes ---------------------------------------------------------------


def test_passkeys(db: Session) -> None:
    alice = _joined(db, "alice", "admin")
    passkey = store.add_passkey(db, alice, b"\x00\xff" * 40, b"\xa5\x01", 2**32 - 2, now=T0)
    db.commit()
    found = store.passkey_by_id(db, b"\x00\xff" * 40)
    assert found is not None
    assert found.member_id == alice.id
    assert found.public_key == b"\xa5\x01"
    with pytest.raises(MemberError, match="already registered"):
        store.add_passkey(db, alice, b"\x00\xff" * 40, b"other", 0)
    store.record_passkey_use(db, passkey, 2**32 - 1, now=T0 + timedelta(days=2))
    db.commit()
    db.expire_all()
    assert (passkey.sign_count, passkey.last_used_day) == (
        2**32 - 1,
        (T0 + timedelta(days=2)).date(),
    )
    assert [p.credential_id for p in store.passkeys_of(db, alice)] == [b"alice", b"\x00\xff" * 40]
    assert store.passkey_by_id(db, b"unknown") is None
    with pytest.raises(MemberError):
        store.record_passkey_use(db, passkey, 2**32)


def test_a_recovery_code_works_once(db: Session) -> None:
    alice = _joined(db, "alice", "admin")
    bob = _joined(db, "bob")
    codes = store.new_recovery_codes(db, alice)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    stored = {row.code_hash for row in db.scalars(select(RecoveryCode))}
    assert not stored & {code.replace("-", "") for code in codes}
    assert store.use_recovery_code(db, "bob", codes[0]) is None  # someone else's
    typed = f"  {codes[0].lower().replace('-', ' ')} "
    assert store.use_recovery_code(db, "ALICE", typed, now=T0) == alice
    assert store.use_recovery_code(db, "alice", codes[0], now=T0) is None
    assert store.use_recovery_code(db, "alice", "AAAA-AAAA-AAAA-AAAA") is None
    assert store.use_recovery_code(db, "alice", "not a code") is None
    assert store.use_recovery_code(db, "nobody", codes[1]) is None
    fresh = store.new_recovery_codes(db, alice, count=3)
    assert store.use_recovery_code(db, "alice", codes[1]) is None  # the old ones are gone
    assert store.use_recovery_code(db, "alice", fresh[2]) == alice
    assert store.new_recovery_codes(db, bob, count=1)[0] not in fresh


# -- the audit log -----------------------------------------------------------------------------


def test_the_audit_log_is_paged_newest_first(db: Session) -> None:
    for number in range(5):
        store.audit(db, "alice", "export.csv", f"export {number}", {"rows": number}, now=T0)
    db.commit()
    newest = store.audit_events(db, limit=2)
    assert [e.subject for e in newest] == ["export 4", "export 3"]
    older = store.audit_events(db, limit=10, before=newest[-1].id)
    assert [e.subject for e in older] == ["export 2", "export 1", "export 0"]
    store.audit(db, "alice", "brief.place", "y" * 500, now=T0)
    assert len(store.audit_events(db, limit=1)[0].subject) == 200


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_event SET actor = 'someone else'", "DELETE FROM audit_event",
     "UPDATE audit_event SET detail = '{}' WHERE id = 1"],
)  # fmt: skip
def test_the_database_refuses_to_rewrite_the_audit_log(engine: Engine, statement: str) -> None:
    with Session(engine) as db:
        store.audit(db, "alice", "member.invite", "bob", {"role": "member"}, now=T0)
        db.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT actor, subject, detail FROM audit_event")).all()
    assert [tuple(row) for row in rows] == [("alice", "bob", json.dumps({"role": "member"}))]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no TRUNCATE
def test_postgresql_refuses_to_truncate_the_audit_log(engine: Engine) -> None:
    with Session(engine) as db:
        store.audit(db, "alice", "member.invite", "bob", now=T0)
        db.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_event"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM audit_event")).scalar() == 1


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def members_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Callable[..., tuple[int, str, str]]:
    """``incident-db members …`` through its ``main``, on the test's database."""
    monkeypatch.delenv("INCIDENT_DB_ORIGIN", raising=False)
    monkeypatch.setenv("INCIDENT_DB_URL", database_url)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["members", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_command_end_to_end(
    members_cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    code, out, err = members_cli("invite", "Alice@Example.org", "--role", "admin")
    assert (code, err) == (0, "")
    link = out.splitlines()[1]
    assert link.startswith("http://localhost:8100/join/")  # where the passkey works
    expires = (datetime.now(UTC) + store.INVITATION_LIFETIME).date().isoformat()
    assert f"expires on {expires}" in out

    monkeypatch.setenv("INCIDENT_DB_ORIGIN", "https://members.example.org/")
    code, out, _ = members_cli("invite", "bob", "--role", "member", "--days", "2")
    assert code == 0
    assert out.splitlines()[1].startswith("https://members.example.org/join/")
    code, out, _ = members_cli("invite", "carol", "--role", "editor", "--base-url",
                               "https://other.example/")  # fmt: skip
    assert out.splitlines()[1].startswith("https://other.example/join/")

    engine = open_database(database_url)
    try:
        with Session(engine) as db:
            alice = store.consume_invitation(db, link.rsplit("/", 1)[1])
            store.add_passkey(db, alice, b"credential", b"key", 0)
            db.commit()
    finally:
        engine.dispose()

    code, out, _ = members_cli("list")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["handle", "role", "passkeys", "created"]
    today = datetime.now(UTC).date().isoformat()
    assert [line.split() for line in lines[1:]] == [
        ["Alice@Example.org", "admin", "1", today],
        ["bob", "member", "0", today],
        ["carol", "editor", "0", today],
    ]
    code, out, _ = members_cli("list", "--json")
    assert json.loads(out)[0] == {"handle": "Alice@Example.org", "role": "admin", "passkeys": 1,
                                  "created_day": today}  # fmt: skip

    assert members_cli("role", "BOB", "editor")[1] == "bob is now editor\n"
    code, out, _ = members_cli("remove", "carol")
    assert code == 0
    assert out.startswith("removed carol")
    code, _, err = members_cli("remove", "alice@example.org")
    assert code == 1
    assert err == "incident-db: cannot remove the last admin: make another member admin first\n"
    code, _, err = members_cli("role", "carol", "admin")
    assert (code, err) == (1, "incident-db: no member has the handle 'carol'\n")

    engine = open_database(database_url)
    try:
        with Session(engine) as db:
            events = [(e.actor, e.action, e.subject) for e in store.audit_events(db)]
    finally:
        engine.dispose()
    assert events == [
        ("cli", "member.remove", "carol"),
        ("cli", "member.role", "bob"),
        ("cli", "member.invite", "carol"),
        ("cli", "member.invite", "bob"),
        ("cli", "member.invite", "Alice@Example.org"),
    ]


def test_the_command_refuses_a_hostile_handle(
    members_cli: Callable[..., tuple[int, str, str]], database_url: str
) -> None:
    code, out, err = members_cli("invite", ESCAPE, "--role", "admin")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "control" in err
    for args in (("remove", ESCAPE), ("role", ESCAPE, "admin")):
        code, out, err = members_cli(*args)
        assert code == 1
        assert "\x1b" not in out + err
    code, out, _ = members_cli("list", "--json")
    assert json.loads(out) == []


def test_the_command_refuses_bad_options(members_cli: Callable[..., tuple[int, str, str]]) -> None:
    code, _, err = members_cli("invite", "alice", "--role", "admin", "--days", "0")
    assert code == 1
    assert "--days" in err
    code, _, err = members_cli("invite", "alice", "--role", "admin", "--base-url", "javascript:x")
    assert code == 1
    assert "base URL" in err
    with pytest.raises(SystemExit):
        members_cli("invite", "alice", "--role", "owner")
    code, out, _ = members_cli("list")
    assert code == 0
    assert out.startswith("no members yet")


def test_shown_replaces_what_a_terminal_would_obey() -> None:
    from incident_db.cli.members import shown

    assert shown("a\x1b[2Jb\u202ec\x9bd") == "a\ufffd[2Jb\ufffdc\ufffdd"
    assert shown("Ann Lee") == "Ann Lee"


def test_audit_rows_are_plain_rows(db: Session) -> None:
    """The model reads what the raw table holds (UTC, aware)."""
    store.audit(db, "cli", "member.invite", "x", now=datetime(2026, 3, 1, 12, 0))
    store.audit(db, "cli", "member.invite", "y",
                now=datetime(2026, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=3))))  # fmt: skip
    db.commit()
    db.expire_all()
    times = [e.at for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert times == [
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 13, 0, tzinfo=UTC),
    ]


# -- findings of the outside review (issue 16), each reproduced first -------------------------


@pytest.mark.parametrize(
    "statement",
    [
        # SQLite's REPLACE deletes the row it conflicts with, firing no DELETE trigger
        "REPLACE INTO audit_event (id, at, actor, action, subject, detail) "
        "VALUES (1, '2020-01-01 00:00:00', 'nobody', 'noop', '', '{}')",
        "INSERT OR REPLACE INTO audit_event (id, at, actor, action, subject, detail) "
        "VALUES (1, '2020-01-01 00:00:00', 'nobody', 'noop', '', '{}')",
        # an upsert's DO UPDATE is an UPDATE: refused on both databases
        "INSERT INTO audit_event (id, at, actor, action, subject, detail) "
        "VALUES (1, '2020-01-01 00:00:00', 'nobody', 'noop', '', '{}') "
        "ON CONFLICT (id) DO UPDATE SET actor = excluded.actor, detail = excluded.detail",
    ],
)
def test_the_audit_log_cannot_be_replaced_row_by_row(
    engine: Engine, database_url: str, statement: str
) -> None:
    if "REPLACE" in statement and not database_url.startswith("sqlite"):
        pytest.skip("REPLACE is SQLite's")  # PostgreSQL has no such statement at all
    with Session(engine) as db:
        store.audit(db, "alice", "member.invite", "bob", {"role": "member"}, now=T0)
        db.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, actor, detail FROM audit_event")).all()
    assert [tuple(row) for row in rows] == [(1, "alice", json.dumps({"role": "member"}))]
    with Session(engine) as db:  # appending still works
        store.audit(db, "alice", "sign-in", "alice", now=T0)
        db.commit()
        assert [e.id for e in store.audit_events(db)] == [2, 1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_admins_removing_each_other_at_once_leave_one(engine: Engine) -> None:
    """Anna's removal of Bert runs to its commit just before Bert's removal of Anna writes.

    SQLite ignores FOR UPDATE, so only the UPDATE's own condition can see
    that Anna is by then the last admin. (PostgreSQL locks the admins' rows:
    the second request waits for the first, and then reads the same.)
    """
    with Session(engine) as db:
        _joined(db, "anna", "admin")
        _joined(db, "bert", "admin")
        db.commit()

    def anna_removes_bert() -> None:
        with Session(engine) as other:
            store.remove(other, "bert", actor="anna", now=T0)
            other.commit()

    raced: list[str] = []
    main_thread = threading.get_ident()

    def interleave(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        writes = statement.lstrip().upper().startswith(("UPDATE", "DELETE", "INSERT"))
        if writes and not raced and threading.get_ident() == main_thread:
            raced.append(statement)
            worker = threading.Thread(target=anna_removes_bert)
            worker.start()
            worker.join()

    event.listen(engine, "before_cursor_execute", interleave)
    try:
        with Session(engine) as db, pytest.raises(MemberError, match="last admin"):
            store.remove(db, "anna", actor="bert", now=T0)
    finally:
        event.remove(engine, "before_cursor_execute", interleave)
    assert raced  # the race did happen where it hurts
    with Session(engine) as db:
        assert [(m.handle, m.role) for m in store.members(db)] == [("anna", "admin")]


def test_a_counter_is_recorded_by_one_of_two_racing_sign_ins(engine: Engine) -> None:
    with Session(engine) as db:
        member = _joined(db, "alice")
        db.commit()
        member_id = member.id
    with Session(engine) as first, Session(engine) as second:
        mine = store.passkeys_of(first, first.get(Member, member_id))[0]  # type: ignore[arg-type]
        theirs = store.passkeys_of(second, second.get(Member, member_id))[0]  # type: ignore[arg-type]
        store.record_passkey_use(first, mine, 1, now=T0)
        first.commit()
        with pytest.raises(MemberError, match="another sign-in"):
            store.record_passkey_use(second, theirs, 1, now=T0)  # read before, written after
        second.rollback()
        store.record_passkey_use(second, theirs, 2, now=T0)
        second.commit()
        with pytest.raises(MemberError):
            store.record_passkey_use(second, theirs, 2, now=T0)  # equal is not ahead


def test_a_counterless_passkey_is_recorded_each_time(db: Session) -> None:
    passkey = store.passkeys_of(db, _joined(db, "alice"))[0]
    for _ in range(2):
        store.record_passkey_use(db, passkey, 0, now=T0)
    store.record_passkey_use(db, passkey, 3, now=T0)
    with pytest.raises(MemberError):
        store.record_passkey_use(db, passkey, 0, now=T0)  # a counter once kept stays kept


def test_a_challenge_answers_once_and_expires(db: Session) -> None:
    alice = _joined(db, "alice")
    challenge = b"c" * 32
    store.issue_challenge(db, challenge, "sign-in", now=T0)
    assert not store.take_challenge(db, challenge, "join:x", now=T0)  # made for another purpose
    assert not store.take_challenge(db, challenge, "sign-in", alice, now=T0)  # another member
    assert store.take_challenge(db, challenge, "sign-in", now=T0 + timedelta(seconds=1))
    assert not store.take_challenge(db, challenge, "sign-in", now=T0 + timedelta(seconds=2))
    store.issue_challenge(db, b"d" * 32, f"add:{alice.user_handle}", alice, now=T0)
    late = T0 + store.CHALLENGE_LIFETIME
    assert not store.take_challenge(db, b"d" * 32, f"add:{alice.user_handle}", alice, now=late)
    # abandoned challenges are swept when the next one is made; only hashes are kept
    store.issue_challenge(db, b"e" * 32, "sign-in", now=late)
    rows = db.scalars(select(WebAuthnChallenge)).all()
    assert [(row.purpose, len(row.challenge_hash)) for row in rows] == [("sign-in", 64)]
    with pytest.raises(MemberError):
        store.issue_challenge(db, b"short", "sign-in", now=T0)


def test_a_suspected_passkey_is_disabled_and_its_member_signed_out(db: Session) -> None:
    alice = _joined(db, "alice")
    passkey = store.passkeys_of(db, alice)[0]
    store.record_passkey_use(db, passkey, 5, now=T0)
    cookies = [store.start_session(db, alice, now=T0) for _ in range(2)]
    assert store.suspect_passkey(db, passkey, 3, now=T0) == 2
    assert all(store.session_member(db, c, now=T0) is None for c in cookies)
    assert not passkey.usable
    with pytest.raises(MemberError):
        store.record_passkey_use(db, passkey, 1000, now=T0)  # a jump ahead does not revive it
    line = store.audit_events(db, limit=1)[0]
    assert (line.actor, line.actor_kind, line.action, line.subject) == (
        "system", "system", "passkey.clone-suspected", "alice")  # fmt: skip
    assert line.details == {"stored_counter": 5, "reported_counter": 3, "sessions_ended": 2}


def test_a_member_removes_a_passkey_but_never_the_last_working_one(db: Session) -> None:
    alice = _joined(db, "alice")
    first = store.passkeys_of(db, alice)[0]
    with pytest.raises(MemberError, match="last working passkey"):
        store.remove_passkey(db, alice, first.id, actor="alice", now=T0)
    second = store.add_passkey(db, alice, b"second", b"cose-key", 0, now=T0)
    bob = _joined(db, "bob")
    with pytest.raises(MemberError, match="no such passkey"):
        store.remove_passkey(db, bob, second.id, actor="bob", now=T0)
    store.suspect_passkey(db, second, 0, now=T0)
    with pytest.raises(MemberError, match="last working passkey"):
        store.remove_passkey(db, alice, first.id, actor="alice", now=T0)  # the other is disabled
    store.remove_passkey(db, alice, second.id, actor="alice", now=T0)  # a disabled one may go
    assert [p.credential_id for p in store.passkeys_of(db, alice)] == [b"alice"]
    line = store.audit_events(db, limit=1)[0]
    assert (line.actor, line.action, line.details["disabled"]) == ("alice", "passkey.remove", True)


def test_a_member_who_signed_up_is_invited_again_only_with_a_reset(db: Session) -> None:
    alice = _joined(db, "alice")
    store.new_recovery_codes(db, alice)
    cookie = store.start_session(db, alice, now=T0)
    with pytest.raises(MemberError, match="signed up already"):
        store.invite(db, "ALICE", "member", actor="bob", now=T0)
    assert store.session_member(db, cookie, now=T0) is not None  # nothing changed
    # not yet signed up: a new link replaces the old one
    first = store.invite(db, "carol", "member", actor="bob", now=T0)
    second = store.invite(db, "carol", "editor", actor="bob", now=T0)
    with pytest.raises(MemberError):
        store.invitation_member(db, first, now=T0)
    assert store.invitation_inviter(db, second, now=T0) == "bob"
    # the command's reset: old sessions, passkeys and codes end with it
    token = store.invite(db, "alice", "member", actor="cli", reset_access=True, now=T0)
    assert store.session_member(db, cookie, now=T0) is None
    for model in (Passkey, RecoveryCode, MemberSession):
        assert _count(db, model, member_id=alice.id) == 0, model
    assert store.invitation_inviter(db, token, now=T0) == "cli"
    line = store.audit_events(db, limit=1)[0]
    assert line.details["reset"] == {"sessions": 1, "passkeys": 1, "recovery_codes": 10}


@pytest.mark.parametrize(
    "handle",
    ["cli", "CLI", "\uff43\uff4c\uff49", " System ", "cli:root", "system:x", "Cli:someone"],
)
def test_the_audit_log_actors_are_not_handles(db: Session, handle: str) -> None:
    with pytest.raises(MemberError, match="kept for the audit log"):
        store.invite(db, handle, "admin", actor="cli", now=T0)
    assert store.member_by_handle(db, handle) is None


def test_audit_lines_say_what_kind_of_actor_wrote_them(db: Session) -> None:
    for actor in ("cli", "system", "clinton@example.org", "cli-team"):
        store.audit(db, actor, "sign-in", now=T0)
    kinds = [(e.actor, e.actor_kind) for e in reversed(store.audit_events(db))]
    assert kinds == [("cli", "cli"), ("system", "system"), ("clinton@example.org", "member"),
                     ("cli-team", "member")]  # fmt: skip
    store.invite(db, "cli-team", "member", actor="cli", now=T0)  # only the exact forms are kept


@pytest.mark.parametrize(
    ("handle", "refused"),
    [
        ("\ufdfa" * 40, "1 to 120"),  # 40 characters whose NFKC form is 18 each
        ("q\u0301\u0302\u0303\u0304", "accents"),  # four marks stacked on one letter
        ("Z" + "\u0336\u0337\u0338" * 10, "accents"),
    ],
)
def test_handles_that_outgrow_their_column_or_stack_marks_are_refused(
    db: Session, handle: str, refused: str
) -> None:
    with pytest.raises(MemberError, match=refused):
        store.invite(db, handle, "member", actor="cli", now=T0)


def test_handles_with_a_few_marks_are_fine(db: Session) -> None:
    for handle in ("Nguyễn Thị Ánh", "e\u0301\u0302\u0303x"):
        store.invite(db, handle, "member", actor="cli", now=T0)
    assert len(store.members(db)) == 2


def test_recovery_asks_the_same_of_the_database_for_any_handle(engine: Engine) -> None:
    with Session(engine) as db:
        store.new_recovery_codes(db, _joined(db, "alice"))
        db.commit()
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement.split()[0])

    shapes = []
    event.listen(engine, "before_cursor_execute", count)
    try:
        for handle, code in (("alice", "AAAA-AAAA-AAAA-AAAA"), ("nobody", "AAAA-AAAA-AAAA-AAAA"),
                             ("alice", "not a code"), ("\x1b[2J", "AAAA")):  # fmt: skip
            seen.clear()
            with Session(engine) as db:
                assert store.use_recovery_code(db, handle, code, now=T0) is None
            shapes.append(list(seen))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(shape == shapes[0] for shape in shapes), shapes
    assert shapes[0].count("SELECT") == 2


def test_the_command_may_invite_a_member_again_and_ends_their_access(
    members_cli: Callable[..., tuple[int, str, str]], engine: Engine
) -> None:
    with Session(engine) as db:
        alice = _joined(db, "alice", "admin")
        cookie = store.start_session(db, alice, now=datetime.now(UTC))
        db.commit()
    code, out, _ = members_cli("invite", "alice", "--role", "admin")
    assert code == 0
    assert "sessions, passkeys and recovery codes have ended" in out
    with Session(engine) as db:
        assert store.session_member(db, cookie) is None
        assert store.passkeys_of(db, store.member_by_handle(db, "alice")) == []  # type: ignore[arg-type]
