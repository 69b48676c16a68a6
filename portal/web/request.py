"""Where uploaded files go while a request is parsed.

Werkzeug's default spools any file part over 500 KB into a temporary file on
disk. Here no file part ever goes to a temporary file:

* on ``/submit`` and ``/followup/send`` (the browser already encrypted
  everything) each part is an
  :class:`~portal.web.uploads.EnvelopeUpload`, checked as it streams and written
  to a pending blob, which becomes visible only when the submission is kept;
* on ``/submit-plain`` and ``/followup/send-plain`` (no JavaScript:
  plaintext!) each part goes to a
  :class:`MemoryUpload`, a bounded buffer in memory, encrypted by the view
  before anything is written; on ``/submit-plain`` the files of one request
  are bounded together too (:class:`MemoryPool`), and a file over either
  limit is dropped as it arrives, so that the form can be drawn again,
  filled, saying which limit it broke. That form may be larger than its
  files' stated total, by the headroom of
  :func:`~portal.web.attachment_limits.plain_attachment_limits`, before it is refused
  unread;
* anywhere else a file part is refused.

An envelope part may take one of the blob store's spare files, so on the
encrypted paths a request may send no more file parts than the route
accepts (one report or message and its attachments), refused as the first
one too many begins, before the CSRF check or the proof of work; and every
envelope part the request made is closed when it ends, so that its file goes
back to the pool even if parsing stopped half way (too many parts, a body
over the limit, a dropped connection), when werkzeug itself forgets them.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Request, current_app
from flask_babel import gettext
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, ServiceUnavailable

from crypto.manifest import MAX_ATTACHMENTS
from portal.web.attachment_limits import plain_attachment_limits, size_text
from portal.web.uploads import EnvelopeUpload

ENCRYPTED_PATHS = frozenset({"/submit", "/followup/send"})
PLAIN_PATHS = frozenset({"/submit-plain", "/followup/send-plain"})
#: the report form sent without JavaScript: drawn again, filled, whatever its files
REPORT_FORM = "/submit-plain"


class UploadTooLargeError(RequestEntityTooLarge):
    """A part went over its limit; the message is shown to the reporter."""

    portal_message = True


class TooManyFilesError(BadRequest):
    """More file parts than the route accepts; the message is shown to the reporter."""

    portal_message = True


class PlainFormTooLargeError(RequestEntityTooLarge):
    """The no-JavaScript form is over its hard limit: it cannot be read, so not drawn again."""

    portal_message = True


class MemoryPool:
    """The bytes the in-memory files of one request may hold together.

    ``seen`` counts every byte of every file, held or dropped; once it passes
    ``limit`` the pool has ``overflowed`` and its files hold nothing more.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0
        self.overflowed = False


class MemoryUpload(io.BytesIO):
    """An in-memory buffer that refuses to grow past ``limit`` bytes.

    By default going over stops the request with 413. With ``keep_reading``
    (the no-JavaScript report form) the buffer is emptied, marked
    ``overflowed`` and drops the rest of the file, so the request goes on and
    the form can be drawn again with everything typed still in it. With a
    ``pool``, the request's files are bounded together as well: a file whose
    bytes take the pool over its limit is emptied and drops the rest, as does
    every file after it, so that what is held never exceeds the pool's limit.
    """

    def __init__(
        self, limit: int, *, keep_reading: bool = False, pool: MemoryPool | None = None
    ) -> None:
        super().__init__()
        self.limit = limit
        self.keep_reading = keep_reading
        self.pool = pool
        #: this file went over ``limit`` (its own)
        self.overflowed = False
        #: this file holds nothing: it went over its own limit or the pool's
        self.dropped = False

    def write(self, data: Any) -> int:
        """Append; once over a limit, refuse (413) or drop the rest of the file."""
        if self.pool is not None:
            self.pool.seen += len(data)
            self.pool.overflowed = self.pool.overflowed or self.pool.seen > self.pool.limit
        if self.dropped:
            return len(data)
        if self.tell() + len(data) > self.limit:
            if not self.keep_reading:
                raise UploadTooLargeError(
                    gettext(
                        "An attachment is larger than %(limit)s, the most this portal"
                        " accepts without JavaScript. Nothing was stored.",
                        limit=size_text(self.limit),
                    )
                )
            self.overflowed = True
            self._drop()
            return len(data)
        if self.pool is not None and self.pool.overflowed:
            self._drop()
            return len(data)
        return super().write(data)

    def _drop(self) -> None:
        """Empty the buffer and hold nothing more of this file."""
        self.wipe()
        self.seek(0)
        self.truncate()
        self.dropped = True

    def wipe(self) -> None:
        """Overwrite the buffer before it is released (best effort in Python)."""
        view = self.getbuffer()
        view[:] = bytes(len(view))
        view.release()


class PortalRequest(Request):
    """A request whose file parts never touch the disk as plaintext."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: every envelope part this request made, whether or not parsing finished
        self.envelope_uploads: list[EnvelopeUpload] = []
        #: the report form's files together, without JavaScript (made with the first)
        self.memory_pool: MemoryPool | None = None
        #: every plaintext file part this request held, whether or not parsing finished
        self.memory_uploads: list[MemoryUpload] = []

    def close(self) -> None:
        """Wipe every plaintext part, then close the parsed files and every part left behind."""
        for memory in self.memory_uploads:
            if not memory.closed:
                memory.wipe()
        try:
            super().close()
        finally:
            for upload in self.envelope_uploads:
                upload.close()

    def _load_form_data(self) -> None:
        """Parse the body; the report form without JavaScript gets its own, larger limit."""
        if self.path != REPORT_FORM:
            super()._load_form_data()
            return
        config = current_app.extensions["portal"]["config"]
        *_, whole = plain_attachment_limits(config.max_upload_bytes, config.max_plain_upload_bytes)
        self.max_content_length = whole
        try:
            super()._load_form_data()
        except RequestEntityTooLarge:
            raise PlainFormTooLargeError(
                gettext(
                    "Nothing was stored: the form and its attachments came to more than"
                    " %(limit)s, more than this portal can read without JavaScript, so"
                    " what you typed could not be drawn again here. Your browser may still"
                    " hold it: go back, choose fewer or smaller files, and send it again.",
                    limit=size_text(whole),
                )
            ) from None

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> Any:
        portal = current_app.extensions["portal"]
        config = portal["config"]
        if self.path in ENCRYPTED_PATHS:
            cache = portal["directory"]
            if cache is None:
                raise ServiceUnavailable("no key directory")
            # one report or message, and its attachments (portal/web/intake.py, followup.py)
            if len(self.envelope_uploads) > min(config.max_attachments, MAX_ATTACHMENTS):
                raise TooManyFilesError(gettext("Nothing was stored: too many attachments."))
            recipients = cache.current().recipients
            upload = EnvelopeUpload(portal["blobs"], recipients, config.max_upload_bytes)
            self.envelope_uploads.append(upload)
            return upload
        if self.path == REPORT_FORM:
            # the form is drawn again with what was typed: the view names the limit broken
            per_file, total, _ = plain_attachment_limits(
                config.max_upload_bytes, config.max_plain_upload_bytes
            )
            if self.memory_pool is None:
                self.memory_pool = MemoryPool(total)
            memory = MemoryUpload(per_file, keep_reading=True, pool=self.memory_pool)
        elif self.path in PLAIN_PATHS:
            memory = MemoryUpload(config.max_plain_upload_bytes)
        else:
            memory = MemoryUpload(0)  # nothing else takes files
        self.memory_uploads.append(memory)
        return memory
