"""Members of the intelligence service: roles, invitations, passkeys, sessions, audit.

``models`` holds the tables (migration 0002); ``store`` is the one way to
change them. Importing the package registers the tables on
``incident_db.models.Base``.
"""

from __future__ import annotations

from incident_db.members import models as models
