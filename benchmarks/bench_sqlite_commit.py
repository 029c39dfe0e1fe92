"""What a pass's claims cost SQLite, by where their rows lie: together or scattered.

A table of 10,000 rows shaped as the state file's; transactions of 400 ``UPDATE``s by
rowid (a pass's claims at 10,000 runs a second), each row's five changing columns as a
claim writes them. The rows of a transaction are consecutive (``together``: jobs added
in order of fire time), or drawn from the whole table (``scattered``: any other order).
CPU microseconds a row, for the statements and for the commit apart, with the state
file's pragmas (write-ahead log, ``synchronous=NORMAL``), and variants of them.

    uv run python benchmarks/bench_sqlite_commit.py
    uv run python benchmarks/bench_sqlite_commit.py --variants scattered,scattered+ps1024
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time

ROWS, PER_COMMIT = 10_000, 400
AT = "2026-12-04T10:00:01.123456+00:00"
UPDATE = (
    "UPDATE jobs SET last_fire_time = ?, next_fire_time = ?, running = ?, last_outcome = ?,"
    " updated_at = ? WHERE rowid = ? AND job_id = ?"
)


def measure(variant: str, commits: int) -> tuple[float, float]:
    """CPU microseconds a row: the statements, the commit."""
    parts = set(variant.split("+"))
    with tempfile.TemporaryDirectory() as directory:
        conn = sqlite3.connect(os.path.join(directory, "jobs.sqlite"))
        for part in parts:
            if part.startswith("ps"):  # a page size other than 4096
                conn.execute(f"PRAGMA page_size={int(part[2:])}")
        conn.execute(
            "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
            " last_fire_time TEXT, next_fire_time TEXT, running TEXT, paused INTEGER,"
            " last_outcome TEXT, updated_at TEXT NOT NULL)"
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if "nocheckpoint" in parts:  # the log grows: no checkpoint within the run
            conn.execute("PRAGMA wal_autocheckpoint=1000000")
        if "exclusive" in parts:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        with conn:
            conn.executemany(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, NULL, 0, NULL, ?)",
                [(f"bench-{i}", "f" * 64, AT, AT, AT) for i in range(ROWS)],
            )
        rowids = list(range(1, ROWS + 1))
        if "scattered" in parts:
            random.Random(1).shuffle(rowids)
        statements = commit = 0.0
        for n in range(commits):
            start = n * PER_COMMIT % ROWS
            following = f"2026-12-04T10:00:0{n % 10}.123456+00:00"
            rows = [
                (AT, following, f'["{AT}"]', "completed", AT, rowid, f"bench-{rowid - 1}")
                for rowid in rowids[start : start + PER_COMMIT]
            ]
            began = time.process_time()
            conn.execute("BEGIN")
            conn.executemany(UPDATE, rows)
            middle = time.process_time()
            conn.commit()
            statements += middle - began
            commit += time.process_time() - middle
        conn.close()
    count = commits * PER_COMMIT
    return statements / count * 1e6, commit / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="together,scattered,together,scattered")
    parser.add_argument("--commits", type=int, default=250)
    args = parser.parse_args()
    print(f"{ROWS:,} rows, {PER_COMMIT} updates a commit, {time.strftime('%H:%M:%S')} UTC")
    for variant in args.variants.split(","):
        statements, commit = measure(variant, args.commits)
        print(f"{variant:<28} statements {statements:5.2f} us/row  commit {commit:5.2f} us/row")


if __name__ == "__main__":
    main()
