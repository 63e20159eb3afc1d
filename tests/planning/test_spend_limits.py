"""A provider's cap on an account beside our budget: below it, missing, within, or not
comparable; stored as each sync reads them (`record_spend_limits`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.factories import add_account
from tracker.models import Service
from tracker.planning.spend_limits import Drift, compare_caps, partial_caps
from tracker.providers.billing import SpendLimit, record_spend_limits

READ = dt.datetime(2026, 5, 20, 6, 0, tzinfo=dt.UTC)


def caps(session, **kw):  # type: ignore[no-untyped-def]
    return {c.account: c for c in compare_caps(session=session, **kw)}


def test_each_account_cap_against_its_budget(session):
    below = add_account(session, "below", budget="500")
    within = add_account(session, "within", provider="anthropic", budget="500")
    none = add_account(session, "none", provider="xai", budget="100")
    unbudgeted = add_account(session, "unbudgeted", provider="mistral")
    euro = add_account(session, "euro", provider="github_copilot", budget="100")
    unread = add_account(session, "unread", provider="openrouter", budget="100")
    add_account(session, "never-read", provider="deepseek", budget="100")
    record_spend_limits(session, below.id, [SpendLimit(amount=Decimal(300))], READ)
    record_spend_limits(
        session,
        within.id,
        [
            SpendLimit(amount=Decimal(2000), enforcement="enabled"),
            SpendLimit(scope="usage_tier", amount=Decimal(500)),  # the lowest whole cap counts
            SpendLimit(scope="workspace:w", amount=Decimal(50), account_wide=False),
        ],
        READ,
    )
    record_spend_limits(session, none.id, [], READ)  # read: no cap anywhere
    record_spend_limits(session, unbudgeted.id, [SpendLimit(amount=Decimal(150))], READ)
    record_spend_limits(session, euro.id, [SpendLimit(amount=Decimal(90), currency="EUR")], READ)
    record_spend_limits(session, unread.id, [SpendLimit(readable=False, note="403")], READ)
    found = caps(session)
    assert {name: c.status for name, c in found.items()} == {
        "below": Drift.BELOW,
        "within": Drift.WITHIN,
        "none": Drift.NO_CAP,
        "unbudgeted": Drift.NO_BUDGET,
        "euro": Drift.NOT_COMPARABLE,
        "unread": Drift.NOT_READ,
    }  # "never-read": no limits stored, so nothing to compare
    assert (found["below"].cap, found["below"].budget) == (Decimal(300), Decimal(500))
    assert "below our $500.00" in found["below"].note
    assert (found["within"].cap, found["within"].read_at) == (Decimal(500), READ)
    assert found["euro"].currency == "EUR" and found["unread"].note == "403"
    assert [d for d in Drift if d.drifted] == [Drift.BELOW, Drift.NO_CAP]
    assert [(p.account, p.scope, p.amount) for p in partial_caps(session=session)] == [
        ("within", "workspace:w", Decimal(50))
    ]


def test_a_threshold_tolerates_a_cap_a_little_below(session):
    account = add_account(session, "prod", budget="500")
    record_spend_limits(session, account.id, [SpendLimit(amount=Decimal(450))], READ)
    assert caps(session)["prod"].status is Drift.BELOW
    assert caps(session, threshold_pct=Decimal(90))["prod"].status is Drift.WITHIN


def test_the_service_budget_counts_for_its_only_account(session):
    account = add_account(session, "grok", provider="xai")
    session.query(Service).filter(Service.name == "xai").one().monthly_budget = Decimal(80)
    record_spend_limits(session, account.id, [SpendLimit(amount=Decimal(50))], READ)
    found = caps(session)["grok"]
    assert (found.budget, found.budget_from, found.status) == (Decimal(80), "service", Drift.BELOW)
    add_account(session, "grok-2", provider="xai")  # two accounts: whose would it be?
    assert caps(session)["grok"].status is Drift.NO_BUDGET


def test_a_new_reading_replaces_the_last_and_a_disabled_account_is_left_out(session):
    account = add_account(session, "prod", budget="100")
    record_spend_limits(session, account.id, [SpendLimit(amount=Decimal(50))], READ)
    later = READ + dt.timedelta(hours=1)
    record_spend_limits(session, account.id, [SpendLimit(amount=Decimal(150))], later)
    found = caps(session, accounts=["prod"])["prod"]
    assert (found.cap, found.status, found.read_at) == (Decimal(150), Drift.WITHIN, later)
    account.status = "disabled"
    session.flush()
    assert caps(session) == {}
