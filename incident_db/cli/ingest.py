"""``incident-db ingest BATCH --trusted FILE [--attachments DIR]``: add a signed reviewer batch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crypto.batch import read_trusted_reviewers
from crypto.errors import BatchError
from incident_db.config import Config
from incident_db.corroboration import Window
from incident_db.db import open_database
from incident_db.errors import IngestError
from incident_db.ingest import ingest_batch


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``ingest`` subcommand."""
    parser = commands.add_parser(
        "ingest",
        parents=[common],
        help="verify and add a signed reviewer batch (all or nothing)",
        description="Verify a cso-incident-batch/v1 file against the trusted reviewers' "
        "keys and add its incidents. The same batch twice changes nothing; any fault "
        "refuses the whole batch and names its line.",
    )
    parser.add_argument("batch", type=Path, help="the signed batch (.jsonl)")
    parser.add_argument(
        "--trusted",
        type=Path,
        required=True,
        metavar="FILE",
        help="the reviewers' signing keys, one csosig1… token per line",
    )
    parser.add_argument(
        "--attachments",
        type=Path,
        metavar="DIR",
        help="the directory of files the batch lists, each named by its SHA-256 "
        "(what `reviewer forward --attachments-dir` wrote)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    """Ingest one batch and say what happened."""
    try:
        trusted = read_trusted_reviewers(args.trusted.read_text(encoding="utf-8"))
    except BatchError as error:
        raise IngestError(f"{args.trusted}: {error.diagnostics()}") from None
    except UnicodeDecodeError:
        raise IngestError(f"{args.trusted}: not UTF-8 text") from None
    data = args.batch.read_bytes()
    engine = open_database(config.database_url)
    try:
        report = ingest_batch(engine, data, trusted, window=Window(config.link_hours,
                                                                   config.link_nm),
                              attachments=args.attachments)  # fmt: skip
    finally:
        engine.dispose()
    if report.batch_seen_before:
        print(f"batch {report.batch_id} was already ingested: nothing changed")
        return 0
    print(
        f"batch {report.batch_id}: {report.records} records signed by "
        f"{report.signer_fingerprint}; {report.added} added, {report.already_present} already "
        f"present; {report.links_found} possible duplicates linked"
        + (f"; {report.attachments_added} attachment(s) stored" if report.attachments_added else "")
    )
    return 0
