"""Credit grants: burned down in priority order, lost at expiry, projected to run out on the
forecast's day, and compared with the balance the provider reports (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import add_account, add_usage
from tracker.core.errors import InvalidInput
from tracker.models import AuditLog, CreditGrant
from tracker.planning import credits, projections
from tracker.planning.credits import Grant, GrantStatus, burn_down, project_burn

D1 = dt.date(2026, 3, 1)
M = 1_000_000  # micro-dollars per dollar


def day(n: int) -> dt.date:
    """The n-th day of March 2026 (1-based)."""
    return D1 + dt.timedelta(days=n - 1)


def grant(
    gid: int, amount: int, start: int = 1, expiry: int | None = None, priority: int = 1
) -> Grant:
    return Grant(gid, amount * M, day(start), day(expiry) if expiry else None, priority)


# Each case: grants, usage per day number (dollars), then per grant (used, expired, left) and
# the uncovered dollars per day, all worked out by hand.
BURN_CASES = {
    "lower priority number first": (
        [grant(1, 100, priority=2), grant(2, 50, priority=1)],
        {1: 30, 2: 30, 3: 30},
        {1: (40, 0, 60), 2: (50, 0, 0)},
        {},
    ),
    "same priority: earliest expiry first, no expiry last": (
        [grant(1, 100), grant(2, 100, expiry=20), grant(3, 100, expiry=10)],
        {1: 150, 2: 20},
        {1: (0, 0, 100), 2: (70, 0, 30), 3: (100, 0, 0)},
        {},
    ),
    "a grant's remainder is lost on its expiry day": (
        # Grant 1 is usable on days 1 and 2 only; from day 3 grant 2 pays.
        [grant(1, 100, expiry=3, priority=1), grant(2, 100, priority=2)],
        {1: 30, 2: 30, 3: 30, 4: 30},
        {1: (60, 40, 0), 2: (60, 0, 40)},
        {},
    ),
    "never used before its start": (
        [grant(1, 100, start=3)],
        {1: 10, 2: 10, 3: 10},
        {1: (10, 0, 90)},
        {1: 10, 2: 10},
    ),
    "spend beyond every grant is uncovered": (
        [grant(1, 25)],
        {1: 10, 2: 10, 3: 10, 4: 10},
        {1: (25, 0, 0)},
        {3: 5, 4: 10},
    ),
    "a used-up grant has nothing to lose at expiry": (
        [grant(1, 20, expiry=3), grant(2, 5, priority=3)],
        {1: 20, 2: 2, 3: 1},
        {1: (20, 0, 0), 2: (3, 0, 2)},
        {},
    ),
}


@pytest.mark.parametrize("case", list(BURN_CASES))
def test_usage_burns_grants_in_priority_order_and_they_expire(case: str) -> None:
    grants, usage, expected, uncovered = BURN_CASES[case]
    burn = burn_down(
        grants, {day(n): dollars * M for n, dollars in usage.items()}, start=day(1), end=day(10)
    )
    assert {
        g: (burn.used[g] // M, burn.expired[g] // M, burn.left[g] // M) for g in burn.left
    } == expected
    assert {(d - D1).days + 1: m // M for d, m in burn.uncovered.items()} == uncovered
    # Nothing is made up or lost: every grant's amount is used, expired or left.
    for g in grants:
        assert burn.used[g.id] + burn.expired[g.id] + burn.left[g.id] == g.amount_micros


def test_a_burn_is_exact_to_the_micro_dollar() -> None:
    burn = burn_down(
        [Grant(1, 10_000_000, day(1), None, 1)], {day(1): 3_333_333}, start=day(1), end=day(2)
    )
    assert burn.left[1] == 6_666_667
    assert burn.balance == [(day(1), 6_666_667), (day(2), 6_666_667)]


def test_the_exhaustion_day_is_when_cumulative_projected_spend_exceeds_the_balance() -> None:
    grants = [grant(1, 100)]
    forecast = [(day(n), 10 * M) for n in range(11, 31)]  # $10 a day from day 11
    # $95 left: days 11..19 take $90, day 20 needs $10 with $5 left.
    assert project_burn(grants, {1: 95 * M}, forecast).exhausted_on == day(20)
    # $100 left covers exactly ten days: day 21 is the first one not covered.
    assert project_burn(grants, {1: 100 * M}, forecast).exhausted_on == day(21)
    # An earlier expiry ends it sooner, whatever is left.
    expiring = [grant(1, 100, expiry=15)]
    assert project_burn(expiring, {1: 100 * M}, forecast).exhausted_on == day(15)
    assert project_burn(grants, {1: 1000 * M}, forecast).exhausted_on is None


# --- with the database --------------------------------------------------------------------------


def test_the_ledger_per_account_with_statuses_and_audit(session: Session) -> None:
    account = add_account(session, "router", "openrouter")
    today = dt.date(2026, 3, 10)
    for n in range(1, 11):
        add_usage(session, account, day(n), "7.000001")  # $70.00001 over ten days
    add = {"session": session, "account": "router", "actor": "fin"}
    credits.add_grant(**add, amount="50", starts_on=day(1), expires_on=day(20), priority=1)
    credits.add_grant(**add, amount="$1,000.00", starts_on="2026-03-01", priority=2)
    credits.add_grant(**add, amount="30", starts_on=day(1), expires_on=day(5), priority=0)
    credits.add_grant(**add, amount="500", starts_on=day(15), priority=0)
    credits.add_grant(**add, amount="200", currency="cny", starts_on=day(1), note="top-up")
    (ledger,) = credits.ledger(session=session, today=today, with_forecast=False)
    by_amount = {g.amount: g for g in ledger.grants}
    # Priority 0 first ($30, usable on days 1-4: $28.000004 used, $1.999996 lost on day 5;
    # the other priority-0 grant starts on day 15), then priority 1 ($50: days 5-10), and
    # nothing reaches priority 2.
    assert (by_amount[Decimal(30)].used, by_amount[Decimal(30)].expired) == (
        Decimal("28.000004"),
        Decimal("1.999996"),
    )
    assert by_amount[Decimal(30)].status == GrantStatus.EXPIRED
    assert by_amount[Decimal(50)].used == Decimal("42.000006")  # days 5..10
    assert by_amount[Decimal(50)].status == GrantStatus.ACTIVE
    assert by_amount[Decimal(1000)].used == Decimal(0)
    assert by_amount[Decimal(500)].status == GrantStatus.NOT_STARTED
    cny = by_amount[Decimal(200)]
    assert (cny.status, cny.used, cny.remaining) == (GrantStatus.NOT_BURNED, None, Decimal(200))
    assert ledger.available == Decimal("1007.999994")  # 7.999994 + 1000
    assert ledger.upcoming == Decimal(500)
    assert ledger.uncovered == Decimal(0)
    assert session.scalar(select(AuditLog.target).where(AuditLog.action == "credit.add")) == (
        "router"
    )


def test_the_provider_balance_is_compared_with_what_the_ledger_has_left(
    session: Session,
) -> None:
    account = add_account(session, "router", "openrouter")
    account.balance_remaining = Decimal("79.5")
    account.balance_currency = "USD"
    add_usage(session, account, day(2), "20.25")
    credits.add_grant(
        session=session, account="router", amount="100", starts_on=day(1), actor="fin"
    )
    deepseek = add_account(session, "deep", "deepseek")
    deepseek.balance_remaining, deepseek.balance_currency = Decimal("88"), "CNY"
    session.flush()
    found = {
        c.account: c for c in credits.ledger(session=session, today=day(3), with_forecast=False)
    }
    router = found["router"]
    assert (router.ledger_balance, router.provider_balance) == (Decimal("79.75"), Decimal("79.5"))
    assert router.balance_difference == Decimal("-0.25")
    # A balance in another currency is shown beside the ledger, never converted or compared;
    # an account with a provider balance but no grant is listed, so it can be recorded.
    deep = found["deep"]
    assert deep.grants == [] and deep.provider_balance == Decimal("88")
    assert deep.ledger_balance is None and deep.balance_difference is None


def test_the_exhaustion_date_comes_from_the_accounts_forecast(session: Session) -> None:
    account = add_account(session, "prod", "openai")
    today = dt.date(2026, 3, 10)
    for n in range(70):  # ten weeks of $10 a day up to yesterday: the forecast is $10 a day
        add_usage(session, account, today - dt.timedelta(days=70 - n), "10")
    credits.add_grant(session=session, account="prod", amount="95", starts_on=today, actor="fin")
    (ledger,) = credits.ledger(session=session, today=today)
    assert ledger.available == Decimal(95)
    # $10 a day from tomorrow: nine days take $90, the tenth needs $10 with $5 left.
    assert ledger.exhausted_on == today + dt.timedelta(days=10)
    assert ledger.exhaustion == "from the account's forecast"
    # The forecast is the account's projection: the same daily figures for the month's rest.
    projection = projections.project_scope(session=session, scope="account:prod", today=today)
    month_rest = {
        dt.date.fromisoformat(p["day"]): p["forecast"]
        for p in projection.daily
        if "forecast" in p and p["day"] > today.isoformat()
    }
    ahead = dict(
        projections.forecast_daily(session=session, scope="account:prod", today=today, days=40)
    )
    assert month_rest and all(ahead[d] == pytest.approx(v) for d, v in month_rest.items())
    assert [left for d, left, projected in ledger.burn if projected][:2] == [
        Decimal(85),
        Decimal(75),
    ]


def test_no_history_means_no_projected_exhaustion(session: Session) -> None:
    add_account(session, "idle", "openai")
    credits.add_grant(session=session, account="idle", amount="10", starts_on=day(1), actor="a")
    (ledger,) = credits.ledger(session=session, today=day(5))
    assert ledger.exhausted_on is None and ledger.exhaustion == "no usage to project from"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "0"}, "the amount must be more than 0 USD"),
        ({"amount": "ten"}, "the amount 'ten' is not a number of US dollars"),
        ({"starts_on": "2026-3-1"}, "the start date '2026-3-1' is not a date"),
        ({"starts_on": None}, "the start date is missing"),
        ({"expires_on": "2026-03-01"}, "the expiry date 2026-03-01 must be after the start"),
        ({"priority": "first"}, "the priority 'first' is not a whole number"),
        ({"priority": -1}, "the priority must be from 0 to 1000"),
        ({"currency": "dollars"}, "currency 'dollars' is not a three-letter ISO code"),
        ({"account": "nope"}, "no account named 'nope'"),
    ],
)
def test_bad_grants_are_refused_and_nothing_is_written(
    session: Session, fields: dict[str, object], message: str
) -> None:
    add_account(session, "prod", "openai")
    raw: dict[str, object] = {"account": "prod", "amount": "10", "starts_on": "2026-03-01"}
    with pytest.raises(Exception, match=message) as refused:
        credits.add_grant(session=session, actor="fin", **{**raw, **fields})  # type: ignore[arg-type]
    assert isinstance(refused.value, InvalidInput) or "no account" in message
    assert session.scalar(select(CreditGrant.id)) is None


def test_removing_a_grant_is_audited(session: Session) -> None:
    add_account(session, "prod", "openai")
    label = credits.add_grant(
        session=session, account="prod", amount="10", starts_on=day(1), actor="fin"
    )
    grant_id = session.scalar(select(CreditGrant.id))
    assert label == f"#{grant_id}: 10.00 USD on prod from 2026-03-01, no expiry (priority 1)"
    assert credits.remove_grant(session=session, grant_id=grant_id, actor="fin") == label
    assert session.scalar(select(AuditLog.target).where(AuditLog.action == "credit.remove"))
