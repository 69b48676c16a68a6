"""The one exception hierarchy of the incident database.

Every failure the ``incident-db`` command reports is an
:class:`IncidentDbError`; the CLI catches it once and prints
``diagnostics()``. The leaves name the failure class.
"""

from __future__ import annotations


class IncidentDbError(Exception):
    """Base type; ``diagnostics()`` is the one-line message for users."""

    #: short stable name of the failure class
    failure_class = "error"

    def diagnostics(self) -> str:
        """Return a one-line description for a CLI or a log."""
        detail = str(self) or self.failure_class
        return " ".join(detail.split("\n")[0].split()) or self.failure_class


class ConfigError(IncidentDbError):
    """A setting is missing or malformed."""

    failure_class = "config failure"


class RecordError(IncidentDbError):
    """An incident record does not follow cso-incident/v1; the message names the field."""

    failure_class = "record failure"


class IngestError(IncidentDbError):
    """A reviewer batch was refused as a whole; nothing was written."""

    failure_class = "ingest failure"


class FeedError(IncidentDbError):
    """An external feed or its column mapping cannot be read."""

    failure_class = "feed failure"


class SelectionError(IncidentDbError):
    """A brief's place, area or dates are malformed or select nothing usable."""

    failure_class = "selection failure"


class MergeError(IncidentDbError):
    """Two incidents cannot be merged (unknown, the same, or already merged)."""

    failure_class = "merge failure"


class StorageError(IncidentDbError):
    """The database cannot be reached or is not at a schema this code knows."""

    failure_class = "storage failure"
