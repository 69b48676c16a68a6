"""The no-JavaScript form's attachments: held in memory, checked, and cleaned.

Without JavaScript the browser sends plaintext files, which never touch the
disk (``portal/web/request.py`` keeps them in memory, within limits). Here
they are counted and measured against those limits, and every photo's
metadata is stripped in memory (``scrub.py``) before the caller encrypts
them. Each problem is worded for the reporter, naming the file by number.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flask import request
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from crypto.errors import ManifestError
from crypto.manifest import MAX_ATTACHMENTS, AttachmentEntry, check_name, entry_for
from portal.web.attachment_limits import plain_attachment_limits, size_text
from portal.web.field_rules import message
from portal.web.intake_checks import RefusedError, portal_extensions
from portal.web.report import InvalidReportError
from portal.web.request import MemoryUpload, PortalRequest
from portal.web.scrub import ScrubError, scrub


@contextmanager
def plain_files() -> Iterator[tuple[list[FileStorage], list[InvalidReportError]]]:
    """The no-JavaScript form's files, held in memory and wiped when the view is done.

    With them come the problems found without reading them: too many files,
    a file dropped at the per-file limit, or files together over the total
    (``portal/web/request.py`` drops them as they arrive). Sending without JavaScript
    skips the proof of work, so each view draws on its global budget, but
    only once everything cheap to check has passed, the scrub of every
    attachment included: junk must not spend what honest senders need.
    """
    config = portal_extensions()["config"]
    files = [f for f in request.files.getlist("attachments") if f.filename]
    buffers = [f.stream for f in files if isinstance(f.stream, MemoryUpload)]
    problems = []
    try:
        count = min(config.max_attachments, MAX_ATTACHMENTS)
        if len(files) > count:
            problems.append(_attachment_problem("too_many_files", max_count=count))
        per_file, total, _ = plain_attachment_limits(
            config.max_upload_bytes, config.max_plain_upload_bytes
        )
        for index, storage in enumerate(files, start=1):
            if getattr(storage.stream, "overflowed", False):  # see portal/web/request.py
                limit = size_text(per_file)
                problems.append(_attachment_problem("file_too_large", index=index, limit=limit))
        pool = request.memory_pool if isinstance(request, PortalRequest) else None
        if pool is not None and pool.overflowed:
            problems.append(_attachment_problem("total_too_large", limit=size_text(total)))
        yield files, problems
    finally:
        for buffer in buffers:
            buffer.wipe()


@contextmanager
def plain_attachments() -> Iterator[list[FileStorage]]:
    """:func:`plain_files`, refusing the request (400) at the first problem."""
    with plain_files() as (files, problems):
        if problems:
            raise RefusedError(_("Nothing was stored. %(problem)s.", problem=str(problems[0])))
        yield files


def _attachment_problem(key: str, **values: Any) -> InvalidReportError:
    return InvalidReportError(message(key, **values), "attachments", key)


def scrub_files(
    files: Sequence[FileStorage],
) -> tuple[list[AttachmentEntry], list[bytes], list[InvalidReportError]]:
    """Clean each plaintext file in memory: manifest entries, cleaned bytes, problems.

    Cheap enough to run before any budget is drawn (``scrub.py`` bounds its
    work by the file's size), and a damaged photo is refused here, so junk
    attachments spend nothing. Every damaged file is named, not only the first.
    """
    entries, cleaned, problems = [], [], []
    for index, storage in enumerate(files, start=1):
        data = (
            bytes(storage.stream.getbuffer()) if isinstance(storage.stream, MemoryUpload) else b""
        )
        try:
            result = scrub(data, storage.mimetype or "application/octet-stream")
        except ScrubError:
            problems.append(_attachment_problem("damaged_image", index=index))
            continue
        name = _attachment_name(storage.filename, index)
        entries.append(entry_for(index, name, result.media_type, result.data, result.scrubbed))
        cleaned.append(result.data)
    return entries, cleaned, problems


def scrub_attachments(files: Sequence[FileStorage]) -> tuple[list[AttachmentEntry], list[bytes]]:
    """:func:`scrub_files`, refusing the request (400) at the first damaged file."""
    entries, cleaned, problems = scrub_files(files)
    if problems:
        raise RefusedError(_("Nothing was stored. %(problem)s.", problem=str(problems[0])))
    return entries, cleaned


def _attachment_name(filename: str | None, index: int) -> str:
    """The file's own name if it is a plain one (SPEC §11.1), else a neutral one."""
    candidate = unicodedata.normalize(
        "NFC", (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    )
    try:
        return check_name(candidate)
    except ManifestError:
        return f"attachment-{index}"
