"""A provider's cap on an account beside our budget: below it, missing, within, or not
comparable; its spend alerts beside them (never a cap); its members' effective limits with
our users and teams; stored as each sync reads them (`record_spend_limits`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.factories import add_account, add_user
from tracker.attribution.teams import add_mapping, add_team
from tracker.models import LimitKind, Service
from tracker.planning.spend_limits import (
    AlertCheck,
    Drift,
    compare_caps,
    member_limits,
    partial_caps,
)
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


def alert(amount: str | None, scope: str = "alert:a1", **kw) -> SpendLimit:  # type: ignore[no-untyped-def]
    return SpendLimit(scope=scope, kind=LimitKind.ALERT, enforcement="alert only",
                      amount=None if amount is None else Decimal(amount), **kw)  # fmt: skip


def test_an_alert_is_never_a_cap_and_is_compared_on_its_own(session):
    accounts = {
        name: add_account(session, name, budget="500")
        for name in ("warned", "late", "silent", "unread", "capped")
    }
    # Alerts alone: still no cap at the provider (an alert stops nothing).
    record_spend_limits(session, accounts["warned"].id, [alert("400"), alert("900", "alert:a2")],
                        READ)  # fmt: skip
    record_spend_limits(session, accounts["late"].id, [alert("750")], READ)
    record_spend_limits(session, accounts["silent"].id, [alert(None, "alerts")], READ)
    record_spend_limits(
        session, accounts["unread"].id, [alert(None, "alerts", readable=False, note="403")], READ
    )
    record_spend_limits(
        session, accounts["capped"].id, [SpendLimit(amount=Decimal(600)), alert("800")], READ
    )
    found = caps(session)
    assert {n: (c.status, c.cap, c.alert, c.alert_status) for n, c in found.items()} == {
        "warned": (Drift.NO_CAP, None, Decimal(400), AlertCheck.WITHIN),
        "late": (Drift.NO_CAP, None, Decimal(750), AlertCheck.ABOVE),
        "silent": (Drift.NO_CAP, None, None, AlertCheck.NONE),
        "unread": (Drift.NO_CAP, None, None, AlertCheck.NOT_READ),
        "capped": (Drift.WITHIN, Decimal(600), Decimal(800), AlertCheck.ABOVE),
    }
    assert "its spend alert at $400.00 only notifies" in found["warned"].note
    assert "nor is any spend alert set there" in found["silent"].note
    assert partial_caps(session=session) == []  # account-wide alerts are not parts


def test_a_provider_without_alerts_has_no_alert_figure(session):
    account = add_account(session, "plain", provider="mistral")
    record_spend_limits(session, account.id, [SpendLimit(amount=Decimal(150))], READ)
    found = caps(session)["plain"]
    assert (found.alert, found.alert_status, found.status) == (None, None, Drift.NO_BUDGET)


def member(ident: str, amount: str | None, period: str = "month", **kw) -> SpendLimit:  # type: ignore[no-untyped-def]
    return SpendLimit(scope=f"member:{ident}:{period}", kind=LimitKind.MEMBER,
                      account_wide=False, period=period,
                      amount=None if amount is None else Decimal(amount), **kw)  # fmt: skip


def test_members_effective_limits_with_our_user_and_their_team(session):
    account = add_account(session, "claude", provider="anthropic")
    add_user(session, "alice", "viewer")  # alice@example.org
    add_team(session=session, name="Research", actor="t")
    add_mapping(session=session, kind="user", value="user_a", team="Research",
                valid_from=dt.date(2026, 5, 1), actor="t")  # fmt: skip
    record_spend_limits(
        session,
        account.id,
        [
            SpendLimit(amount=Decimal(2000)),
            member("user_b", "200", scope_name="Bob", email="bob@example.org", note="from group g"),
            member("user_a", "50", "day", scope_name="Alice", email="ALICE@example.org"),
            member("user_a", "500", scope_name="Alice", email="ALICE@example.org",
                   spent=Decimal("120.505"), note="from the member's own limit"),
        ],
        READ,
    )  # fmt: skip
    found = member_limits(session=session, today=dt.date(2026, 5, 20))
    assert [(m.member, m.period, m.amount, m.user, m.team) for m in found] == [
        ("Alice", "month", Decimal(500), "alice", "Research"),
        ("Alice", "day", Decimal(50), "alice", "Research"),
        ("Bob", "month", Decimal(200), None, None),
    ]
    assert (found[0].spent, found[0].source) == (Decimal("120.505"), "from the member's own limit")
    assert [c.account for c in compare_caps(session=session)] == ["claude"]
    assert partial_caps(session=session) == []  # members are listed on their own
