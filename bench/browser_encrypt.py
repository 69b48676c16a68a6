"""Encrypting 100 MB in headless Chromium: the envelope against raw WebCrypto.

    python bench/browser_encrypt.py [--mb 100] [--rounds 5]
    python bench/browser_encrypt.py --smoke     # 8 MB, 2 rounds

Serves the browser modules and bench/browser/ from loopback under the
portal's CSP and drives Debian's Chromium (same flags as the tests). Each
round times one raw AES-256-GCM encryption of the whole buffer with
WebCrypto, then sealing the same bytes, held as a Blob and read in 64 KiB
slices, to 3 recipients. Prints the best times and the median per-round
ratio raw / envelope (1.0 = as fast as raw).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._browser import bench_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="8 MB, 2 rounds")
    args = parser.parse_args()
    if args.smoke:
        args.mb, args.rounds = 8, 2
    with bench_page("bench.html", "bench.js") as page:
        result = page.evaluate(f"window.bench({args.mb}, {args.rounds})")
    mb = args.mb
    print(f"{mb} MB, 3 recipients, {args.rounds} rounds, headless Chromium")
    print(f"raw WebCrypto AES-256-GCM, one buffer: {mb / result['bestRaw'] * 1000:7.1f} MB/s")
    print(f"envelope from a Blob:                  {mb / result['bestEnvelope'] * 1000:7.1f} MB/s")
    print(f"ratio raw / envelope (median): {result['median']:.2f}")


if __name__ == "__main__":
    main()
