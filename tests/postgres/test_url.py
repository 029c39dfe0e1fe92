"""STATE_URL for PostgreSQL: parsed, checked, and never shown with its password."""

from __future__ import annotations

import pytest

from eventsched import JobStateError
from eventsched._postgres import parse_state_url, redact


def test_schema_parameter_is_ours_and_the_rest_goes_to_libpq() -> None:
    """?schema= picks the schema and is removed; other parameters stay."""
    target = parse_state_url("postgresql://u@h:5433/db?schema=tenant_1&sslmode=disable")
    assert target.schema == "tenant_1"
    assert target.conninfo == "postgresql://u@h:5433/db?sslmode=disable"
    assert parse_state_url("postgres://h/db").schema == "eventsched"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://h/db", "expected a postgresql://"),
        ("postgresql://h:99999/db", "not a valid URL"),
        ("postgresql://h/db?schema=Robert'); DROP", "must be a lower-case identifier"),
        ("postgresql://h/db\0", "NUL"),
    ],
)
def test_bad_urls_are_one_line(url: str, why: str) -> None:
    """Each bad URL is one line naming the setting and what is allowed."""
    with pytest.raises(JobStateError, match=why) as caught:
        parse_state_url(url)
    assert "\n" not in str(caught.value)


def test_passwords_never_show() -> None:
    """In the netloc or as a query parameter, the password is replaced by ***."""
    url = "postgresql://admin:hunter2@db:5432/app?password=hunter3&schema=x"
    target = parse_state_url(url)
    for shown in (str(target), repr(target), redact(url)):
        assert "hunter" not in shown
        assert "admin:***@db:5432" in shown
    with pytest.raises(JobStateError) as caught:
        parse_state_url("mysql://admin:hunter2@db/app")
    assert "hunter2" not in str(caught.value)
