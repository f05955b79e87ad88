"""``python -m edge_inference``: see ``edge_inference.cli``."""

import sys

from edge_inference.cli import main

if __name__ == "__main__":
    sys.exit(main())
