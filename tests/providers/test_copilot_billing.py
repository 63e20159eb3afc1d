"""Copilot's billed money on the enhanced billing platform against the fake server: seats at
their billed amount with cost centers, AI credits per user, Link pages, rate limits, scopes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.fakes.provider_server import GITHUB_ORG, GITHUB_TOKEN, Reply, load
from tracker.core.crypto import Secret
from tracker.providers import github_copilot
from tracker.providers.base import ProviderPermissionError
from tracker.providers.github_copilot import CopilotConnector

AUG1, AUG4 = dt.date(2026, 8, 1), dt.date(2026, 8, 4)
USAGE = f"/organizations/{GITHUB_ORG}/settings/billing/usage"
CREDITS = f"/organizations/{GITHUB_ORG}/settings/billing/ai_credit/usage"
SEATS = f"/orgs/{GITHUB_ORG}/copilot/billing/seats"


def copilot(server, http):
    return CopilotConnector(
        credential=Secret(GITHUB_TOKEN), http=http, base_url=server.url, organization=GITHUB_ORG
    )


def test_billed_seats_replace_the_list_price_estimate_and_carry_cost_centers(server, http):
    server.github_usage[(2026, 8)] = load("github/billing_usage_copilot_seats.json")
    rows = list(copilot(server, http).fetch_usage(AUG1, AUG4))
    seats = [r for r in rows if r.usage_type == "seats"]
    assert sorted((r.day, r.project_id, r.other_units, r.billed_cost) for r in seats) == [
        (dt.date(2026, 8, 1), "Platform", Decimal(2), Decimal("1.1")),
        (dt.date(2026, 8, 2), "Platform", Decimal(2), Decimal("1.1")),
        (dt.date(2026, 8, 2), "Research", Decimal(1), Decimal("0.55")),
        (dt.date(2026, 8, 3), "", Decimal(3), Decimal("1.65")),
    ]
    assert {r.model for r in seats} == {"copilot-business"}
    # The AI-credit line of the usage report is not counted again: only its own report's.
    credits = [r for r in rows if r.usage_type == "ai_credits"]
    assert sum(r.billed_cost for r in credits) == Decimal("5.0")
    assert server.last(USAGE).query == {"year": ["2026"], "month": ["8"]}


def test_a_month_without_seat_line_items_is_estimated_at_list_price(server, http):
    server.github_usage[(2026, 7)] = load("github/billing_usage_copilot_seats.json")  # not Aug
    rows = list(copilot(server, http).fetch_usage(AUG1, AUG4))
    seats = [r for r in rows if r.usage_type == "seats"]
    assert [r.billed_cost for r in seats][0] == (2 * Decimal(19) / 31).quantize(Decimal("1e-6"))


def test_the_seat_list_follows_link_headers(server, http):
    server.seat_links = True
    rows = list(copilot(server, http).fetch_usage(AUG1, AUG4))
    seats = {r.day: r.other_units for r in rows if r.usage_type == "seats"}
    assert seats == {AUG1: 2, dt.date(2026, 8, 2): 3, dt.date(2026, 8, 3): 3}
    assert server.count(SEATS) == 2


def test_too_many_user_days_keep_the_organisation_rows(server, http, monkeypatch):
    monkeypatch.setattr(github_copilot, "USER_CALLS_PER_REPORT", 2)
    rows = list(copilot(server, http).fetch_usage(AUG1, AUG4))
    credits = [(r.user_id, r.billed_cost) for r in rows if r.usage_type == "ai_credits"]
    assert credits == [("", Decimal("5.0"))]
    assert all("user" not in r.query for r in server.requests if r.path == CREDITS)


def test_a_429_with_retry_after_is_waited_out(server, http):
    server.script(CREDITS, Reply(429, {"message": "slow down"}, {"Retry-After": "0"}))
    rows = list(copilot(server, http).fetch_usage(AUG1, AUG4))
    assert sum(r.billed_cost for r in rows if r.usage_type == "ai_credits") == Decimal("5.0")


def test_a_token_without_the_billing_scope_says_so(server, http):
    body = {"message": "Resource not accessible by personal access token", "status": "403"}
    server.storm(USAGE, Reply(403, body))
    with pytest.raises(ProviderPermissionError, match="not accessible"):
        list(copilot(server, http).fetch_usage(AUG1, AUG4))


def test_an_organisation_off_enhanced_billing_gets_estimated_seats_only(server, http):
    server.enhanced_billing = False
    rows = list(copilot(server, http).fetch_usage(AUG1, AUG4))
    assert {r.usage_type for r in rows} == {"seats"}
    assert server.count(USAGE) == 1 and server.count(CREDITS) == 1  # one 404 each, no more


def test_a_second_pass_gives_the_same_rows(server, http):
    server.github_usage[(2026, 8)] = load("github/billing_usage_copilot_seats.json")
    first = list(copilot(server, http).fetch_usage(AUG1, AUG4))
    assert list(copilot(server, http).fetch_usage(AUG1, AUG4)) == first
    keys = [r.natural_key for r in first]
    assert len(keys) == len(set(keys))
