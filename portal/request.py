"""Where uploaded files go while a request is parsed.

Werkzeug's default spools any file part over 500 KB into a temporary file on
disk. Here no file part ever goes to a temporary file:

* on ``/submit`` and ``/followup/send`` (the browser already encrypted
  everything) each part is an
  :class:`~portal.uploads.EnvelopeUpload`, checked as it streams and written
  to a pending blob, which becomes visible only when the submission is kept;
* on ``/submit-plain`` and ``/followup/send-plain`` (no JavaScript:
  plaintext!) each part goes to a
  :class:`MemoryUpload`, a bounded buffer in memory, encrypted by the view
  before anything is written;
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
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, ServiceUnavailable

from crypto.manifest import MAX_ATTACHMENTS
from portal.uploads import EnvelopeUpload

ENCRYPTED_PATHS = frozenset({"/submit", "/followup/send"})
PLAIN_PATHS = frozenset({"/submit-plain", "/followup/send-plain"})


class UploadTooLargeError(RequestEntityTooLarge):
    """A part went over its limit; the message is shown to the reporter."""

    portal_message = True


class TooManyFilesError(BadRequest):
    """More file parts than the route accepts; the message is shown to the reporter."""

    portal_message = True


class MemoryUpload(io.BytesIO):
    """An in-memory buffer that refuses to grow past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: Any) -> int:
        """Append, or stop the request with 413 once over the limit."""
        if self.tell() + len(data) > self.limit:
            raise UploadTooLargeError(
                f"An attachment is larger than {self.limit // (1024 * 1024)} MiB, the most "
                "this portal accepts without JavaScript. Nothing was stored."
            )
        return super().write(data)

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

    def close(self) -> None:
        """Close the parsed files, and every envelope part the parser left behind."""
        try:
            super().close()
        finally:
            for upload in self.envelope_uploads:
                upload.close()

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
            # one report or message, and its attachments (portal/intake.py, followup.py)
            if len(self.envelope_uploads) > min(config.max_attachments, MAX_ATTACHMENTS):
                raise TooManyFilesError("Nothing was stored: too many attachments.")
            recipients = cache.current().recipients
            upload = EnvelopeUpload(portal["blobs"], recipients, config.max_upload_bytes)
            self.envelope_uploads.append(upload)
            return upload
        if self.path in PLAIN_PATHS:
            return MemoryUpload(config.max_plain_upload_bytes)
        return MemoryUpload(0)  # nothing else takes files
