"""Teams, dated mappings and shared-cost rules: a chargeback that adds up to the cent.

On SQLite and PostgreSQL: spend goes to the most specific mapping in force on its day
(user, API key, project, account), the rest is "Unassigned"; even, fixed and proportional rules
move shared buckets; the teams always add up to the organisation's total exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from tracker.attribution import teams
from tracker.attribution.chargeback import Share, TeamShares, chargeback, team_daily, team_spend
from tracker.core.errors import InvalidInput, NotFound
from tracker.costs.spend import ROW_SPEND
from tracker.exports.export import export
from tracker.models import AuditLog, CostSource, UsageRecord
from tracker.providers import accounts

NOV = dt.date(2026, 11, 1)
D = Decimal


def usage(session, account_id, day, *, project="", key="", user="", model="gpt-4o", cost="0"):  # type: ignore[no-untyped-def]
    session.add(
        UsageRecord(
            account_id=account_id,
            day=day,
            model=model,
            project_id=project,
            api_key_id=key,
            user_id=user,
            input_tokens=1000,
            billed_cost=D(cost),
            cost_source=CostSource.BILLED,
        )
    )


@pytest.fixture
def org(session, cipher):  # type: ignore[no-untyped-def]
    """Two accounts' November: $100.003 on project 'web' (key k1 $40, k2 $30.003, no key
    $30), $20 on project 'ml', $7 in Groq (no project), $5 in October."""
    openai = accounts.add_account(
        session=session, cipher=cipher, provider="openai", name="oa", api_key="sk-admin-0123456789"
    )
    groq = accounts.add_account(
        session=session, cipher=cipher, provider="groq", name="gq", api_key="gsk_0123456789abc"
    )
    usage(session, openai.id, NOV, project="web", key="k1", cost="40")
    usage(session, openai.id, NOV + dt.timedelta(days=20), project="web", key="k2", cost="30.003")
    usage(session, openai.id, NOV + dt.timedelta(days=3), project="web", cost="30")
    usage(session, openai.id, NOV + dt.timedelta(days=9), project="ml", cost="20")
    usage(session, groq.id, NOV + dt.timedelta(days=2), model="llama", cost="7")
    usage(session, openai.id, dt.date(2026, 10, 31), project="web", cost="5")
    session.flush()
    for name, center, gl in [
        ("Web", "CC-100", "6100"),
        ("ML", "CC-200", "6200"),
        ("Platform", None, None),
    ]:
        teams.add_team(session=session, name=name, cost_center=center, gl_account=gl, actor="t")
    return session


def org_total(session, month=NOV) -> Decimal:  # type: ignore[no-untyped-def]
    first = month
    last = dt.date(2026, 11, 30)
    total = session.scalar(
        select(func.sum(ROW_SPEND)).where(UsageRecord.day >= first, UsageRecord.day <= last)
    )
    return Decimal(total).quantize(Decimal("0.000001"))


def test_spend_goes_to_the_most_specific_mapping_in_force(org) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_mapping(
        session=session, kind="api_key", value="k2", team="ML", valid_from=NOV, actor="t"
    )
    # ML owns project ml only from Nov 15: its Nov 10 spend stays unassigned.
    teams.add_mapping(
        session=session,
        kind="project",
        value="ml",
        team="ML",
        valid_from=dt.date(2026, 11, 15),
        actor="t",
    )
    result = chargeback(session=session, month=NOV)
    assert result.by_team() == {
        "ML": D("30.003"),  # key k2 beats project web
        "Unassigned": D("27"),  # ml before Nov 15, and Groq
        "Web": D("70"),
    }
    assert result.total == org_total(session) == D("127.003")
    web = [p for p in result.pieces if p.team == "Web"]
    assert {(p.cost_center, p.gl_account, p.method) for p in web} == {("CC-100", "6100", "direct")}


def test_an_account_mapping_catches_what_nothing_more_specific_does(org) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="account", value="gq", team="ML", valid_from=NOV, actor="t"
    )
    assert chargeback(session=session, month=NOV).by_team()["ML"] == D("7")


@pytest.mark.parametrize(
    ("method", "targets", "expected"),
    [
        # Web's keys are $70.003; the unassigned $57 (ml $20, web without a key $30, Groq
        # $7) is split over Web and ML.
        ("even", [("Web", None), ("ML", None)], {"ML": D("28.5"), "Web": D("98.503")}),
        ("fixed", [("Web", "70"), ("ML", "30")], {"ML": D("17.1"), "Web": D("109.903")}),
        # By the teams' own spend: Web $40 + $30.003 direct, ML none: all to Web.
        ("proportional", [("Web", None), ("ML", None)], {"Web": D("127.003")}),
    ],
)
def test_shared_cost_rules_preserve_the_total_to_the_cent(org, method, targets, expected) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="api_key", value="k1", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_mapping(
        session=session, kind="api_key", value="k2", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_rule(
        session=session,
        source="Unassigned",
        method=method,
        targets=targets,
        valid_from=NOV,
        actor="t",
    )
    result = chargeback(session=session, month=NOV)
    assert result.by_team() == expected
    assert result.total == org_total(session)
    shared = [p for p in result.pieces if p.method.startswith("shared_")]
    assert shared and {p.shared_from for p in shared} == {"Unassigned"}


def test_a_platform_team_shares_evenly_then_proportionally(org) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_mapping(
        session=session, kind="project", value="ml", team="ML", valid_from=NOV, actor="t"
    )
    teams.add_mapping(
        session=session, kind="account", value="gq", team="Platform", valid_from=NOV, actor="t"
    )
    teams.add_rule(session=session, source="Platform", method="even", valid_from=NOV, actor="t")
    result = chargeback(session=session, month=NOV)
    assert result.by_team() == {"ML": D("23.5"), "Web": D("103.503")}
    assert result.total == org_total(session)


def test_bad_mappings_and_rules_are_refused_with_a_reason(org) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    with pytest.raises(InvalidInput, match="mapped to Web"):
        teams.add_mapping(
            session=session,
            kind="project",
            value="web",
            team="ML",
            valid_from=dt.date(2026, 11, 20),
            actor="t",
        )
    with pytest.raises(NotFound, match="no team named 'Nope'"):
        teams.add_mapping(
            session=session, kind="project", value="x", team="Nope", valid_from=NOV, actor="t"
        )
    with pytest.raises(InvalidInput, match="add up to 90"):
        teams.add_rule(
            session=session,
            source="Platform",
            method="fixed",
            targets=[("Web", "60"), ("ML", "30")],
            valid_from=NOV,
            actor="t",
        )
    with pytest.raises(InvalidInput, match="Unassigned"):
        teams.add_team(session=session, name="unassigned", actor="t")
    with pytest.raises(NotFound, match="no account named 'gqq'"):
        teams.add_mapping(
            session=session, kind="account", value="gqq", team="ML", valid_from=NOV, actor="t"
        )
    assert session.scalar(select(func.count()).where(AuditLog.action == "team.map")) == 1


def test_mappings_import_from_csv_all_or_nothing(org) -> None:
    session = org
    good = (
        "kind,value,team,valid_from,valid_to\n"
        "project,web,Web,2026-11-01,\n"
        "api_key,k2,ML,2026-11-01,2026-12-01\n"
    )
    assert teams.import_mappings(session=session, stream=io.StringIO(good), actor="t") == 2
    bad = "kind,value,team,valid_from\nproject,ml,ML,2026-11-01\nproject,x,Nobody,2026-11-01\n"
    with pytest.raises(InvalidInput, match="line 3: no team named 'Nobody'"):
        teams.import_mappings(session=session, stream=io.StringIO(bad), actor="t")
    assert len(teams.list_mappings(session=session)) == 2
    assert chargeback(session=session, month=NOV).by_team()["ML"] == D("30.003")


def test_the_command_line_keeps_teams_and_prints_the_chargeback(
    cli, committed_db, tmp_path
) -> None:
    assert cli("teams", "add", "Web", "--cost-center", "CC-100", "--gl-account", "6100").code == 0
    assert cli("teams", "add", "ML").code == 0
    mapped = cli("teams", "map", "--project", "web", "--team", "Web", "--from", "2026-11-01")
    assert mapped.code == 0 and "project web -> Web" in mapped.out
    refused = cli("teams", "map", "--project", "web", "--team", "ML", "--from", "2026-11-02")
    assert refused.code == 1 and "mapped to Web" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    shared = cli(
        "teams", "share", "--source", "Unassigned", "--method", "fixed",
        "--team", "Web=60", "--team", "ML=40", "--from", "2026-11-01",
    )  # fmt: skip
    assert shared.code == 0 and "Unassigned -> Web 60%, ML 40% (fixed)" in shared.out
    mappings = tmp_path / "m.csv"
    mappings.write_text("kind,value,team,valid_from\napi_key,k9,ML,2026-11-01\n")
    assert "imported 1 mapping(s)" in cli("teams", "import", str(mappings)).out
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"kind,value,team,valid_from\napi_key,k\xe9,ML,2026-11-01\n")
    refused = cli("teams", "import", str(latin))
    assert refused.code == 1 and "is not UTF-8 text" in refused.err
    listed = cli("teams", "list", "--json")
    assert [t["name"] for t in json.loads(listed.out)["teams"]] == ["ML", "Web"]
    result = cli("teams", "chargeback", "--month", "2026-11", "--json")
    assert result.code == 0 and json.loads(result.out)["total"] == "0"


def test_usage_exports_carry_the_team_cost_center_and_gl_account(org) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    out = io.StringIO()
    export(session=session, fmt="csv", start=NOV, end=dt.date(2026, 11, 30), out=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    by_project = {(r["project_id"], r["team"], r["cost_center"], r["gl_account"]) for r in rows}
    assert ("web", "Web", "CC-100", "6100") in by_project
    assert ("ml", "Unassigned", "", "") in by_project


def test_ending_a_mapping_keeps_its_history_and_frees_the_key(org) -> None:
    session = org
    first = teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    teams.end_mapping(
        session=session, mapping_id=first.id, valid_to=dt.date(2026, 11, 15), actor="t"
    )
    teams.add_mapping(
        session=session,
        kind="project",
        value="web",
        team="ML",
        valid_from=dt.date(2026, 11, 15),
        actor="t",
    )
    by_team = chargeback(session=session, month=NOV).by_team()
    # Web keeps Nov 1 ($40) and Nov 4 ($30); ML gets Nov 21 ($30.003).
    assert (by_team["Web"], by_team["ML"]) == (D("70"), D("30.003"))
    with pytest.raises(InvalidInput, match="end it after that day"):
        teams.end_mapping(session=session, mapping_id=first.id, valid_to=NOV, actor="t")


def test_a_month_without_mapping_changes_reads_whole_months_to_the_same_result(
    org, monkeypatch
) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_rule(session=session, source="Unassigned", method="even", valid_from=NOV, actor="t")
    fast = chargeback(session=session, month=NOV)
    monkeypatch.setattr(teams.TeamResolver, "changes_within", lambda self, a, b: True)
    assert chargeback(session=session, month=NOV) == fast


def test_a_user_mapping_beats_the_key_and_the_pieces_name_the_user(org, cipher) -> None:
    session = org
    openai = accounts.get_account(session=session, name="oa")
    # Two people on key k1 on Nov 5: Ada's $3 goes to ML, Tom's $2 stays with k1's team.
    usage(session, openai.id, NOV + dt.timedelta(days=4), project="web", key="k1", user="u_ada",
          cost="3")  # fmt: skip
    usage(session, openai.id, NOV + dt.timedelta(days=4), project="web", key="k1", user="u_tom",
          cost="2")  # fmt: skip
    session.flush()
    teams.add_mapping(
        session=session, kind="api_key", value="k1", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_mapping(
        session=session, kind="user", value="u_ada", team="ML", valid_from=NOV, actor="t"
    )
    result = chargeback(session=session, month=NOV)
    assert result.by_team()["ML"] == D("3")
    assert result.by_team()["Web"] == D("42")  # k1's $40 and Tom's $2
    assert {(p.team, p.user) for p in result.pieces if p.user} == {
        ("ML", "u_ada"),
        ("Web", "u_tom"),
    }
    assert result.total == org_total(session)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOV, dt.date(2026, 11, 30)),  # a whole month: no per-day read
        (NOV, dt.date(2026, 11, 21)),  # to the month's last day with usage
        (NOV, dt.date(2026, 11, 10)),  # part of a month
        (dt.date(2026, 11, 4), dt.date(2026, 11, 30)),
        (dt.date(2026, 10, 1), dt.date(2026, 11, 3)),  # across months
    ],
)
def test_team_spend_is_team_daily_summed(org, start, end) -> None:
    session = org
    teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_rule(
        session=session, source="Unassigned", method="proportional", valid_from=NOV, actor="t"
    )
    daily = team_daily(session=session, start=start, end=end)
    assert team_spend(session=session, start=start, end=end) == {
        team: sum(days.values()) for team, days in daily.items() if sum(days.values())
    }


def test_team_shares_split_one_charge_as_the_chargeback_moves_buckets(org) -> None:
    """Per charge (the FOCUS 1.4 export's allocated charges): the rules in force, in order,
    with the chargeback's weights; chained rules compose; spend not above zero stays."""
    session = org
    teams.add_mapping(
        session=session, kind="project", value="web", team="Web", valid_from=NOV, actor="t"
    )
    teams.add_mapping(
        session=session, kind="project", value="ml", team="ML", valid_from=NOV, actor="t"
    )
    # Unassigned (Groq's $7) goes evenly to Platform and Web; Platform's then to Web and ML in
    # proportion to their own spend ($100.003 and $20).
    teams.add_rule(
        session=session,
        source="Unassigned",
        method="even",
        targets=[("Platform", None), ("Web", None)],
        valid_from=NOV,
        actor="t",
    )
    teams.add_rule(
        session=session, source="Platform", method="proportional", valid_from=NOV, actor="t"
    )
    shares = TeamShares(session, teams.TeamResolver(session), NOV)
    assert shares.of("ML") == (Share("ML", 1, "direct", None),)
    assert shares.of("Unassigned", positive=False) == (Share("Unassigned", 1, "direct", None),)
    parts = shares.of("Unassigned")
    total = sum(p.weight for p in parts)
    found = {(p.team, p.method, p.shared_from): Fraction(p.weight, total) for p in parts}
    web_own, ml_own = Fraction(100_003_000), Fraction(20_000_000)
    platform_share = Fraction(1, 2) / (web_own + ml_own)
    # Web holds two parts: one from each rule, each with its own method.
    assert found == {
        ("Web", "shared_even", "Unassigned"): Fraction(1, 2),
        ("Web", "shared_proportional", "Platform"): platform_share * web_own,
        ("ML", "shared_proportional", "Platform"): platform_share * ml_own,
    }
    weights = {"ML": platform_share * ml_own}
    # The $7 split by these shares is the chargeback's, to the micro-dollar.
    by_team = chargeback(session=session, month=NOV).by_team()
    assert abs(
        by_team["ML"] - D(20) - D(7) * D(weights["ML"].numerator) / D(weights["ML"].denominator)
    ) <= D("0.000001")
