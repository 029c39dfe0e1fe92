"""``python -m eventsched``: see ``_cli.py`` for the command line, ``_demo.py`` for the demo."""

from __future__ import annotations

import sys


def main() -> int:
    """Entry point of ``python -m eventsched`` and of the ``eventsched`` script."""
    if sys.argv[1:] in (["--help"], ["-h"]):
        # Fast path: the text pydantic-settings renders, cached (see _help.py).
        from ._help import HELP

        sys.stdout.write(HELP)
        return 0
    from ._cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
