"""``python -m crypto`` end to end: keygen, encrypt, decrypt, inspect, errors."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto.keyfile import KeyBundle
from tests.integration.cli_helpers import ROOT, run_cli

REPORT = b"Boarded at Lagos anchorage 02:10 LT, 4 robbers, knives, forecastle store. " * 40


def _tokens(files: list[tuple[Path, KeyBundle]]) -> list[str]:
    return [b.public_tokens()["encryption"] for _, b in files]


def _recipient_args(files: list[tuple[Path, KeyBundle]]) -> list[str]:
    return [arg for token in _tokens(files) for arg in ("-r", token)]


def test_keygen_writes_private_file_and_prints_token_last(
    tmp_path: Path, passphrase_file: Path
) -> None:
    key = tmp_path / "me.key"
    done = run_cli("keygen", "-o", key, "--passphrase-file", passphrase_file)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[-1].startswith("csoenc1")
    assert len(lines[-1]) == 65
    assert any("fingerprint" in line for line in lines)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # §8.3.1
    again = run_cli("keygen", "-o", key, "--passphrase-file", passphrase_file)
    assert again.returncode != 0
    assert b"refusing to overwrite" in again.stderr


def test_organisation_keygen_prints_signing_token(tmp_path: Path, passphrase_file: Path) -> None:
    done = run_cli(
        "keygen",
        "--kind",
        "organisation",
        "-o",
        tmp_path / "org.key",
        "--passphrase-file",
        passphrase_file,
    )
    assert done.returncode == 0
    assert done.stdout.decode().splitlines()[-1].startswith("csosig1")


def test_round_trip_files_and_pipes(
    tmp_path: Path, reviewer_key_files: list[tuple[Path, KeyBundle]], passphrase_file: Path
) -> None:
    plain = tmp_path / "report.json"
    plain.write_bytes(REPORT)
    sealed = tmp_path / "report.env"
    done = run_cli("encrypt", *_recipient_args(reviewer_key_files), "-o", sealed, plain)
    assert done.returncode == 0, done.stderr
    for key_file, _ in reviewer_key_files:
        out = tmp_path / f"out-{key_file.stem}"
        opened = run_cli(
            "decrypt", "-i", key_file, "--passphrase-file", passphrase_file, "-o", out, sealed
        )
        assert opened.returncode == 0, opened.stderr
        assert out.read_bytes() == REPORT
    # stdin to stdout, both directions
    piped = run_cli("encrypt", *_recipient_args(reviewer_key_files[:1]), stdin=REPORT)
    assert piped.returncode == 0
    back = run_cli(
        "decrypt",
        "-i",
        reviewer_key_files[0][0],
        "--passphrase-file",
        passphrase_file,
        stdin=piped.stdout,
    )
    assert back.returncode == 0
    assert back.stdout == REPORT


def test_inspect_shows_structure_and_no_secrets(
    tmp_path: Path, reviewer_key_files: list[tuple[Path, KeyBundle]]
) -> None:
    sealed = run_cli("encrypt", *_recipient_args(reviewer_key_files), stdin=REPORT).stdout
    done = run_cli("inspect", stdin=sealed)
    assert done.returncode == 0
    text = done.stdout.decode()
    assert "version: 1" in text
    assert "stanzas: 3" in text
    assert "padded size: 3072" in text
    for token in _tokens(reviewer_key_files):
        assert token in text
    assert REPORT[:20].decode() not in text


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b"X" + b[1:], "header failure"),
        (lambda b: b[:100], "header failure"),
        (lambda b: b[:60] + bytes([b[60] ^ 1]) + b[61:], "no match"),
        (lambda b: b[:314] + bytes([b[314] ^ 1]) + b[315:], "MAC failure"),
        (lambda b: b[:-1], "payload failure"),
        (lambda b: b[:-20] + bytes([b[-20] ^ 1]) + b[-19:], "payload failure"),
        (lambda b: b + b"\x00", "payload failure"),
    ],
    ids=[
        "magic",
        "truncated-header",
        "own-stanza-label",
        "other-stanza",
        "truncated",
        "payload-byte",
        "appended",
    ],
)
def test_failures_are_one_line_and_leave_no_output(
    tmp_path: Path,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
    mutate: object,
    expected: str,
) -> None:
    sealed = run_cli("encrypt", *_recipient_args(reviewer_key_files), stdin=REPORT * 100).stdout
    bad = tmp_path / "bad.env"
    bad.write_bytes(mutate(sealed))  # type: ignore[operator]
    out = tmp_path / "out.txt"
    done = run_cli(
        "decrypt",
        "-i",
        reviewer_key_files[0][0],
        "--passphrase-file",
        passphrase_file,
        "-o",
        out,
        bad,
    )
    assert done.returncode == 1
    message = done.stderr.decode()
    assert message.count("\n") == 1
    assert expected in message
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["bad.env"]  # no temporary file either


def test_wrong_passphrase_is_a_clear_error(
    tmp_path: Path, reviewer_key_files: list[tuple[Path, KeyBundle]]
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    sealed = run_cli("encrypt", *_recipient_args(reviewer_key_files), stdin=REPORT).stdout
    done = run_cli(
        "decrypt", "-i", reviewer_key_files[0][0], "--passphrase-file", wrong, stdin=sealed
    )
    assert done.returncode == 1
    assert b"wrong passphrase" in done.stderr
    assert done.stdout == b""


@pytest.mark.parametrize(
    "args",
    [
        ["encrypt", "-r", "csoenc1notakey"],
        ["encrypt", "-r", "csosig1" + "a" * 58],
        ["decrypt", "-i", "/nonexistent/key"],
        ["inspect", "/nonexistent/file"],
        ["decrypt", "-i", "README.md"],
    ],
)
def test_bad_arguments_fail_with_one_line(args: list[str]) -> None:
    done = run_cli(*args, stdin=b"")
    assert done.returncode != 0
    assert done.stderr.decode().count("\n") == 1, done.stderr


def test_no_terminal_and_no_passphrase_file(
    reviewer_key_files: list[tuple[Path, KeyBundle]],
) -> None:
    done = run_cli("decrypt", "-i", reviewer_key_files[0][0], stdin=b"")
    assert done.returncode == 2
    assert b"--passphrase-file" in done.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_killed_decryption_leaves_no_plaintext_file(
    tmp_path: Path,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
    signum: int,
) -> None:
    """§7.3: even a process killed mid-stream leaves nothing under any name."""
    secret = b"CANARY-PLAINTEXT " * 200_000  # 3.4 MB
    sealed = run_cli("encrypt", *_recipient_args(reviewer_key_files[:1]), stdin=secret).stdout
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "crypto", "decrypt", "-i", str(reviewer_key_files[0][0]),
         "--passphrase-file", str(passphrase_file), "-o", str(out_dir / "report.txt")],
        cwd=ROOT, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(sealed[: len(sealed) // 2])  # half, then the sender stalls
    process.stdin.flush()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        if _writes_reached(process.pid, out_dir):
            break
    process.send_signal(signum)
    process.wait(timeout=30)
    process.stdin.close()
    assert list(out_dir.iterdir()) == []
    assert not any(b"CANARY" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
                   and p.suffix != ".env")  # fmt: skip


def _writes_reached(pid: int, directory: Path) -> bool:
    """Whether the process holds an output file open in ``directory``."""
    try:
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(t.startswith(str(directory)) for t in targets)


def test_passphrase_is_nfc_normalised(tmp_path: Path) -> None:
    """§8.3: "é" as one code point or as e + combining accent opens the same file."""
    composed, decomposed = tmp_path / "nfc", tmp_path / "nfd"
    composed.write_text("caf\u00e9 au lait on deck\n", encoding="utf-8")
    decomposed.write_text("cafe\u0301 au lait on deck\n", encoding="utf-8")
    key = tmp_path / "k.key"
    made = run_cli("keygen", "-o", key, "--passphrase-file", decomposed)
    assert made.returncode == 0, made.stderr
    token = made.stdout.decode().splitlines()[-1]
    sealed = run_cli("encrypt", "-r", token, stdin=b"hello").stdout
    opened = run_cli("decrypt", "-i", key, "--passphrase-file", composed, stdin=sealed)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == b"hello"
