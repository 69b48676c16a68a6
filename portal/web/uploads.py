"""Checking envelopes as they stream in, before anything is stored.

The portal cannot decrypt, but it can refuse what is not a well-formed
envelope for the current reviewers (crypto/SPEC.md §3, §7, §12):

* the magic and header structure (parsed with ``crypto.header``);
* the recipient set, which must equal the current key directory's;
* the payload length, which must cut into whole sealed chunks whose padded
  plaintext is a Padmé size of at least 1024 bytes;
* size limits.

:class:`HeaderCheck` makes the header's checks on bytes as they arrive, so
that junk is refused at its first wrong byte; both ways of uploading use it.
On ``/submit`` nothing is kept in memory but the header: only once the header
has checked out does the part take a file, a pending blob, and its bytes go
straight there (:class:`EnvelopeUpload`). The verdict comes when the part
ends; a refused part's file goes back to the pool of spare files. A
resumable upload (``portal/web/resumable.py``) is checked the same way as its
first bytes arrive, and as a whole by :func:`check_stored_envelope` before
it is committed.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO, NoReturn

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from crypto.envelope import payload_is_well_formed
from crypto.errors import HeaderError
from crypto.header import MAGIC, MAX_STANZAS, header_length, parse_header
from portal.storage.blob_writer import PendingBlob
from portal.storage.blobs import BlobStore

_FIXED = len(MAGIC) + 32 + 2
_READ_PIECE = 1024 * 1024


class UploadRefusedError(Exception):
    """An uploaded part is not acceptable; the message is safe to show.

    The message is a clause (a lazy translation), read in the request's
    language; :meth:`sentence` makes the whole refusal of it.
    """

    def sentence(self) -> str:
        """The refusal as the reporter reads it: nothing was stored, and why."""
        return _("Nothing was stored: %(reason)s.", reason=str(self))


def envelope_length_is_possible(length: int, recipient_count: int) -> bool:
    """Whether an envelope to ``recipient_count`` reviewers can be ``length`` bytes long."""
    if not 1 <= recipient_count <= MAX_STANZAS:
        return False
    return payload_is_well_formed(length - header_length(recipient_count))


class HeaderCheck:
    """The header's checks (SPEC §3, §7), made on an envelope's first bytes as they come.

    :meth:`feed` raises :class:`UploadRefusedError` as soon as the bytes so
    far cannot begin a header for ``recipients``; :attr:`accepted` turns
    true once the whole header has been parsed and names exactly them.
    Only the header is held, never more.
    """

    def __init__(self, recipients: frozenset[bytes]) -> None:
        self._recipients = recipients
        self._head = bytearray()
        #: the header's length, once its recipient count has arrived
        self.length: int | None = None
        self.accepted = False

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the bytes that follow those fed so far (bytes past the header are ignored)."""
        if self.accepted:
            return
        wanted = (self.length or header_length(MAX_STANZAS)) - len(self._head)
        self._head += data[:wanted]
        if len(self._head) >= len(MAGIC) and self._head[: len(MAGIC)] != MAGIC:
            self._refuse(_l("not an encrypted envelope (wrong format marker)"))
        if self.length is None and len(self._head) >= _FIXED:
            count = int.from_bytes(self._head[_FIXED - 2 : _FIXED], "big")
            if not 1 <= count <= MAX_STANZAS:
                self._refuse(_l("the envelope header is malformed"))
            self.length = header_length(count)
            del self._head[self.length :]
        if self.length is not None and len(self._head) >= self.length:
            try:
                header = parse_header(bytes(self._head))
            except HeaderError:
                self._refuse(_l("the envelope header is malformed"))
            if frozenset(header.recipients) != self._recipients:
                self._refuse(
                    _l("the envelope is not addressed to the current reviewers; reload the page")
                )
            self.accepted = True
            self._head.clear()

    def _refuse(self, reason: str | LazyString) -> NoReturn:
        self._head.clear()
        raise UploadRefusedError(reason)


def check_stored_envelope(source: BinaryIO, recipients: frozenset[bytes]) -> tuple[int, str]:
    """Check a whole envelope read from ``source``; return its size and hex SHA-256.

    Raises :class:`UploadRefusedError` unless it is a well-formed envelope
    for ``recipients``: header, recipients and payload length.
    """
    check = HeaderCheck(recipients)
    digest = hashlib.sha256()
    size = 0
    while piece := source.read(_READ_PIECE):
        check.feed(piece)
        digest.update(piece)
        size += len(piece)
    if not check.accepted or check.length is None:
        raise UploadRefusedError(_l("the envelope is truncated"))
    if not payload_is_well_formed(size - check.length):
        raise UploadRefusedError(_l("the envelope is truncated or malformed"))
    return size, digest.hexdigest()


class EnvelopeUpload:
    """A file-like sink for one uploaded envelope (werkzeug writes into it).

    The header is held in memory until it has checked out; only then does
    the part take a file (a spare, see ``portal/storage/blobs.py``), so that junk
    never touches the disk. A part not kept gives its file back.
    """

    def __init__(self, store: BlobStore, recipients: frozenset[bytes], limit: int) -> None:
        self._store = store
        self._blob: PendingBlob | None = None
        self._check = HeaderCheck(recipients)
        self._limit = limit
        self._head = bytearray()
        self._received = 0
        self._closed = False
        self.error: str | LazyString | None = None

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._received

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the envelope as received."""
        if self._blob is None:
            return hashlib.sha256(self._head).hexdigest()
        return self._blob.sha256

    def write(self, data: bytes) -> int:
        """Take the next bytes of the part."""
        if self.error is not None or self._closed:
            return len(data)  # already refused or thrown away: drain without storing
        self._received += len(data)
        if self._received > self._limit:
            self._refuse(_l("the upload is larger than this portal accepts"))
        elif self._blob is not None:
            self._blob.write(data)
        else:
            self._head += data
            try:
                self._check.feed(data)
            except UploadRefusedError as refusal:
                self._refuse(str(refusal))
                return len(data)
            if self._check.accepted:
                self._blob = self._store.begin()
                self._blob.write(self._head)
                self._head.clear()
        return len(data)

    def _refuse(self, reason: str | LazyString) -> None:
        self.error = reason
        self._head.clear()
        self.discard()

    def check(self) -> None:
        """Raise :class:`UploadRefusedError` unless the whole part is a well-formed envelope.

        Commits nothing, so a request can be refused on it before it spends
        a proof of work or draws on a budget.
        """
        if self.error is None:
            if self._blob is None or self._check.length is None:
                self._refuse(_l("the envelope is truncated"))
            elif not payload_is_well_formed(self._received - self._check.length):
                self._refuse(_l("the envelope is truncated or malformed"))
        if self.error is not None:
            raise UploadRefusedError(self.error)

    def finish(self) -> str:
        """Commit the blob and return its name, or raise :class:`UploadRefusedError`."""
        self.check()
        if self._blob is None:  # check() has refused such a part already
            raise UploadRefusedError(_l("the envelope is truncated"))
        return self._blob.commit()

    def discard(self) -> None:
        """Throw this part away (another part of the submission failed); its file goes back."""
        if self._blob is not None:
            self._blob.abort()

    def close(self) -> None:
        """End of the request: a part never finished is thrown away. Safe to repeat."""
        self._closed = True
        self.discard()

    # werkzeug treats the sink as a file: these make it one.
    def seek(self, offset: int, whence: int = 0) -> int:
        """Werkzeug rewinds finished parts; there is nothing to rewind to."""
        return 0

    def flush(self) -> None:
        """Nothing is buffered here."""
