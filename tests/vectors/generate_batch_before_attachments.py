"""Write tests/vectors/batch-before-attachments.json: a batch signed before SPEC §16.9.

Run once, with the batch writer as it was at commit 320fc1b (before
attachments): ``python -m tests.vectors.generate_batch_before_attachments
OLD_BATCH_PY``, where OLD_BATCH_PY is ``git show 320fc1b:crypto/batch.py``
saved to a file. The output is kept as data; today's reader must accept it
unchanged, and today's writer must reproduce its bytes.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

from crypto.keys import SigningKeyPair
from tests.unit.incident_db.factories import record

HERE = Path(__file__).parent


def main(old_writer: str) -> None:
    """Sign one record with the old writer and save the vector."""
    spec = importlib.util.spec_from_file_location("old_batch", old_writer)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{old_writer}: not a Python module")
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_batch"] = old  # dataclasses look their module up
    spec.loader.exec_module(old)
    signer = SigningKeyPair.from_seed(bytes(range(32)))
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    data = old.sign_batch([record(7)], signer, batch_id="b" * 32, created_at=created)
    vector = {
        "schema": "cso-test-vectors/batch-before-attachments/v1",
        "source": "crypto/batch.py at commit 320fc1b (before SPEC §16.9), by this script",
        "rationale": "a batch signed before attachments existed must stay valid, byte for byte",
        "signer_seed_hex": bytes(range(32)).hex(),
        "created_at": "2026-01-02T03:04:05Z",
        "cases": [{"batch": data.decode("utf-8"), "record": record(7), "expect": "success"}],
    }
    out = HERE / "batch-before-attachments.json"
    out.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
