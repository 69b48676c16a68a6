"""`reviewer import` of 10,000 small reports against a raw decrypt loop over the same envelopes.

    python -m bench.reviewer_import [--reports 10000] [--repeat 3]
    python -m bench.reviewer_import --smoke     # 300 reports, 2 pairs

The baseline opens every report envelope of the bundle in memory and parses
its JSON: the least any importer must do. The measured run is the real
import into a fresh encrypted workspace: verifying the bundle's signature and
every item hash, decrypting, checking manifests, sealing each report for the
workspace and committing to SQLite. The ratio is baseline time / import
time (1.0 = as fast as the raw loop; the target is at least 0.7). Runs
alternate so that a noisy neighbour slows both; the ratio is the median.
The passphrase unlock (argon2id) is paid once per run, outside both timings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.envelope import paired
from crypto.bundle import open_bundle
from crypto.envelope import open_bytes
from crypto.keyfile import KeyBundle
from crypto.keys import SigningKeyPair
from reviewer_tool.importer import import_bundle, verify
from reviewer_tool.workspace import Workspace
from tests.integration.reviewer_helpers import report_document, write_inbox

PASSPHRASE = b"benchmark passphrase, not secret"


def main() -> None:
    """Build the bundle once, then time raw decryption against the import."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="300 reports, 2 pairs")
    args = parser.parse_args()
    if args.smoke:
        args.reports, args.repeat = 300, 2
    root = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        keys = KeyBundle.new_reviewer()
        assert keys.encryption is not None
        portal = SigningKeyPair.generate()
        narrative = "Four robbers boarded via the anchor chain and stole ship's stores. " * 6
        reports = [
            (report_document(narrative, {"identity_vessel": "MV Example"},
                             place_name="Lagos anchorage", perpetrators_min=4), [])
        ] * args.reports  # fmt: skip
        bundle_path = root / "inbox.bundle"
        write_inbox(bundle_path, portal, [keys.encryption.public], reports)
        template = root / "template"
        Workspace.create(template, keys, PASSPHRASE).close()
        print(f"{args.reports} reports, bundle {bundle_path.stat().st_size / 1e6:.1f} MB")

        def raw() -> None:
            bundle = open_bundle(bundle_path, {portal.token})
            for item in bundle.items:
                json.loads(open_bytes(bundle.read_item(item), keys.encryption))

        runs = iter(range(10**6))

        def real() -> None:
            target = root / f"ws-{next(runs)}"
            shutil.copytree(template, target)
            ws = Workspace(target, keys)  # unlocked: the argon2id cost is not the subject
            ws.set_meta("portal_key", str(portal.token))
            result = import_bundle(ws, verify(ws, bundle_path))
            assert result.imported == args.reports
            ws.close()

        best_raw, best_import, ratio = paired(args.repeat, raw, real)
        print(f"raw decrypt loop: {args.reports / best_raw:,.0f} reports/s")
        print(f"reviewer import:  {args.reports / best_import:,.0f} reports/s")
        print(f"ratio (raw time / import time, median of {args.repeat}): {ratio:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
