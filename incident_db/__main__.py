"""``python -m incident_db`` runs the ``incident-db`` command."""

import sys

from incident_db.cli import main

sys.exit(main())
