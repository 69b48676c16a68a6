"""portal/web/scrub.py and the browser's scrub.js clean photos to the same bytes.

A photo is cleaned in the browser (scrub.js) before it is encrypted, or on
the server (portal.web.scrub) when the page runs without JavaScript. Neither may
keep what the other removes, and a reviewer must not be able to tell which
one ran. Real images made by Pillow, carrying the metadata phones write, go
through both: the results must be byte-identical, or both must refuse. Pillow
then checks that the cleaned pictures decode to the same pixels as the
originals and carry no metadata.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageSequence
from PIL.PngImagePlugin import PngInfo

from portal.web.scrub import PNG_SIGNATURE, ScrubError, max_pieces, scrub, scrub_jpeg, scrub_png
from tests.integration.node import run_node

NODE_HELPER = Path(__file__).with_name("node_scrub.mjs")
PY_SCRUB = {"jpeg": scrub_jpeg, "png": scrub_png}

# Identifying strings planted in the samples; none may survive cleaning.
SECRETS = [
    b"AcmePhone",
    b"X1 Pro",
    b"SN-0042",
    b"2026:11:21",
    b"Second Officer",
    b"taken aboard",
    b"xmpmeta",
    b"Photoshop 3.0",
    b"ICC_PROFILE",
    b"acsp",  # every ICC profile's signature
    b"N 59.9",
    b"MPF",
]
JPEG_INFO_ALLOWED = {
    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi",
    "adobe", "adobe_transform", "progressive", "progression",
}  # fmt: skip
PNG_INFO_ALLOWED = {
    "dpi", "aspect", "transparency", "gamma", "chromaticity", "srgb", "background",
    "loop", "duration", "disposal", "blend", "bbox", "default_image",
}  # fmt: skip
PNG_DROPPED_CHUNKS = [b"tEXt", b"zTXt", b"iTXt", b"tIME", b"eXIf", b"iCCP", b"prVt"]


# -- the two implementations -------------------------------------------------


def _node(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_node(NODE_HELPER, *args)


def _python(kind: str, data: bytes) -> bytes | None:
    """portal.web.scrub's result, or None if it refuses."""
    try:
        return PY_SCRUB[kind](data)
    except ScrubError:
        return None


def _browser(kind: str, inputs: list[bytes], folder: Path) -> list[bytes | None]:
    """scrub.js's result for each input (None where it refuses), in one Node run."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(folder / f"in{i}", folder / f"out{i}") for i in range(len(inputs))]
    for (src, out), data in zip(pairs, inputs, strict=True):
        src.write_bytes(data)
        out.unlink(missing_ok=True)
    done = _node(kind, *(path for pair in pairs for path in pair))
    results = [out.read_bytes() if out.exists() else None for _, out in pairs]
    refusals = results.count(None)
    # Anything but ScrubError (a crash, a TypeError) must not pass for a refusal.
    assert done.stderr.splitlines() == ["ScrubError"] * refusals, done.stderr
    assert done.returncode == (1 if refusals else 0), done.stderr
    return results


def _assert_parity(kind: str, inputs: list[bytes], folder: Path) -> list[bytes | None]:
    expected = [_python(kind, data) for data in inputs]
    got = _browser(kind, inputs, folder)
    for index, (py, js) in enumerate(zip(expected, got, strict=True)):
        what = f"input {index} ({len(inputs[index])} bytes)"
        assert (js is None) == (py is None), f"{what}: only one implementation refused it"
        assert js == py, f"{what}: the implementations disagree"
    return expected


# -- sample images -------------------------------------------------------------


def _data(length: int, seed: bytes = b"") -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:length])


def _picture(mode: str = "RGB", size: tuple[int, int] = (96, 64), seed: bytes = b"") -> Image.Image:
    """A gradient with noise: smooth areas and busy ones, many FF bytes in the scan."""
    w, h = size
    noise = _data(w * h, seed)
    pixels = bytearray()
    for y in range(h):
        for x in range(w):
            n = noise[y * w + x] // 4
            pixels += bytes(((x * 4 + n) & 255, (y * 4 + n) & 255, (x + y + n) & 255))
    return Image.frombytes("RGB", size, bytes(pixels)).convert(mode)


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "AcmePhone"
    exif[ExifTags.Base.Model] = "X1 Pro"
    exif[ExifTags.Base.DateTime] = "2026:11:21 08:00:00"
    inner = exif.get_ifd(ExifTags.IFD.Exif)
    inner[ExifTags.Base.BodySerialNumber] = "SN-0042"
    inner[ExifTags.Base.DateTimeOriginal] = "2026:11:21 07:59:58"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (59.0, 54.0, 30.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (10.0, 44.0, 12.25)
    return exif


@functools.cache
def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload).to_bytes(4, "big")
    return len(payload).to_bytes(4, "big") + kind + payload + crc


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


IPTC = _segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0cN 59.9 E 10.7")
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPS N 59.9 E 10.7</x:xmpmeta>'
EVERYTHING = {"exif": _exif(), "comment": b"taken aboard", "xmp": XMP, "extra": IPTC}


def _jpeg_everything() -> bytes:
    return _save(_picture(), "JPEG", icc_profile=_icc(), dpi=(300, 300), **EVERYTHING)


def _jpeg_with_trailer() -> bytes:
    # Some phones append a second image (a depth map, a motion clip) after
    # EOI, with its own metadata.
    second = _save(_picture(size=(16, 16), seed=b"2"), "JPEG", exif=_exif())
    return _sample("jpeg", "baseline-everything") + second + b"MotionPhoto_Data taken aboard"


def _png_text_after_idat() -> bytes:
    data = _save(_picture("RGBA"), "PNG", pnginfo=_png_info())
    iend = data.rindex(b"IEND") - 4
    late = _chunk(b"tEXt", b"Comment\x00taken aboard") + _chunk(b"prVt", b"SN-0042")
    return data[:iend] + late + data[iend:]


def _png_info(extra: tuple[tuple[bytes, bytes], ...] = ()) -> PngInfo:
    info = PngInfo()
    info.add_text("Author", "Second Officer")
    info.add_text("Comment", "taken aboard " * 20, zip=True)
    info.add_itxt("Location", "N 59.9 E 10.7", lang="en", tkey="Position")
    info.add(b"tIME", bytes((0x07, 0xEA, 11, 21, 8, 0, 0)))
    for kind, payload in extra:
        info.add(kind, payload)
    return info


RENDERING = (
    (b"gAMA", (45455).to_bytes(4, "big")),
    (b"cHRM", b"".join(v.to_bytes(4, "big") for v in (31270, 32900, 64000, 33000) * 2)),
    (b"sRGB", b"\x00"),
    (b"bKGD", b"\x00\x10\x00\x20\x00\x30"),
)

JPEG_SAMPLES: dict[str, Callable[[], bytes]] = {
    "baseline-exif-gps": lambda: _save(_picture(), "JPEG", exif=_exif(), quality=90),
    "baseline-everything": _jpeg_everything,
    "progressive": lambda: _save(
        _picture(), "JPEG", progressive=True, optimize=True, icc_profile=_icc(), **EVERYTHING
    ),
    "restart-markers": lambda: _save(_picture(), "JPEG", restart_marker_rows=1, **EVERYTHING),
    "progressive-restart": lambda: _save(
        _picture(), "JPEG", progressive=True, restart_marker_blocks=3, **EVERYTHING
    ),
    "grayscale": lambda: _save(_picture("L"), "JPEG", **EVERYTHING),
    "cmyk-adobe": lambda: _save(_picture("CMYK"), "JPEG", **EVERYTHING),
    "subsampling-444-q100": lambda: _save(
        _picture(), "JPEG", subsampling=0, quality=100, **EVERYTHING
    ),
    "icc-in-3-segments": lambda: _save(
        _picture(), "JPEG", icc_profile=_icc() + _data(150_000), exif=_exif()
    ),
    "trailer-after-eoi": _jpeg_with_trailer,
    "mpo-two-frames": lambda: _save(
        _picture(),
        "MPO",
        save_all=True,
        append_images=[_picture(seed=b"right eye")],
        exif=_exif(),
    ),
}
PNG_SAMPLES: dict[str, Callable[[], bytes]] = {
    "rgb-text-time-exif-icc": lambda: _save(
        _picture(), "PNG", pnginfo=_png_info(), exif=_exif(), icc_profile=_icc(), dpi=(96, 96)
    ),
    "rendering-chunks": lambda: _save(_picture(), "PNG", pnginfo=_png_info(RENDERING)),
    "palette-transparency": lambda: _save(
        _picture("P"), "PNG", transparency=3, pnginfo=_png_info(((b"sBIT", b"\x05\x06\x05"),))
    ),
    "rgba-text-after-idat": _png_text_after_idat,
    "gray-16-bit": lambda: _save(_picture("L").convert("I;16"), "PNG", pnginfo=_png_info()),
    "apng-three-frames": lambda: _save(
        _picture(),
        "PNG",
        save_all=True,
        append_images=[_picture(seed=b"1"), _picture(seed=b"2")],
        duration=200,
        loop=0,
        pnginfo=_png_info(),
        exif=_exif(),
    ),
    "text-chunks": lambda: _save(_picture(), "PNG", pnginfo=_png_info()),
    "trailer-after-iend": lambda: (
        _sample("png", "text-chunks") + _chunk(b"tEXt", b"Author\x00SN-0042")
    ),
}
SAMPLES = [("jpeg", name) for name in JPEG_SAMPLES] + [("png", name) for name in PNG_SAMPLES]


@functools.cache
def _sample(kind: str, name: str) -> bytes:
    return (JPEG_SAMPLES if kind == "jpeg" else PNG_SAMPLES)[name]()


# -- what Pillow sees --------------------------------------------------------------


def _frames(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    with Image.open(io.BytesIO(data)) as image:
        return [(f.mode, f.size, f.tobytes()) for f in ImageSequence.Iterator(image)]


def _assert_clean(kind: str, data: bytes) -> None:
    for secret in SECRETS:
        assert secret not in data, secret
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert len(image.getexif()) == 0
        if kind == "jpeg":
            assert set(image.info) <= JPEG_INFO_ALLOWED
            assert b"Exif\x00" not in data
            assert b"http://ns.adobe.com/xap" not in data
        else:
            assert set(image.info) <= PNG_INFO_ALLOWED
            assert image.text == {}
            for chunk in PNG_DROPPED_CHUNKS:
                assert chunk not in data, chunk


# -- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), SAMPLES)
def test_both_clean_a_real_image_to_the_same_bytes(tmp_path: Path, kind: str, name: str) -> None:
    original = _sample(kind, name)
    assert any(secret in original for secret in SECRETS), "the sample carries metadata"
    [cleaned] = _assert_parity(kind, [original], tmp_path)
    assert cleaned is not None, "a valid image from Pillow was refused"
    _assert_clean(kind, cleaned)
    before, after = _frames(original), _frames(cleaned)
    if kind == "jpeg":
        # Only the first picture is kept: MPO's second frame sits after EOI.
        before = before[:1]
    assert after == before, "the cleaned image decodes to different pixels"


@pytest.mark.parametrize(("kind", "name"), SAMPLES)
def test_both_treat_truncated_images_alike(tmp_path: Path, kind: str, name: str) -> None:
    original = _sample(kind, name)
    # Every cut in the headers, where segment and chunk boundaries are close
    # together, and about 80 more spread over the rest of the file.
    cuts = set(range(300)) | set(range(0, len(original), max(1, len(original) // 80)))
    cuts |= {len(original) - k for k in range(1, 4)}
    inputs = [original[:cut] for cut in sorted(c for c in cuts if c < len(original))]
    results = _assert_parity(kind, inputs, tmp_path)
    # A truncated JPEG or PNG is refused, unless only a trailer was cut off.
    whole = _python(kind, original)
    assert all(r is None or r == whole for r in results)
    assert results.count(None) > len(results) // 2


@pytest.mark.parametrize(
    ("kind", "name", "image"),
    [
        ("jpeg", "trailer-after-eoi", "baseline-everything"),
        ("png", "trailer-after-iend", "text-chunks"),
    ],
)
def test_everything_after_the_end_marker_is_dropped(
    tmp_path: Path, kind: str, name: str, image: str
) -> None:
    original, without_trailer = _sample(kind, name), _sample(kind, image)
    assert original.startswith(without_trailer)
    assert original != without_trailer
    cleaned, cleaned_without_trailer = _assert_parity(kind, [original, without_trailer], tmp_path)
    assert cleaned is not None
    assert cleaned == cleaned_without_trailer


def _segments(header: bytes) -> list[bytes]:
    """The marker segments of a JPEG header (after SOI, before SOS), one by one."""
    out = []
    while header:
        end = 2 + int.from_bytes(header[2:4], "big")
        out.append(header[:end])
        header = header[end:]
    return out


def _crafted_jpegs() -> dict[str, bytes]:
    """Legal-but-rare and broken JPEG structures that Pillow never writes."""
    good = _sample("jpeg", "baseline-everything")
    header_end = good.index(b"\xff\xda")
    header, rest = good[:header_end], good[header_end:]
    assert good.endswith(b"\xff\xd9")
    body = good[:-2]  # everything up to the end of the scan
    return {
        "fill bytes before every header segment": b"\xff\xd8"
        + b"".join(b"\xff\xff" + segment for segment in _segments(header[2:]))
        + b"\xff\xff"
        + rest,
        "one fill byte before EOI": body + b"\xff\xff\xd9",
        "two fill bytes before EOI": body + b"\xff\xff\xff\xd9",
        "TEM and RST between segments": good[:2] + b"\xff\x01\xff\xd4" + good[2:],
        "comment and APP1 after the scan": body
        + _segment(0xFE, b"taken aboard")
        + _segment(0xE1, b"Exif\x00\x00")
        + b"\xff\xd9",
        "segment length 0": good[:2] + b"\xff\xe1\x00\x00" + good[2:],
        "segment length 1": good[:2] + b"\xff\xe1\x00\x01" + good[2:],
        "segment length 2": good[:2] + b"\xff\xe1\x00\x02" + good[2:],
        "stray byte between segments": header + b"\x00" + rest,
        "scan ends in FF": body + b"\xff",
        "scan ends in FF 00": body + b"\xff\x00",
        "scan ends in RST": body + b"\xff\xd0",
        "no EOI": body,
        "SOI only": b"\xff\xd8",
        "lone FF": b"\xff\xd8\xff",
        "empty": b"",
        "a PNG": _sample("png", "rgb-text-time-exif-icc"),  # neither checks the signature
    }


def _crafted_pngs() -> dict[str, bytes]:
    """Legal-but-rare and broken PNG structures that Pillow never writes."""
    good = _sample("png", "rgb-text-time-exif-icc")
    iend = good.rindex(b"IEND") - 4
    start = good[:iend]
    return {
        # As a signed int32 FFFFFFF8 is -8: a step back onto a zero length and IEND.
        "length FFFFFFF8": start + b"\xff\xff\xff\xf8\x00\x00\x00\x00" + good[iend + 4 :],
        "length 80000000": start + b"\x80\x00\x00\x00tEXt" + good[iend:],
        "type with high bits": start + _chunk(b"\xc9END", b"") + good[iend:],
        "lower-case iend": start + _chunk(b"iend", b"") + good[iend:],
        "IEND with data": start + _chunk(b"IEND", b"SN-0042"),
        "IEND truncated CRC": good[:-1],
        "no IEND": start,
        "signature only": good[:8],
        "empty": b"",
        "a JPEG": _sample("jpeg", "baseline-exif-gps"),  # neither checks the signature
    }


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_both_treat_rare_and_broken_structures_alike(tmp_path: Path, kind: str) -> None:
    crafted = _crafted_jpegs() if kind == "jpeg" else _crafted_pngs()
    results = _assert_parity(kind, list(crafted.values()), tmp_path)
    outcome = dict(zip(crafted, results, strict=True))
    if kind == "jpeg":
        whole = _python(kind, _sample(kind, "baseline-everything"))
        for name in ["fill bytes before every header segment", "comment and APP1 after the scan"]:
            assert outcome[name] == whole, name
        for name in ["one fill byte before EOI", "two fill bytes before EOI"]:
            assert outcome[name] is not None, name  # scan data, kept as it is
        for name in ["segment length 0", "segment length 1", "no EOI", "lone FF", "empty"]:
            assert outcome[name] is None, name
    else:
        for name in [
            "length FFFFFFF8",
            "length 80000000",
            "IEND truncated CRC",
            "no IEND",
            "empty",
        ]:
            assert outcome[name] is None, name
        assert outcome["IEND with data"] is not None
        assert outcome["IEND with data"].endswith(_chunk(b"IEND", b"SN-0042"))


def _of_pieces(kind: str, count: int) -> bytes:
    """A JPEG or PNG of ``count`` segments or chunks, the last of them the end marker."""
    if kind == "jpeg":
        return b"\xff\xd8" + _segment(0xFE, b"") * (count - 1) + b"\xff\xff\xff\xd9"
    return PNG_SIGNATURE + _chunk(b"tEXt", b"") * (count - 1) + _chunk(b"IEND", b"")


def _at_the_limit(kind: str, over: int) -> bytes:
    """The smallest such file of ``over`` pieces more than :func:`max_pieces` allows it."""
    count = 1
    while count < max_pieces(_of_pieces(kind, count)) + over:
        count += 1
    return _of_pieces(kind, count)


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_both_refuse_the_same_files_of_too_many_pieces(tmp_path: Path, kind: str) -> None:
    """The server bounds its scrub by the count of pieces; the browser draws the same line."""
    at, over = _at_the_limit(kind, 0), _at_the_limit(kind, 1)
    results = _assert_parity(kind, [at, over], tmp_path)
    assert results[0] is not None
    assert results[1] is None


EDIT = st.tuples(
    st.integers(min_value=0, max_value=1 << 20),
    st.one_of(st.sampled_from([0x00, 0xFF, 0xD0, 0xD9, 0xDA, 0xE1, 0xFE]), st.integers(0, 255)),
)


@settings(max_examples=12, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    variants=st.lists(
        st.tuples(
            st.lists(EDIT, min_size=1, max_size=4),
            st.one_of(st.none(), st.integers(min_value=0, max_value=1 << 20)),
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_both_treat_damaged_images_alike(
    tmp_path_factory: pytest.TempPathFactory,
    sample: tuple[str, str],
    variants: list[tuple[list[tuple[int, int]], int | None]],
) -> None:
    kind = sample[0]
    original = _sample(*sample)
    inputs = []
    for edits, cut in variants:
        data = bytearray(original)
        for position, value in edits:
            # Odd positions land in the first 400 bytes: the headers, where a
            # change alters the structure rather than a pixel.
            span = min(len(data), 400) if position % 2 else len(data)
            data[position % span] = value
        inputs.append(bytes(data if cut is None else data[: cut % len(data)]))
    _assert_parity(kind, inputs, tmp_path_factory.mktemp(f"damaged-{kind}"))


@pytest.mark.parametrize(
    ("label", "declared"),
    [
        ("jpeg:baseline-everything", "image/png"),
        ("png:rgb-text-time-exif-icc", ""),
        ("pdf", "application/pdf"),
        ("bytes", ""),
        ("jpeg-truncated", "image/jpeg"),
    ],
)
def test_browser_scrub_file_matches_scrub(tmp_path: Path, label: str, declared: str) -> None:
    if label == "pdf":
        data = b"%PDF-1.7\n" + _data(5000)
    elif label == "bytes":
        data = b"\xff\xd9" + _data(100)
    elif label == "jpeg-truncated":
        data = _sample("jpeg", "baseline-everything")[:1000]
    else:
        data = _sample(*label.split(":"))
    src, out = tmp_path / "in", tmp_path / "out"
    src.write_bytes(data)
    done = _node("file", src, out, declared)
    try:
        expected = scrub(data, declared)
    except ScrubError:
        assert done.returncode == 1
        assert done.stderr.strip() == "ScrubError"
        assert not out.exists()
        return
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"mediaType": expected.media_type, "scrubbed": expected.scrubbed}
    assert out.read_bytes() == expected.data
