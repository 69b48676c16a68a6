"""Entry point for ``python -m portal``."""

import sys

from portal.cli.main import main

sys.exit(main())
