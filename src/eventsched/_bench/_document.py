"""The JSON document of a run, read back; and the paths a run will write, checked first.

Both checks happen before any measurement: a run of half an hour must not end in a
traceback because its output directory was misspelt, nor a comparison fail on a file
that is not a bench run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

__all__ = ["SCHEMA", "DocumentError", "check_output", "load_document"]

#: Identifies the layout of the JSON output (version 2 files are read too).
SCHEMA: Final = "eventsched-bench/3"
_SCHEMAS: Final = ("eventsched-bench/2", SCHEMA)
#: The keys every report and comparison reads.
_KEYS: Final = ("started", "machine", "config", "backends", "baseline", "metrics", "summary")


class DocumentError(Exception):
    """A path or file cannot be used; the message is the one line to show."""


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_output(flag: str, path: Path) -> None:
    """Refuse an output path that cannot be written, before anything runs.

    :raises DocumentError: naming the flag, the path and what is wrong
    """
    where = path.parent if str(path.parent) else Path(".")
    shown = _cut(str(path))
    if path.is_dir():
        raise DocumentError(f"bad {flag} {shown!r}: is a directory; give a file name")
    if not where.is_dir():
        raise DocumentError(f"bad {flag} {shown!r}: directory {_cut(str(where))} does not exist")
    if not os.access(where, os.W_OK | os.X_OK):
        raise DocumentError(f"bad {flag} {shown!r}: directory {_cut(str(where))} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise DocumentError(f"bad {flag} {shown!r}: the file is not writable")


def load_document(flag: str, path: Path) -> dict[str, Any]:
    """Read a ``--json`` file of an earlier run, checking it is one.

    :raises DocumentError: the file cannot be read or is not a bench run's JSON
    """
    shown = _cut(str(path))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DocumentError(f"bad {flag} {shown!r}: {error.strerror or error}") from None
    except ValueError as error:
        raise DocumentError(f"bad {flag} {shown!r}: not JSON ({_cut(str(error))})") from None
    if not isinstance(document, dict) or document.get("schema") not in _SCHEMAS:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise DocumentError(
            f"bad {flag} {shown!r}: not an eventsched bench --json file "
            f"(schema {found!r}; expected one of {', '.join(_SCHEMAS)})"
        )
    missing = [key for key in _KEYS if key not in document]
    if missing:
        raise DocumentError(
            f"bad {flag} {shown!r}: an eventsched bench file without {', '.join(missing)}"
        )
    return document
