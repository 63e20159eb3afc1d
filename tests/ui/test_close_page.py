"""AppTests for the Month-end close page: a finance user prepares last month, the same user
cannot approve it, another finance user or an admin does; the snapshot's figures, the
journal download, reopening (an admin, with a reason) and the GL accounts form; viewers
cannot open it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.factories import add_chart_of_accounts, add_usage, add_user
from tests.factories.dashboard import expected_cost
from tests.ui.test_app import AppAs, errors, metrics, today
from tracker.closing import ledger, periods
from tracker.core.units import month_bounds, month_start
from tracker.models import Account, AuditLog
from tracker.ui.components import money

PAGE = "pages/close.py"


def last_month() -> dt.date:
    return month_start(month_start(today()) - dt.timedelta(days=1))


def open_page(app_as: AppAs, user: str = "fin", role: str = "finance") -> AppTest:
    at = app_as(user, role).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):  # noqa: ANN201 - AppTest's element type is internal
    return next(b for b in at.button if b.label == label)


def successes(at: AppTest) -> list[str]:
    return [s.value.replace("\\", "") for s in at.success]


@pytest.fixture
def books(seeded_db: Engine) -> Engine:
    """The seeded database with a chart of accounts and a second finance user, fay."""
    with Session(seeded_db) as session, session.begin():
        add_chart_of_accounts(session)
        add_user(session, "fay", "finance")
    return seeded_db


def test_viewers_cannot_open_it(app_as: AppAs) -> None:
    at = app_as("vic", "viewer").run()
    with pytest.raises(ValueError):
        at.switch_page(PAGE).run()


def test_finance_prepares_and_another_person_approves(app_as: AppAs, books: Engine) -> None:
    first, last = month_bounds(last_month())
    expected = expected_cost(first, last, today())
    at = open_page(app_as)
    assert at.selectbox(key="close_month").value == first  # the month just ended
    button(at, f"Prepare the close of {first:%B %Y}").click().run()
    assert not errors(at), errors(at)
    assert any(s.startswith(f"Prepared {first:%B %Y}: {money(expected)}") for s in successes(at))
    assert metrics(at)["Total"] == money(expected)

    # The preparer cannot approve: refused with the reason, the month stays prepared.
    button(at, "Approve and close").click().run()
    assert any("fin prepared" in e and "two people close a month" in e for e in errors(at))
    with Session(books) as session:
        assert periods.status_of(session=session, month=first) == "prepared"

    # Another finance user approves it.
    other = open_page(app_as, "fay", "finance")
    button(other, "Approve and close").click().run()
    assert not errors(other), errors(other)
    assert f"Closed {first:%B %Y}." in successes(other)
    assert any(b.label == "Download the journal entry (CSV)" for b in other.get("download_button"))
    assert not [b for b in other.button if b.label == "Reopen the month"]  # admins only
    with Session(books) as session:
        snap = periods.snapshot(session=session, month=first)
        signed = session.execute(
            select(AuditLog.actor, AuditLog.action).where(AuditLog.action.like("period.%"))
        ).all()
    assert snap is not None and snap.state == "closed" and snap.total == expected
    assert (snap.prepared_by, snap.approved_by) == ("fin", "fay")
    assert signed == [("fin", "period.prepare"), ("fay", "period.approve")]


def test_a_closed_month_shows_its_snapshot_not_later_usage(app_as: AppAs, books: Engine) -> None:
    first = last_month()
    with Session(books) as session, session.begin():
        periods.prepare(session=session, month=first, actor="fin")
        snap = periods.approve(session=session, month=first, actor="alice")
        account = session.scalar(select(Account).where(Account.name == "OpenAI Prod"))
        assert account is not None
        add_usage(session, account, first + dt.timedelta(days=1), "100")  # a late sync
    at = open_page(app_as, "alice", "admin")
    assert metrics(at)["Total"] == money(snap.total)  # not + $100
    frame = at.dataframe[0].value.set_index("month")
    row = frame.loc[f"{first:%Y-%m}"]
    assert Decimal(str(row["closed_total"])) == snap.total.quantize(Decimal("0.01"))
    assert Decimal(str(row["current_total"])) == (snap.total + 100).quantize(Decimal("0.01"))


def test_an_admin_reopens_with_a_reason(app_as: AppAs, books: Engine) -> None:
    first = last_month()
    with Session(books) as session, session.begin():
        periods.prepare(session=session, month=first, actor="fin")
        periods.approve(session=session, month=first, actor="fay")
    at = open_page(app_as, "alice", "admin")
    button(at, "Reopen the month").click().run()
    assert any("give the reason" in e for e in errors(at)), errors(at)
    next(t for t in at.text_input if t.label.startswith("Reason")).set_value("Invoice differs")
    button(at, "Reopen the month").click().run()
    assert not errors(at), errors(at)
    assert f"Reopened {first:%B %Y}; its snapshot is kept as history." in successes(at)
    with Session(books) as session:
        assert periods.status_of(session=session, month=first) == "open"
        [kept] = periods.history(session=session, month=first)
    assert (kept.reopened_by, kept.reopen_reason) == ("alice", "Invoice differs")


def test_finance_sets_the_gl_accounts(app_as: AppAs, seeded_db: Engine) -> None:
    at = open_page(app_as)
    for code, name, kind in (("6100", "AI services", "expense"), ("2150", "Accrued", "liability")):
        at.text_input(key="gl_code").set_value(code)
        at.text_input(key="gl_name").set_value(name)
        at.selectbox(key="gl_kind").set_value(kind)
        button(at, "Save account").click().run()
        assert f"Saved GL account {code}." in successes(at), errors(at)
    at.selectbox(key="close_gl_expense").set_value("6100")
    at.selectbox(key="close_gl_liability").set_value("2150")
    button(at, "Save defaults").click().run()
    assert "Saved the default GL accounts." in successes(at), errors(at)
    with Session(seeded_db) as session:
        assert ledger.gl_defaults(session=session) == ledger.GlDefaults("6100", "2150")
        actions = session.scalars(select(AuditLog.action).where(AuditLog.actor == "fin")).all()
    assert actions == ["gl.account_save", "gl.account_save", "gl.defaults"]
