"""How large attachments may be: in the browser, before sealing, and without JavaScript.

The server counts sealed envelopes; the browser checks plaintext files
against figures that always fit once sealed (:func:`browser_attachment_limits`),
and the no-JavaScript path holds plaintext in memory, so caps it
(:func:`plain_attachment_limits`). Every figure is stated on the page and in
the messages as :func:`size_text` writes it.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext, ngettext

from crypto.envelope import CHUNK_SIZE, TAG_LENGTH
from crypto.header import MAX_STANZAS, header_length
from crypto.manifest import MAX_ATTACHMENTS
from crypto.padding import MIN_PADDED_LENGTH, padded_length

KIB = 1024
MIB = 1024 * KIB
#: room for an envelope's header at its largest, beyond the sealed payload
_HEADER_ROOM = header_length(MAX_STANZAS)
#: the most a report's own JSON can take: 20,000 characters of narrative, the
#: other fields and a manifest of 64 entries come to well under this
REPORT_ROOM = 256 * KIB


def sealed_size(length: int) -> int:
    """The most an envelope of ``length`` bytes of plaintext takes (crypto/SPEC.md §3, §6, §7)."""
    padded = padded_length(length)
    chunks = -(-padded // CHUNK_SIZE)
    return _HEADER_ROOM + padded + chunks * TAG_LENGTH


def browser_attachment_limits(max_upload_bytes: int, max_attachments: int) -> tuple[int, int, int]:
    """(count, bytes per file, bytes in all) of plaintext the browser may take and seal.

    The server counts envelopes, which are larger than the files in them
    (padding, chunk tags, a header), so the browser checks the files against
    figures that always fit once sealed: each file's envelope within
    ``max_upload_bytes``, and every envelope, the report's included, within
    ``max_upload_bytes`` together. Padmé adds at most 1/16 to anything of
    256 bytes or more (and pads less to 1024 bytes), hence the linear bound
    for the total. Both figures are rounded down to what :func:`size_text`
    states exactly.
    """
    count = min(max_attachments, MAX_ATTACHMENTS)
    per_file = _round_down(_largest(lambda n: sealed_size(n) <= max_upload_bytes))
    each = MIN_PADDED_LENGTH + 2 * TAG_LENGTH + _HEADER_ROOM + 2
    room = max_upload_bytes - sealed_size(REPORT_ROOM) - count * each
    total = _round_down(max(0, room * 16 * CHUNK_SIZE // (17 * (CHUNK_SIZE + TAG_LENGTH))))
    return count, min(per_file, total), total


#: how far a no-JavaScript form may go over its stated total and still be read (and
#: drawn again, filled, saying which limit it broke) rather than cut off unread
PLAIN_HEADROOM = 256 * MIB


def plain_attachment_limits(
    max_upload_bytes: int, max_plain_upload_bytes: int
) -> tuple[int, int, int]:
    """(bytes per file, bytes of files in all, bytes of the whole form) without JavaScript.

    The files are held in memory as plaintext, so they are capped at the
    stated figures: a file over its limit, or any file once the total is
    passed, is dropped as it arrives and the form is drawn again, filled,
    saying which limit it broke. The whole form may be larger still, by at
    least :data:`PLAIN_HEADROOM` (a video chosen by mistake), since the bytes
    dropped cost no memory; only a form over that hard limit is refused
    unread, and the page states it.
    """
    total = max_upload_bytes
    per_file = min(max_plain_upload_bytes, total)
    return per_file, total, total + max(total, PLAIN_HEADROOM) + MIB


def _largest(fits: Callable[[int], bool]) -> int:
    """The largest n ≥ 0 with ``fits(n)`` (``fits`` holds up to some point, then not)."""
    low, high = 0, 1
    while fits(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def _round_down(length: int) -> int:
    """``length`` rounded down to whole MiB, or below 1 MiB to whole KiB."""
    unit = MIB if length >= MIB else KIB
    return length // unit * unit


def size_text(length: int) -> str:
    """A limit as the page and the messages state it: "25 MiB", "512 KiB".

    In the request's language: the unit's place, its spacing and its script
    are the translator's to choose.
    """
    if length >= MIB and length % MIB == 0:
        # Translators: a size limit in mebibytes, such as "25 MiB"; the unit's
        # symbol may be written in your script (e.g. Russian "МиБ")
        return gettext("%(size)s MiB", size=length // MIB)
    if length % KIB == 0:
        # Translators: a size limit in kibibytes, such as "512 KiB"
        return gettext("%(size)s KiB", size=length // KIB)
    return ngettext("%(num)s byte", "%(num)s bytes", length)
