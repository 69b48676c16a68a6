"""The reviewer tool's one exception type, shown once at the CLI as one line."""

from __future__ import annotations


class ReviewerError(Exception):
    """A problem the reviewer can act on; the message never holds report plaintext."""

    def diagnostics(self) -> str:
        """The one-line message for the terminal."""
        return (str(self) or "error").splitlines()[0]
