"""Coverage-guided fuzzing of the crypto parsers with atheris (issue 14).

    python -m bench.fuzz --target envelope|bundle|batch|manifest|directory|all --runs 1000000
    python -m bench.fuzz --smoke            # every target, a few seconds each

Each target feeds bytes to one public parser of ``crypto/`` and counts any
exception other than :class:`crypto.errors.CryptoError` as a finding, as it
does a result that breaks the target's own invariant. The signed targets
sign what the fuzzer made with the test key, so the checks behind the
signature are reached too: a trusted signer's mistake must give a clean
refusal as well, never a crash.

Every target runs in its own child process (libFuzzer exits when done) from
a corpus of valid inputs written by the project's own writers. The parent
prints executions per second next to a baseline measured in the same run:
the same target called on its valid seeds in a plain loop, without atheris.
The ratio (fuzzing / baseline) shows how much of the rate is the parser and
how much is instrumentation. The exit status is non-zero on any finding;
libFuzzer leaves the input that caused it in ``--artifacts``, next to its log.
Executions per second are wall-clock, child start-up included.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crypto import _base64url as base64url
from crypto.batch import SIGNING_CONTEXT as BATCH_CONTEXT
from crypto.batch import read_batch, read_trusted_reviewers, sign_batch
from crypto.bundle import SIGNING_CONTEXT as BUNDLE_CONTEXT
from crypto.bundle import BundleWriter, open_bundle
from crypto.directory import SIGNING_CONTEXT as DIRECTORY_CONTEXT
from crypto.directory import read_directory, sign_directory, verify_directory
from crypto.envelope import inspect, open_bytes, seal_bytes
from crypto.errors import CryptoError
from crypto.header import parse_header
from crypto.keys import EncryptionKeyPair, SigningKeyPair
from crypto.manifest import AttachmentCheck, check_name, entry_for, manifest_json, parse_manifest
from crypto.padding import PaddingStripper, padded_length

TARGETS = ("envelope", "bundle", "batch", "manifest", "directory")
#: fixed keys, so that a crash file found in one run reproduces in the next
SIGNER = SigningKeyPair.from_seed(hashlib.sha256(b"cso fuzz signer").digest())
IDENTITY = EncryptionKeyPair.from_private(hashlib.sha256(b"cso fuzz identity").digest())
ISSUED = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
NOW = ISSUED + timedelta(days=1)
#: tokens libFuzzer splices in: JSON type confusion, odd text, huge numbers
DICTIONARY = [
    "[]", "{}", "null", "true", "0", "-0", "1e999", "99999999999999999999", '""', '"\\u0000"',
    '"\\ud800"', '"\\udfff"', "[[[[[[", '"kind"', '"items"', '"size"', '"sha256"', '"inbox"',
    '"replies"', '"schema"', '"reviewers"', '"attachments"', '"name"', '"count"', "\\n", "\\r",
]  # fmt: skip


class InvariantError(AssertionError):
    """A target's invariant does not hold for an input (besides crashing)."""


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


# --- envelope --------------------------------------------------------------------------------


def _strip_padding(data: bytes) -> None:
    """Feed ``data`` (1st byte: piece size) to the stripper; check what it lets through."""
    step = (data[0] % 97) + 1 if data else 1
    body, out = data[1:], bytearray()
    stripper = PaddingStripper()
    for start in range(0, len(body), step):
        stripper.feed(memoryview(body[start : start + step]), out.extend)
    length = stripper.finish()
    expected = bytes(out) + b"\x80" + bytes(len(body) - len(out) - 1)
    if length != len(out) or body != expected or len(body) != padded_length(length):
        raise InvariantError("the padding stripper accepted non-canonical padding")


def envelope(data: bytes) -> None:
    """Open, inspect and header-parse ``data``; mode byte 1 tests padding removal."""
    if data[:1] == b"\x01":
        _strip_padding(data[1:])
        return
    for call in (
        lambda: open_bytes(data, IDENTITY),
        lambda: inspect(io.BytesIO(data)),
        lambda: parse_header(data),
    ):
        try:
            call()
        except CryptoError:
            continue  # a clean refusal; the next reader still gets its turn


def envelope_seeds() -> list[bytes]:
    """Envelopes sealed to the fuzz identity, and padded payloads."""
    plain = [b"", b"x", b"\x80\x00", bytes(1023), b"report" * 200]
    seeds = [seal_bytes(p, [IDENTITY.public]) for p in plain]
    seeds.append(seal_bytes(b"two", [EncryptionKeyPair.generate().public, IDENTITY.public]))
    for p in (b"", b"ab\x80", bytes(2000)):
        padded = p + b"\x80" + bytes(padded_length(len(p)) - len(p) - 1)
        seeds.append(b"\x01" + bytes([len(p) % 256]) + padded)
    return seeds


# --- bundle ----------------------------------------------------------------------------------

_SCRATCH = Path(tempfile.gettempdir()) / f"cso-fuzz-{os.getpid()}.bundle"
if Path("/dev/shm").is_dir():
    _SCRATCH = Path("/dev/shm") / _SCRATCH.name


def _zero_items(payload: bytes) -> bytes:
    """Item bytes for a payload: zeros of each declared size (seeds hash such items)."""
    try:
        items = json.loads(payload.decode("utf-8", "surrogatepass")).get("items")
        sizes = [item["size"] for item in items]
        total = sum(sizes)
    except Exception:
        return b""
    return bytes(total) if isinstance(total, int) and 0 <= total <= 1 << 16 else b""


def signed_bundle(payload: bytes, items: bytes | None = None) -> bytes:
    """A bundle whose manifest signs ``payload`` with the fuzz key, as a portal would."""
    document = {
        "schema": "cso-bundle/v1",
        "signer": str(SIGNER.token),
        "payload": base64url.encode(payload),
        "signature": base64url.encode(SIGNER.sign(BUNDLE_CONTEXT + payload)),
    }
    manifest = _dumps(document)
    body = _zero_items(payload) if items is None else items
    return b"cso-bundle/v1\n" + body + manifest + len(manifest).to_bytes(8, "big") + END_MARK


END_MARK = b"\ncso-bundle-end\n"


def bundle(data: bytes) -> None:
    """Mode 0: a whole bundle file. Mode 1: a payload the harness signs and frames."""
    raw = signed_bundle(data[1:]) if data[:1] == b"\x01" else data
    _SCRATCH.write_bytes(raw)
    try:
        opened = open_bundle(_SCRATCH, {SIGNER.token})
        for item in opened.items:
            opened.read_item(item)
    finally:
        _SCRATCH.unlink(missing_ok=True)


def bundle_seeds() -> list[bytes]:
    """Inbox and replies bundles; signed-payload seeds with zero-filled items."""
    seeds = []
    for kind, fields in (("inbox", {"cursor": {"from": 0, "to": 2}}), ("replies", {})):
        out = io.BytesIO()
        writer = BundleWriter(out, SIGNER, kind, fields, bundle_id="0" * 32)
        writer.add({"type": "part", "position": 0, "kind": "report"}, b"x" * 40)
        writer.add({"type": "reply", "status": None}, b"")
        writer.finish(ISSUED)
        seeds.append(out.getvalue())
        payload = {
            **fields,
            "schema": "cso-bundle-payload/v1",
            "kind": kind,
            "bundle_id": "ab" * 16,
            "created_at": "2026-11-21T08:00:00Z",
            "items": [
                {"type": "part", "size": n, "sha256": hashlib.sha256(bytes(n)).hexdigest()}
                for n in (0, 1, 100)
            ],
        }
        seeds.append(b"\x01" + _dumps(payload))
    return seeds


# --- batch -----------------------------------------------------------------------------------


def signed_batch(body: bytes) -> bytes:
    """``body`` (header and record lines) with a valid signature line by the fuzz key."""
    digest = hashlib.sha512(body).digest()
    line = {"signature": base64url.encode(SIGNER.sign(BATCH_CONTEXT + digest))}
    return body + _dumps(line) + b"\n"


def batch(data: bytes) -> None:
    """Mode 0: a whole batch. Mode 1: lines the harness signs. Mode 2: trusted-reviewers text."""
    if data[:1] == b"\x02":
        read_trusted_reviewers(data[1:].decode("utf-8", "surrogateescape"))
        return
    raw = signed_batch(data[1:]) if data[:1] == b"\x01" else data
    read_batch(raw, {SIGNER.token})


def batch_seeds() -> list[bytes]:
    """Signed batches, an unsigned body for mode 1 and a trusted-reviewers file."""
    records = [{"id": "c" * 32, "narrative": "boarded at anchor", "crew": {"total": 21}}, {}]
    whole = sign_batch(records, SIGNER, batch_id="d" * 32, created_at=ISSUED)
    body = whole[: whole.rindex(b'{"signature"')]
    trusted = f"# reviewers\n{SIGNER.token}  # first\n\n".encode()
    return [whole, b"\x01" + body, b"\x02" + trusted]


# --- manifest --------------------------------------------------------------------------------


def manifest(data: bytes) -> None:
    """A decrypted report's JSON: its attachments list, each entry checked against b""."""
    text = data.decode("utf-8", "surrogateescape")  # bad bytes become lone surrogates
    if data[:1] == b"\x01":
        check_name(text[1:])
        return
    try:
        report = json.loads(text)
    except (ValueError, RecursionError):
        return  # the reader refuses non-JSON before it looks at the manifest
    if not isinstance(report, dict):
        return  # likewise: the report's shape is checked first (reviewer_tool)
    for entry in parse_manifest(report):
        check = AttachmentCheck(entry)
        check.write(b"")
        check.verify()


def manifest_seeds() -> list[bytes]:
    """Reports with a few attachment entries, and file names."""
    entries = [
        entry_for(1, "photo.jpg", "image/jpeg", b"", scrubbed=True),
        entry_for(2, "log.txt", "text/plain", b"", scrubbed=False),
    ]
    report = {"schema": "cso-report/v1", "attachments": manifest_json(entries)}
    return [_dumps(report), _dumps({"attachments": []}), b"\x01bridge log 02.pdf"]


# --- directory -------------------------------------------------------------------------------


def signed_directory(payload: bytes) -> bytes:
    """A directory document that signs ``payload`` with the fuzz key."""
    document = {
        "schema": "cso-key-directory/v1",
        "signer": str(SIGNER.token),
        "payload": base64url.encode(payload),
        "signature": base64url.encode(SIGNER.sign(DIRECTORY_CONTEXT + payload)),
    }
    return _dumps(document)


def directory(data: bytes) -> None:
    """Mode 0: a whole directory. Mode 1: a payload the harness signs."""
    raw = signed_directory(data[1:]) if data[:1] == b"\x01" else data
    read_directory(raw, SIGNER.token)
    verify_directory(raw, SIGNER.token, NOW, min_serial=1)


def directory_seeds() -> list[bytes]:
    """A signed directory of two reviewers, and its payload alone."""
    reviewers = [(f"reviewer-{i}", EncryptionKeyPair.generate().token) for i in range(2)]
    whole = sign_directory(SIGNER, reviewers, serial=7, issued_at=ISSUED, valid_for=timedelta(30))
    payload = base64url.decode(json.loads(whole)["payload"])
    assert payload is not None
    return [whole, b"\x01" + payload]


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One parser under fuzzing: the call and its valid starting inputs."""

    name: str
    call: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]


TARGET_TABLE = {
    "envelope": Target("envelope", envelope, envelope_seeds),
    "bundle": Target("bundle", bundle, bundle_seeds),
    "batch": Target("batch", batch, batch_seeds),
    "manifest": Target("manifest", manifest, manifest_seeds),
    "directory": Target("directory", directory, directory_seeds),
}


def run_one(target: Target, data: bytes) -> None:
    """Call the target; a CryptoError is the parser's clean refusal, anything else escapes."""
    try:
        target.call(data)
    except CryptoError:
        pass


def baseline_rate(target: Target, seeds: list[bytes], seconds: float) -> float:
    """Executions per second of the target on its valid seeds, in a plain loop."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for seed in seeds:
            run_one(target, seed)
        count += len(seeds)
    return count / (time.perf_counter() - start)


def _child(name: str, libfuzzer_args: list[str]) -> None:
    """Inside the child: instrument crypto/ and hand control to libFuzzer (never returns)."""
    import importlib

    import atheris  # type: ignore[import-untyped]

    # this file runs as __main__ and imported crypto uninstrumented: import both afresh
    for module in [m for m in sys.modules if m == "crypto" or m.startswith("crypto.")]:
        del sys.modules[module]
    with atheris.instrument_imports(include=["crypto", "bench.fuzz"]):
        fresh = importlib.import_module("bench.fuzz")
    target = fresh.TARGET_TABLE[name]
    atheris.Setup([sys.argv[0], *libfuzzer_args], lambda data: fresh.run_one(target, data))
    atheris.Fuzz()


_DONE = re.compile(rb"Done (\d+) runs in (\d+) second")
_STAT = re.compile(rb"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE).*?exec/s: (\d+)")


def fuzz_target(name: str, runs: int, artifacts: Path, seconds: float) -> bool:
    """Fuzz one target in a child process; print its figures; return whether it was clean."""
    target = TARGET_TABLE[name]
    artifacts = artifacts.resolve()  # the child runs from the repository root
    seeds = target.seeds()
    for seed in seeds:  # the seeds must pass, or the run measures nothing
        target.call(seed)
    base = baseline_rate(target, seeds, seconds)
    with tempfile.TemporaryDirectory(prefix=f"cso-fuzz-{name}-") as work:
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        for seed in seeds:
            (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)  # noqa: S324 - a name
        words = Path(work) / "json.dict"
        words.write_text("".join(f"{json.dumps(w)}\n" for w in DICTIONARY), encoding="utf-8")
        artifacts.mkdir(parents=True, exist_ok=True)
        args = [
            f"-runs={runs}",
            f"-dict={words}",
            f"-artifact_prefix={artifacts}/{name}-",
            "-max_len=8192",
            "-print_final_stats=1",
            str(corpus),
        ]
        log_path = artifacts / f"{name}.log"  # libFuzzer's progress, to follow with tail -f
        start = time.perf_counter()
        with log_path.open("wb") as log_file:
            child = subprocess.run(
                [sys.executable, "-m", "bench.fuzz", "--child", name, "--", *args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,  # where ``-m bench.fuzz`` resolves
                check=False,
            )
        elapsed = time.perf_counter() - start
    log = log_path.read_bytes()
    done = _DONE.search(log)
    executed = (
        int(done.group(1)) if done else max((int(m[0]) for m in _STAT.findall(log)), default=0)
    )
    rate = executed / elapsed if elapsed else 0.0
    clean = child.returncode == 0 and done is not None
    print(
        f"{name:<10} executions {executed:>10,}  {rate:>9,.0f} exec/s  "
        f"baseline (valid seeds, no atheris) {base:>9,.0f} exec/s  ratio {rate / base:.3f}  "
        f"{'clean' if clean else 'FINDING (exit ' + str(child.returncode) + ')'}"
    )
    if not clean:
        tail = log.decode("utf-8", "replace").splitlines()[-40:]
        print("\n".join(f"    {line}" for line in tail))
    return clean


def main(argv: list[str] | None = None) -> int:
    """Fuzz the chosen targets; exit non-zero on any finding."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="20,000 runs per target")
    parser.add_argument("--artifacts", type=Path, default=Path("bench/fuzz-findings"))
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    runs = 20_000 if args.smoke else args.runs
    names = TARGETS if args.target == "all" else (args.target,)
    print(f"fuzzing {', '.join(names)}: {runs:,} runs each (python {sys.version.split()[0]})")
    seconds = min(1.0, args.baseline_seconds) if args.smoke else args.baseline_seconds
    results = [fuzz_target(n, runs, args.artifacts, seconds) for n in names]
    if not all(results):
        print(f"findings: inputs are in {args.artifacts}/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
