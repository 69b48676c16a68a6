"""``incident-db partners add|list|remove|rotate`` on SQLite and PostgreSQL.

The credential printed is checked against the database (only its SHA-256
is kept, and ``partners.verify`` finds the partner by it); refusals are one
line on stderr with exit status 2 and change nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from incident_db import partners
from incident_db.cli import main
from incident_db.db import open_database
from incident_db.members import store
from incident_db.members.models import Partner

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


@pytest.fixture
def partners_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Cli:
    """``incident-db partners …`` through its ``main``, on the test's database."""
    monkeypatch.delenv("INCIDENT_DB_ORIGIN", raising=False)
    monkeypatch.setenv("INCIDENT_DB_URL", database_url)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["partners", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _token(out: str) -> str:
    (token,) = [line for line in out.splitlines() if line.startswith(partners.TOKEN_PREFIX)]
    return token


def _audit(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT actor, action, subject FROM audit_event ORDER BY id")
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_add_prints_the_credential_once_and_keeps_only_its_hash(
    partners_cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = partners_cli("add", "Coast Guard", "--clearance", "tlp:green")
    assert (code, err) == (0, "")
    token = _token(out)
    assert len(token) >= len(partners.TOKEN_PREFIX) + 43  # 32 random bytes, base64
    assert "http://localhost:8100/taxii2/" in out
    assert f"Authorization: Bearer {token}" in out
    with Session(engine) as session:
        (row,) = session.scalars(select(Partner)).all()
        assert (row.name, row.clearance) == ("Coast Guard", "green")
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        dumped = json.dumps([str(v) for v in session.execute(text("SELECT * FROM partner")).one()])
        assert token not in dumped
        found = partners.verify(session, ("coast guard", token))
        assert found is not None
        assert found.id == row.id
    assert _audit(engine) == [("cli", "partner.add", "Coast Guard")]

    monkeypatch.setenv("INCIDENT_DB_ORIGIN", "https://members.example.org")
    code, out, _ = partners_cli("add", "Insurer", "--clearance", "AMBER+STRICT")
    assert code == 0
    assert "https://members.example.org/taxii2/" in out


def test_list_remove_and_rotate(partners_cli: Cli, engine: Engine) -> None:
    assert partners_cli("list")[1].startswith("no partners yet")
    first = _token(partners_cli("add", "Navy", "--clearance", "amber")[1])
    partners_cli("add", "CERT", "--clearance", "clear")
    code, out, _ = partners_cli("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "clearance", "created", "rotated"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["CERT", "TLP:CLEAR"],
        ["Navy", "TLP:AMBER"],
    ]
    listed = json.loads(partners_cli("list", "--json")[1])
    assert [(p["name"], p["clearance"]) for p in listed] == [("CERT", "TLP:CLEAR"),
                                                            ("Navy", "TLP:AMBER")]  # fmt: skip

    code, out, _ = partners_cli("rotate", "NAVY")
    assert code == 0
    second = _token(out)
    assert second != first
    with Session(engine) as session:
        assert partners.verify(session, first) is None
        assert partners.verify(session, second) is not None

    code, out, _ = partners_cli("remove", "navy")
    assert (code, out) == (0, "removed partner Navy: its credential no longer works\n")
    with Session(engine) as session:
        assert partners.verify(session, second) is None
        assert (
            session.scalars(select(Partner.token_hash).where(Partner.name == "Navy")).one() is None
        )
    assert [p["name"] for p in json.loads(partners_cli("list", "--json")[1])] == ["CERT"]
    assert [a[:2] for a in _audit(engine)] == [
        ("cli", "partner.add"), ("cli", "partner.add"), ("cli", "partner.rotate"),
        ("cli", "partner.remove"),
    ]  # fmt: skip
    # a removed partner's name may be given to a new partner, with a new credential
    third = _token(partners_cli("add", "Navy", "--clearance", "green")[1])
    with Session(engine) as session:
        found = partners.verify(session, third)
        assert found is not None
        assert found.clearance == "green"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "Navy", "--clearance", "red"), "TLP:RED never leaves the service"),
        (("add", "Navy", "--clearance", "TLP:RED"), "TLP:RED never leaves the service"),
        (("add", "Navy", "--clearance", "purple"), "unknown TLP level"),
        (("add", "Na\x1b[31mvy", "--clearance", "green"), "control, format or invisible"),
        (("add", "Na:vy", "--clearance", "green"), "colon"),
        (("add", "Navy\uff1ax", "--clearance", "green"), "colon"),  # fullwidth: NFKC folds it
        (("add", "Navy\ufe55x", "--clearance", "green"), "colon"),  # small colon, the same
        (("add", "x" * 200, "--clearance", "green"), "characters long"),
        (("remove", "Nobody"), "no partner is called"),
        (("rotate", "Nobody"), "no partner is called"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    partners_cli: Cli, engine: Engine, args: tuple[str, ...], message: str
) -> None:
    code, out, err = partners_cli(*args)
    assert (code, out) == (2, "")
    assert message in err
    assert err.count("\n") == 1
    assert "\x1b" not in err
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM partner")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM audit_event")).scalar() == 0


def test_a_duplicate_name_is_refused_in_any_case(partners_cli: Cli, engine: Engine) -> None:
    assert partners_cli("add", "Coast Guard", "--clearance", "green")[0] == 0
    code, out, err = partners_cli("add", "COAST  guard", "--clearance", "amber")
    assert (code, out) == (2, "")
    assert "already a partner called 'Coast Guard'" in err
    with Session(engine) as session:
        assert [(p.name, p.clearance) for p in partners.partners(session)] == [
            ("Coast Guard", "green")
        ]


@pytest.mark.parametrize("handle", ["partner", "Partner:Navy", "\uff50artner:x"])
def test_no_member_handle_can_pose_as_a_partner(engine: Engine, handle: str) -> None:
    with Session(engine) as session, pytest.raises(store.MemberError, match="kept for the audit"):
        store.invite(session, handle, "member", actor="cli")
    with Session(engine) as session:
        store.audit(session, "partner:Navy", "taxii.pull")
        store.audit(session, "partners-desk", "sign-in")
        kinds = [e.actor_kind for e in reversed(store.audit_events(session))]
        assert kinds == ["partner", "member"]
