"""AppTests for the Chargeback page: who may open it, teams that add up to the cent, and the
forms that add teams, mappings and shared-cost rules (audited, re-checked server-side)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.factories.dashboard import expected_cost
from tests.ui.test_app import AppAs, errors, metrics, today
from tracker.attribution import teams
from tracker.attribution.chargeback import chargeback
from tracker.core.units import month_start
from tracker.models import AuditLog
from tracker.ui.components import money

PAGE = "pages/chargeback.py"


def open_page(app_as: AppAs, user: str = "fin", role: str = "finance") -> AppTest:
    at = app_as(user, role).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):  # noqa: ANN201 - AppTest's element type is internal
    return next(b for b in at.button if b.label == label)


def test_viewers_cannot_open_it(app_as: AppAs) -> None:
    at = app_as("vic", "viewer").run()
    with pytest.raises(ValueError):
        at.switch_page(PAGE).run()


def test_teams_add_up_to_the_month_to_the_cent(app_as: AppAs, seeded_db: Engine) -> None:
    first = month_start(today())
    with Session(seeded_db) as session, session.begin():
        teams.add_team(session=session, name="Web", cost_center="CC-100", actor="t")
        teams.add_team(session=session, name="ML", actor="t")
        teams.add_mapping(
            session=session, kind="account", value="OpenAI Prod", team="Web",
            valid_from=dt.date(2020, 1, 1), actor="t",
        )  # fmt: skip
        teams.add_rule(
            session=session, source="Unassigned", method="even", valid_from=first, actor="t"
        )
    with Session(seeded_db) as session:
        result = chargeback(session=session, month=first)
    month_total = expected_cost(first, today(), today())
    assert result.total == month_total and month_total > 0
    at = open_page(app_as)
    assert metrics(at)["Charged back"] == money(month_total)
    assert metrics(at)["Unassigned"] == money(Decimal(0))  # shared out evenly
    grid = at.dataframe[0].value
    assert list(grid["team"])[-1] == "Total"
    shown = grid.set_index("team")["Total"]
    assert Decimal(str(shown["Total"])) == month_total.quantize(Decimal("0.01"))
    by_team = result.by_team()
    assert set(shown.index) - {"Total"} == set(by_team)


def test_finance_adds_a_team_and_a_mapping_and_both_are_audited(
    app_as: AppAs, seeded_db: Engine
) -> None:
    at = open_page(app_as)
    at.text_input[0].set_value("Research")
    at.text_input[1].set_value("CC-300")
    button(at, "Add team").click().run()
    assert not errors(at), errors(at)
    assert "Added team Research." in [s.value.replace("\\", "") for s in at.success]
    mapping_value = next(t for t in at.text_input if t.label.startswith("API key id"))
    mapping_value.set_value("OpenAI Prod")
    next(s for s in at.selectbox if s.label == "Kind").set_value("account")
    button(at, "Add mapping").click().run()
    assert not errors(at), errors(at)
    with Session(seeded_db) as session:
        actions = set(session.scalars(select(AuditLog.action).where(AuditLog.actor == "fin")))
    assert {"team.add", "team.map"} <= actions
    # A second mapping of the same account is refused with the reason, nothing written.
    next(t for t in at.text_input if t.label.startswith("API key id")).set_value("OpenAI Prod")
    next(s for s in at.selectbox if s.label == "Kind").set_value("account")
    button(at, "Add mapping").click().run()
    assert any("mapped to Research" in e for e in errors(at)), errors(at)
