"""Two reviewers' workstations and the operator around one real portal, for
tests/integration/test_team_converge.py.

Everything goes through the commands a reviewer and an operator type
(``reviewer …``, ``portal …``, run in this process so that a run stays short);
the workspace is opened directly only to read what the commands wrote (each
report's team state, the team log) and to make edits through
reviewer_tool/team/actions.py, the functions the CLI and the desk share.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from crypto.bundle import BundleWriter, open_bundle
from crypto.keyfile import read_public_tokens
from portal.cli.main import main as portal_main
from portal.storage.inbox import load_signing_key
from portal.storage.models import TeamUpdate
from reviewer_tool.cli import main as reviewer_main
from reviewer_tool.team import actions, exchange, log, wire
from reviewer_tool.workspace import Workspace
from tests.conftest import DemoPortal

#: what a change to one team item of an inbox bundle returns: new bytes, or None to keep it
ItemChange = Callable[[dict[str, Any], bytes], bytes | None]


def _captured(run: Callable[[], int]) -> tuple[int, str, str]:
    """Run a command's ``main`` in this process; return its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run()
    return code, out.getvalue(), err.getvalue()


class Station:
    """One reviewer's offline workstation (and its transfer machine's sync login)."""

    def __init__(self, demo: DemoPortal, root: Path, label: str) -> None:
        self.demo = demo
        self.label = label
        self.root = root
        self.key_file = demo.data_dir / "demo" / f"{label}.key"
        self.sync_key = demo.data_dir / "demo" / f"{label}-sync.key"
        self.passphrase = demo.data_dir / "demo" / "passphrase"
        self.folder = root.parent / f"{label}-media"  # the removable medium
        self.folder.mkdir(exist_ok=True)
        self.portal_url = ""
        self._ws: Workspace | None = None
        self._count = 0

    # --- commands ---------------------------------------------------------------------

    def cli(self, *args: str | Path, code: int = 0) -> str:
        """``reviewer ARGS --workspace … --passphrase-file …``; stdout (stderr on failure)."""
        argv = [str(a) for a in args] + [
            "--workspace", str(self.root), "--passphrase-file", str(self.passphrase),
        ]  # fmt: skip
        result, out, err = _captured(lambda: reviewer_main(argv))
        assert result == code, f"reviewer {' '.join(argv[:2])} gave {result}: {err or out}"
        return out if code == 0 else err

    def setup(self, portal_key: str, organisation_key: str) -> None:
        """``reviewer init`` around the demo key, then pin the portal and the organisation."""
        self.cli("init", "--key", self.key_file)
        self.cli("trust-portal", portal_key)
        self.cli("trust-org", organisation_key)

    def _medium(self, stem: str) -> Path:
        self._count += 1
        return self.folder / f"{self._count:02d}-{stem}.bundle"

    def sync(self, action: str, *args: str | Path, code: int = 0) -> str:
        """``reviewer sync pull|push`` on the transfer machine, as this reviewer's account."""
        return self.cli("sync", action, "--portal", self.portal_url, "--account", self.label,
                        "--sync-key", self.sync_key, *args, code=code)  # fmt: skip

    def pull_and_import(self) -> str:
        """Fetch an inbox bundle over the sync API and import it; the import's output."""
        path = self._medium("inbox")
        self.sync("pull", "--out", path)
        return self.cli("import", path)

    def export_replies(self) -> tuple[Path, str]:
        """``reviewer export-replies``: the bundle and what the command said."""
        path = self._medium("replies")
        return path, self.cli("export-replies", "--out", path)

    def export_and_push(self) -> str:
        """Write the replies bundle and deliver it over the sync API; export's output."""
        path, said = self.export_replies()
        self.sync("push", path)
        return said

    def listing(self) -> list[dict[str, Any]]:
        """``reviewer list --json``."""
        return list(json.loads(self.cli("list", "--json")))

    def team_status(self) -> dict[str, Any]:
        """``reviewer team --json``."""
        return dict(json.loads(self.cli("team", "--json")))

    def history(self, report: str) -> list[dict[str, Any]]:
        """``reviewer history ID --json``."""
        return list(json.loads(self.cli("history", report, "--json")))

    # --- the workspace, read directly -------------------------------------------------

    @property
    def ws(self) -> Workspace:
        """The workspace, opened once (unlocking it is the slow part of every command)."""
        if self._ws is None:
            self._ws = Workspace.open(self.root, self.passphrase.read_bytes().strip())
        return self._ws

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def team(self, report: str) -> dict[str, Any]:
        """The report's folded team state as stored in its record ({} before any update)."""
        item = self.ws.report(report)
        assert item is not None, f"report {report[:12]} is not in {self.label}'s workspace"
        return dict(item.record.get("team") or {})

    def snapshot(self, reports: list[str]) -> dict[str, Any]:
        """What two converged workstations must show alike: the queue, and per report its
        team state and history."""
        return {
            "list": self.listing(),
            "team": {report: self.team(report) for report in reports},
            "history": {report: actions.history(self.ws, report) for report in reports},
        }

    def own(self, report: str, field: str) -> list[wire.Update]:
        """This workstation's own accepted updates about ``report`` of kind ``field``."""
        mine = str(self.ws.keys.signing.token)
        return [u for u in log.accepted(self.ws, report) if u.field == field and u.author == mine]

    def mark(self) -> int:
        """The contiguous team mark this workstation acknowledges (crypto/SPEC.md §17.11)."""
        return exchange.team_mark(self.ws)

    def public_tokens(self) -> dict[str, str]:
        """The key file's public tokens (encryption, signing), read without the passphrase."""
        return read_public_tokens(self.key_file.read_bytes())


class Operator:
    """The portal operator's commands over the demo data directory."""

    def __init__(self, demo: DemoPortal) -> None:
        self.demo = demo
        self.data_dir = demo.data_dir
        self.org = ["--org-key", str(self.data_dir / "demo" / "organisation.key"),
                    "--passphrase-file", str(self.data_dir / "demo" / "passphrase")]  # fmt: skip

    def run(self, *args: str | Path, code: int = 0) -> str:
        """``portal --data-dir … ARGS`` (DATABASE_URL comes from the environment)."""
        argv = ["--data-dir", str(self.data_dir), *map(str, args)]
        result, out, err = _captured(lambda: portal_main(argv))
        assert result == code, f"portal {' '.join(argv[2:4])} gave {result}: {err or out}"
        return out if code == 0 else err

    def enrol(self, station: Station) -> None:
        """``portal accounts add`` with the demo sync key and the workstation's signing key."""
        sync_key = read_public_tokens(station.sync_key.read_bytes())["signing"]
        self.run("accounts", "add", station.label, "--sync-key", sync_key,
                 "--signing-key", station.public_tokens()["signing"])  # fmt: skip

    def team_seq(self) -> int:
        """The newest team cursor value the portal has handed out (0 when none)."""
        engine = create_engine(self.demo.database_url)
        try:
            with engine.connect() as connection:
                return int(connection.scalar(select(func.max(TeamUpdate.seq))) or 0)
        finally:
            engine.dispose()

    def team_rows(self) -> list[tuple[str, bytes]]:
        """Every relayed team update as the portal holds it: (update id, bytes)."""
        engine = create_engine(self.demo.database_url)
        try:
            with engine.connect() as connection:
                query = select(TeamUpdate.update_id, TeamUpdate.data).order_by(TeamUpdate.seq)
                return [(row[0], bytes(row[1])) for row in connection.execute(query)]
        finally:
            engine.dispose()

    def inject(self, update_id: str, data: bytes) -> None:
        """Put an update straight into the relay table, as anyone writing to the portal could."""
        engine = create_engine(self.demo.database_url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    TeamUpdate.__table__.insert().values(
                        update_id=update_id, data=data, size=len(data),
                        received_on=datetime.now(UTC).date(), account_id=None,
                    )
                )  # fmt: skip
        finally:
            engine.dispose()

    def export(self, out: Path, since: int, team_since: int) -> str:
        """``portal export --since S --team-since T --out OUT``."""
        return self.run("export", "--out", out, "--since", str(since),
                        "--team-since", str(team_since))  # fmt: skip


def rewrite_inbox(demo: DemoPortal, source: Path, out: Path, change: ItemChange) -> Path:
    """The inbox bundle ``source`` with some team items changed, signed again by the portal.

    Only the changed updates' own envelopes or signatures are then wrong: the
    bundle as a whole verifies, as one from a compromised portal would.
    """
    signer = load_signing_key(demo.data_dir)
    bundle = open_bundle(source, {signer.token})
    with out.open("wb") as handle:
        writer = BundleWriter(handle, signer, "inbox", dict(bundle.fields))
        for item in bundle.items:
            meta, data = dict(item.meta), bundle.read_item(item)
            changed = change(meta, data) if meta.get("type") == "team-update" else None
            writer.add(meta, data if changed is None else changed)
        writer.finish()
    return out


def replies_with(station: Station, items: list[tuple[str, bytes]], out: Path) -> Path:
    """A replies bundle signed by ``station``'s key carrying ``items`` (id, envelope) as team
    updates: what a client that ignores §17.5 would send."""
    with out.open("wb") as handle:
        writer = BundleWriter(handle, station.ws.keys.signing, "replies", {"acknowledges": []})
        for update_id, envelope in items:
            writer.add({"type": "team-update", "update_id": update_id}, envelope)
        writer.finish()
    return out


def files_holding(root: Path, needle: bytes) -> Iterator[Path]:
    """Every regular file under ``root`` whose bytes contain ``needle``."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            yield path


def canary() -> str:
    """A string that appears nowhere unless a test put it there."""
    return f"canary-{secrets.token_hex(8)}"
