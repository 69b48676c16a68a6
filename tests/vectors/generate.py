"""Generate the Python-made vector files: envelope-py, keys-py, directory-py.

Run from the repository root: ``python tests/vectors/generate.py``. Output is
random (fresh keys, nonces), so regenerating changes the bytes but not what
each case tests. The JavaScript side checks these files under ``node --test``.

Malformed envelopes are built here with explicit data keys from the low-level
pieces of ``crypto.header`` and AES-GCM directly, so each negative case
breaks exactly one rule and re-authenticates everything else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.directory import SIGNING_CONTEXT, sign_directory
from crypto.envelope import CHUNK_SIZE, chunk_nonce, seal_bytes
from crypto.header import MAGIC, Stanza, derive_keys, header_mac, seal_data_key
from crypto.keys import (
    EncryptionKeyPair,
    KeyKind,
    SigningKeyPair,
    fingerprint,
    format_public_key,
)
from crypto.padding import PAD_MARKER, padded_length

HERE = Path(__file__).parent


def pattern(length: int) -> bytes:
    """Deterministic plaintext: byte i is (31 i + 7) mod 256."""
    return bytes((i * 31 + 7) & 0xFF for i in range(length))


@dataclass
class Draft:
    """An envelope under construction with every secret in view."""

    recipients: list[bytes]
    data_key: bytes = field(default_factory=lambda: os.urandom(32))
    salt: bytes = field(default_factory=lambda: os.urandom(32))

    def stanzas(self) -> list[Stanza]:
        """One freshly sealed stanza per recipient."""
        return [seal_data_key(self.data_key, r) for r in self.recipients]

    def header(self, stanzas: list[Stanza] | None = None, count: int | None = None) -> bytes:
        """Header bytes with a correct MAC over whatever is given."""
        stanzas = self.stanzas() if stanzas is None else stanzas
        n = len(stanzas) if count is None else count
        body = MAGIC + self.salt + struct.pack(">H", n) + b"".join(s.to_bytes() for s in stanzas)
        mac_key, _ = derive_keys(self.data_key, self.salt)
        return body + header_mac(mac_key, body)

    def chunks(self, padded: bytes) -> list[bytes]:
        """Seal ``padded`` as the spec's chunk sequence."""
        _, payload_key = derive_keys(self.data_key, self.salt)
        aead = AESGCM(payload_key)
        pieces = [padded[i : i + CHUNK_SIZE] for i in range(0, len(padded), CHUNK_SIZE)] or [b""]
        return [
            aead.encrypt(chunk_nonce(i, i == len(pieces) - 1), piece, None)
            for i, piece in enumerate(pieces)
        ]

    def seal_chunk(self, counter: int, last: bool, plaintext: bytes) -> bytes:
        """One chunk sealed under this draft's payload key."""
        _, payload_key = derive_keys(self.data_key, self.salt)
        return AESGCM(payload_key).encrypt(chunk_nonce(counter, last), plaintext, None)


def pad(data: bytes) -> bytes:
    """Canonical padding (SPEC §6)."""
    total = padded_length(len(data))
    return data + bytes([PAD_MARKER]) + bytes(total - len(data) - 1)


def envelope_cases(alice: EncryptionKeyPair, bob: EncryptionKeyPair) -> list[dict[str, Any]]:
    """Success cases and one negative case per MUST of SPEC §3–§7."""
    both = [alice.public, bob.public]
    cases: list[dict[str, Any]] = []

    def add(name: str, spec: str, envelope: bytes, expect: str, plaintext: bytes | None = None):
        case: dict[str, Any] = {
            "name": name,
            "spec": spec,
            "identity": "alice",
            "envelope_b64": base64.b64encode(envelope).decode(),
            "expect": expect,
        }
        if plaintext is not None:
            case["plaintext_length"] = len(plaintext)
            case["plaintext_sha256"] = hashlib.sha256(plaintext).hexdigest()
        cases.append(case)

    for length in (0, 5, 1023, CHUNK_SIZE - 1, CHUNK_SIZE):
        data = pattern(length)
        add(f"{length} bytes to alice and bob", "§3-§7", seal_bytes(data, both), "success", data)
    add(
        "5 bytes to alice only", "§4", seal_bytes(pattern(5), [alice.public]), "success", pattern(5)
    )

    good = seal_bytes(pattern(100), both)
    add("bad magic", "§3.1", b"cso-envelope/v2\n" + good[16:], "header failure")
    add("not an envelope at all", "§3.1", b"hello world, this is plain text", "header failure")

    draft = Draft(both)
    body = pad(pattern(100))
    stanzas = draft.stanzas()
    add(
        "count 0",
        "§3.2",
        draft.header([], count=0) + b"".join(draft.chunks(body)),
        "header failure",
    )
    add(
        "count 65 with 65 stanzas, MAC correct",
        "§3.2",
        _count_65(draft) + b"".join(draft.chunks(body)),
        "header failure",
    )
    add("truncated header", "§3.3", good[: 50 + 112 + 10], "header failure")
    add("header only, MAC cut short", "§3.3", good[: 50 + 2 * 112 + 31], "header failure")
    duplicated = [stanzas[0], stanzas[0], stanzas[1]]
    add(
        "duplicated recipient, MAC recomputed",
        "§3.4",
        draft.header(duplicated) + b"".join(draft.chunks(body)),
        "header failure",
    )

    to_bob = seal_bytes(pattern(100), [bob.public])
    add("no stanza for this identity", "§4.2", to_bob, "no match")
    broken = Stanza(stanzas[0].recipient, stanzas[0].enc, bytes(48))
    add(
        "alice's sealed key corrupted",
        "§4.2",
        draft.header([broken, stanzas[1]]) + b"".join(draft.chunks(body)),
        "no match",
    )

    header = draft.header(stanzas)
    payload = b"".join(draft.chunks(body))
    flipped_mac = header[:-1] + bytes([header[-1] ^ 1])
    add("flipped MAC byte", "§5.1", flipped_mac + payload, "MAC failure")
    changed_salt = header[:16] + bytes([header[16] ^ 0x40]) + header[17:]
    add("changed salt", "§5.1", changed_salt + payload, "MAC failure")
    bob_at = 50 + 112 + 40
    altered = header[:bob_at] + bytes([header[bob_at] ^ 1]) + header[bob_at + 1 :]
    add("bob's stanza altered", "§5.1", altered + payload, "MAC failure")
    other_key = Draft(both, salt=draft.salt)
    mixed = [stanzas[0], other_key.stanzas()[1]]
    add(
        "stanzas hold different data keys",
        "§5.1",
        draft.header(mixed)[:-32]
        + header_mac(derive_keys(other_key.data_key, draft.salt)[0], draft.header(mixed)[:-32])
        + payload,
        "MAC failure",
    )

    data = pattern(100)
    add(
        "padding one byte too long",
        "§6.2",
        header + b"".join(draft.chunks(pad(data) + b"\x00")),
        "payload failure",
    )
    add(
        "padding marker is not 0x80",
        "§6.2",
        header + b"".join(draft.chunks(data + b"\x81" + bytes(len(pad(data)) - 101))),
        "payload failure",
    )
    # padme(101) = 104: canonical but for the 1024-byte floor, so only that rule fails.
    add(
        "padded to padme size but under the 1024-byte floor",
        "§6.2",
        header + b"".join(draft.chunks(data + b"\x80" + bytes(3))),
        "payload failure",
    )
    add(
        "no padding at all",
        "§6.2",
        header + b"".join(draft.chunks(pattern(1024))),
        "payload failure",
    )

    # A full first chunk that is a canonical payload on its own, then an empty
    # last chunk: only the §7.1 rule rejects it (its control is the next case).
    full = pad(pattern(CHUNK_SIZE - 1))
    assert len(full) == CHUNK_SIZE
    empty_last = draft.seal_chunk(0, False, full) + draft.seal_chunk(1, True, b"")
    add("final chunk with empty plaintext", "§7.1", header + empty_last, "payload failure")
    add(
        "control: the same first chunk flagged last",
        "§7.1",
        header + draft.seal_chunk(0, True, full),
        "success",
        pattern(CHUNK_SIZE - 1),
    )
    short_first = draft.seal_chunk(0, False, pad(data)[:600]) + draft.seal_chunk(
        1, True, pad(data)[600:]
    )
    add("short chunk that is not the last", "§7.1", header + short_first, "payload failure")

    three = pattern(2 * CHUNK_SIZE + 10)
    chunks = draft.chunks(pad(three))
    assert len(chunks) == 3
    add("three-chunk control", "§7", header + b"".join(chunks), "success", three)
    add("middle chunk dropped", "§7.2", header + chunks[0] + chunks[2], "payload failure")
    long_data = pattern(CHUNK_SIZE + 10)
    chunks = draft.chunks(pad(long_data))
    assert len(chunks) == 2
    add("two-chunk control", "§7", header + b"".join(chunks), "success", long_data)
    add("chunks reordered", "§7.2", header + chunks[1] + chunks[0], "payload failure")
    add("chunk duplicated", "§7.2", header + b"".join(chunks[:2] + chunks[1:]), "payload failure")
    add("last chunk removed", "§7.2", header + b"".join(chunks[:-1]), "payload failure")
    add("last chunk cut by one byte", "§7.2", header + b"".join(chunks)[:-1], "payload failure")
    add("one byte appended", "§7.2", header + b"".join(chunks) + b"\x00", "payload failure")
    extra = draft.seal_chunk(len(chunks), True, b"\x80" + bytes(99))
    add(
        "valid-looking chunk appended", "§7.2", header + b"".join(chunks) + extra, "payload failure"
    )
    tail = pad(long_data)[CHUNK_SIZE:]
    not_last = [*chunks[:-1], draft.seal_chunk(len(chunks) - 1, False, tail)]
    add("final chunk flagged not-last", "§7.2", header + b"".join(not_last), "payload failure")
    whole = bytearray(header + b"".join(chunks))
    whole[len(header) + CHUNK_SIZE + 100] ^= 0x20
    add("flipped payload byte", "§7.2", bytes(whole), "payload failure")
    return cases


def _count_65(draft: Draft) -> bytes:
    """A header claiming 65 stanzas, 65 present, MAC correct."""
    many = [seal_data_key(draft.data_key, EncryptionKeyPair.generate().public) for _ in range(65)]
    return draft.header(many)


def write(name: str, document: dict[str, Any]) -> None:
    """Write one vector file."""
    (HERE / name).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def key_cases() -> list[dict[str, Any]]:
    """Tokens and fingerprints, good and mistyped."""
    cases: list[dict[str, Any]] = []
    for kind in KeyKind:
        for key in (bytes(32), bytes(range(32)), os.urandom(32)):
            token = format_public_key(kind, key)

            cases.append(
                {
                    "name": f"{kind.prefix} of {key[:4].hex()}…",
                    "kind": kind.prefix,
                    "key": key.hex(),
                    "token": token,
                    "fingerprint": fingerprint(kind, key),
                    "expect": "success",
                }
            )
    token = cases[-1]["token"]
    swapped = "a" if token[20] != "a" else "b"
    bad = [
        ("one character mistyped", token[:20] + swapped + token[21:]),
        ("wrong prefix", "csoxxx1" + token[7:]),
        ("other kind's prefix with this body", "csoenc1" + token[7:]),
        ("one character short", token[:-1]),
        ("one character long", token + "a"),
        ("character outside base32", token[:-1] + "1"),
        ("empty", ""),
    ]
    for name, text in bad:
        cases.append({"name": name, "kind": "csosig1", "token": text, "expect": "invalid"})
    return cases


def directory_cases() -> tuple[str, list[dict[str, Any]]]:
    """Directories signed by the pinned key, and ones to refuse."""
    org, stranger = SigningKeyPair.generate(), SigningKeyPair.generate()
    reviewers = [(f"reviewer-{i}", EncryptionKeyPair.generate().token) for i in (1, 2, 3)]
    issued = datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC)
    now = "2026-11-21T08:00:00Z"
    ok = sign_directory(org, reviewers, serial=3, issued_at=issued, valid_for=timedelta(days=90))
    cases: list[dict[str, Any]] = [
        {
            "name": "valid directory",
            "spec": "§10",
            "directory": ok.decode(),
            "now": now,
            "expect": "success",
            "serial": 3,
            "recipients": [str(t) for _, t in reviewers],
        }
    ]

    def refuse(name: str, spec: str, text: bytes | str, at: str = now) -> None:
        value = text.decode() if isinstance(text, bytes) else text
        cases.append(
            {"name": name, "spec": spec, "directory": value, "now": at, "expect": "invalid"}
        )

    refuse("expired", "§10.2", ok, "2027-02-15T08:00:00Z")
    refuse("expires exactly now", "§10.2", ok, "2027-01-30T08:00:00Z")
    refuse("issued 11 minutes in the future", "§10.2", ok, "2026-11-01T07:49:00Z")
    refuse(
        "signed by another key",
        "§10.1",
        sign_directory(
            stranger, reviewers, serial=3, issued_at=issued, valid_for=timedelta(days=9)
        ),
    )
    document = json.loads(ok)
    forged = dict(document, signer=str(stranger.token))
    refuse("signer field swapped", "§10.1", json.dumps(forged))
    sig = base64.urlsafe_b64decode(document["signature"] + "==")
    bad_sig = base64.urlsafe_b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode().rstrip("=")
    refuse("signature flipped", "§10.1", json.dumps(dict(document, signature=bad_sig)))
    payload = json.loads(base64.urlsafe_b64decode(document["payload"] + "=="))

    def resign(changed: dict[str, Any] | bytes) -> str:
        raw = changed if isinstance(changed, bytes) else json.dumps(changed).encode()

        doc = {
            "schema": "cso-key-directory/v1",
            "signer": str(org.token),
            "payload": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            "signature": base64.urlsafe_b64encode(org.sign(SIGNING_CONTEXT + raw))
            .decode()
            .rstrip("="),
        }
        return json.dumps(doc)

    refuse("payload schema wrong", "§10.1", resign(dict(payload, schema="other")))
    refuse(
        "valid for 93 days",
        "§10.2",
        resign(dict(payload, expires_at="2027-02-02T08:00:00Z")),
    )
    refuse("serial above 2^53 - 1", "§10.4", resign(dict(payload, serial=2**53)))
    # JSON.parse reads these as whole numbers, Python's json as floats or 0:
    # both must refuse them from the text (§10.4, plain digits only)
    plain = json.dumps(payload, separators=(",", ":"))
    for written in ("1.0", "1e3", "-0"):
        odd = plain.replace(f'"serial":{payload["serial"]},', f'"serial":{written},', 1)
        assert odd != plain
        refuse(f"serial written {written}", "§10.4", resign(odd.encode()))
    refuse("time without Z", "§10.1", resign(dict(payload, expires_at="2027-01-30T08:00:00")))
    refuse("no reviewers", "§10.1", resign(dict(payload, reviewers=[])))
    entry = payload["reviewers"][0]
    refuse("65 reviewers", "§10.1", resign(dict(payload, reviewers=[entry] * 65)))
    refuse("key listed twice", "§10.1", resign(dict(payload, reviewers=[entry, entry])))
    typo = dict(entry, encryption_key=entry["encryption_key"][:-1] + "a")
    if typo["encryption_key"] == entry["encryption_key"]:
        typo["encryption_key"] = entry["encryption_key"][:-1] + "b"
    refuse("mistyped key", "§10.1", resign(dict(payload, reviewers=[typo])))
    refuse("extra field in entry", "§10.1", resign(dict(payload, reviewers=[dict(entry, x=1)])))
    refuse(
        "label with a slash", "§10.1", resign(dict(payload, reviewers=[dict(entry, label="a/b")]))
    )
    refuse("payload not JSON", "§10.1", resign(b"{not json"))
    # JSON parsers part ways on unknown fields holding huge numbers or deep
    # nesting (Python's int() stops at 4,300 digits, its decoder at its
    # recursion limit, JSON.parse at neither): both refuse every one (§10.5)
    compact = json.dumps(payload, separators=(",", ":"))
    hostile = {
        "a string": '"hello"',
        "a 17-digit integer": "12345678901234567",
        "a 5,000-digit integer": "9" * 5000,
        "arrays 3,000 deep": "[" * 3000 + "]" * 3000,
    }
    for name, extra in hostile.items():
        added = compact[:-1] + ',"note":' + extra + "}"
        refuse(f"unknown payload field holding {name}", "§10.5", resign(added.encode()))
        outer = ok.decode().rstrip()[:-1] + ',"note":' + extra + "}"
        refuse(f"unknown document field holding {name}", "§10.5", outer)
    missing = {k: v for k, v in payload.items() if k != "issued_at"}
    refuse("payload field missing", "§10.5", resign(missing))
    refuse("payload nested 5 deep", "§10.5", resign(dict(payload, reviewers=[[[[[]]]]])))
    refuse("payload over 64 KiB", "§10.5", resign((compact + " " * 64 * 1024).encode()))
    refuse("not JSON", "§10.1", "this is not a directory")
    cases.extend(signing_key_cases(org, issued, now, resign))
    return str(org.token), cases


def signing_key_cases(
    org: SigningKeyPair, issued: datetime, now: str, resign: Any
) -> list[dict[str, Any]]:
    """§10.1: entries with the optional signing key, and ones to refuse."""
    signers = [SigningKeyPair.generate().token, None, SigningKeyPair.generate().token]
    reviewers = [
        (f"reviewer-{i}", EncryptionKeyPair.generate().token, signer)
        for i, signer in enumerate(signers, 1)
    ]
    ok = sign_directory(org, reviewers, serial=4, issued_at=issued, valid_for=timedelta(days=90))
    cases: list[dict[str, Any]] = [
        {
            "name": "valid directory with signing keys",
            "spec": "§10.1",
            "directory": ok.decode(),
            "now": now,
            "expect": "success",
            "serial": 4,
            "recipients": [str(t) for _, t, _ in reviewers],
            "signing_keys": [None if s is None else str(s) for s in signers],
        }
    ]
    payload = json.loads(base64.urlsafe_b64decode(json.loads(ok)["payload"] + "=="))
    first, second, third = payload["reviewers"]
    sig = first["signing_key"]
    typo = sig[:-1] + ("a" if sig[-1] != "a" else "b")
    bad = {
        "signing key listed twice": [first, dict(third, signing_key=sig)],
        "mistyped signing key": [dict(first, signing_key=typo)],
        "encryption key as signing key": [dict(first, signing_key=first["encryption_key"])],
        "signing key null": [dict(second, signing_key=None)],
        "extra field beside signing key": [dict(first, x="y")],
    }
    for name, entries in bad.items():
        changed = dict(payload, reviewers=entries)
        cases.append(
            {
                "name": name,
                "spec": "§10.1",
                "directory": resign(changed),
                "now": now,
                "expect": "invalid",
            }
        )
    return cases


def main() -> None:
    """Write the three Python-made vector files."""
    alice, bob = EncryptionKeyPair.generate(), EncryptionKeyPair.generate()
    write(
        "envelope-py.json",
        {
            "schema": "cso-envelope-vectors/v1",
            "source": "tests/vectors/generate.py: the Python implementation in crypto/",
            "rationale": (
                "Python-made envelopes that the browser implementation must open, and one "
                "malformed envelope per MUST of SPEC §3-§7 that it must refuse with the "
                "named failure class; malformed cases re-authenticate everything except "
                "the one rule under test."
            ),
            "identities": {"alice": alice.private.hex(), "bob": bob.private.hex()},
            "cases": envelope_cases(alice, bob),
        },
    )
    write(
        "keys-py.json",
        {
            "schema": "cso-key-vectors/v1",
            "source": "tests/vectors/generate.py: the Python implementation in crypto/keys.py",
            "rationale": (
                "Both sides must format, parse and fingerprint keys identically "
                "(SPEC §8.1-§8.2) and refuse mistyped tokens."
            ),
            "cases": key_cases(),
        },
    )
    write_directories()


def write_directories() -> None:
    """Write directory-py.json."""
    signer, cases = directory_cases()
    write(
        "directory-py.json",
        {
            "schema": "cso-directory-vectors/v1",
            "source": "tests/vectors/generate.py: the Python implementation in crypto/directory.py",
            "rationale": (
                "The browser must accept exactly the directories Python accepts (SPEC §10)."
            ),
            "trusted_signer": signer,
            "cases": cases,
        },
    )


def receipt_cases() -> list[dict[str, Any]]:
    """Receipts and what they derive (SPEC §14), for the browser to reproduce."""
    from crypto.receipt import Receipt, derive

    cases = []
    for digits in ("000000000000000000000000", "123456789012345678901234", None):
        receipt = Receipt(digits) if digits else Receipt.generate()
        keys = derive(receipt)
        cases.append(
            {
                "name": f"receipt {receipt.locator}…",
                "spec": "§14.2",
                "receipt": receipt.digits,
                "private_key": keys.reporter.private.hex(),
                "public_key": str(keys.reporter.token),
                "lookup_token": keys.lookup_token.hex(),
                "expect": "success",
            }
        )
    return cases


def write_receipts() -> None:
    """Write receipt-py.json."""
    write(
        "receipt-py.json",
        {
            "schema": "cso-receipt-vectors/v1",
            "source": "tests/vectors/generate.py: the Python implementation in crypto/receipt.py",
            "rationale": (
                "Browser and server must derive the same reporter key and lookup token "
                "from a receipt (SPEC §14), or a reporter could not come back."
            ),
            "cases": receipt_cases(),
        },
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["receipts"]:
        write_receipts()
    elif sys.argv[1:] == ["directories"]:
        write_directories()
    else:
        main()
        write_receipts()
