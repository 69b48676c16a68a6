"""Baselines for bench/intake_throughput.py: bare Flask endpoints storing bytes.

`bare` writes the uploaded part to a file and fsyncs it, as durably as the
portal stores a blob. `bare_argon2` also computes one argon2id hash with the
portal's parameters, to separate that fixed cost from the portal's own work.
`bare_stream` (for bench/upload_memory.py) copies the part to its file in
1 MiB pieces instead of reading it whole: Flask's own way of taking a large
upload with bounded memory.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from flask import Flask, request

from portal.storage.receipts import receipt_index

STORE = Path(os.environ.get("BARE_STORE", "/tmp/bare-store"))
STORE.mkdir(parents=True, exist_ok=True)


def _make(hashing: bool, streaming: bool = False) -> Flask:
    app = Flask(__name__)

    @app.post("/submit")
    def submit() -> tuple[str, int]:
        upload = request.files["report"]
        path = STORE / secrets.token_hex(16)
        with path.open("wb") as handle:
            if streaming:
                shutil.copyfileobj(upload.stream, handle, 1024 * 1024)
            else:
                handle.write(upload.read())
            handle.flush()
            os.fsync(handle.fileno())
        if hashing:
            receipt_index("0042", secrets.token_bytes(32))
        return "stored", 200

    @app.get("/")
    def page() -> str:
        return "ok"

    return app


bare = _make(hashing=False)
bare_argon2 = _make(hashing=True)
bare_stream = _make(hashing=False, streaming=True)
