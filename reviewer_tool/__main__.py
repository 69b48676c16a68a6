"""``python -m reviewer_tool``: the reviewer command."""

import sys

from reviewer_tool.cli import main

sys.exit(main())
