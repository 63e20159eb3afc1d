"""AnthropicConnector against the fake server: tokens, cents to dollars, pages, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.fakes.provider_server import ANTHROPIC_KEY, Reply, load
from tracker.core.crypto import Secret
from tracker.providers.anthropic import AnthropicConnector
from tracker.providers.base import ProviderAuthError, ProviderUnavailable

AUG1, AUG4 = dt.date(2026, 8, 1), dt.date(2026, 8, 4)
MESSAGES = "/v1/organizations/usage_report/messages"


def connector(server, http, key=ANTHROPIC_KEY):
    return AnthropicConnector(credential=Secret(key), http=http, base_url=server.url)


def test_tokens_keep_cache_apart_and_costs_are_cents(server, http):
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    usage = [r for r in rows if r.usage_type == "messages"]
    assert len(usage) == 6
    # uncached_input_tokens already excludes cache reads and writes: stored as it is.
    assert sum(r.input_tokens for r in usage) == 8_550_000
    assert sum(r.cached_input_tokens for r in usage) == 10_500_000
    assert sum(r.cache_write_tokens for r in usage) == 750_000
    assert sum(r.cache_write_1h_tokens for r in usage) == 50_000
    assert sum(r.output_tokens for r in usage) == 1_530_000
    assert sum(r.other_units for r in usage) == 25  # web searches
    assert all(r.billed_cost is None for r in usage)

    billed = [r for r in rows if r.usage_type.startswith("cost:")]
    per_day: dict[dt.date, Decimal] = {}
    for r in billed:
        per_day[r.day] = per_day.get(r.day, Decimal(0)) + r.billed_cost
    ungrouped = load("anthropic/cost_report_ungrouped.json")["data"]
    assert per_day == {
        dt.date.fromisoformat(b["starting_at"][:10]): Decimal(b["results"][0]["amount"]) / 100
        for b in ungrouped
    }
    assert sum(per_day.values()) == Decimal("33.9725")
    write = next(
        r
        for r in billed
        if r.day == AUG1 and r.usage_type == "cost:cache_creation.ephemeral_5m_input_tokens"
    )
    assert write.billed_cost == Decimal("1.125") and write.service_tier == "standard"
    assert {r.usage_type for r in billed if not r.model} == {"cost:web_search"}


def test_sends_headers_groups_and_follows_pages(server, http):
    list(connector(server, http).fetch_usage(AUG1, AUG4))
    assert server.count(MESSAGES) == 2 and server.count("/v1/organizations/cost_report") == 2
    last = server.last(MESSAGES)
    assert last.headers["anthropic-version"] == "2023-06-01"
    assert last.query["group_by[]"] == ["model", "workspace_id", "api_key_id", "service_tier"]
    assert last.query["starting_at"] == ["2026-08-01T00:00:00Z"]
    assert last.query["ending_at"] == ["2026-08-04T00:00:00Z"]


def test_window_selects_days(server, http):
    rows = list(connector(server, http).fetch_usage(dt.date(2026, 8, 2), dt.date(2026, 8, 3)))
    assert {r.day for r in rows} == {dt.date(2026, 8, 2)}


def test_admin_key_test_and_bad_key(server, http):
    assert "Acme Corp" in connector(server, http).test()
    with pytest.raises(ProviderAuthError, match="admin key") as caught:
        connector(server, http, key="sk-ant-api03-notadmin-zzzz").test()
    assert "notadmin" not in str(caught.value)


def test_500_then_success_and_persistent_500(server, http):
    server.script(MESSAGES, Reply(500, {"type": "error", "error": {"type": "api_error"}}))
    assert len(list(connector(server, http).fetch_usage(AUG1, AUG4))) > 0
    server.storm(MESSAGES, Reply(529, {"type": "error", "error": {"type": "overloaded_error"}}))
    with pytest.raises(ProviderUnavailable):
        list(connector(server, http).fetch_usage(AUG1, AUG4))


def test_rate_limit_snapshot(server, http):
    conn = connector(server, http)
    conn.test()
    assert conn.rate_limits.headers["anthropic-ratelimit-requests-remaining"] == "49"
