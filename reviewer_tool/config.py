"""Where the reviewer tool finds things: the one place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReviewerConfig:
    """Defaults for options the reviewer did not give."""

    workspace: Path


def load_config(environ: Mapping[str, str] | None = None) -> ReviewerConfig:
    """``CSO_REVIEWER_WORKSPACE``, else ``$XDG_DATA_HOME/cso-reviewer``, else ``~/.local/share``."""
    env = os.environ if environ is None else environ
    if env.get("CSO_REVIEWER_WORKSPACE"):
        return ReviewerConfig(Path(env["CSO_REVIEWER_WORKSPACE"]))
    base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return ReviewerConfig(base / "cso-reviewer")
