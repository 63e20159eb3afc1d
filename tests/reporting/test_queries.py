"""The aggregated frames in tracker.queries, on SQLite and PostgreSQL, exact to the micro-dollar."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from tests.factories.dashboard import USAGE, expected_cost, row_cost, seed_all
from tracker.core import units
from tracker.core.crypto import CredentialCipher
from tracker.models import Setting
from tracker.planning import budgets
from tracker.reporting import admin, overview, sources, sync_health, usage

# A month end after a short month exercises the same-days-last-month clamp (31 March -> 28 Feb).
TODAY = dt.date(2026, 3, 31)


@pytest.fixture
def seeded(session: Session, cipher: CredentialCipher) -> Session:
    seed_all(session, cipher, TODAY)
    return session


def test_same_days_last_month_clamps_to_short_months() -> None:
    assert units.same_days_last_month(dt.date(2026, 3, 31)) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    assert units.same_days_last_month(dt.date(2026, 1, 15)) == (
        dt.date(2025, 12, 1),
        dt.date(2025, 12, 15),
    )


def test_spend_summary_is_exact_and_split_by_basis(seeded: Session) -> None:
    summary = overview.spend_summary(session=seeded, today=TODAY)
    expected = expected_cost(dt.date(2026, 3, 1), TODAY, TODAY)
    # 12.345678 + 7.000001 + 0.333333 + 4.444444 + 16.666667 + 0.010001 + 1.25; the 0.101010
    # estimate of today's gpt-4o-mini is covered by OpenAI Prod's billed amounts for the day.
    assert expected == Decimal("42.050124")
    assert summary.current.cost == expected
    assert summary.current.billed == Decimal("24.123456")
    assert summary.current.estimated == Decimal("17.926668")
    assert summary.current.billed + summary.current.estimated == summary.current.cost
    assert summary.current.unpriced_rows == 1  # the Groq row without any cost
    assert summary.current.basis == "mixed"
    # Complete days only: 1-30 March against February's (1-28: the month is shorter).
    assert (summary.previous_start, summary.previous_end) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    complete = expected_cost(dt.date(2026, 3, 1), TODAY - dt.timedelta(days=1), TODAY)
    assert summary.complete.cost == complete < summary.current.cost
    assert summary.previous.cost == Decimal("2.520000")  # 2.50 (26 Feb) + 0.02 (14 Feb)
    assert summary.change_pct == (complete - Decimal("2.52")) / Decimal("2.52") * 100
    # No organisation budget set: the sum of the account budgets (100 + 20).
    assert (summary.budget, summary.budget_source) == (Decimal("120.000000"), "accounts")


def test_the_first_of_the_month_has_no_comparison(seeded: Session) -> None:
    summary = overview.spend_summary(session=seeded, today=dt.date(2026, 4, 1))
    assert summary.previous_start is None and summary.change_pct is None
    assert summary.complete.cost == 0


def test_org_budget_setting_wins(seeded: Session) -> None:
    seeded.add(Setting(key=budgets.ORG_BUDGET_SETTING_KEY, value="500.00"))
    seeded.flush()
    summary = overview.spend_summary(session=seeded, today=TODAY)
    assert (summary.budget, summary.budget_source) == (Decimal("500.00"), "organisation")
    assert summary.budget_used_pct == Decimal("42.050124") / Decimal("500.00") * 100


def test_empty_database_gives_zero_not_errors(session: Session) -> None:
    summary = overview.spend_summary(session=session, today=TODAY)
    assert summary.current.cost == Decimal(0)
    assert summary.change_pct is None and summary.budget is None
    assert overview.daily_cost_by_provider(session=session, end=TODAY).empty
    assert overview.top_models(session=session, start=TODAY, end=TODAY).empty
    flt = sources.UsageFilter(start=TODAY, end=TODAY)
    assert usage.usage_table(session=session, flt=flt, group_by=[]).empty
    assert (
        overview.account_cards(
            session=session, today=TODAY, warning_pct=Decimal(75), critical_pct=Decimal(90)
        )
        == []
    )


def test_account_cards_status_from_budget_and_quota(seeded: Session) -> None:
    cards = {
        c.name: c
        for c in overview.account_cards(
            session=seeded, today=TODAY, warning_pct=Decimal(75), critical_pct=Decimal(90)
        )
    }
    openai = cards["OpenAI Prod"]
    assert openai.cost == Decimal("24.123456")  # today's 0.101010 estimate is covered
    assert openai.budget_used_pct == Decimal("24.123456")  # of 100.00
    assert (
        openai.tokens == 100_000 + 20_000 + 5_000 + 50_000 + 5_000 + 60_000 + 9_000 + 1_100 + 33_000
    )
    assert openai.tokens_remaining == 2_000_000 - openai.tokens
    assert openai.status == overview.STATUS_OK
    anthropic = cards["Anthropic Team"]
    assert anthropic.cost == Decimal("17.926668")  # 89.6 % of 20.00 -> Warning
    assert anthropic.status == overview.STATUS_WARNING
    assert anthropic.account_status == "error"
    assert cards["Groq CSV"].cost == Decimal(0) and cards["Groq CSV"].status == overview.STATUS_OK
    critical = overview.account_cards(
        session=seeded, today=TODAY, warning_pct=Decimal(50), critical_pct=Decimal(80)
    )
    assert {c.name: c.status for c in critical}["Anthropic Team"] == overview.STATUS_CRITICAL


def test_daily_cost_by_provider_covers_30_days(seeded: Session) -> None:
    frame = overview.daily_cost_by_provider(session=seeded, end=TODAY, days=30)
    start = TODAY - dt.timedelta(days=29)
    assert frame["day"].min() >= start
    assert sum(frame["cost"], Decimal(0)) == expected_cost(start, TODAY, TODAY)
    today_rows = frame[frame["day"] == TODAY].set_index("provider")["cost"].to_dict()
    assert today_rows == {
        "OpenAI": Decimal("12.345678"),  # billed; the gpt-4o-mini estimate is covered
        "Anthropic": Decimal("16.666667"),
        "Groq": Decimal("0.000000"),
    }


def test_top_models_ordered_by_cost(seeded: Session) -> None:
    frame = overview.top_models(session=seeded, start=dt.date(2026, 3, 1), end=TODAY, limit=2)
    assert list(frame["model"]) == ["gpt-4o", "claude-sonnet-4"]
    assert list(frame["cost"]) == [Decimal("24.123456"), Decimal("16.676668")]


@pytest.mark.parametrize("group_by", [[], ["day"], ["provider", "model"], ["project"], ["api_key"]])
def test_usage_table_totals_match_whatever_the_grouping(
    seeded: Session, group_by: list[str]
) -> None:
    flt = sources.UsageFilter(start=TODAY - dt.timedelta(days=60), end=TODAY)
    frame = usage.usage_table(session=seeded, flt=flt, group_by=group_by)
    assert list(frame.columns) == [*group_by, *usage.USAGE_VALUE_COLUMNS]
    assert sum(frame["cost"], Decimal(0)) == sum((row_cost(s) for s in USAGE), Decimal(0))
    assert int(frame["requests"].sum()) == sum(s.requests for s in USAGE)


def test_usage_table_filters(seeded: Session) -> None:
    flt = sources.UsageFilter(
        start=TODAY - dt.timedelta(days=60),
        end=TODAY,
        providers=("openai",),
        projects=("proj_a",),
    )
    frame = usage.usage_table(session=seeded, flt=flt, group_by=["model"])
    assert frame.to_dict("records")[0]["model"] == "gpt-4o"
    assert len(frame) == 1
    assert frame.at[0, "cost"] == Decimal("24.123456")
    assert frame.at[0, "billed_cost"] == Decimal("24.123456")
    by_key = usage.usage_table(
        session=seeded,
        flt=sources.UsageFilter(start=TODAY, end=TODAY, api_keys=("key_2",)),
        group_by=["account"],
    )
    # key_2's only row is covered by the day's billed amounts: it costs nothing on its own.
    assert by_key.to_dict("records")[0]["estimated_cost"] == Decimal("0")
    assert by_key.to_dict("records")[0]["cost"] == Decimal("0")
    with pytest.raises(ValueError):
        usage.usage_table(session=seeded, flt=flt, group_by=["password_hash"])


def test_filter_options_and_tokens_by_kind(seeded: Session) -> None:
    options = usage.filter_options(session=seeded, start=TODAY, end=TODAY)
    assert options.providers == ["anthropic", "groq", "openai"]
    assert options.projects == ["proj_a", "proj_b"]
    assert options.api_keys == ["key_1", "key_2"]
    kinds = usage.tokens_by_kind(
        session=seeded, flt=sources.UsageFilter(start=TODAY, end=TODAY)
    ).set_index("kind")["tokens"]
    assert kinds["Input (uncached)"] == 100_000 + 50_000 + 200_000 + 1_234
    assert kinds["Cached input"] == 15_000
    assert kinds["Output"] == 20_000 + 5_000 + 30_000 + 567


def test_sync_health_frames(seeded: Session) -> None:
    now = dt.datetime.now(dt.UTC)
    fresh = sync_health.sync_freshness(session=seeded, now=now).set_index("account")
    assert fresh.at["Anthropic Team", "last_run_status"] == "failed"
    assert fresh.at["OpenAI Prod", "last_run_status"] == "success"
    assert fresh.at["OpenAI Prod", "hours_since_sync"] == Decimal("2.0")
    assert pd.isna(fresh.at["Groq CSV", "last_run_status"])
    runs = sync_health.recent_sync_runs(session=seeded)
    assert len(runs) == 2 and set(runs["status"]) == {"success", "failed"}
    gaps = sync_health.daily_gaps(session=seeded, end=TODAY, days=30).set_index("account")
    # OpenAI rows on days 0, 1, 3, 12 ago: days 2 and 4..11 ago are missing.
    assert gaps.at["OpenAI Prod", "missing_days"] == 1 + 8
    assert (TODAY - dt.timedelta(days=2)).isoformat() in gaps.at["OpenAI Prod", "missing"]


def test_recent_audit_never_lists_secrets(seeded: Session) -> None:
    from tracker.core import audit

    audit.record(session=seeded, actor="alice", action="account.add", target="X", key="…1234")
    seeded.flush()
    frame = admin.recent_audit(session=seeded)
    assert frame.iloc[0]["action"] == "account.add"
    assert frame.iloc[0]["details"] == "key=…1234"
