"""The no-JavaScript form's files in memory: bounded each and together (issue 13, F3)."""

from __future__ import annotations

from unittest import mock

import pytest
from flask import Flask

from portal.web.attachment_limits import MIB, PLAIN_HEADROOM, plain_attachment_limits
from portal.web.request import MemoryPool, MemoryUpload, UploadTooLargeError

CHUNK = b"\x01" * 1000


def _send(upload: MemoryUpload, length: int) -> None:
    """Write ``length`` bytes in the chunks a multipart parser hands on."""
    while length > 0:
        upload.write(CHUNK[: min(length, len(CHUNK))])
        length -= len(CHUNK)


def _held(uploads: list[MemoryUpload]) -> int:
    return sum(len(upload.getbuffer()) for upload in uploads)


def test_files_together_never_hold_more_than_the_pool() -> None:
    pool = MemoryPool(10_000)
    uploads = [MemoryUpload(6_000, keep_reading=True, pool=pool) for _ in range(4)]
    for upload in uploads:
        _send(upload, 4_000)
        assert _held(uploads) <= pool.limit
    assert pool.overflowed
    assert pool.seen == 16_000  # every byte counted, held or dropped
    assert [len(u.getbuffer()) for u in uploads] == [4_000, 4_000, 0, 0]
    assert [u.dropped for u in uploads] == [False, False, True, True]
    assert not any(u.overflowed for u in uploads)  # none is over its own limit


def test_a_file_over_its_own_limit_is_dropped_and_still_counted() -> None:
    pool = MemoryPool(10_000)
    big = MemoryUpload(3_000, keep_reading=True, pool=pool)
    _send(big, 5_000)
    assert big.overflowed
    assert big.dropped
    assert len(big.getbuffer()) == 0
    assert not pool.overflowed
    small = MemoryUpload(3_000, keep_reading=True, pool=pool)
    _send(small, 2_000)
    assert len(small.getbuffer()) == 2_000
    _send(MemoryUpload(3_000, keep_reading=True, pool=pool), 3_001)  # 10,001 seen
    assert pool.overflowed


def test_a_file_exactly_at_both_limits_is_kept() -> None:
    pool = MemoryPool(3_000)
    upload = MemoryUpload(3_000, keep_reading=True, pool=pool)
    _send(upload, 3_000)
    assert (upload.overflowed, upload.dropped, pool.overflowed) == (False, False, False)
    assert len(upload.getbuffer()) == 3_000


def test_without_keep_reading_a_file_over_its_limit_stops_the_request() -> None:
    upload = MemoryUpload(1_500)
    upload.write(CHUNK)
    with pytest.raises(UploadTooLargeError):
        upload.write(CHUNK)


@pytest.mark.parametrize("total_mib", [1, 2, 200, 4096])
def test_the_whole_form_may_exceed_its_files_by_a_real_margin(total_mib: int) -> None:
    per_file, total, whole = plain_attachment_limits(total_mib * MIB, 25 * MIB)
    assert per_file == min(25 * MIB, total)
    assert total == total_mib * MIB
    assert whole >= 2 * total
    assert whole >= total + PLAIN_HEADROOM
    assert whole % MIB == 0  # stated exactly on the page


def test_every_plaintext_part_is_wiped_before_the_request_closes_it(app: Flask) -> None:
    """The request wipes each part it made, those werkzeug forgets (a parse cut short) too."""
    secret = b"SECRET-PLAINTEXT" * 64
    body = (
        b'--b\r\nContent-Disposition: form-data; name="attachments"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + secret + b"\r\n--b--\r\n"
    )
    seen: list[bytes] = []
    real = MemoryUpload.wipe

    def watched(self: MemoryUpload) -> None:
        seen.append(bytes(self.getbuffer()))
        real(self)
        seen.append(bytes(self.getbuffer()))

    with (
        mock.patch.object(MemoryUpload, "wipe", watched),
        app.test_request_context(
            "/submit-plain",
            method="POST",
            data=body,
            content_type="multipart/form-data; boundary=b",
        ) as context,
    ):
        assert context.request.files["attachments"].read() == secret
    assert seen == [secret, bytes(len(secret))]
