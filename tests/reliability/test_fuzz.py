"""Brief fuzzing of the crypto parsers inside the test run (issue 14).

Each target of ``bench/fuzz.py`` (envelope, bundle, batch, manifest, key
directory) gets valid inputs written by the project's own writers, then
mutated: truncations, bit flips, length fields set to huge values, every JSON
value swapped for another type, lone surrogates and NUL. The signed targets
sign what was mutated, so the checks behind the signature see the mutations
too. The only acceptable failure is the package's own
:class:`crypto.errors.CryptoError`; anything else a target raises fails the
test. The long, coverage-guided run is ``python -m bench.fuzz``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import fuzz
from crypto.bundle import END, MAGIC

#: what a JSON value is swapped for: every other type, edge numbers, odd text
CONFUSERS: list[Any] = [
    [], {}, None, True, 0, -1, 2**64, 10**30, 1.5, float("inf"), "", "\x00", "a\x00b",
    "\ud800", "\udfff", "x" * 5000, [[[[[[]]]]]], {"": {"": {}}}, ["inbox"], {"kind": "inbox"},
]  # fmt: skip
Path_ = tuple[str | int, ...]


def _failures(target: fuzz.Target, inputs: Iterator[tuple[str, bytes]]) -> tuple[int, list[str]]:
    """Run every input; return how many ran and what escaped other than CryptoError."""
    count, found = 0, []
    for label, data in inputs:
        count += 1
        try:
            fuzz.run_one(target, data)
        except Exception as error:
            found.append(f"{label}: {type(error).__name__}: {error}"[:300])
    return count, found


# --- JSON type confusion ---------------------------------------------------------------------


def _paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    yield prefix
    if isinstance(value, dict):
        for key, member in value.items():
            yield from _paths(member, (*prefix, key))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from _paths(member, (*prefix, index))


def _replaced(value: Any, path: Path_, new: Any) -> Any:
    if not path:
        return new
    result = copy.deepcopy(value)
    holder = result
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return result


def _removed(value: Any, path: Path_) -> Any:
    result = copy.deepcopy(value)
    holder = result
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]
    return result


def _variants(value: Any) -> Iterator[tuple[str, Any]]:
    """Every value swapped for every confuser, every member dropped, one extra member."""
    for path in _paths(value):
        for new in CONFUSERS:
            yield f"{list(path)} = {new!r:.30}", _replaced(value, path, new)
        if path:
            yield f"del {list(path)}", _removed(value, path)
    if isinstance(value, dict):
        yield "extra member", {**value, "zz": []}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _bundle_views(seed: bytes) -> tuple[Any, Callable[[Any], bytes]]:
    """The JSON in a bundle seed and how to put a changed one back."""
    if seed[:1] == b"\x01":  # a payload the harness signs
        return json.loads(seed[1:]), lambda v: b"\x01" + _dumps(v)
    length = int.from_bytes(seed[-len(END) - 8 : -len(END)], "big")
    end = len(seed) - len(END) - 8
    head = seed[: end - length]

    def frame(value: Any) -> bytes:
        manifest = _dumps(value)
        return head + manifest + len(manifest).to_bytes(8, "big") + END

    return json.loads(seed[end - length : end]), frame


def _batch_views(seed: bytes) -> tuple[Any, Callable[[Any], bytes]]:
    """A batch's lines as one list of JSON values (mode 1 is re-signed by the harness)."""
    mode, body = (seed[:1], seed[1:]) if seed[:1] in (b"\x01", b"\x02") else (b"", seed)
    lines = [json.loads(line) for line in body.splitlines()]

    def join(value: Any) -> bytes:
        rows = value if isinstance(value, list) else [value]
        return mode + b"".join(_dumps(row) + b"\n" for row in rows)

    return lines, join


def _plain_views(seed: bytes) -> tuple[Any, Callable[[Any], bytes]]:
    """A seed that is JSON, or a mode byte and JSON."""
    if seed[:1] == b"\x01":
        return json.loads(seed[1:]), lambda v: b"\x01" + _dumps(v)
    return json.loads(seed), _dumps


JSON_VIEWS = {
    "bundle": _bundle_views,
    "batch": _batch_views,
    "manifest": _plain_views,
    "directory": _plain_views,
}


@pytest.fixture(scope="module")
def seeds() -> dict[str, list[bytes]]:
    """Valid inputs of every target, made once by the project's writers."""
    made = {name: target.seeds() for name, target in fuzz.TARGET_TABLE.items()}
    for name, inputs in made.items():  # the seeds are valid, or the mutations prove little
        for data in inputs:
            fuzz.TARGET_TABLE[name].call(data)
    return made


@pytest.mark.parametrize("name", sorted(JSON_VIEWS))
def test_json_type_confusion_is_refused_cleanly(name: str, seeds: dict[str, list[bytes]]) -> None:
    """Every JSON value, signed or not, swapped for every other type: CryptoError or success."""

    def inputs() -> Iterator[tuple[str, bytes]]:
        for number, seed in enumerate(seeds[name]):
            if name == "manifest" and seed[:1] == b"\x01":
                continue  # a bare file name, not JSON
            if name == "batch" and seed[:1] == b"\x02":
                continue  # the trusted-reviewers text, not JSON
            value, encode = JSON_VIEWS[name](seed)
            for label, variant in _variants(value):
                yield f"seed {number}: {label}", encode(variant)

    count, found = _failures(fuzz.TARGET_TABLE[name], inputs())
    assert count > 100
    assert not found, f"{len(found)} of {count} inputs crashed:\n" + "\n".join(found[:10])


# --- bytes: truncation, length fields, text ----------------------------------------------------


def _truncations(seed: bytes, most: int = 150) -> Iterator[tuple[str, bytes]]:
    step = max(1, len(seed) // most)
    for cut in range(0, len(seed), step):
        yield f"first {cut} bytes", seed[:cut]
        yield f"last {cut} bytes", seed[cut:]


@pytest.mark.parametrize("name", fuzz.TARGETS)
def test_truncations_are_refused_cleanly(name: str, seeds: dict[str, list[bytes]]) -> None:
    """Every seed cut short at the front or at the back."""
    inputs = (
        (f"seed {n}: {label}", data)
        for n, seed in enumerate(seeds[name])
        for label, data in _truncations(seed)
    )
    count, found = _failures(fuzz.TARGET_TABLE[name], inputs)
    assert not found, f"{len(found)} of {count} inputs crashed:\n" + "\n".join(found[:10])


HUGE = [0, 1, 2**31 - 1, 2**32, 2**63 - 1, 2**64 - 1]


def test_huge_length_fields_are_refused_cleanly(seeds: dict[str, list[bytes]]) -> None:
    """The bundle's manifest length and the envelope's recipient count set to extremes."""
    inputs: list[tuple[str, str, bytes]] = []
    bundle_file = seeds["bundle"][0]
    at = len(bundle_file) - len(END) - 8
    true_length = int.from_bytes(bundle_file[at : at + 8], "big")
    for value in [*HUGE, true_length - 1, true_length + 1, at, at - len(MAGIC)]:
        patched = bundle_file[:at] + value.to_bytes(8, "big") + END
        inputs.append(("bundle", f"manifest length {value}", patched))
    envelope = seeds["envelope"][0]
    for count in (0, 2, 64, 65, 0xFFFF):
        patched = envelope[:48] + count.to_bytes(2, "big") + envelope[50:]
        inputs.append(("envelope", f"recipient count {count}", patched))
    found = []
    for name, label, data in inputs:
        found += _failures(fuzz.TARGET_TABLE[name], iter([(label, data)]))[1]
    assert not found, "\n".join(found)


ODD_TEXT = ["\x00", "\ud800", "\udfff", "a\u202eb", "\u2028", "\ufeff", "..", "x" * 300, "é"]


@pytest.mark.parametrize("text", ODD_TEXT)
def test_odd_text_is_refused_cleanly(text: str, seeds: dict[str, list[bytes]]) -> None:
    """NUL, lone surrogates and invisible characters in names and reviewer lists."""
    raw = text.encode("utf-8", "surrogatepass")
    inputs = [
        ("manifest", b"\x01" + raw),  # an attachment name
        ("batch", b"\x02" + raw + b"\n"),  # a trusted-reviewers file
        ("batch", b"\x02" + seeds["batch"][2][1:] + raw),
    ]
    found = []
    for name, data in inputs:
        found += _failures(fuzz.TARGET_TABLE[name], iter([(name, data)]))[1]
    assert not found, "\n".join(found)


# --- bytes: random mutations, shrunk by hypothesis ------------------------------------------


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid seed with one to four byte-level edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        edit = draw(st.sampled_from(["flip", "set", "insert", "delete", "ff", "truncate"]))
        if edit == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and data:
            data[where] = draw(st.sampled_from([0x00, 0x22, 0x5B, 0x7B, 0x5C, 0x0A, 0x80, 0xFF]))
        elif edit == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[where : where + draw(st.integers(1, 16))]
        elif edit == "ff":
            data[where : where + 8] = b"\xff" * 8
        else:
            del data[where:]
    return bytes(data)


@pytest.mark.parametrize("name", fuzz.TARGETS)
def test_random_byte_mutations_are_refused_cleanly(
    name: str, seeds: dict[str, list[bytes]]
) -> None:
    """Three hundred mutated seeds per target; hypothesis shrinks any crash it finds."""
    target = fuzz.TARGET_TABLE[name]

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=_mutated(seeds[name]))
    def check(data: bytes) -> None:
        fuzz.run_one(target, data)

    check()


def test_the_atheris_run_is_clean_on_a_small_budget(tmp_path: Path) -> None:
    """The documented long run works: coverage-guided, a few thousand inputs, no finding."""
    argv = ["--target", "manifest", "--runs", "3000", "--baseline-seconds", "0.5"]
    assert fuzz.main([*argv, "--artifacts", str(tmp_path)]) == 0
    assert "Done 3000 runs" in (tmp_path / "manifest.log").read_text()
