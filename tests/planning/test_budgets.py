"""Budgets on the organisation, a service or an account: set, read, list, CLI."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.factories import add_account, add_usage
from tracker.core import units
from tracker.core.errors import InvalidInput, NotFound
from tracker.models import AuditLog
from tracker.planning import budgets

TODAY = dt.date(2026, 5, 20)


def test_set_and_get_each_scope(session):
    acc = add_account(session, "prod")
    add_account(session, "other", budget="40")
    budgets.set_budget(session=session, scope="org", monthly=Decimal("1000"))
    budgets.set_budget(session=session, scope="service:openai", monthly=Decimal("500.5"))
    budgets.set_budget(session=session, scope="account:prod", monthly=Decimal("250"))
    assert budgets.get_budget(session=session, scope="org") == Decimal("1000.00")
    assert budgets.get_budget(session=session, scope="service:openai") == Decimal("500.50")
    assert acc.monthly_budget == Decimal("250.00")
    budgets.set_budget(session=session, scope="org", monthly=Decimal("1200"))
    assert budgets.get_budget(session=session, scope="org") == Decimal("1200.00")
    # Cleared: the organisation falls back to the sum of the accounts' budgets.
    budgets.set_budget(session=session, scope="org", monthly=None)
    assert budgets.get_budget(session=session, scope="org") == Decimal("290.00")
    actions = session.scalars(select(AuditLog.action)).all()
    assert actions.count("budget.set") == 5


@pytest.mark.parametrize("raw", ["", "service:", "service:nope", "account", "account: "])
def test_bad_scopes_are_refused(raw):
    with pytest.raises(InvalidInput, match="scope|service"):
        budgets.parse_scope(raw or "nothing")


@pytest.mark.parametrize("raw", ["-1", "abc", "NaN", "1e12"])
def test_bad_amounts_are_refused(raw):
    with pytest.raises(InvalidInput):
        units.parse_money(raw, what="budget")


def test_money_formats():
    assert units.parse_money("$1,500", what="budget") == Decimal("1500.00")


def test_unknown_account_is_not_found(session):
    # Shown by the app and the CLI alike: the message names the accounts, not a command.
    with pytest.raises(
        NotFound, match="no account named 'ghost' \\(no account is connected yet\\)"
    ):
        budgets.set_budget(session=session, scope="account:ghost", monthly=Decimal(1))
    for name in ("beta", "alpha"):
        add_account(session, name)
    with pytest.raises(NotFound, match="\\(accounts: alpha, beta\\)$"):
        budgets.set_budget(session=session, scope="account:ghost", monthly=Decimal(1))
    for i in range(12):
        add_account(session, f"extra-{i:02d}")
    with pytest.raises(NotFound, match="extra-09 and 2 more\\)$"):
        budgets.set_budget(session=session, scope="account:ghost", monthly=Decimal(1))


def test_spend_and_list_per_scope(session):
    a = add_account(session, "prod", budget="100")
    b = add_account(session, "claude", provider="anthropic")
    add_usage(session, a, TODAY - dt.timedelta(days=1), "30.25")
    add_usage(session, a, TODAY.replace(day=1) - dt.timedelta(days=1), "999")  # April
    add_usage(session, b, TODAY, "10.10", billed=False)
    budgets.set_budget(session=session, scope="org", monthly=Decimal("200"))
    budgets.set_budget(session=session, scope="service:anthropic", monthly=Decimal("20"))
    views = {v.scope: v for v in budgets.list_budgets(session=session, today=TODAY)}
    assert views["org"].spent == Decimal("40.35") and views["org"].used_pct == Decimal("40.35") / 2
    assert views["service:anthropic"].spent == Decimal("10.10")
    assert views["account:prod"].spent == Decimal("30.25")
    assert views["account:prod"].used_pct == Decimal("30.25")
    assert "account:claude" not in views


def test_cli_budgets(cli):
    assert cli("budgets", "set", "--scope", "org", "--monthly", "1500").code == 0
    out = cli("budgets", "set", "--scope", "service:openai", "--monthly", "$300")
    assert out.code == 0 and "$300.00" in out.out
    listed = cli("budgets", "list", "--json")
    assert listed.code == 0
    data = {row["scope"]: row for row in json.loads(listed.out)}
    assert data["org"]["monthly_budget"] == "1500.00"
    assert data["service:openai"]["monthly_budget"] == "300.00"
    text = cli("budgets", "list")
    assert "$1,500.00" in text.out
    bad = cli("budgets", "set", "--scope", "account:ghost", "--monthly", "5")
    assert bad.code == 1 and bad.err.count("\n") == 1 and "ghost" in bad.err
    assert cli("budgets", "set", "--scope", "org", "--clear").code == 0
