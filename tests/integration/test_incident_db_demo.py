"""The demo database of ``incident-db serve --demo``: the whole feed, signed batches, built once.

What the feed should have given is counted here from the CSV file with the
csv module, not through the import code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, func, select

from crypto.batch import read_trusted_reviewers
from crypto.keys import SigningKeyPair
from incident_db.attachments import AttachmentContent, IncidentAttachment
from incident_db.brief import Selection, make_brief
from incident_db.cli.serve import _create_private_sqlite
from incident_db.db import make_engine
from incident_db.demo import DATABASE, PHOTO_PLACE, SIGNING_KEY, TRUSTED, build_demo
from incident_db.errors import ConfigError, FeedError
from incident_db.models import FeedImport, Incident, Provenance, ReviewerBatch
from tests.conftest import ROOT
from tests.unit.incident_db.factories import snapshot

SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "crime-at-sea" / "pirate_attacks.csv"
PLACES = ("Chittagong", "Singapore Strait", "Gulf of Guinea", "Bab el-Mandeb")


@dataclass(frozen=True)
class Demo:
    """A demo built once for the module."""

    directory: Path
    url: str
    engine: Engine


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    directory = tmp_path_factory.mktemp("demo-parent") / "demo"
    url = build_demo(directory)
    engine = make_engine(url)
    yield Demo(directory, url, engine)
    engine.dispose()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _demo_key(directory: Path) -> SigningKeyPair:
    """The signing key as saved: the one line that is not a comment, hex."""
    lines = (directory / SIGNING_KEY).read_text(encoding="utf-8").splitlines()
    (seed,) = [line for line in lines if not line.startswith("#")]
    return SigningKeyPair.from_seed(bytes.fromhex(seed))


def test_the_demo_directory_and_its_files_are_private(demo: Demo) -> None:
    assert demo.url == f"sqlite:///{demo.directory / DATABASE}"
    assert _mode(demo.directory) == 0o700
    for name in (DATABASE, SIGNING_KEY, TRUSTED):
        assert _mode(demo.directory / name) == 0o600, name
    assert sorted(p.name for p in demo.directory.iterdir()) == sorted(
        (DATABASE, SIGNING_KEY, TRUSTED)
    )


def _unimportable(row: dict[str, str]) -> bool:
    """A row no import may accept: an impossible clock, or invisible characters in text."""
    clock = re.search(r"([0-9]{1,2}):?([0-9]{2})", row["time"])
    if clock and (int(clock[1]) > 23 or int(clock[2]) > 59):
        return True
    text = row["attack_description"] + row["location_description"]
    return any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\t\r" for c in text)


def test_the_demo_holds_exactly_the_feed_rows(demo: Demo) -> None:
    if not DATA.is_file():
        pytest.skip(f"the Crime at Sea data is not at {DATA} (see its README)")
    with DATA.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    expected = {n for n, row in enumerate(rows, start=1) if not _unimportable(row)}
    assert len(rows) - len(expected) < 5  # the file's two faulty rows, not a broken mapping
    with demo.engine.connect() as connection:
        stored = list(
            connection.execute(
                select(Provenance.row).where(Provenance.kind == "external-feed")
            ).scalars()
        )
        external = connection.execute(
            select(func.count()).select_from(Incident).where(Incident.origin == "external")
        ).scalar_one()
        runs = connection.execute(select(FeedImport.rows, FeedImport.added)).all()
    assert sorted(stored) == sorted(expected)
    assert external == len(expected)
    assert runs == [(len(rows), len(expected))]


def test_the_batches_are_signed_by_the_demo_reviewer(demo: Demo) -> None:
    key = _demo_key(demo.directory)
    trusted = read_trusted_reviewers((demo.directory / TRUSTED).read_text(encoding="utf-8"))
    assert trusted == {key.token}
    today = dt.datetime.now(dt.UTC).date()
    with demo.engine.connect() as connection:
        batches = connection.execute(select(ReviewerBatch)).all()
        incidents = connection.execute(
            select(
                Incident.place,
                Incident.local_date,
                Incident.verification_status,
                Incident.signer_fingerprint,
                Provenance.signer_fingerprint,
                Provenance.source,
            )
            .join(Provenance, Provenance.incident_id == Incident.id)
            .where(Incident.origin == "reviewer")
        ).all()
    assert len(batches) >= 3
    assert {(b.signer, b.signer_fingerprint) for b in batches} == {
        (str(key.token), key.token.fingerprint)
    }
    assert sum(b.added for b in batches) == len(incidents) >= len(PLACES)
    assert {i.source for i in incidents} == {b.batch_id for b in batches}
    for _, day, status, signer, provenance_signer, _ in incidents:
        assert (status, signer, provenance_signer) == (
            "confirmed",
            key.token.fingerprint,
            key.token.fingerprint,
        )
        assert today - dt.timedelta(days=365) <= day < today  # inside any recent brief
    for place in PLACES:
        assert any(place in i.place for i in incidents), place


def test_one_batch_carried_a_photo_without_metadata(demo: Demo) -> None:
    """The speedboat drawing came in a signed batch, bound to the Gulf of Guinea incident."""
    with demo.engine.connect() as connection:
        rows = connection.execute(
            select(IncidentAttachment.incident_id, IncidentAttachment.name,
                   IncidentAttachment.media_type, IncidentAttachment.size,
                   IncidentAttachment.sha256, AttachmentContent.content, Incident.place,
                   ReviewerBatch.signer_fingerprint)
            .join(AttachmentContent, AttachmentContent.sha256 == IncidentAttachment.sha256)
            .join(Incident, Incident.id == IncidentAttachment.incident_id)
            .join(ReviewerBatch, ReviewerBatch.batch_id == IncidentAttachment.batch_id)
        ).all()  # fmt: skip
    [(incident_id, name, media_type, size, sha256, content, place, signer)] = rows
    assert PHOTO_PLACE in place
    assert signer == _demo_key(demo.directory).token.fingerprint
    assert (name, media_type) == (f"{incident_id}-1.png", "image/png")
    assert (size, sha256) == (len(content), hashlib.sha256(content).hexdigest())
    with Image.open(io.BytesIO(content)) as photo:
        assert photo.format == "PNG"
        assert photo.size == (480, 270)
        assert dict(photo.getexif()) == {}
        assert set(photo.info) <= {"dpi", "gamma", "transparency"}  # no text chunks
        assert len(photo.getcolors(maxcolors=1000) or ()) > 3  # a drawing, not a blank


def test_a_recent_brief_shows_the_reviewed_incidents(demo: Demo) -> None:
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=730)
    with demo.engine.connect() as connection:
        brief = make_brief(connection, Selection(place="Chittagong", since=since))
    assert brief["sources"]["reviewer"] == 2
    assert brief["verification"]["confirmed"] == 2


def test_a_second_call_changes_nothing(demo: Demo) -> None:
    before = snapshot(demo.engine)
    key = (demo.directory / SIGNING_KEY).read_bytes()
    modified = (demo.directory / DATABASE).stat().st_mtime_ns
    assert build_demo(demo.directory) == demo.url
    assert snapshot(demo.engine) == before
    assert (demo.directory / SIGNING_KEY).read_bytes() == key
    assert (demo.directory / DATABASE).stat().st_mtime_ns == modified


def test_without_the_shared_data_the_demo_has_the_batches_only(
    demo: Demo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="incident_db.demo"):
        url = build_demo(tmp_path / "demo", shared=tmp_path / "absent")
    assert any(r.levelno == logging.WARNING and "absent" in r.getMessage() for r in caplog.records)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            origins = dict(
                connection.execute(
                    select(Incident.origin, func.count()).group_by(Incident.origin)
                ).all()
            )
            runs = connection.execute(select(func.count()).select_from(FeedImport)).scalar_one()
        with demo.engine.connect() as connection:
            reviewed = connection.execute(
                select(func.count()).select_from(Incident).where(Incident.origin == "reviewer")
            ).scalar_one()
    finally:
        engine.dispose()
    assert origins == {"reviewer": reviewed}
    assert runs == 0
    # a fresh demo has a fresh key
    assert _demo_key(tmp_path / "demo").token != _demo_key(demo.directory).token


def test_a_failed_build_leaves_no_database_and_is_tried_again(tmp_path: Path) -> None:
    broken = tmp_path / "shared" / "data" / "crime-at-sea"
    broken.mkdir(parents=True)
    (broken / "pirate_attacks.csv").write_text("date,when\n2024-01-01,02:00\n", encoding="utf-8")
    directory = tmp_path / "demo"
    with pytest.raises(FeedError, match="no column"):
        build_demo(directory, shared=tmp_path / "shared")
    assert not (directory / DATABASE).exists()
    assert [p.name for p in directory.iterdir() if "sqlite" in p.name] == []
    url = build_demo(directory, shared=tmp_path / "absent")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Incident)).scalar_one()
    finally:
        engine.dispose()


def test_a_symlinked_demo_directory_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    """The outside review: --demo-dir pointing at /tmp had /tmp chmodded 0700."""
    target = tmp_path / "shared-space"
    target.mkdir(mode=0o777)
    target.chmod(0o1777)
    link = tmp_path / "demo"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="symlink"):
        build_demo(link, shared=tmp_path / "absent")
    assert _mode(target) == 0o1777
    assert list(target.iterdir()) == []


def test_an_existing_demo_database_others_may_write_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    directory.mkdir()
    planted = directory / DATABASE
    planted.write_bytes(b"")
    planted.chmod(0o666)
    with pytest.raises(ConfigError, match="changed by others"):
        build_demo(directory, shared=tmp_path / "absent")
    planted.unlink()
    (directory / DATABASE).symlink_to(tmp_path / "elsewhere.sqlite3")
    with pytest.raises(ConfigError, match="not a plain file"):
        build_demo(directory, shared=tmp_path / "absent")


def test_serve_creates_a_new_sqlite_database_private(tmp_path: Path) -> None:
    fresh = tmp_path / "members.sqlite3"
    _create_private_sqlite(f"sqlite:///{fresh}")
    assert _mode(fresh) == 0o600
    kept = tmp_path / "kept.sqlite3"
    kept.write_bytes(b"")
    kept.chmod(0o640)
    _create_private_sqlite(f"sqlite:///{kept}")
    assert _mode(kept) == 0o640  # not ours to change
    _create_private_sqlite("postgresql://db.example/incidents")  # nothing to create
