"""The Exports page builds the chosen file for finance and admin, and refuses viewers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.factories.exports import JAN, seed
from tests.ui.conftest import new_app, signed_in
from tracker.identity import users
from tracker.ui.components import money


@pytest.fixture
def seeded(app_env: dict[str, str], committed_db: Engine) -> Decimal:
    with Session(committed_db) as session, session.begin():
        total = seed(session).january_cost
        for name, role in (("fiona", "finance"), ("victor", "viewer")):
            users.add_user(
                session=session,
                username=name,
                email=f"{name}@example.com",
                role=role,
                password="a long enough password 123",
            )
    return total


def _page(username: str, role: str) -> AppTest:
    at = signed_in(new_app(), username, role).run()
    at.switch_page("pages/exports.py").run()
    at.date_input(key="export_range").set_value(JAN).run()
    return at


def _export_as_viewer() -> None:
    import streamlit as st

    from tests.factories.exports import JAN
    from tracker.core.errors import TrackerError
    from tracker.reporting.sources import Dimensions
    from tracker.ui import actions, data

    try:
        actions.prepare_export(
            data.get_runtime(), fmt="csv", start=JAN[0], end=JAN[1], filters=Dimensions()
        )
    except TrackerError as exc:
        st.error(str(exc))
    else:
        st.write("exported")


def test_finance_prepares_a_csv(seeded: Decimal) -> None:
    at = _page("fiona", "finance")
    assert not at.exception
    at.selectbox(key="export_format").set_value("csv").run()
    at.button(key="export_prepare").click().run()
    assert not at.exception and not at.error
    choice, payload, stats = at.session_state["export_file"]
    assert stats.records == 8 and choice[0] == "csv"
    rows = list(csv.DictReader(io.StringIO(payload.decode("utf-8"))))
    assert sum(Decimal(r["cost"] or 0) for r in rows) == seeded == stats.total_cost
    assert any(
        s.value.startswith(f"Ready: 8 usage record(s), total cost {money(seeded)}")
        for s in at.success
    )


def test_finance_prepares_the_focus_1_4_datasets(seeded: Decimal) -> None:
    at = _page("fiona", "finance")
    at.selectbox(key="export_format").set_value("focus-1.4").run()
    assert any(c.value.startswith("FOCUS 1.4 (.zip)") for c in at.caption)
    at.button(key="export_prepare").click().run()
    assert not at.exception and not at.error
    choice, payload, stats = at.session_state["export_file"]
    assert choice[0] == "focus-1.4" and stats.total_cost == seeded
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert {"CostAndUsage.csv", "BillingPeriod.csv", "InvoiceDetail.csv"} <= set(
            archive.namelist()
        )
        rows = list(csv.DictReader(io.StringIO(archive.read("CostAndUsage.csv").decode())))
    assert sum(Decimal(r["BilledCost"]) for r in rows) == seeded


def test_an_empty_selection_is_a_warning_not_a_success(seeded: Decimal) -> None:
    at = _page("fiona", "finance")
    at.date_input(key="export_range").set_value((dt.date(2025, 3, 1), dt.date(2025, 3, 31)))
    at.run()
    at.button(key="export_prepare").click().run()
    assert not at.exception
    assert at.session_state["export_file"][2].records == 0
    assert not at.success
    assert any("No usage record matches" in w.value for w in at.warning)


def test_viewer_is_refused_server_side(seeded: Decimal) -> None:
    # The page is not registered for a viewer; the action behind it checks the role again.
    at = signed_in(new_app(), "victor", "viewer").run()
    with pytest.raises(ValueError):
        at.switch_page("pages/exports.py")
    # What the session claims does not matter.
    at = signed_in(AppTest.from_function(_export_as_viewer), "victor", "finance").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["this action needs the admin or finance role"]
