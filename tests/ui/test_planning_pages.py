"""AppTests for Budgets & alerts, Forecast, Anomalies, the overview's projection and the
Accounts page's rate-limit headroom: roles, server-side checks and figures to the cent."""

from __future__ import annotations

import base64
import datetime as dt
import socket
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories.dashboard import expected_cost
from tests.fakes.webhook_server import WebhookServer
from tests.ui.conftest import signed_in
from tests.ui.test_app import AppAs, errors, metrics, today
from tracker.alerts import rules as alert_rules
from tracker.alerts.notify import open_channel
from tracker.core.crypto import CredentialCipher
from tracker.models import Account, AlertEvent, AlertRule, Anomaly, AuditLog, LimitKind, Setting
from tracker.planning import projections
from tracker.providers.accounts import add_account
from tracker.providers.billing import SpendLimit, record_spend_limits
from tracker.reporting.forecast import floor_to_spend
from tracker.ui.components import money

CIPHER = CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))

CENT = Decimal("0.01")
BUDGETS = "pages/budgets.py"
FORECAST = "pages/forecast.py"
OVERVIEW = "pages/overview.py"
ANOMALIES = "pages/anomalies.py"


def cents(value: object) -> Decimal:
    """A shown float (already rounded to the cent for display) back to exact cents."""
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def exact(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def button(at: AppTest, label: str):  # noqa: ANN201 - AppTest's element type is internal
    return next(b for b in at.button if b.label == label)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [BUDGETS, FORECAST, ANOMALIES, "pages/exports.py"])
def test_viewer_cannot_open_the_finance_pages(app_as: AppAs, page: str) -> None:
    at = app_as("vic", "viewer").run()
    assert not at.exception
    with pytest.raises(ValueError):
        at.switch_page(page).run()


def _action_script() -> None:
    import streamlit as st

    from tracker.core.errors import PermissionDenied
    from tracker.ui import actions, data

    runtime = data.get_runtime()
    calls = {
        "set_budget": lambda: actions.set_budget(runtime, scope="org", monthly="1"),
        "set_team_budget": lambda: actions.set_budget(runtime, scope="team:Web", monthly="1"),
        "add_rule": lambda: actions.add_rule(
            runtime, kind="budget", scope="org", threshold="", channels=["email:a@example.org"]
        ),
        "disable_rule": lambda: actions.set_rule_enabled(
            runtime, rule_id=int(st.session_state["rule_id"]), enabled=False
        ),
        "remove_rule": lambda: actions.remove_rule(
            runtime, rule_id=int(st.session_state["rule_id"])
        ),
        "check_alerts": lambda: actions.check_alerts(runtime),
    }
    try:
        calls[st.session_state["action"]]()
    except PermissionDenied as exc:
        st.error(str(exc))
    else:
        st.write("done")


@pytest.mark.parametrize(
    "action", ["set_budget", "add_rule", "disable_rule", "remove_rule", "check_alerts"]
)
def test_budgets_admin_only_keeps_finance_out(
    seeded_db: Engine, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finance sets budgets and rules unless the installation keeps them to admins; then the
    # action itself refuses (the page hides its controls too: see the next test).
    monkeypatch.setenv("BUDGETS_ADMIN_ONLY", "true")
    with Session(seeded_db) as session, session.begin():
        rule = alert_rules.add_rule(
            cipher=CIPHER,
            session=session,
            kind="budget",
            channels=["email:ops@example.org"],
            actor="alice",
        )
        rule_id = rule.id
    at = signed_in(AppTest.from_function(_action_script), "fin")
    at.session_state["action"] = action
    at.session_state["rule_id"] = rule_id
    at.run()
    assert not at.exception
    assert errors(at) == ["this action needs the admin role"]
    with Session(seeded_db) as session:
        assert session.get(Setting, "org_monthly_budget") is None
        rules = list(session.scalars(select(AlertRule)))
        assert [(r.id, r.enabled) for r in rules] == [(rule_id, True)]
        assert session.scalars(select(AuditLog).where(AuditLog.actor == "fin")).first() is None


def test_a_viewer_cannot_set_a_team_budget(seeded_db: Engine) -> None:
    from tracker.attribution import teams
    from tracker.models import Team

    with Session(seeded_db) as session, session.begin():
        teams.add_team(session=session, name="Web", actor="alice")
    at = signed_in(AppTest.from_function(_action_script), "vic")
    at.session_state["action"] = "set_team_budget"
    at.run()
    assert not at.exception
    assert errors(at) == ["this action needs the admin or finance role"]
    with Session(seeded_db) as session:
        assert session.scalar(select(Team.monthly_budget)) is None


def test_finance_reads_budgets_without_edit_controls_when_admin_only(
    app_as: AppAs, seeded_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGETS_ADMIN_ONLY", "true")
    at = app_as("fin", "finance")
    at.switch_page(BUDGETS).run()
    assert not at.exception
    assert any("set by admins on this installation" in i.value for i in at.info)
    labels = {b.label for b in at.button}
    assert not labels & {"Save budget", "Add rule", "Check now", "Remove rule"}


def test_finance_sets_the_budget_and_an_alert_rule(app_as: AppAs, seeded_db: Engine) -> None:
    """Finance usually owns the budget: by default it sets budgets and rules, audited."""
    at = app_as("fin", "finance")
    at.switch_page(BUDGETS).run()
    assert not any("Read-only" in i.value for i in at.info)
    at.selectbox(key="budget_scope").select("org")
    at.text_input(key="budget_amount").input("750.00")
    button(at, "Save budget").click().run()
    assert not at.exception
    assert any("Saved the budget of Organisation" in s.value for s in at.success)
    at.selectbox(key="rule_kind").select("budget")
    at.text_area(key="rule_channels").input("email:finance@example.org")
    button(at, "Add rule").click().run()
    assert not at.exception
    with Session(seeded_db) as session:
        assert session.get(Setting, "org_monthly_budget").value == "750.00"
        assert session.scalars(select(AlertRule.created_by)).all() == ["fin"]
        actions_by_fin = set(
            session.scalars(select(AuditLog.action).where(AuditLog.actor == "fin"))
        )
    assert {"budget.set", "alert.add"} <= actions_by_fin, actions_by_fin


# --- budgets & alerts -------------------------------------------------------------------------


def test_budget_figures_equal_the_database_to_the_cent(app_as: AppAs, seeded_db: Engine) -> None:
    day = today()
    start = day.replace(day=1)
    at = app_as("fin", "finance")
    at.switch_page(BUDGETS).run()
    assert not at.exception
    shown = at.dataframe[0].value.set_index("scope_label")
    # No organisation budget is set: it is the sum of the accounts' (100 + 20).
    assert cents(shown.at["Organisation", "monthly_budget"]) == Decimal("120.00")
    assert shown.at["Organisation", "source"] == "sum of accounts"
    assert cents(shown.at["Organisation", "spent"]) == exact(expected_cost(start, day, day))
    for name, budget in (("OpenAI Prod", Decimal(100)), ("Anthropic Team", Decimal(20))):
        spent = expected_cost(start, day, day, account=name)
        assert cents(shown.at[f"Account {name}", "spent"]) == exact(spent)
        assert shown.at[f"Account {name}", "used_pct"] == pytest.approx(float(spent / budget * 100))
    with Session(seeded_db) as session:
        org = projections.project_scope(session=session, scope="org", today=day)
    # The model counts complete days only; the month cannot end below the spend so far.
    spent = expected_cost(start, day, day)
    assert cents(shown.at["Organisation", "projected_total"]) == exact(
        max(org.projected_total, spent)
    )
    assert "Groq CSV" not in " ".join(shown.index)  # no budget, so no line


def test_each_provider_cap_is_shown_beside_our_budget(app_as: AppAs, seeded_db: Engine) -> None:
    with Session(seeded_db) as session, session.begin():
        account = session.scalar(select(Account).where(Account.name == "OpenAI Prod"))
        assert account is not None
        caps = [
            SpendLimit(amount=Decimal(60), enforcement="hard (enforcing)"),
            SpendLimit(scope="project:p1", scope_name="support-bot", amount=Decimal(5),
                       account_wide=False),
        ]  # fmt: skip
        record_spend_limits(session, account.id, caps, dt.datetime.now(dt.UTC))
    at = app_as("fin", "finance")
    at.switch_page(BUDGETS).run()
    assert not at.exception
    shown = next(d.value for d in at.dataframe if "provider_cap" in d.value.columns)
    row = shown.set_index("account").loc["OpenAI Prod"]
    assert (row["status"], row["budget_from"]) == ("Cap below budget", "account")
    assert (cents(row["provider_cap"]), cents(row["budget"])) == (Decimal(60), Decimal(100))
    assert "Caps on parts of accounts (1)" in [e.label for e in at.expander]
    assert "spendlimit" in " ".join(str(o) for o in at.selectbox(key="rule_kind").options)


def test_provider_alerts_and_members_limits_are_shown_apart_from_caps(
    app_as: AppAs, seeded_db: Engine
) -> None:
    with Session(seeded_db) as session, session.begin():
        ids = {name: id_ for name, id_ in session.execute(select(Account.name, Account.id))}
        now = dt.datetime.now(dt.UTC)
        alerts = [
            SpendLimit(scope="alert:a1", amount=Decimal(150), enforcement="alert only",
                       kind=LimitKind.ALERT),
            SpendLimit(scope="alert:a2", amount=Decimal(300), enforcement="alert only",
                       kind=LimitKind.ALERT),
        ]  # fmt: skip
        record_spend_limits(session, ids["OpenAI Prod"], alerts, now)  # no cap, two alerts
        members = [
            SpendLimit(scope="member:user_a:month", scope_name="Alice A", email="alice@example.org",
                       amount=Decimal(40), spent=Decimal("10.00"), account_wide=False,
                       kind=LimitKind.MEMBER, note="from seat tier premium"),
            SpendLimit(scope="member:user_z:month", scope_name="Zed", email="zed@example.com",
                       amount=None, spent=Decimal(0), account_wide=False,
                       kind=LimitKind.MEMBER, note="no limit for this period"),
        ]  # fmt: skip
        record_spend_limits(session, ids["Anthropic Team"], members, now)
    at = app_as("fin", "finance")
    at.switch_page(BUDGETS).run()
    assert not at.exception
    caps = next(d.value for d in at.dataframe if "provider_alert" in d.value.columns)
    openai = caps.set_index("account").loc["OpenAI Prod"]
    # The alerts are not a cap: no cap at OpenAI, and the first alert comes after our $100.
    assert openai["status"] == "No cap at the provider" and pd.isna(openai["provider_cap"])
    assert cents(openai["provider_alert"]) == Decimal(150)
    assert openai["alert_status"] == "Alert only, above budget"
    assert "only notifies" in openai["note"]
    anthropic = caps.set_index("account").loc["Anthropic Team"]
    assert pd.isna(anthropic["alert_status"])  # Anthropic keeps no spend alerts
    assert "Members' effective limits (2)" in [e.label for e in at.expander]
    shown = next(d.value for d in at.dataframe if "member" in d.value.columns)
    shown = shown.set_index("member")
    assert (shown.at["Alice A", "user"], cents(shown.at["Alice A", "limit"])) == (
        "alice",
        Decimal(40),
    )
    assert shown.at["Alice A", "used_pct"] == pytest.approx(25.0)
    assert shown.at["Alice A", "source"] == "from seat tier premium"
    assert pd.isna(shown.at["Zed", "user"]) and pd.isna(shown.at["Zed", "limit"])
    assert "Caps on parts of accounts" not in " ".join(e.label for e in at.expander)


def test_admin_sets_a_budget_and_manages_a_rule(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("alice", "admin")
    at.switch_page(BUDGETS).run()
    assert not at.exception
    # Bad input changes nothing and says what to do.
    at.selectbox(key="budget_scope").select("org")
    at.text_input(key="budget_amount").input("lots")
    button(at, "Save budget").click()
    at.run()
    assert any(e.startswith("Not saved:") for e in errors(at))
    with Session(seeded_db) as session:
        assert session.get(Setting, "org_monthly_budget") is None

    at.selectbox(key="budget_scope").select("org")
    at.text_input(key="budget_amount").input("1,500.50")
    button(at, "Save budget").click()
    at.run()
    assert not at.exception
    assert any("Saved the budget of Organisation" in s.value.replace("\\", "") for s in at.success)
    shown = at.dataframe[0].value.set_index("scope_label")
    assert cents(shown.at["Organisation", "monthly_budget"]) == Decimal("1500.50")
    assert shown.at["Organisation", "source"] == "set"

    secret_url = "https://hooks.example.org/services/T000/very-secret-token-abcd"
    at.selectbox(key="rule_kind").select("budget")
    at.selectbox(key="rule_scope").select("account:OpenAI Prod")
    at.text_input(key="rule_threshold").input("80")
    at.text_area(key="rule_channels").input(f"email:finance@example.org\nwebhook:{secret_url}")
    button(at, "Add rule").click()
    at.run()
    assert not at.exception
    assert any("Added alert rule" in s.value.replace("\\", "") for s in at.success)
    rules = at.dataframe[1].value
    assert list(rules["channels"]) == [
        "email:f…@example.org, webhook:https://hooks.example.org/…abcd"
    ]
    assert "very-secret-token" not in rules.to_csv()
    assert "finance@example.org" not in rules.to_csv()
    with Session(seeded_db) as session:
        setting = session.get(Setting, "org_monthly_budget")
        assert setting is not None and setting.value == "1500.50"
        rule = session.scalars(select(AlertRule)).one()
        assert (rule.kind, rule.scope, rule.threshold) == ("budget", "account:OpenAI Prod", 80)
        # The webhook URL is a secret: stored encrypted, like a provider key.
        email, webhook = rule.channels
        assert email == "email:finance@example.org" and "very-secret-token" not in webhook
        assert open_channel(webhook, CIPHER).target == secret_url
        rule_id = rule.id

    at.button(key="toggle_go").click().run()
    assert not at.exception
    with Session(seeded_db) as session:
        assert session.get(AlertRule, rule_id).enabled is False  # type: ignore[union-attr]

    at.button(key="remove_rule_go").click().run()
    assert any("Tick the confirmation box" in e for e in errors(at))
    at.checkbox(key="remove_rule_confirm").check()
    at.button(key="remove_rule_go").click().run()
    assert not at.exception
    with Session(seeded_db) as session:
        assert session.get(AlertRule, rule_id) is None
        actions = set(session.scalars(select(AuditLog.action).where(AuditLog.actor == "alice")))
        assert {"budget.set", "alert.add", "alert.disable", "alert.remove"} <= actions
    assert any("No alert rule yet" in i.value for i in at.info)


def test_finance_sets_a_team_budget_and_forecasts_the_team(
    app_as: AppAs, seeded_db: Engine
) -> None:
    from tracker.attribution import teams
    from tracker.attribution.chargeback import chargeback

    day = today()
    with Session(seeded_db) as session, session.begin():
        teams.add_team(session=session, name="Web", actor="alice")
        teams.add_mapping(
            session=session,
            kind="account",
            value="OpenAI Prod",
            team="Web",
            valid_from=day.replace(day=1) - dt.timedelta(days=120),
            actor="alice",
        )
    at = app_as("fin", "finance")
    at.switch_page(BUDGETS).run()
    assert not at.exception
    assert "Team Web" in at.selectbox(key="budget_scope").options
    at.selectbox(key="budget_scope").select("team:Web")
    at.text_input(key="budget_amount").input("-5")
    button(at, "Save budget").click()
    at.run()
    assert any(e.startswith("Not saved:") for e in errors(at))
    at.selectbox(key="budget_scope").select("team:Web")
    at.text_input(key="budget_amount").input("250")
    button(at, "Save budget").click()
    at.run()
    assert not at.exception
    assert any("Saved the budget of Team Web" in s.value.replace("\\", "") for s in at.success)
    shown = at.dataframe[0].value.set_index("scope_label")
    assert cents(shown.at["Team Web", "monthly_budget"]) == Decimal("250.00")
    with Session(seeded_db) as session:
        spent = chargeback(session=session, month=day).by_team()["Web"]
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "budget.set")).all()
        assert [(a.actor, a.target) for a in audit] == [("fin", "team:Web")]
        assert session.get(Setting, "org_monthly_budget") is None
    # The team's month to date is its chargeback row, to the cent shown.
    assert cents(shown.at["Team Web", "spent"]) == exact(spent)
    assert shown.at["Team Web", "used_pct"] == pytest.approx(float(spent / 250 * 100))

    at.switch_page(FORECAST).run()
    assert not at.exception
    at.selectbox(key="forecast_scope").select("team:Web").run()
    assert not at.exception
    with Session(seeded_db) as session:
        web = projections.project_scope(session=session, scope="team:Web", today=day)
    assert metrics(at)["Projected month-end"] == money(web.projected_total)
    assert metrics(at)["Actual to date"] == money(web.actual_to_date)
    assert "Team Web" in set(at.dataframe[0].value["scope"])


def test_failed_delivery_is_shown_and_check_now_retries(app_as: AppAs, seeded_db: Engine) -> None:
    # A rule that fires now (spend is far above 10 % of the $120 budget) towards a webhook
    # that answers and one nobody listens on: the failure must stay visible, per channel.
    listening = WebhookServer().start()
    with Session(seeded_db) as session, session.begin():
        alert_rules.add_rule(
            cipher=CIPHER,
            session=session,
            kind="budget",
            threshold="10",
            channels=[
                f"webhook:{listening.url('/hook-ok-abcd')}",
                f"webhook:http://127.0.0.1:{_closed_port()}/hook-token-wxyz",
            ],
            actor="alice",
        )
    at = app_as("alice", "admin")
    at.switch_page(BUDGETS).run()
    assert any("No alert has fired yet" in i.value for i in at.info)
    at.button(key="alerts_check").click().run()
    assert not at.exception
    assert any(
        "fired 1 alert(s); delivered 0, failed 1" in s.value.replace("\\", "") for s in at.success
    )
    assert any("1 alert delivery(ies) failed or are waiting" in w.value for w in at.warning)
    assert any("did not reach every channel" in e for e in errors(at))
    events = at.dataframe[-1].value
    assert list(events["delivery"]) == ["partly delivered: 1 of 2"]
    channels = events["channels"].iloc[0]
    assert "…abcd sent" in channels and "…wxyz failed" in channels, channels
    assert events["last_delivery_error"].iloc[0]
    assert "hook-token-wxyz" not in events.to_csv() and "hook-ok" not in events.to_csv()
    assert len(listening.posts) == 1
    with Session(seeded_db) as session:
        event = session.scalars(select(AlertEvent)).one()
        assert event.delivery_status == "failed" and event.delivery_attempts == 1
        assert "alerts.check" in set(session.scalars(select(AuditLog.action)))
    # Checking again retries the delivery and fires nothing new.
    at.button(key="alerts_check").click().run()
    assert any(
        "fired 0 alert(s); delivered 0, failed 1" in s.value.replace("\\", "") for s in at.success
    )
    with Session(seeded_db) as session:
        event = session.scalars(select(AlertEvent)).one()
        assert event.delivery_attempts == 2
    assert len(listening.posts) == 1  # the channel already reached is not sent again
    listening.stop()


# --- forecast and overview ------------------------------------------------------------------


def test_forecast_computed_then_stored_to_the_cent(app_as: AppAs, seeded_db: Engine) -> None:
    day = today()
    with Session(seeded_db) as session:
        # As every page shows it: never below the spend so far, today's included (the same
        # figures as the Overview's).
        org = floor_to_spend(
            projections.project_scope(session=session, scope="org", today=day),
            spent_to_date=expected_cost(day.replace(day=1), day, day),
            today=day,
        )
    at = app_as("fin", "finance")
    at.switch_page(OVERVIEW).run()
    overview = metrics(at)
    assert overview["Projected month-end"] == money(org.projected_total)
    at.switch_page(FORECAST).run()
    assert not at.exception
    assert any("Computed just now" in c.value for c in at.caption)
    shown = metrics(at)
    assert shown["Actual to date"] == money(org.actual_to_date)
    assert shown["Projected month-end"] == money(org.projected_total)
    assert shown["80 % interval"] == f"{money(org.lower)} – {money(org.upper)}"
    assert any("Backtest error" in c.value for c in at.caption)
    assert at.get("plotly_chart")
    table = at.dataframe[0].value.set_index("scope")
    assert cents(table.at["Organisation", "projected_total"]) == exact(org.projected_total)
    assert {"Account OpenAI Prod", "Account Anthropic Team", "Service OpenAI"} <= set(table.index)

    # The worker writes projections; the page then reads those (and says when).
    with Session(seeded_db) as session, session.begin():
        stored = {p.scope: p for p in projections.write_projections(session=session, today=day)}
    at.button(key="refresh_data").click().run()
    assert not at.exception
    assert any("written by the worker" in c.value for c in at.caption)
    at.selectbox(key="forecast_scope").select("account:OpenAI Prod").run()
    assert not at.exception
    openai = floor_to_spend(
        stored["account:OpenAI Prod"],
        spent_to_date=expected_cost(day.replace(day=1), day, day, account="OpenAI Prod"),
        today=day,
    )
    assert metrics(at)["Projected month-end"] == money(openai.projected_total)
    assert metrics(at)["Actual to date"] == money(openai.actual_to_date)


def test_a_scope_with_no_spend_yet_says_so_instead_of_an_empty_chart(
    app_as: AppAs, seeded_db: Engine
) -> None:
    with Session(seeded_db) as session, session.begin():
        add_account(
            session=session,
            cipher=CIPHER,
            provider="deepseek",
            name="DeepSeek New",
            api_key="sk-0123456789abcdef",
        )
    at = app_as("fin", "finance")
    at.switch_page(FORECAST).run()
    at.selectbox(key="forecast_scope").select("account:DeepSeek New").run()
    assert not at.exception
    assert any("No spend yet for Account DeepSeek New" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_overview_shows_the_projection_and_budget_used(app_as: AppAs, seeded_db: Engine) -> None:
    day = today()
    with Session(seeded_db) as session:
        org = projections.project_scope(session=session, scope="org", today=day)
    at = app_as("vic", "viewer").run()
    assert not at.exception
    shown = metrics(at)
    spent = expected_cost(day.replace(day=1), day, day)
    assert shown["Projected month-end"] == money(max(org.projected_total, spent))
    used = (spent / 120 * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert shown["Budget used"] == f"{used} %"


# --- anomalies ----------------------------------------------------------------------------------


def _seed_anomaly(session: Session, day: dt.date) -> int:
    account = session.scalar(select(Account).where(Account.name == "OpenAI Prod"))
    assert account is not None
    # The account-level row for the same day describes the same dollars as the model's.
    session.add(
        Anomaly(
            account_id=account.id,
            model="*",
            day=day,
            actual_cost=Decimal("25.125000"),
            baseline_cost=Decimal("5.000000"),
            score=Decimal("9.5"),
            explanation="all models",
        )
    )
    anomaly = Anomaly(
        account_id=account.id,
        model="gpt-4o",
        day=day,
        actual_cost=Decimal("25.125000"),
        baseline_cost=Decimal("5.000000"),
        score=Decimal("9.5"),
        volume_effect=Decimal("15.004999"),
        mix_effect=Decimal("3.000000"),
        rate_effect=Decimal("2.120001"),
        explanation="tokens 4.0x the usual volume; *not markup*",
    )
    session.add(anomaly)
    session.flush()
    return anomaly.id


def test_anomalies_to_the_cent_and_finance_acknowledges(app_as: AppAs, seeded_db: Engine) -> None:
    with Session(seeded_db) as session, session.begin():
        anomaly_id = _seed_anomaly(session, today() - dt.timedelta(days=2))
    at = app_as("fin", "finance")
    at.switch_page(ANOMALIES).run()
    assert not at.exception
    assert metrics(at) == {"Open anomalies": "2", "Cost above baseline (open)": "$20.13"}
    table = at.dataframe[0].value
    assert set(table["model"]) == {"gpt-4o", "all models"}
    row = table[table["model"] == "gpt-4o"].iloc[0]
    assert (row["account"], row["model"]) == ("OpenAI Prod", "gpt-4o")
    assert [cents(row[c]) for c in ("actual_cost", "baseline_cost", "excess")] == [
        Decimal("25.13"),  # 25.125 half-up
        Decimal("5.00"),
        Decimal("20.13"),
    ]
    assert [cents(row[c]) for c in ("volume_effect", "mix_effect", "rate_effect")] == [
        Decimal("15.00"),
        Decimal("3.00"),
        Decimal("2.12"),
    ]
    assert "id" not in at.dataframe[0].value.columns
    at.selectbox(key="anomaly_ack").select(anomaly_id)
    at.button(key="anomaly_ack_go").click().run()
    assert not at.exception
    assert any("Acknowledged" in s.value.replace("\\", "") for s in at.success)
    assert metrics(at)["Open anomalies"] == "1"
    with Session(seeded_db) as session:
        anomaly = session.get(Anomaly, anomaly_id)
        assert anomaly is not None and anomaly.acknowledged_by == "fin"
        assert (
            session.scalar(
                select(AuditLog.action).where(AuditLog.target == f"anomaly:{anomaly_id}")
            )
            == "anomaly.acknowledge"
        )
    assert "gpt-4o" not in set(at.dataframe[0].value["model"])
    at.toggle(key="anomaly_show_ack").set_value(True).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table[table["model"] == "gpt-4o"].iloc[0]["acknowledged_by"] == "fin"


def test_anomalies_empty_state(app_as: AppAs) -> None:
    at = app_as("alice", "admin")
    at.switch_page(ANOMALIES).run()
    assert not at.exception
    assert any("No anomaly in this period" in i.value for i in at.info)


# --- accounts: rate-limit headroom ------------------------------------------------------------


def test_accounts_page_shows_remaining_vs_limit(app_as: AppAs) -> None:
    at = app_as("alice", "admin")
    at.switch_page("pages/accounts.py").run()
    assert not at.exception
    limits = at.dataframe[1].value
    assert limits[["account", "resource", "remaining", "limit"]].values.tolist() == [
        ["OpenAI Prod", "requests", 499, 500]
    ]
    assert limits["remaining_pct"].iloc[0] == pytest.approx(99.8)
