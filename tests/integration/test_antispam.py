"""Proof-of-work puzzles and global rate budgets, in the runtime store (always SQLite)."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Config, ConfigError, load_config
from portal.storage.runtime import ProofHold, RuntimeStore
from portal.web import budget, pow

BITS = 6


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    store = RuntimeStore(tmp_path / "runtime")
    yield store.sessions
    store.dispose()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    environ = {"PORTAL_SECRET_KEY": bytes(range(32)).hex(), "PORTAL_POW_BITS": str(BITS),
               "PORTAL_POW_BURST": "4"}  # fmt: skip
    return load_config(environ, data_dir=tmp_path)


def fresh(sessions: sessionmaker[Session], config: Config, purpose: str = "submit") -> str:
    with sessions() as session:
        puzzle = pow.issue(session, config, purpose)
    return pow.solve(puzzle, pow.puzzle_bits(puzzle))


def test_a_solved_puzzle_passes_once(sessions: sessionmaker[Session], config: Config) -> None:
    proof = fresh(sessions, config)
    digest = hashlib.sha256(proof.encode()).digest()
    assert pow.leading_zero_bits(digest) >= BITS
    pow.spend(sessions, config, "submit", proof)
    with pytest.raises(pow.ProofError, match="already used"):
        pow.spend(sessions, config, "submit", proof)


def _tamper(proof: str, index: int, value: str) -> str:
    puzzle, counter = proof.rsplit(":", 1)
    fields = puzzle.split(".")
    fields[index] = value
    return ".".join(fields) + ":" + counter


def test_forged_expired_and_weak_proofs_are_refused(
    sessions: sessionmaker[Session], config: Config
) -> None:
    proof = fresh(sessions, config)
    later = datetime.now(UTC).replace(tzinfo=None) + pow.LIFETIME + timedelta(seconds=5)
    with pytest.raises(pow.ProofError, match="expired"):
        pow.spend(sessions, config, "submit", proof, now=later)
    easier = _tamper(proof, 3, "0")  # ask for no work at all
    with pytest.raises(pow.ProofError, match="forged"):
        pow.spend(sessions, config, "submit", easier)
    longer = _tamper(proof, 2, "9999999999")  # never expire
    with pytest.raises(pow.ProofError, match="forged"):
        pow.spend(sessions, config, "submit", longer)
    other_key = dataclasses.replace(config, secret_key=b"\x01" * 32)
    with pytest.raises(pow.ProofError, match="forged"):
        pow.spend(sessions, other_key, "submit", proof)
    with pytest.raises(pow.ProofError, match="something else"):
        pow.spend(sessions, config, "followup", proof)
    puzzle = proof.rsplit(":", 1)[0]
    unsolved = next(
        f"{puzzle}:{n}" for n in range(10_000)
        if pow.leading_zero_bits(hashlib.sha256(f"{puzzle}:{n}".encode()).digest()) < BITS
    )  # fmt: skip
    with pytest.raises(pow.ProofError, match="not enough work"):
        pow.spend(sessions, config, "submit", unsolved)
    for junk in ("", "p1.submit", proof + "x", proof.replace(":", ":-")):
        with pytest.raises(pow.ProofError, match="malformed"):
            pow.spend(sessions, config, "submit", junk)
    pow.spend(sessions, config, "submit", proof)  # none of that spent the real one


def test_a_held_proof_is_refused_to_others_until_spent_or_given_back(
    sessions: sessionmaker[Session], config: Config
) -> None:
    proof = fresh(sessions, config)
    ticket = pow.check(sessions, config, "submit", proof)
    first = pow.hold(sessions, ticket)
    with pytest.raises(pow.HeldError):
        pow.hold(sessions, pow.check(sessions, config, "submit", proof))
    pow.release(sessions, first)  # its send failed: the retry may use the proof
    second = pow.hold(sessions, ticket)
    pow.release(sessions, first)  # a stale give-back frees nobody else's hold
    with pytest.raises(pow.HeldError):
        pow.hold(sessions, ticket)
    pow.settle(sessions, second)
    with pytest.raises(pow.SpentError):
        pow.check(sessions, config, "submit", proof)
    with pytest.raises(pow.SpentError):
        pow.hold(sessions, ticket)


def test_a_hold_lapses_and_one_taken_over_is_not_spent_twice(
    sessions: sessionmaker[Session], config: Config
) -> None:
    ticket = pow.check(sessions, config, "submit", fresh(sessions, config))
    stuck = pow.hold(sessions, ticket)
    almost = datetime.now(UTC).replace(tzinfo=None) + pow.HOLD - timedelta(seconds=5)
    with pytest.raises(pow.HeldError):
        pow.hold(sessions, ticket, now=almost)
    later = almost + timedelta(seconds=10)
    taker = pow.hold(sessions, ticket, now=later)
    pow.settle(sessions, taker, now=later)
    with pytest.raises(pow.SpentError):  # the stuck send must undo what it stored
        pow.settle(sessions, stuck, now=later)


def test_a_hold_of_a_dead_process_is_taken_over_at_once(
    sessions: sessionmaker[Session], config: Config, tmp_path: Path
) -> None:
    ticket = pow.check(sessions, config, "submit", fresh(sessions, config))
    script = (
        "import sys; from pathlib import Path; from portal.storage.runtime import RuntimeStore;"
        " from portal.web import pow;"
        " pow.hold(RuntimeStore(Path(sys.argv[1])).sessions, pow.Ticket(sys.argv[2],"
        " int(sys.argv[3])))"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "runtime"), ticket.digest,
         str(ticket.expires)],
        check=True, timeout=60,
    )  # fmt: skip
    with sessions() as session:
        assert session.get(ProofHold, ticket.digest) is not None  # left behind
    pow.settle(sessions, pow.hold(sessions, ticket))


def test_puzzles_from_before_the_runtime_store_was_lost_are_void(
    sessions: sessionmaker[Session], config: Config, tmp_path: Path
) -> None:
    proof = fresh(sessions, config)
    pow.spend(sessions, config, "submit", proof)
    # a reboot (or a service restart) empties tmpfs: the spent list is gone
    rebooted = RuntimeStore(tmp_path / "after-reboot")
    with pytest.raises(pow.ProofError, match="forged"):
        pow.spend(rebooted.sessions, config, "submit", proof)
    unspent = fresh(sessions, config)
    with pytest.raises(pow.ProofError, match="forged"):
        pow.spend(rebooted.sessions, config, "submit", unspent)
    pow.spend(rebooted.sessions, config, "submit", fresh(rebooted.sessions, config))
    rebooted.dispose()


def test_difficulty_rises_under_a_burst(sessions: sessionmaker[Session], config: Config) -> None:
    seen = []
    for _ in range(17):
        with sessions() as session:
            seen.append(pow.current_bits(session, config))
        pow.spend(sessions, config, "submit", fresh(sessions, config))
    # quiet up to the burst (4 an hour), then one more bit per doubling
    assert seen[:4] == [BITS] * 4
    assert seen[4:8] == [BITS + 1] * 4
    assert seen[8:16] == [BITS + 2] * 8
    assert seen[16] == BITS + 3
    with sessions() as session:
        assert pow.current_bits(session, config) == BITS + 3
        assert pow.puzzle_bits(pow.issue(session, config, "followup")) == BITS + 3
    # an hour later the spent puzzles have expired and the portal is quiet again
    later = datetime.now(UTC).replace(tzinfo=None) + pow.LIFETIME + timedelta(minutes=2)
    with sessions() as session:
        assert pow.current_bits(session, config, now=later) == BITS


def test_a_budget_empties_and_refills(sessions: sessionmaker[Session]) -> None:
    now = 1_800_000_000.0
    per_hour = 40  # ten at once, then one every 90 s
    assert budget.capacity(per_hour) == 10
    assert all(budget.take(sessions, "plain", per_hour, now) for _ in range(10))
    assert not budget.take(sessions, "plain", per_hour, now)
    assert not budget.take(sessions, "plain", per_hour, now + 60)
    assert budget.take(sessions, "plain", per_hour, now + 90)
    assert not budget.take(sessions, "plain", per_hour, now + 91)
    assert budget.take(sessions, "lookup", per_hour, now)  # buckets are separate
    # a long quiet spell refills to the capacity, not beyond
    assert sum(budget.take(sessions, "plain", per_hour, now + 86_400) for _ in range(20)) == 10


def test_the_runtime_store_is_private_and_refuses_a_shared_directory(tmp_path: Path) -> None:
    store = RuntimeStore(tmp_path / "made")
    assert store.sessions is store.sessions
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700
    store.dispose()
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # as anyone could make it in /dev/shm
    with pytest.raises(ConfigError, match="chmod 700"):
        _ = RuntimeStore(shared).sessions
