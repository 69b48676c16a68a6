"""Planting the runtime store where another local user controls it (finding 5, review).

The runtime store (``portal/storage/runtime.py``) holds the proof-of-work and budget
state. Without ``XDG_RUNTIME_DIR`` or ``PORTAL_RUNTIME_DIR`` its directory
has a predictable name in ``/dev/shm``, which every local user can write
to. Whoever plants a symlink or a directory there, or points the portal at a
directory under one they can write to, could read, replace or delete the
store, so the portal must refuse to start rather than follow them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.config import ConfigError, load_config
from portal.storage.runtime import RuntimeStore
from portal.web.app import create_app
from tests.conftest import DemoPortal

NOBODY = 65534
#: the settings that choose another runtime directory than the /dev/shm default
CHOOSERS = ("PORTAL_RUNTIME_DIR", "RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR")


@pytest.fixture
def default_path(demo: DemoPortal) -> Iterator[tuple[dict[str, str], Path]]:
    """The demo portal's settings without a chosen runtime directory, and its default one."""
    environ = {k: v for k, v in demo.environ(PORTAL_TESTING="1").items() if k not in CHOOSERS}
    path = load_config(environ, data_dir=demo.data_dir).runtime_dir
    assert path.parent == Path("/dev/shm")  # the predictable default under test
    yield environ, path
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


def _start(environ: dict[str, str], data_dir: Path) -> None:
    """Start the intake and answer one request that needs the runtime store."""
    app = create_app(load_config(environ, data_dir=data_dir))
    try:
        app.test_client().get("/pow?for=submit")  # the store opens on first use at the latest
    finally:
        app.extensions["portal"]["engine"].dispose()


def _use(directory: Path) -> None:
    store = RuntimeStore(directory)
    try:
        _ = store.sessions
    finally:
        store.dispose()


def test_planting_a_symlink_at_the_default_runtime_path_stops_the_portal(
    demo: DemoPortal, default_path: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    environ, path = default_path
    planted = tmp_path / "attacker"
    planted.mkdir()
    planted.chmod(0o777)
    path.symlink_to(planted / "store")
    with pytest.raises(ConfigError, match="symbolic link"):
        _start(environ, demo.data_dir)
    assert not (planted / "store").exists(), "the store was made where the planter controls it"


def test_planting_a_directory_at_the_default_runtime_path_stops_the_portal(
    demo: DemoPortal, default_path: tuple[dict[str, str], Path]
) -> None:
    environ, path = default_path
    path.mkdir(mode=0o700)
    os.chown(path, NOBODY, NOBODY)  # as another user would have made it
    with pytest.raises(ConfigError, match="belong to this user"):
        _start(environ, demo.data_dir)


def test_a_runtime_directory_under_one_others_can_write_to_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone may rename our directory away and put theirs in its place
    with pytest.raises(ConfigError, match="others can write"):
        _use(shared / "runtime")
    assert not (shared / "runtime").exists()


def test_a_runtime_directory_under_another_users_directory_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="belong to this user or root"):
        _use(theirs / "runtime")


def test_a_runtime_directory_under_a_sticky_shared_directory_is_accepted(tmp_path: Path) -> None:
    sticky = tmp_path / "shm"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /dev/shm and /tmp: others cannot move what is ours
    _use(sticky / "runtime")
    assert (sticky / "runtime").lstat().st_mode & 0o777 == 0o700


def test_a_runtime_directory_whose_parent_is_missing_is_not_made_with_parents(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        _use(tmp_path / "missing" / "runtime")
    assert not (tmp_path / "missing").exists()
