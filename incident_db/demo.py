"""A demo incident database, for ``incident-db serve --demo``.

It holds what a real one holds, put there the real ways: the Crime at Sea
feed (``../shared/data/crime-at-sea/``, beside the project checkout),
imported as ``incident-db import-feed`` imports it, and a few reviewer
batches of recent incidents, signed as ``reviewer forward`` signs them by a
demo reviewer key made for this database alone, and ingested as
``incident-db ingest`` ingests them: verified against a trusted-reviewers
file that lists only that key. Every incident therefore carries its real
provenance (the feed and its row, or the batch and its signer's
fingerprint), and passes every check a real one would. One batch carries a
photo (a drawing of the speedboat, made here with Pillow, without metadata),
bound to its record in the signed header and ingested from a directory of
files named by their hashes, as ``reviewer forward --attachments-dir`` and
``incident-db ingest --attachments`` carry one.

The demo key is stored unencrypted (mode 0600) in the demo directory: it
signs nothing but demo data, and no real database trusts it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from crypto.batch import Attachment, read_trusted_reviewers, sign_batch
from crypto.keys import SigningKeyPair
from incident_db.db import open_database
from incident_db.errors import ConfigError
from incident_db.feeds import import_feed
from incident_db.ingest import ingest_batch
from incident_db.mapping import load_mapping
from incident_db.record import parse_record

log = logging.getLogger(__name__)

#: the project checkout; the shared data lives beside it, never inside
CHECKOUT = Path(__file__).resolve().parents[1]
#: where the feed lies inside the shared directory
FEED = Path("data", "crime-at-sea", "pirate_attacks.csv")
FEED_MAPPING = "crime-at-sea"
DATABASE = "incidents.sqlite3"
SIGNING_KEY = "demo-reviewer.key"
TRUSTED = "trusted-reviewers.txt"
#: the batch (index into DEMO_BATCHES) whose first record carries the demo photo
PHOTO_BATCH = 2
#: the place its incident names, for tests and the docs
PHOTO_PLACE = "Gulf of Guinea"
#: the database is built under this name and renamed when complete, so an
#: interrupted build is never taken for a finished one
_BUILDING = ".incidents.sqlite3.building"


def default_shared() -> Path:
    """The shared directory beside the project checkout (``../shared``)."""
    return CHECKOUT.parent / "shared"


_CHITTAGONG = {
    "category": "piracy-or-armed-robbery",
    "report_type": "final",
    "place": "Chittagong Anchorage, Bangladesh",
    "location_type": "inner-anchorage",
    "vessel_status": "anchored",
    "reported_to": ["coastal-or-port-authority", "imb-prc"],
}
_SINGAPORE_STRAIT = {
    "category": "piracy-or-armed-robbery",
    "report_type": "final",
    "location_type": "territorial-sea",
    "vessel_status": "underway",
    "reported_to": ["recaap-focal-point", "coastal-or-port-authority"],
}

#: each inner tuple is one batch, as one reviewer would forward it; an incident is
#: a record without its id, dated by "days_ago" and "local_clock" (HH:MM) from the
#: day of the build, so that the default period of a brief always shows it
DEMO_BATCHES: tuple[tuple[dict[str, Any], ...], ...] = (
    (
        {
            **_CHITTAGONG,
            "days_ago": 38,
            "local_clock": "02:40",
            "utc_offset": "+06:00",
            "incident_type": "boarded",
            "position": {"lat": 22.21, "lon": 91.71, "decimals": 2},
            "vessel_type": "bulk-carrier",
            "perpetrators_min": 5,
            "perpetrators_max": 6,
            "weapons": ["knives-or-machetes"],
            "boarding_method": "anchor-chain-or-hawse-pipe",
            "boarding_points": ["forecastle-or-forecastle-store"],
            "stolen": ["ship-s-stores", "mooring-ropes"],
            "crew": {"threatened": 1},
            "actions_taken": ["alarm-raised", "crew-mustered", "lights-or-searchlights"],
            "outcome": "successful-items-stolen-or-control-taken",
            "suspect_craft": {"count": 1, "type": "fishing-boat"},
            "narrative": "Five robbers armed with long knives climbed the anchor chain during "
            "heavy rain and broke the padlock of the forecastle store. The duty AB saw them "
            "and was threatened with a knife; he withdrew and raised the alarm. The robbers "
            "escaped in a wooden boat with ship's stores and two mooring ropes. The port "
            "control and the coast guard were informed; a patrol boat searched the area.",
            "verification": {"status": "confirmed", "grade": "B2"},
        },
        {
            **_CHITTAGONG,
            "days_ago": 71,
            "local_clock": "23:55",
            "utc_offset": "+06:00",
            "incident_type": "attempted-boarding",
            "position": {"lat": 22.18, "lon": 91.74, "decimals": 2},
            "vessel_type": "general-cargo",
            "perpetrators_min": 3,
            "perpetrators_max": 4,
            "weapons": ["not-seen"],
            "boarding_method": "hook-and-rope",
            "stolen": ["nothing"],
            "actions_taken": ["alarm-raised", "pa-announcement", "fire-hoses"],
            "outcome": "foiled-by-crew",
            "suspect_craft": {"count": 1, "type": "dinghy"},
            "narrative": "A roving patrol saw a hook and rope on the poop deck railing and a "
            "small boat under the stern. The alarm was raised, the crew mustered and a fire "
            "hose was turned on the rope; the boat moved away towards the shore. Nothing "
            "was stolen.",
            "verification": {"status": "confirmed", "grade": "A2"},
        },
    ),
    (
        {
            **_SINGAPORE_STRAIT,
            "days_ago": 19,
            "local_clock": "01:15",
            "utc_offset": "+08:00",
            "incident_type": "boarded",
            "place": "Singapore Strait, eastbound lane",
            "position": {"lat": 1.22, "lon": 104.05, "decimals": 2},
            "vessel_type": "bulk-carrier",
            "perpetrators_min": 4,
            "perpetrators_max": 4,
            "weapons": ["knives-or-machetes"],
            "boarding_method": "hook-and-rope",
            "boarding_points": ["engine-room", "steering-flat"],
            "stolen": ["engine-spares"],
            "actions_taken": ["alarm-raised", "pa-announcement", "crew-mustered"],
            "outcome": "successful-items-stolen-or-control-taken",
            "suspect_craft": {"count": 1, "type": "speedboat"},
            "narrative": "While under way in the eastbound lane, the duty engineer saw four "
            "men in the steering gear room. The alarm was raised and the crew mustered; "
            "the men escaped over the stern into a speedboat. A search found engine spares "
            "missing. The crew was not harmed. The Singapore VTIS was informed and "
            "broadcast a navigational warning.",
            "verification": {"status": "confirmed", "grade": "A1"},
        },
        {
            **_SINGAPORE_STRAIT,
            "days_ago": 122,
            "local_clock": "03:50",
            "utc_offset": "+08:00",
            "incident_type": "attempted-boarding",
            "place": "Singapore Strait, off Pulau Karimun Kecil",
            "position": {"lat": 1.15, "lon": 103.62, "decimals": 2},
            "vessel_type": "product-tanker",
            "perpetrators_min": 3,
            "perpetrators_max": 5,
            "weapons": ["not-seen"],
            "boarding_method": "hook-and-rope",
            "stolen": ["nothing"],
            "actions_taken": ["alarm-raised", "lights-or-searchlights", "fire-hoses"],
            "outcome": "foiled-by-crew",
            "suspect_craft": {"count": 1, "type": "skiff"},
            "narrative": "A skiff came alongside the port quarter and a hook was thrown "
            "at the railing. The bridge switched on the searchlights and the crew "
            "charged the fire hoses; the skiff left before anyone boarded.",
            "verification": {"status": "confirmed", "grade": "B2"},
        },
    ),
    (
        {
            "days_ago": 54,
            "local_clock": "05:20",
            "utc_offset": "+01:00",
            "category": "piracy-or-armed-robbery",
            "report_type": "final",
            "incident_type": "fired-upon",
            "place": "Gulf of Guinea, about 45 nm south of Brass, Nigeria",
            "position": {"lat": 3.55, "lon": 6.25, "decimals": 2},
            "location_type": "eez-or-high-seas",
            "vessel_type": "crude-oil-tanker",
            "vessel_status": "underway",
            "perpetrators_min": 6,
            "perpetrators_max": 8,
            "weapons": ["guns"],
            "boarding_method": "not-boarded",
            "actions_taken": [
                "alarm-raised",
                "evasive-manoeuvres",
                "citadel",
                "ssas-activated",
            ],
            "outcome": "attempted",
            "reported_to": ["mdat-gog", "imb-prc", "flag-state"],
            "suspect_craft": {
                "count": 1,
                "type": "speedboat",
                "description": "white speedboat, two outboard engines",
            },
            "narrative": "A speedboat with six to eight armed men approached at speed from "
            "the port bow and fired at the accommodation. The master raised the alarm, "
            "increased to full speed and made evasive manoeuvres; the crew went to the "
            "citadel and the SSAS was activated. After about 30 minutes the speedboat "
            "gave up the chase. The crew was unharmed; bullet marks were found on the "
            "bridge wing. A navy patrol boat escorted the ship afterwards.",
            "verification": {"status": "confirmed", "grade": "A1"},
        },
    ),
    (
        {
            "days_ago": 9,
            "local_clock": "14:30",
            "utc_offset": "+03:00",
            "category": "suspicious-approach",
            "report_type": "suspicious-activity",
            "incident_type": "suspicious-approach",
            "place": "Bab el-Mandeb, southern Red Sea",
            "position": {"lat": 12.9, "lon": 43.3, "decimals": 1},
            "location_type": "eez-or-high-seas",
            "vessel_type": "container-ship",
            "vessel_status": "underway",
            "perpetrators_min": 4,
            "perpetrators_max": 6,
            "weapons": ["not-seen"],
            "boarding_method": "not-boarded",
            "actions_taken": ["alarm-raised", "security-team", "evasive-manoeuvres"],
            "outcome": "attempted",
            "reported_to": ["ukmto"],
            "suspect_craft": {
                "count": 2,
                "type": "skiff",
                "description": "two skiffs, a ladder seen in one",
            },
            "narrative": "Two skiffs with four to six persons each closed to about one "
            "nautical mile at high speed. A ladder was seen in one skiff. The alarm was "
            "raised, the embarked security team made itself visible and the ship altered "
            "course; the skiffs turned away to the west. UKMTO was informed.",
            "verification": {"status": "confirmed", "grade": "B3"},
        },
    ),
)


def demo_records(today: dt.date) -> list[list[dict[str, Any]]]:
    """The demo batches' records for a build on ``today``, each checked as a record.

    Ids are random, as the reviewer tool's are to anyone without its workspace.
    """
    batches = []
    for incidents in DEMO_BATCHES:
        records = []
        for incident in incidents:
            obj = {"schema": "cso-incident/v1", "id": secrets.token_hex(16)} | incident
            day = today - dt.timedelta(days=obj.pop("days_ago"))
            obj["occurred_local"] = f"{day.isoformat()}T{obj.pop('local_clock')}"
            # what `reviewer forward` signs: the record as the parser normalises it
            records.append(parse_record(obj).to_json())
        batches.append(records)
    return batches


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 (replacing a leftover of an interrupted build)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _demo_reviewer(directory: Path) -> SigningKeyPair:
    """A fresh reviewer signing key, saved with the trusted-reviewers file that lists it."""
    key = SigningKeyPair.generate()
    _write_private(
        directory / SIGNING_KEY,
        "# cso-portal demo reviewer signing key (Ed25519 seed, hex), NOT ENCRYPTED.\n"
        "# It signs the demo database's batches only; never trust it elsewhere.\n"
        f"# public key: {key.token}\n# fingerprint: {key.token.fingerprint}\n"
        f"{key.seed.hex()}\n",
    )
    _write_private(
        directory / TRUSTED,
        f"# the demo reviewer ({key.token.fingerprint})\n{key.token}\n",
    )
    return key


def _sqlite_url(path: Path) -> str:
    # URL.create escapes a "?" or "%" in the path, which plain text would not
    return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)


def _add_feed(engine: Engine, shared: Path) -> None:
    """Import the Crime at Sea feed as ``incident-db import-feed`` does, if it is there."""
    feed = shared / FEED
    if not feed.is_file():
        log.warning("demo: no Crime at Sea feed at %s; the demo holds the reviewer batches only",
                    feed)  # fmt: skip
        return
    report = import_feed(engine, feed, load_mapping(FEED_MAPPING))
    log.info("demo: %s: %d rows: %d added, %d rejected", report.feed, report.rows,
             report.added, len(report.rejected))  # fmt: skip


def demo_photo() -> bytes:
    """A small PNG: a white speedboat with two outboards on a grey sea (pixels only)."""
    image = Image.new("RGB", (480, 270), (200, 214, 222))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 170, 480, 270), fill=(58, 92, 112))  # the sea
    draw.line((0, 170, 480, 170), fill=(150, 170, 180), width=2)  # the horizon
    hull = [(110, 150), (370, 150), (410, 132), (395, 182), (135, 186)]
    draw.polygon(hull, fill=(240, 240, 236), outline=(40, 40, 40))
    draw.rectangle((200, 118, 268, 150), fill=(225, 225, 220), outline=(40, 40, 40))  # console
    for x in (96, 116):  # the two outboard engines at the stern
        draw.rectangle((x, 140, x + 14, 190), fill=(30, 30, 30))
    for x in (230, 290, 330):  # people aboard
        draw.ellipse((x, 104, x + 14, 118), fill=(60, 50, 45))
        draw.rectangle((x + 2, 118, x + 12, 150), fill=(60, 50, 45))
    wake = [(395, 182), (440, 176), (480, 186), (480, 192), (130, 192)]
    draw.polygon(wake, fill=(235, 240, 242))  # the bow wave and the wake
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)  # Pillow writes no text or EXIF chunk unasked
    return out.getvalue()


def _photo_entry(records: list[dict[str, Any]], photo: bytes) -> Attachment:
    """The header entry binding the demo photo to the batch's first record (§16.9)."""
    name = f"{records[0]['id']}-1.png"  # as `reviewer forward` names it: never a file name
    return Attachment(1, hashlib.sha256(photo).hexdigest(), "image/png", len(photo), name)


def _add_batches(engine: Engine, directory: Path) -> None:
    """Sign the demo batches with a fresh key; ingest them as ``incident-db ingest`` does."""
    key = _demo_reviewer(directory)
    trusted = read_trusted_reviewers((directory / TRUSTED).read_text(encoding="utf-8"))
    now = dt.datetime.now(dt.UTC)
    photo = demo_photo()
    # the files of a batch lie in a directory beside it, each named by its SHA-256;
    # a temporary one here, so the demo directory keeps only what it needs
    with tempfile.TemporaryDirectory(prefix="demo-attachments-") as files:
        for index, records in enumerate(demo_records(now.date())):
            attachments = [_photo_entry(records, photo)] if index == PHOTO_BATCH else []
            for entry in attachments:
                (Path(files) / entry.sha256).write_bytes(photo)
            data = sign_batch(records, key, batch_id=secrets.token_hex(16), created_at=now,
                              attachments=attachments)  # fmt: skip
            ingest_batch(engine, data, trusted, attachments=Path(files) if attachments else None)
    log.info("demo: %d reviewer batches signed by the demo reviewer %s", len(DEMO_BATCHES),
             key.token.fingerprint)  # fmt: skip


def _private_directory(directory: Path) -> None:
    """Make ``directory`` (0700), or take an existing one only if it is ours and no symlink.

    The demo directory holds a signing key and the members' passkeys: a
    symlink (say to /tmp) would have us chmod and fill its target, and a
    directory of another user is theirs to swap files in.
    """
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise ConfigError(f"the demo directory {directory} must be a real directory, not a symlink "
                          "or a file") from None  # fmt: skip
    try:
        if os.fstat(descriptor).st_uid != os.geteuid():
            raise ConfigError(f"the demo directory {directory} belongs to another user")
        os.fchmod(descriptor, 0o700)  # it holds a signing key; mkdir's mode is cut by the umask
    finally:
        os.close(descriptor)


def _finished_database(path: Path) -> bool:
    """Whether a finished demo database is there; ConfigError if it is not one to trust."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(found.st_mode):
        raise ConfigError(f"{path} is not a plain file (a symlink?): remove it")
    if found.st_uid != os.geteuid():
        raise ConfigError(f"{path} belongs to another user: remove it")
    if found.st_mode & 0o022:
        raise ConfigError(f"{path} may be changed by others: remove it, or chmod 600 it")
    return True


def build_demo(directory: Path, *, shared: Path | None = None) -> str:
    """Make (once) the demo database in ``directory`` and return its SQLAlchemy URL.

    ``directory`` is created if need be and set to mode 0700; an existing one
    must be a directory of this user, not a symlink, and an existing database
    in it a plain file of this user that no one else may write
    (:class:`~incident_db.errors.ConfigError` otherwise). ``shared`` is the
    shared data directory, the one holding ``data/crime-at-sea/`` (default:
    :func:`default_shared`); without the feed there the demo holds only the
    reviewer batches, and a warning says so. If ``directory`` already holds a
    finished demo database, nothing is done. Import failures propagate
    (:class:`~incident_db.errors.IncidentDbError`, ``OSError``) and leave no
    database behind.
    """
    directory = directory.absolute()
    _private_directory(directory)
    final = directory / DATABASE
    if _finished_database(final):
        return _sqlite_url(final)
    building = directory / _BUILDING
    building.unlink(missing_ok=True)
    engine = open_database(_sqlite_url(building))
    try:
        _add_feed(engine, default_shared() if shared is None else shared)
        _add_batches(engine, directory)
    except BaseException:
        engine.dispose()
        building.unlink(missing_ok=True)
        raise
    engine.dispose()
    os.chmod(building, 0o600)  # members' passkeys and sessions will live here too
    os.replace(building, final)
    return _sqlite_url(final)
