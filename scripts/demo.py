"""``make run``: a guided round trip through the envelope tool with demo keys.

The intake portal is not built yet; until it is, ``make run`` shows the part
everything rests on. It makes (once) two demo reviewer keys under
``var/demo/``, encrypts a sample report to both with ``python -m crypto``,
decrypts it with each, and prints the commands so you can repeat them.
Demo keys are for trying things out only: their passphrase sits beside them.
"""

from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "var" / "demo"
SAMPLE = (
    '{"category": "armed robbery", "narrative": "Four robbers boarded via the anchor chain '
    "at 02:10 local time and stole ship's stores from the forecastle store.\"}\n"
)


def crypto(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m crypto`` and echo the command as a user would type it."""
    command = [sys.executable, "-m", "crypto", *map(str, args)]
    shown = ["python", "-m", "crypto", *(str(a) for a in args)]
    print("  $", " ".join(shlex.quote(p) for p in shown))
    done = subprocess.run(command, cwd=ROOT, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr.decode().strip())
    return done


def main() -> None:
    """Make demo keys if needed, then show a round trip."""
    DEMO.mkdir(parents=True, exist_ok=True, mode=0o700)
    passphrase = DEMO / "passphrase"
    if not passphrase.exists():
        passphrase.write_text(secrets.token_urlsafe(18) + "\n")
        passphrase.chmod(0o600)
    tokens = []
    print("1. Demo reviewer keys (argon2id-protected files, mode 0600):")
    for name in ("reviewer-1", "reviewer-2"):
        key = DEMO / f"{name}.key"
        if key.exists():
            print(f"  (reusing {key.relative_to(ROOT)})")
            tokens.append(json.loads(key.read_text())["public"]["encryption"])
        else:
            done = crypto(
                "keygen",
                "-o",
                key.relative_to(ROOT),
                "--passphrase-file",
                passphrase.relative_to(ROOT),
            )
            tokens.append(done.stdout.decode().splitlines()[-1])
    for token in tokens:
        fingerprint = crypto("fingerprint", token).stdout.decode().strip()
        print(f"     {token}\n     fingerprint {fingerprint}")

    report = DEMO / "report.json"
    report.write_text(SAMPLE)
    sealed = DEMO / "report.json.cso"
    print("\n2. Encrypt a sample report to both reviewers:")
    args = [a for t in tokens for a in ("-r", t)]
    crypto("encrypt", *args, "-o", sealed.relative_to(ROOT), report.relative_to(ROOT))
    print("\n3. What anyone can see without a key:")
    print(
        "    ", crypto("inspect", sealed.relative_to(ROOT)).stdout.decode().replace("\n", "\n     ")
    )
    print("4. Each reviewer decrypts:")
    for name in ("reviewer-1", "reviewer-2"):
        out = crypto(
            "decrypt",
            "-i",
            (DEMO / f"{name}.key").relative_to(ROOT),
            "--passphrase-file",
            passphrase.relative_to(ROOT),
            sealed.relative_to(ROOT),
        ).stdout
        if out.decode() != SAMPLE:
            sys.exit(f"{name} decrypted something else: this is a bug, please report it")
        print(f"     {name}: {out.decode().strip()[:70]}…")
    print(
        "\nNext: read README.md (key formats, fingerprints) and crypto/SPEC.md.\n"
        "Run every test with: make test"
    )


if __name__ == "__main__":
    main()
