"""``--tracing`` / ``TRACING`` on the real command, as a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_run import APP, eventsched

from eventsched import EXIT_CONFIG, EXIT_OK

pytestmark = pytest.mark.slow

# The application sets up the SDK, as a real one would (or opentelemetry-instrument
# would): its exporter writes each finished span's name to a file the test reads.
TRACED_APP = (
    APP
    + """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class ToFile(SpanExporter):
    def export(self, spans):
        with open(os.environ["SPANS_FILE"], "a") as out:
            out.writelines(f"{span.name}\\n" for span in spans)
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ToFile()))
trace.set_tracer_provider(provider)
"""
)


def test_tracing_traces_the_apps_scheduler(tmp_path: Path) -> None:
    """With TRACING, the application's handler calls and job runs become spans, sent
    to the provider its module set."""
    (tmp_path / "tracedapp.py").write_text(TRACED_APP)
    spans = tmp_path / "spans.txt"
    result = eventsched(
        ["--duration", "1", "run", "tracedapp:scheduler"],
        tmp_path,
        TRACING="true",
        SPANS_FILE=str(spans),
    )
    assert result.returncode == EXIT_OK, result.stderr
    names = spans.read_text().split("\n")
    assert "process ping" in names
    assert "job pinger" in names
    assert "no OpenTelemetry tracer provider" not in result.stderr


def test_tracing_without_a_provider_warns(tmp_path: Path) -> None:
    """--tracing with nobody setting a provider runs, and says the spans go nowhere."""
    result = eventsched(["--tracing", "--duration", "0.5"], tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    assert "TRACING is on but no OpenTelemetry tracer provider is set" in result.stderr


def test_tracing_without_the_extra_is_one_line(tmp_path: Path) -> None:
    """Without opentelemetry-api (shadowed here by a package that cannot be imported):
    exit 2, one line naming the setting and the extra, nothing started."""
    shadow = tmp_path / "shadow" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed (simulated)')\n")
    result = eventsched(["--tracing", "--duration", "0.5"], tmp_path, PYTHONPATH=str(shadow.parent))
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [
        "eventsched: bad setting TRACING (--tracing) = True: needs the otel extra: "
        "pip install 'eventsched[otel]'"
    ]
