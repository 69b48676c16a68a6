"""Proof of work: the browser's solver against native code, on the same puzzles.

    python -m bench.pow_browser [--bits 16] [--puzzles 8]
    python -m bench.pow_browser --smoke     # 4 puzzles at 12 bits

The proof of work costs a reporter seconds only if the browser is not far
slower than what a spammer would run. This serves pow.js from loopback under
the portal's CSP, solves ``--puzzles`` puzzles at ``--bits`` in headless
Chromium (WebCrypto SHA-256, batches of 512 digests), solves the same
puzzles with Python's hashlib (one native SHA-256 call per try, the cheap
end of what an attacker has), and prints both rates and the ratio
browser / native (1.0 = no advantage for native code). Also prints the
expected time for one proof at the default and the highest difficulties.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._browser import bench_page
from portal.config import Config
from portal.web.pow import MAX_EXTRA_BITS, solve


def puzzles(count: int, bits: int) -> list[str]:
    """Well-formed puzzle texts (unsigned: solving does not look at the MAC)."""
    return [
        f"p1.submit.1900000000.{bits}.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        for _ in range(count)
    ]


def native(texts: list[str], bits: int) -> tuple[int, float]:
    """Tries and seconds for Python's hashlib to solve ``texts``."""
    tries = 0
    start = time.perf_counter()
    for text in texts:
        tries += int(solve(text, bits).rsplit(":", 1)[1]) + 1
    return tries, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=16)
    parser.add_argument("--puzzles", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="4 puzzles at 12 bits")
    args = parser.parse_args()
    if args.smoke:
        args.bits, args.puzzles = 12, 4
    texts = puzzles(args.puzzles, args.bits)
    with bench_page("pow.html", "pow-bench.js") as page:
        browser = page.evaluate("([p, b]) => window.bench(p, b)", [texts, args.bits])
    tries, seconds = native(texts, args.bits)
    browser_rate = browser["tries"] / browser["seconds"]
    native_rate = tries / seconds
    print(f"{args.puzzles} puzzles at {args.bits} bits, headless Chromium and Python hashlib")
    print(f"browser (pow.js, WebCrypto): {browser_rate:10,.0f} tries/s")
    print(f"native (hashlib):            {native_rate:10,.0f} tries/s")
    print(f"ratio browser / native: {browser_rate / native_rate:.2f}")
    for bits in (Config.pow_bits, Config.pow_bits + MAX_EXTRA_BITS):  # default and highest
        print(f"one proof at {bits} bits in the browser: about {2**bits / browser_rate:,.1f} s")


if __name__ == "__main__":
    main()
