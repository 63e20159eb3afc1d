"""xAI's Management API connector against its fake (tests/fakes/xai_server.py): daily spend
per billing line in windows, a cut-short answer asked again in halves, the prepaid ledger,
invoices, the spending limit, 429 with Retry-After, errors and hostile bodies."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.fakes.provider_server import Reply
from tests.fakes.xai_server import PREFIX, XAI_KEY, XAI_TEAM, XAIServer
from tracker.core.crypto import Secret
from tracker.providers.base import (
    ProviderAuthError,
    ProviderRateLimited,
    ProviderResponseError,
)
from tracker.providers.xai import XAIConnector

USAGE = f"{PREFIX}/usage"
JUL30, JUL31, AUG1, AUG2, AUG3, AUG4 = (
    dt.date(2026, 7, 30),
    dt.date(2026, 7, 31),
    dt.date(2026, 8, 1),
    dt.date(2026, 8, 2),
    dt.date(2026, 8, 3),
    dt.date(2026, 8, 4),
)


@pytest.fixture
def xai_server() -> Iterator[XAIServer]:
    with XAIServer() as fake:
        yield fake


def xai(server: XAIServer, http, key: str = XAI_KEY, team: str = XAI_TEAM) -> XAIConnector:
    return XAIConnector(credential=Secret(key), http=http, base_url=server.url, organization=team)


def test_daily_spend_per_billing_line(xai_server, http):
    rows = list(xai(xai_server, http).fetch_usage(JUL30, AUG4))
    by_key = {(r.day, r.usage_type): r for r in rows}
    chat = by_key[(JUL30, "cost:Chat grok-4")]
    assert (chat.model, chat.billed_cost, chat.input_tokens) == ("grok-4", Decimal("10.50"), 0)
    assert by_key[(JUL31, "cost:Image grok-2-image")].model == "grok-2-image"
    assert by_key[(JUL31, "cost:File Storage")].model == ""
    assert (AUG2, "cost:Chat grok-4") not in by_key  # a $0 point is no row
    assert sum(r.billed_cost for r in rows) == Decimal("50.1850")
    body = xai_server.bodies[-1]["analyticsRequest"]
    assert body["timeRange"] == {
        "startTime": "2026-07-30 00:00:00",
        "endTime": "2026-08-04 00:00:00",
        "timezone": "Etc/GMT",
    }
    assert body["values"] == [{"name": "usd", "aggregation": "AGGREGATION_SUM"}]
    assert body["groupBy"] == ["description"]


def test_a_long_range_is_asked_in_windows_of_31_days(xai_server, http):
    list(xai(xai_server, http).fetch_usage(dt.date(2026, 6, 1), AUG4))
    spans = [
        (
            b["analyticsRequest"]["timeRange"]["startTime"],
            b["analyticsRequest"]["timeRange"]["endTime"],
        )
        for b in xai_server.bodies
    ]
    assert spans == [
        ("2026-06-01 00:00:00", "2026-07-02 00:00:00"),
        ("2026-07-02 00:00:00", "2026-08-02 00:00:00"),
        ("2026-08-02 00:00:00", "2026-08-04 00:00:00"),
    ]


def test_an_answer_cut_short_is_asked_again_in_halves(xai_server, http):
    whole = list(xai(xai_server, http).fetch_usage(JUL30, AUG4))
    xai_server.series_cap_days = 1  # more than a day: xAI says limitReached
    xai_server.bodies.clear()
    halves = list(xai(xai_server, http).fetch_usage(JUL30, AUG4))
    assert sorted(halves, key=repr) == sorted(whole, key=repr)
    assert len(xai_server.bodies) > 1


def test_an_answer_cut_short_for_one_day_is_an_error(xai_server, http):
    xai_server.series_cap_days = 0
    with pytest.raises(ProviderResponseError, match="limitReached"):
        list(xai(xai_server, http).fetch_usage(JUL30, AUG4))


def test_the_prepaid_ledger_is_negative_cents(xai_server, http):
    connector = xai(xai_server, http)
    balance = connector.fetch_balance()
    assert (balance.remaining, balance.currency) == (Decimal("37.66"), "USD")
    assert connector.test() == (
        f"management key accepted for team {XAI_TEAM}; prepaid credit $37.66 (xAI's posted ledger)"
    )
    assert connector.organization_key() == f"xai:{XAI_TEAM}"
    xai_server.balance = {"changes": [], "total": {"val": "0"}}
    assert str(connector.fetch_balance().remaining) == "0"


def test_monthly_invoices_only(xai_server, http):
    (invoice,) = xai(xai_server, http).fetch_invoices()  # not the draft, not the top-up
    assert invoice.invoice_number == "XAI-2026-07-0001"
    assert (invoice.period, invoice.issued_on) == (dt.date(2026, 7, 1), AUG1)
    assert (invoice.amount, invoice.currency, invoice.due_on) == (Decimal("28.22"), "USD", None)


def test_the_spending_limit(xai_server, http):
    connector = xai(xai_server, http)
    soft, hard = connector.fetch_spend_limits()
    assert (soft.scope, soft.amount, soft.account_wide) == ("", Decimal(500), True)
    assert (hard.scope, hard.amount, hard.account_wide) == ("hard", Decimal(1000), False)
    xai_server.limits = {"spendingLimits": {}}  # then the invoice preview's documented field
    (limit,) = connector.fetch_spend_limits()
    assert limit.amount == Decimal(500)
    xai_server.preview = {"billingCycle": {"year": 2026, "month": 8}}
    (unknown,) = connector.fetch_spend_limits()
    assert (unknown.readable, unknown.amount) == (False, None)


def test_429_with_retry_after_is_waited_out(xai_server, http):
    xai_server.script(USAGE, Reply(429, {"error": "Too many requests"}, {"Retry-After": "1"}))
    started = time.monotonic()
    rows = list(xai(xai_server, http).fetch_usage(JUL30, AUG4))
    assert time.monotonic() - started >= 0.9
    assert len(rows) == 9
    assert xai_server.count(USAGE) == 2


def test_a_429_storm_gives_up_with_rate_limited(xai_server, http):
    xai_server.storm(USAGE, Reply(429, {"error": "Too many requests"}, {"Retry-After": "0"}))
    with pytest.raises(ProviderRateLimited, match="rate limiting us"):
        list(xai(xai_server, http).fetch_usage(JUL30, AUG4))


def test_a_wrong_key_is_refused_without_echoing_it(xai_server, http):
    with pytest.raises(ProviderAuthError, match="rejected the key") as refused:
        xai(xai_server, http, key="xai-wrong000000000000").test()
    assert "xai-wrong" not in str(refused.value)


def test_a_wrong_team_says_to_check_the_team_id(xai_server, http):
    with pytest.raises(ProviderResponseError, match="check the account's team id"):
        xai(xai_server, http, team="another-team").test()


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (USAGE, {"series": []}, "no timeSeries list"),
        (USAGE, {"timeSeries": [{"groupLabels": ["Chat"], "dataPoints": {}}]}, "no dataPoints"),
        (
            USAGE,
            {"timeSeries": [{"groupLabels": ["Chat"], "dataPoints": [{"values": ["x"]}]}]},
            "'x'",
        ),
        (USAGE, {"timeSeries": [{"groupLabels": "Chat", "dataPoints": []}]}, "labels"),
        (
            USAGE,
            {"timeSeries": [{"dataPoints": [{"timestamp": "soon", "values": [1]}]}]},
            "'soon' as a date",
        ),
        (f"{PREFIX}/prepaid/balance", {"changes": []}, "without the prepaid balance's total"),
        (f"{PREFIX}/invoices", {"invoices": {}}, "without an invoices list"),
    ],
)
def test_hostile_bodies_are_clear_errors(xai_server, http, path, body, message):
    xai_server.script(path, Reply(200, body))
    connector = xai(xai_server, http)
    with pytest.raises(ProviderResponseError, match=message):
        if path == USAGE:
            list(connector.fetch_usage(JUL30, AUG4))
        elif path.endswith("/invoices"):
            connector.fetch_invoices()
        else:
            connector.fetch_balance()


def test_an_invoice_without_a_month_number_or_date_is_refused(xai_server, http):
    bad = {"invoiceStatus": "PAID", "total": {"val": "100"}, "monthly": {"billingCycle": {}}}
    xai_server.invoices = {"invoices": [{**bad, "invoiceNumber": "X-1"}]}
    with pytest.raises(ProviderResponseError, match="X-1's month"):
        xai(xai_server, http).fetch_invoices()
    cycle = {"billingCycle": {"year": 2026, "month": 7}}
    xai_server.invoices = {"invoices": [{**bad, "monthly": cycle}]}
    with pytest.raises(ProviderResponseError, match="usable number"):
        xai(xai_server, http).fetch_invoices()
    xai_server.invoices = {"invoices": [{**bad, "monthly": cycle, "invoiceNumber": "X-2"}]}
    with pytest.raises(ProviderResponseError, match="as a date"):
        xai(xai_server, http).fetch_invoices()
