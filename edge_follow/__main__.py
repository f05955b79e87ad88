"""``python -m edge_follow``."""

import sys

from edge_follow.cli import main

sys.exit(main())
