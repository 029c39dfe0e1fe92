"""``python -m eventsched``: the command line lives in the ``eventsched.cli`` package."""

from __future__ import annotations

import sys

from eventsched.cli import main

if __name__ == "__main__":
    sys.exit(main())
