"""Attack replays: one file per attack class, one test per attack (issue 12)."""
