"""Team budgets: a team's spend is its chargeback (mappings, then shared-cost rules), to the
micro-dollar, on the Budgets page, in alerts and in projections alike."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.factories import add_account, add_usage
from tracker.attribution import teams
from tracker.attribution.chargeback import chargeback, team_daily
from tracker.core.errors import InvalidInput, NotFound
from tracker.models import AuditLog
from tracker.planning import budgets, projections

MAY = dt.date(2026, 5, 1)
TODAY = dt.date(2026, 5, 20)
D = Decimal


@pytest.fixture
def org(session):  # type: ignore[no-untyped-def]
    """Web's and ML's accounts, and a shared account nobody owns, with amounts that do not
    split evenly; some April spend; three teams."""
    web = add_account(session, "web-acct")
    ml = add_account(session, "ml-acct", "anthropic")
    shared = add_account(session, "shared-acct", "groq")
    for i, (w, m, s) in enumerate(
        [("10.000001", "3.333333", "7.000001"), ("0.5", "1.1", "2.000002"), ("4", "0", "1")]
    ):
        day = MAY + dt.timedelta(days=3 * i + 1)
        add_usage(session, web, day, w)
        add_usage(session, ml, day + dt.timedelta(days=1), m)
        add_usage(session, shared, day, s)
    add_usage(session, shared, MAY - dt.timedelta(days=2), "100")  # April
    for name in ("Web", "ML", "Ops"):
        teams.add_team(session=session, name=name, actor="t")
    for account, team in (("web-acct", "Web"), ("ml-acct", "ML")):
        teams.add_mapping(
            session=session,
            kind="account",
            value=account,
            team=team,
            valid_from=dt.date(2026, 1, 1),
            actor="t",
        )
    return session


@pytest.mark.parametrize("method", ["even", "proportional"])
@pytest.mark.parametrize("mapping_changes_in_month", [False, True])
def test_a_teams_month_equals_its_chargeback_to_the_micro_dollar(
    org, method: str, mapping_changes_in_month: bool
) -> None:
    session = org
    teams.add_rule(
        session=session,
        source="Unassigned",
        method=method,
        targets=[("Web", None), ("ML", None), ("Ops", None)],
        valid_from=dt.date(2026, 1, 1),
        actor="t",
    )
    if mapping_changes_in_month:  # the chargeback then reads per day
        teams.add_mapping(
            session=session,
            kind="account",
            value="shared-acct",
            team="Ops",
            valid_from=dt.date(2026, 5, 6),
            actor="t",
        )
    result = chargeback(session=session, month=MAY).by_team()
    assert set(result) >= {"Web", "ML"}
    last = dt.date(2026, 5, 31)
    for team, expected in result.items():
        assert budgets.scope_spend(session=session, scope=f"team:{team}", start=MAY, end=last) == (
            expected
        )
    # Month to date (no spend after today) is the whole month: the Chargeback page's figure.
    assert (
        budgets.scope_spend(session=session, scope="team:Web", start=MAY, end=TODAY)
        == (result["Web"])
    )
    # Per day: each day's share adds up to the month, and the days are the spend's days.
    daily = team_daily(session=session, start=MAY, end=last)
    for team, expected in result.items():
        assert sum(daily[team].values()) == int(expected * 1_000_000)
    assert all(MAY < day <= dt.date(2026, 5, 9) for days in daily.values() for day in days)
    frame = budgets.daily_cost(
        session=session, scope=budgets.Scope("team", "Web"), start=MAY, end=last
    )
    assert list(frame.columns) == ["day", "cost"]
    assert list(frame["day"]) == sorted(daily["Web"])


def test_a_range_across_months_charges_each_month_with_its_own_rules(org) -> None:
    session = org
    # In force from May only: April's shared spend stays unassigned.
    teams.add_rule(
        session=session,
        source="Unassigned",
        method="even",
        targets=[("Ops", None)],
        valid_from=MAY,
        actor="t",
    )
    april = chargeback(session=session, month=dt.date(2026, 4, 1)).by_team()
    may = chargeback(session=session, month=MAY).by_team()
    assert april == {"Unassigned": D("100")}
    both = budgets.scope_spend(
        session=session, scope="team:Ops", start=dt.date(2026, 4, 1), end=dt.date(2026, 5, 31)
    )
    assert both == may["Ops"] == D("10.000003")


def test_set_get_and_list_a_team_budget(org) -> None:
    session = org
    scope = budgets.set_budget(session=session, scope="team:Web", monthly="250", actor="alice")
    assert str(scope) == "team:Web" and budgets.scope_label(str(scope)) == "Team Web"
    assert budgets.get_budget(session=session, scope="team:Web") == D("250")
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "budget.set")).all()
    assert [(a.actor, a.target) for a in audit] == [("alice", "team:Web")]
    views = {v.scope: v for v in budgets.list_budgets(session=session, today=TODAY)}
    assert views["team:Web"].spent == chargeback(session=session, month=MAY).by_team()["Web"]
    assert views["team:Web"].used_pct == views["team:Web"].spent / 250 * 100
    assert "team:ML" not in views
    budgets.set_budget(session=session, scope="team:Web", monthly=None)
    assert budgets.get_budget(session=session, scope="team:Web") is None
    assert "team:Web" not in {v.scope for v in budgets.list_budgets(session=session, today=TODAY)}


def test_an_unknown_team_names_the_teams(org) -> None:
    with pytest.raises(NotFound, match="no team named 'Ghost' \\(teams: "):
        budgets.set_budget(session=org, scope="team:Ghost", monthly="5")
    with pytest.raises(InvalidInput, match="team:NAME"):
        budgets.parse_scope("team:")
    with pytest.raises(InvalidInput, match="per account"):
        budgets.scope_tokens(session=org, scope="team:Web", start=MAY, end=TODAY)


def test_projections_for_a_team_with_a_budget(session) -> None:
    web = add_account(session, "web-acct")
    shared = add_account(session, "shared-acct", "groq")
    for i in range(1, 70):
        add_usage(session, web, TODAY - dt.timedelta(days=i), "10")
        add_usage(session, shared, TODAY - dt.timedelta(days=i), "4")
    for name in ("Web", "Ops"):
        teams.add_team(session=session, name=name, actor="t")
    teams.add_mapping(
        session=session,
        kind="account",
        value="web-acct",
        team="Web",
        valid_from=dt.date(2026, 1, 1),
        actor="t",
    )
    teams.add_rule(
        session=session,
        source="Unassigned",
        method="even",
        targets=[("Web", None), ("Ops", None)],
        valid_from=dt.date(2026, 1, 1),
        actor="t",
    )
    # Only teams with a budget are projected.
    assert "team:Web" not in {
        p.scope for p in projections.project_all(session=session, today=TODAY)
    }
    budgets.set_budget(session=session, scope="team:Web", monthly="300")
    found = {p.scope: p for p in projections.write_projections(session=session, today=TODAY)}
    assert "team:Ops" not in found
    web_p = found["team:Web"]
    # $10 of its own and half the shared $4 a day: $12 a day, flat.
    days_in_may = 31
    assert web_p.actual_to_date == D(12 * (TODAY.day - 1))
    assert web_p.projected_total == D(12 * days_in_may)
    assert web_p.budget == D("300") and web_p.budget_exhausted_on == dt.date(2026, 5, 25)
    alone = projections.project_scope(session=session, scope="team:Web", today=TODAY)
    assert alone.as_json() == web_p.as_json()
    assert json.dumps(alone.as_json())


def test_cli_sets_a_team_budget(cli, committed_db) -> None:
    from sqlalchemy.orm import Session

    with Session(committed_db) as session, session.begin():
        teams.add_team(session=session, name="Web", actor="t")
    out = cli("budgets", "set", "team:Web", "500")
    assert out.code == 0, out.err
    assert "team:Web" in out.out and "$500.00" in out.out
    listed = {row["scope"]: row for row in json.loads(cli("budgets", "list", "--json").out)}
    assert listed["team:Web"]["monthly_budget"] == "500.00"
    bad = cli("budgets", "set", "team:Ghost", "5")
    assert bad.code == 1 and "no team named 'Ghost' (teams: Web)" in bad.err
    for argv in (("team:Web",), ("team:Web", "5", "--clear"), ("5",)):
        wrong = cli("budgets", "set", *argv)
        assert wrong.code == 1 and "budgets set team:Web 500" in wrong.err, argv
    assert cli("budgets", "set", "--scope", "team:Web", "--clear").code == 0
    with Session(committed_db) as session:
        assert budgets.get_budget(session=session, scope="team:Web") is None
