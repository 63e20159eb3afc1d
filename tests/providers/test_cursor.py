"""Cursor's Admin API connector against its fake (tests/fakes/cursor_server.py): basic auth,
POSTed queries in 30-day windows, pages, money from cents, 429 with Retry-After, errors, and a
rolling history that a sync never prunes (the sync itself: tests/ingest/test_cursor_history.py)."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.fakes.cursor_server import CURSOR_KEY, CursorServer
from tests.fakes.provider_server import Reply
from tracker.core.crypto import Secret
from tracker.providers.base import (
    ProviderAuthError,
    ProviderPermissionError,
    ProviderRateLimited,
    ProviderResponseError,
)
from tracker.providers.cursor import CursorConnector

EVENTS = "/teams/filtered-usage-events"
DAILY = "/teams/daily-usage-data"
JUL30, JUL31, AUG1, AUG2, AUG3, AUG4 = (
    dt.date(2026, 7, 30),
    dt.date(2026, 7, 31),
    dt.date(2026, 8, 1),
    dt.date(2026, 8, 2),
    dt.date(2026, 8, 3),
    dt.date(2026, 8, 4),
)
ALEX, SAM = "developer@company.com", "admin@company.com"


@pytest.fixture
def cursor_server() -> Iterator[CursorServer]:
    with CursorServer() as fake:
        yield fake


def cursor(server: CursorServer, http, key: str = CURSOR_KEY) -> CursorConnector:
    return CursorConnector(credential=Secret(key), http=http, base_url=server.url)


def test_events_become_rows_with_their_charged_cost(cursor_server, http):
    connector = cursor(cursor_server, http)
    rows = list(connector.fetch_usage(JUL30, AUG4))
    assert len(rows) == 9  # every event, across pages of 2
    assert cursor_server.count(EVENTS) == 5 and set(cursor_server.event_page_sizes) == {500}
    opus = [r for r in rows if r.day == JUL30 and r.model == "claude-4-opus"]
    assert {(r.user_id, r.user_name, r.usage_type) for r in opus} == {(ALEX, "Alex", "usage_based")}
    # totalCents (cents, exact) of the two token-based calls, in dollars.
    assert sum(r.billed_cost for r in opus) == Decimal("0.6034931999999999")
    first = opus[0]
    assert (first.input_tokens, first.output_tokens) == (126, 450)
    assert (first.cache_write_tokens, first.cached_input_tokens, first.requests) == (6112, 11964, 1)
    by_kind = {(r.day, r.model, r.usage_type): r for r in rows}
    # chargedCents, where the event has it, is what counts (model cost plus Cursor's fee).
    assert by_kind[(AUG1, "claude-4-opus", "usage_based")].billed_cost == Decimal("0.0988")
    # Included in the seats, or not charged: $0, never estimated.
    included = by_kind[(JUL30, "claude-4-sonnet-thinking", "included_in_business")]
    assert included.billed_cost == 0 and included.input_tokens == 0
    assert by_kind[(AUG3, "claude-4-sonnet", "errored_not_charged")].billed_cost == 0
    assert sum(r.billed_cost for r in rows) == Decimal("0.7826431999999999")
    # Every day of the range is held and has events from Jul 30 on: all covered.
    assert connector.covered_days(JUL30, AUG3) == {JUL30, JUL31, AUG1, AUG2, AUG3}


def test_queries_are_posted_with_basic_auth_in_30_day_windows(cursor_server, http):
    list(cursor(cursor_server, http).fetch_usage(dt.date(2026, 6, 1), AUG4))
    auth = cursor_server.last(EVENTS).headers["authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode() == f"{CURSOR_KEY}:"
    windows = sorted(
        {(b["startDate"], b["endDate"]) for b in cursor_server.bodies if "startDate" in b}
    )
    assert len(windows) == 3  # Jun 1 - Jul 1 - Jul 31 - Aug 4
    assert all(end - start < 30 * 86_400_000 for start, end in windows)
    assert windows[-1][1] == int(dt.datetime(2026, 8, 4, tzinfo=dt.UTC).timestamp()) * 1000 - 1
    # Each window starts the millisecond after the one before ends: no gap, no overlap.
    assert all(
        later[0] == earlier[1] + 1 for earlier, later in zip(windows, windows[1:], strict=False)
    )


def test_test_reports_the_team_and_its_cycle_spend(cursor_server, http):
    assert cursor(cursor_server, http).test() == (
        "key accepted for a team of 2 member(s); $43.25 spent in the current cycle since "
        "2026-08-01 (Cursor's own figure)"
    )


def test_spend_is_read_page_after_page(cursor_server, http):
    extra = [
        {**cursor_server.spend["teamMemberSpend"][0], "email": f"dev{i}@company.com"}
        for i in range(150)
    ]
    cursor_server.spend["teamMemberSpend"] += extra  # 152 members: two pages of 100
    message = cursor(cursor_server, http).test()
    assert "$3,718.25 spent" in message
    assert cursor_server.count("/teams/spend") == 2


def test_429_with_retry_after_is_waited_out(cursor_server, http):
    cursor_server.script(EVENTS, Reply(429, {"error": "Too Many Requests"}, {"Retry-After": "1"}))
    started = time.monotonic()
    rows = list(cursor(cursor_server, http).fetch_usage(JUL30, AUG4))
    assert time.monotonic() - started >= 0.9  # the Retry-After was honoured
    assert len(rows) == 9
    assert cursor_server.count(EVENTS) == 6  # the refused query, asked again, then the rest


def test_a_429_storm_gives_up_with_rate_limited(cursor_server, http):
    cursor_server.storm(EVENTS, Reply(429, {"error": "Too Many Requests"}, {"Retry-After": "0"}))
    with pytest.raises(ProviderRateLimited, match="rate limiting us"):
        list(cursor(cursor_server, http).fetch_usage(JUL30, AUG4))


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (Reply(403, {"error": "Admin API access required"}), ProviderPermissionError, "403"),
        (Reply(200, {"events": []}), ProviderResponseError, "without usageEvents"),
        (Reply(400, {"error": "Date range cannot exceed 30 days"}), ProviderResponseError, "400"),
    ],
)
def test_errors_say_what_went_wrong(cursor_server, http, reply, error, message):
    cursor_server.script(EVENTS, reply)
    with pytest.raises(error, match=message):
        list(cursor(cursor_server, http).fetch_usage(JUL30, AUG4))


def test_a_wrong_key_is_refused_without_echoing_it(cursor_server, http):
    with pytest.raises(ProviderAuthError, match="rejected the key") as refused:
        cursor(cursor_server, http, key="key_wrong0000000000").test()
    assert "key_wrong" not in str(refused.value)


def test_days_cursor_no_longer_holds_are_not_covered(cursor_server, http):
    cursor_server.held_from = AUG2  # Jul 30 - Aug 1 have rolled off
    connector = cursor(cursor_server, http)
    rows = list(connector.fetch_usage(JUL30, AUG4))
    assert {r.day for r in rows} == {AUG2, AUG3}
    assert connector.covered_days(JUL30, AUG3) == {AUG2, AUG3}
    cursor_server.events = []  # no events at all in the answer: nothing is covered
    connector = cursor(cursor_server, http)
    assert list(connector.fetch_usage(JUL30, AUG4)) == []
    assert connector.covered_days(JUL30, AUG3) == set()
