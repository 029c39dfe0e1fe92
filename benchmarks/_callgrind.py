"""Shared by the benchmarks that count instructions (count_hot_path.py,
count_add_job.py): one run of a script under callgrind, its total."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile


def instructions(src: str, script: str, *args: str) -> int:
    """Instructions callgrind counts for ``python script args...`` on the eventsched in
    ``src``; ``PYTHONHASHSEED=0`` keeps dict and string hashing alike in every run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/callgrind.out",
                sys.executable,
                script,
                *args,
            ],
            env=dict(os.environ, PYTHONPATH=src, PYTHONHASHSEED="0"),
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"no callgrind total in:\n{out.stderr[-2000:]}")
    return int(found.group(1))
