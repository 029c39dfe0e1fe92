"""The ``bench`` subcommand's flags, and ``bench report``'s: pydantic models that
pydantic-settings parses.

Only parsing, checks and reporting live here; the work is in :mod:`._runner`. Every
path is checked before anything runs (exit 2, one line).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, PrivateAttr
from pydantic_settings import CliImplicitFlag, CliPositionalArg, CliSubCommand, get_subcommand

from .._exit import EXIT_CONFIG as EXIT_USAGE
from .._exit import EXIT_ERROR as EXIT_FAILED
from .._exit import EXIT_OK
from ._config import BACKENDS, QUICK, WORKLOADS, BenchConfig
from ._document import DocumentError, check_output, load_document

if TYPE_CHECKING:
    from ..cli._settings import Settings

__all__ = ["Bench", "Report"]


def _processes(workload: str) -> Any:
    """The flag of a workload whose tails need several processes per repetition."""
    return Field(
        None,
        gt=0,
        le=100,
        description=f"{workload}: processes per backend and repetition; its tails need "
        "the pairs [5; quick: 1]",
    )


def _fail(error: str) -> int:
    print(f"eventsched bench: {error}", file=sys.stderr, flush=True)
    return EXIT_USAGE


class Report(BaseModel):
    """Redraw the table (and chart) of a saved run, or compare two: bench report A.json [B.json]."""

    files: CliPositionalArg[list[Path]] = Field(
        description="one --json file: its report; two: what changed from the first to the second"
    )
    plot: Path | None = Field(
        None, description="draw the (last) run's chart into this PNG (needs eventsched[plot])"
    )

    def run(self, settings: Settings) -> int:
        """Print the report or the comparison; exit 2 on a bad file or path."""
        if len(self.files) > 2:
            return _fail(
                f"bad bench report files {' '.join(map(str, self.files))!r}: give one or two"
            )
        try:
            documents = [load_document("bench report file", path) for path in self.files]
            if self.plot is not None:
                _check_plot(self.plot)
        except DocumentError as error:
            return _fail(str(error))
        from ._compare import compare_runs
        from ._report import format_report

        if len(documents) == 1:
            print(format_report(documents[0]), flush=True)
        else:
            print(compare_runs(documents[0], documents[1]).text, flush=True)
        if self.plot is not None:
            from ._plot import plot

            plot(documents[-1], self.plot)
            print(f"chart written to {self.plot}", flush=True)
        return EXIT_OK


def _check_plot(path: Path) -> None:
    from ._plot import plot_available

    if not plot_available():
        raise DocumentError(
            "--plot needs matplotlib, which is not installed: "
            "pip install 'eventsched[plot]' (or uv sync --extra plot)"
        )
    check_output("--plot", path)


class Bench(BaseModel):
    """Compare asyncio, uvloop and trio on the same workloads, beside reference pipelines."""

    quick: CliImplicitFlag[bool] = Field(
        False, description="a short run (under 30 s): 1 repetition, small sizes"
    )
    backends: str = Field(
        ",".join(BACKENDS), description="backends to compare, comma-separated, asyncio first"
    )
    workloads: str = Field(",".join(WORKLOADS), description="workloads to run, comma-separated")
    reps: int | None = Field(
        None, gt=0, le=100, description="repetitions per backend [5; quick: 1]"
    )
    trials: int | None = Field(
        None,
        gt=0,
        le=100,
        description="interleaved trials per repetition: throughput, latency, emit rates "
        "and costs keep the best, timers pool their fire times [5; quick: 1]",
    )
    events: int | None = Field(
        None, gt=0, description="throughput: events per row [200000; quick: 20000]"
    )
    queue_size: int | None = Field(
        None, gt=0, description="throughput and latency: queue capacity [1000]"
    )
    latency_events: int | None = Field(
        None, gt=0, description="latency: events per row [20000; quick: 1000]"
    )
    latency_processes: int | None = _processes("latency")
    rate: float | None = Field(None, gt=0, description="latency: events emitted per second [10000]")
    overflow_events: int | None = Field(
        None, gt=0, description="overflow: emits per policy [50000; quick: 5000]"
    )
    timer_runs: int | None = Field(
        None, gt=0, description="timers: fire times per row and process [1000; quick: 30]"
    )
    timer_processes: int | None = _processes("timers")
    timer_interval: float | None = Field(
        None, gt=0, description="timers: seconds between fire times [0.0051]"
    )
    shutdown_events: int | None = Field(
        None, gt=0, description="shutdown: events queued at SIGTERM [1000; quick: 200]"
    )
    memory_events: int | None = Field(
        None, gt=0, description="memory: events buffered [100000; quick: 50000]"
    )
    apps_events: int | None = Field(
        None, gt=0, description="apps: events per row [20000; quick: 2000]"
    )
    io_concurrency: int | None = Field(
        None, gt=0, le=100_000, description="apps: I/O handlers in flight [200]"
    )
    jobs: int | None = Field(
        None,
        gt=0,
        le=1_000_000,
        description="jobs: interval jobs of the larger row, the smaller has a tenth "
        "[10000; quick: 1000]",
    )
    job_interval: float | None = Field(
        None, gt=0, description="jobs: seconds between a job's fire times [2; quick: 0.5]"
    )
    job_seconds: float | None = Field(
        None, gt=0, description="jobs: seconds measured per row [4; quick: 1]"
    )
    job_gc_freeze: CliImplicitFlag[bool] = Field(
        False,
        description="jobs: gc.freeze() once the jobs are added, in every row alike: "
        "lateness without the collector's full-collection pauses [off]",
    )
    json_file: Path | None = Field(
        None, alias="json", description="write every sample and the machine description here"
    )
    plot: Path | None = Field(
        None, description="draw the comparison into this PNG (needs eventsched[plot])"
    )
    compare: Path | None = Field(
        None,
        description="a --json file of an earlier run: what changed, better or worse "
        "(also: bench report A.json B.json)",
    )
    report: CliSubCommand[Report] = Field(
        description="redraw or compare saved runs: bench report A.json [B.json]"
    )

    _earlier: dict[str, Any] | None = PrivateAttr(None)

    def config(self) -> BenchConfig:
        """The run's sizes: ``--quick`` or the defaults, with the flags given on top."""
        base = QUICK if self.quick else BenchConfig()
        given: dict[str, Any] = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(BenchConfig)
            if field.name in type(self).model_fields
            and field.name != "workloads"
            and getattr(self, field.name) is not None
        }
        workloads = tuple(w.strip() for w in self.workloads.split(",") if w.strip())
        return dataclasses.replace(base, **given, workloads=workloads)

    def _usage_error(self) -> str | None:
        backends = [b.strip() for b in self.backends.split(",") if b.strip()]
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown or not backends:
            return f"bad --backends {self.backends!r}: choose from {', '.join(BACKENDS)}"
        workloads = [w.strip() for w in self.workloads.split(",") if w.strip()]
        unknown = [w for w in workloads if w not in WORKLOADS]
        if unknown or not workloads:
            return f"bad --workloads {self.workloads!r}: choose from {', '.join(WORKLOADS)}"
        try:
            if self.plot is not None:
                _check_plot(self.plot)
            if self.json_file is not None:
                check_output("--json", self.json_file)
            if self.compare is not None:
                self._earlier = load_document("--compare", self.compare)
        except DocumentError as error:
            return str(error)
        return None

    def run(self, settings: Settings) -> int:
        """Run the benchmark and report; the exit code (2: bad flags, 1: a run failed)."""
        command = get_subcommand(self, is_required=False)
        if isinstance(command, Report):
            return command.run(settings)
        error = self._usage_error()
        if error is not None:
            return _fail(error)
        from ._compare import compare_runs
        from ._report import format_report
        from ._runner import BenchError, run_bench

        backends = [b.strip() for b in self.backends.split(",") if b.strip()]
        try:
            document = run_bench(self.config(), backends)
        except BenchError as failure:
            print(f"eventsched bench: {failure}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        print(format_report(document), flush=True)
        if self.json_file is not None:
            self.json_file.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
            print(f"samples written to {self.json_file}", flush=True)
        if self.plot is not None:
            from ._plot import plot

            plot(document, self.plot)
            print(f"chart written to {self.plot}", flush=True)
        if self._earlier is not None:
            print(compare_runs(self._earlier, document).text, flush=True)
        return EXIT_OK
