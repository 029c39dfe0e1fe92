"""``python -m eventsched``, held in its first imports (not a test module).

    python tests/programs/early_signal.py --backend trio

Runs the command line as ``python -m eventsched`` does, but stops when the package
first imports anyio: it prints IMPORTING on stdout and waits for a line on stdin, so
that a test can send a signal while the package is still importing.
"""

from __future__ import annotations

import importlib.abc
import runpy
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class HoldAnyio(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "anyio":
            sys.meta_path.remove(self)
            print("IMPORTING", flush=True)
            sys.stdin.readline()
        return None  # let the real finders import it


sys.meta_path.insert(0, HoldAnyio())
sys.argv[0] = "eventsched"  # what the console script sees
runpy.run_module("eventsched", run_name="__main__", alter_sys=True)
