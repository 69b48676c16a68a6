"""Simulated reporters for the load test: the browser's path, many at once, over real HTTP.

Each reporter is a thread with its own cookie jar. In a loop until the
deadline it does what the report page's JavaScript does: fetch step 2 of
the form (for its form token), fetch a proof-of-work puzzle and solve it,
then POST the report sealed to the reviewers' keys. Every other report
carries a 1 MB attachment; the rest are a 10 KB report alone. Each report's
narrative holds a marker, so that afterwards every stored blob can be
decrypted and matched to the submission that the portal acknowledged.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, selectinload

from crypto.envelope import open_bytes, seal_bytes
from crypto.keys import EncryptionKeyPair
from crypto.manifest import entry_for
from portal.storage.models import Submission
from portal.web.pow import solve
from portal.web.report import build_report, encode_report

SMALL_REPORT = 10 * 1024  # bytes of narrative in a report sent alone
ATTACHMENT = 1024 * 1024  # bytes of the attachment every other report carries
#: times a reporter sends again after a worker said it is reading as many bodies as it may
BUSY_RETRIES = 10
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Sent:
    """What one reporter sent and the portal acknowledged: its marker and attachment hash."""

    marker: str
    attachment_sha256: str | None


@dataclass
class LoadResult:
    """Everything the reporters saw."""

    seconds: float = 0.0
    accepted: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: seconds from the form's GET to the POST's answer, one per finished sequence
    sequence_times: list[float] = field(default_factory=list)
    #: seconds the POST /submit alone took
    post_times: list[float] = field(default_factory=list)
    #: 503s with Retry-After from a worker at its limit of bodies read at once (sent again)
    busy: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> str:
        """One line of figures: count, rate, error count, p50 and p99 of both timings."""
        rate = len(self.accepted) / self.seconds if self.seconds else 0.0
        return (
            f"{len(self.accepted)} accepted in {self.seconds:.1f} s ({rate:.1f}/s), "
            f"{len(self.errors)} errors, {self.busy} busy answers sent again; "
            f"POST p50 {_quantile(self.post_times, 0.5):.3f} s "
            f"p99 {_quantile(self.post_times, 0.99):.3f} s; whole sequence p50 "
            f"{_quantile(self.sequence_times, 0.5):.3f} s "
            f"p99 {_quantile(self.sequence_times, 0.99):.3f} s"
        )


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report_for(marker: str, attachment: bytes | None) -> bytes:
    """A report document as the browser builds it, its narrative about 10 KB long."""
    narrative = f"Load marker {marker}. " + "Paint and stores taken from the forecastle. " * (
        SMALL_REPORT // 45
    )
    entries = []
    if attachment is not None:
        entries.append(entry_for(1, "deck-log.bin", "application/octet-stream", attachment, False))
    form = {"category": ["other"], "narrative": [narrative[:20000]]}
    return encode_report(build_report(form, entries, encrypted_by="browser"))


def _text(page: str) -> str:
    """An answer's words without its markup or styles, shortened, for an error message."""
    body = re.sub(r"(?s)<(style|script|head)\b.*?</\1>|<[^>]+>", " ", page)
    return " ".join(body.split())[:300]


def _reporter(
    url: str, recipients: list[bytes], deadline: float, index: int, result: LoadResult
) -> None:
    """One reporter: send reports until ``deadline``, recording what happened to each."""
    session = requests.Session()
    count = 0
    try:
        while time.monotonic() < deadline:
            count += 1
            marker = f"r{index}-{count}-{secrets.token_hex(4)}"
            attachment = secrets.token_bytes(ATTACHMENT) if (index + count) % 2 else None
            report = seal_bytes(report_for(marker, attachment), recipients)
            files = [("report", ("report", report, "application/octet-stream"))]
            if attachment is not None:
                sealed = seal_bytes(attachment, recipients)
                files.append(("attachment", ("attachment-1", sealed, "application/octet-stream")))
            started = time.monotonic()
            try:
                page = session.get(f"{url}/?category=other", timeout=120)
                token = _TOKEN.search(page.text)
                if page.status_code != 200 or token is None:
                    raise AssertionError(f"form: {page.status_code}")
                puzzle = session.get(f"{url}/pow?for=submit", timeout=120)
                if puzzle.status_code != 200:
                    raise AssertionError(f"/pow: {puzzle.status_code} {puzzle.text[:200]!r}")
                answer = puzzle.json()
                data = {
                    "csrf_token": token.group(1),
                    "proof": solve(answer["puzzle"], answer["bits"]),
                    "receipt_locator": f"{secrets.randbelow(10000):04d}",
                    "receipt_token": secrets.token_hex(32),
                }
                posted = time.monotonic()
                answer = session.post(f"{url}/submit", data=data, files=files, timeout=120)
                for _ in range(BUSY_RETRIES):  # as the browser does: a busy worker says when
                    if answer.status_code != 503 or "Retry-After" not in answer.headers:
                        break
                    with result._lock:
                        result.busy += 1
                    time.sleep(min(float(answer.headers["Retry-After"]), 5.0))
                    answer = session.post(f"{url}/submit", data=data, files=files, timeout=120)
                done = time.monotonic()
                if answer.status_code != 200 or answer.json().get("stored") is not True:
                    raise AssertionError(f"/submit: {answer.status_code} {_text(answer.text)}")
            except (AssertionError, requests.RequestException, ValueError) as error:
                with result._lock:
                    result.errors.append(f"{type(error).__name__}: {error}")
                continue
            digest = hashlib.sha256(attachment).hexdigest() if attachment is not None else None
            with result._lock:
                result.accepted.append(Sent(marker, digest))
                result.sequence_times.append(done - started)
                result.post_times.append(done - posted)
    finally:
        session.close()


def run_reporters(url: str, recipients: list[bytes], reporters: int, seconds: float) -> LoadResult:
    """``reporters`` reporters at once, each sending reports for ``seconds``."""
    result = LoadResult()
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=_reporter, args=(url, recipients, deadline, i, result))
        for i in range(reporters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def check_stored(
    database_url: str, blob_dir: Path, identity: EncryptionKeyPair, accepted: Sequence[Sent]
) -> None:
    """Assert the database and blobs hold exactly the accepted submissions, all readable.

    One submission row per acknowledged report; every part's blob file
    exists, has the recorded size and SHA-256, and decrypts with a
    reviewer's key; the reports' markers are exactly those acknowledged;
    and no blob file is left over that no row names.
    """
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.scalars(select(Submission).options(selectinload(Submission.parts))).all()
    finally:
        engine.dispose()
    assert len(rows) == len(accepted), (len(rows), len(accepted))
    named = {part.blob for row in rows for part in row.parts}
    on_disk = {path.name for path in blob_dir.iterdir() if path.is_file()}
    assert on_disk == named, (len(on_disk - named), len(named - on_disk))
    expected = {sent.marker: sent.attachment_sha256 for sent in accepted}
    seen = set()
    for row in rows:
        blobs = {}
        for part in row.parts:
            data = (blob_dir / part.blob).read_bytes()
            assert len(data) == part.size
            assert hashlib.sha256(data).hexdigest() == part.sha256
            blobs[part.position] = open_bytes(data, identity)
        document = json.loads(blobs[0])
        marker = document["report"]["narrative"].split()[2].rstrip(".")
        assert marker in expected, marker
        assert marker not in seen, marker
        seen.add(marker)
        if expected[marker] is None:
            assert len(blobs) == 1
        else:
            assert len(blobs) == 2
            assert hashlib.sha256(blobs[1]).hexdigest() == expected[marker]
            assert document["attachments"][0]["sha256"] == expected[marker]
    assert seen == set(expected)
