"""MISP feed export: a static directory a MISP instance adds as a "MISP Feed".

The directory holds what MISP reads from a feed (``incident_db/MISP.md``):

* ``<event uuid>.json``: one MISP event per incident, ``{"Event": {...}}``, built
  with PyMISP (``MISPEvent.to_feed``);
* ``manifest.json``: event uuid → the event's metadata (``MISPEvent.manifest``);
* ``hashes.csv``: one line ``<md5 of an attribute value>,<event uuid>`` per
  attribute value, as MISP's feed cache and PyMISP's ``feed_meta_generator``
  compute them (``MISPEvent.attributes_hashes("md5")``).

Only incidents the clearance allows are written: RED never. Each event is
built by :mod:`incident_db.exports.misp_events`: event uuids are UUIDv5 of
the incident id, and every object and attribute uuid is derived from the
event's, so a second export updates the partner's events in place.
Positions are written with the incident's own decimals, never more.

Writing order, so that a crash never leaves a manifest naming a missing
file: every event file (temporary name, then renamed), ``os.sync``, then
``hashes.csv`` and ``manifest.json`` (temporary name, then renamed), and
only then are the files of events no longer in the feed removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from incident_db import tlp
from incident_db.errors import IncidentDbError
from incident_db.exports import ExportedIncident

# the events are built there; these names are imported from here too (tests, MISP.md)
from incident_db.exports.misp_events import DISTRIBUTION as DISTRIBUTION
from incident_db.exports.misp_events import ORGANISATION as ORGANISATION
from incident_db.exports.misp_events import TAXONOMY as TAXONOMY
from incident_db.exports.misp_events import TAXONOMY_FILE as TAXONOMY_FILE
from incident_db.exports.misp_events import build_event as build_event
from incident_db.exports.misp_events import event_uuid as event_uuid
from incident_db.exports.misp_events import machinetag as machinetag

_UUID_FILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json")
_TEMP_PREFIX = ".cso-misp-"


class FeedDirectoryError(IncidentDbError):
    """The output directory holds something other than a MISP feed of ours."""

    failure_class = "export failure"


def write_misp_feed(incidents: Iterable[ExportedIncident], out_dir: Path | str, *,
                    clearance: str) -> int:  # fmt: skip
    """Write the feed of the incidents ``clearance`` allows into ``out_dir``; return the count.

    ``out_dir`` is created (mode 0755) if absent; an existing one must be empty
    or hold a previous feed of ours, else :class:`FeedDirectoryError`. Event
    files of a previous feed that this one does not carry are removed.
    """
    try:
        tlp.check_clearance(clearance)
    except tlp.UnknownLevelError as error:
        raise FeedDirectoryError(
            f"clearance {clearance!r} may not receive a feed: {error}"
        ) from None
    directory = Path(out_dir)
    if not directory.exists():
        directory.mkdir(mode=0o755)
        os.chmod(directory, 0o755)  # noqa: S103 (readable by design: the TLP is the limit)
    with _locked(directory):
        previous = _previous_feed(directory)
        written: set[str] = set()
        with (
            _staged(directory, "manifest.json") as manifest,
            _staged(directory, "hashes.csv") as hashes,
        ):
            manifest.write("{")
            for incident in incidents:
                event = build_event(incident, clearance)
                if event is None:
                    continue
                feed = event.to_feed(with_distribution=True)
                _write(directory, f"{event.uuid}.json", _dumps(feed))
                entry = _dumps(event.manifest)  # {uuid: {Orgc, Tag, info, date, ...}}
                manifest.write(("," if written else "") + "\n" + entry[1:-1])
                hashes.write("".join(f"{h},{event.uuid}\n" for h in event.attributes_hashes("md5")))
                written.add(event.uuid)
            manifest.write("\n}\n")
            os.sync()  # every event file is on disk before a manifest names it
        for stale in previous - written:
            with contextlib.suppress(FileNotFoundError):
                (directory / f"{stale}.json").unlink()
        _sync_directory(directory)
    return len(written)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the directory, so two exports never interleave."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FeedDirectoryError(f"{directory}: another export is writing there") from None
        yield
    finally:
        os.close(fd)


def _previous_feed(directory: Path) -> set[str]:
    """The event uuids of the feed already in ``directory``; refuse anything else there.

    Every entry must be a plain file named ``manifest.json``, ``hashes.csv``,
    ``<uuid>.json`` or one of our temporary names, and every event (in the
    manifest, or a file the manifest does not name) must be ours.
    """
    foreign = FeedDirectoryError(
        f"{directory}: not empty and not a MISP feed of this database; use an empty directory"
    )
    events: set[str] = set()
    leftovers: list[str] = []
    has_manifest = False
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                raise foreign
            if entry.name.startswith(_TEMP_PREFIX):
                leftovers.append(entry.path)
            elif entry.name == "manifest.json":
                has_manifest = True
            elif _UUID_FILE.fullmatch(entry.name):
                events.add(entry.name[:-5])
            elif entry.name != "hashes.csv":
                raise foreign
    listed: dict[str, Any] = {}
    if has_manifest:
        try:
            listed = json.loads((directory / "manifest.json").read_bytes())
            ours = isinstance(listed, dict) and all(
                isinstance(meta, dict) and meta.get("Orgc", {}).get("uuid") == ORGANISATION["uuid"]
                for meta in listed.values()
            )
        except (ValueError, AttributeError):
            ours = False
        if not ours:
            raise foreign
    for name in events - listed.keys():
        if not _our_event(directory / f"{name}.json"):
            raise foreign
    for path in leftovers:  # left by an interrupted export of ours
        os.unlink(path)
    return events


def _our_event(path: Path) -> bool:
    try:
        event = json.loads(path.read_bytes())["Event"]
        return bool(event["Orgc"]["uuid"] == ORGANISATION["uuid"])
    except (ValueError, KeyError, TypeError):
        return False


def _temporary(directory: Path, name: str) -> tuple[int, Path]:
    """A new file in ``directory`` for ``name``'s content, open for writing, mode 0644.

    Its name is random and it is created exclusively (``tempfile.mkstemp``:
    O_CREAT | O_EXCL, and O_NOFOLLOW): nothing planted in the directory, a
    symbolic link or a hard link to someone else's file, is ever opened.
    """
    fd, path = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=f"-{name}", dir=directory)
    try:
        os.fchmod(fd, 0o644)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    return fd, Path(path)


@contextlib.contextmanager
def _staged(directory: Path, name: str) -> Iterator[TextIO]:
    """A text stream to ``name``, written under a temporary name (mode 0644) and renamed
    into place, flushed to disk, once the block completes; removed if it fails."""
    fd, temp = _temporary(directory, name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            fd = -1
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, directory / name)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _write(directory: Path, name: str, text: str) -> None:
    """Write one event file: under a temporary name (mode 0644), then renamed into place."""
    fd, temp = _temporary(directory, name)
    try:
        with open(fd, "wb") as handle:  # closes fd
            handle.write(text.encode("utf-8"))
        os.replace(temp, directory / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
