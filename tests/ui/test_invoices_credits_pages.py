"""AppTests for the Invoices and Credits pages: finance records and reads invoices and credit
grants (audited, re-checked server-side), viewers cannot open them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.factories import add_account, add_usage
from tests.ui.conftest import signed_in
from tests.ui.test_app import AppAs, errors, metrics, today
from tracker.costs import invoices
from tracker.models import Account, AuditLog, CreditGrant, Invoice
from tracker.planning import credits

INVOICES = "pages/invoices.py"
CREDITS = "pages/credits.py"
MONTH = dt.date(2025, 10, 1)


def open_page(app_as: AppAs, page: str, user: str = "fin", role: str = "finance") -> AppTest:
    at = app_as(user, role).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):  # noqa: ANN201 - AppTest's element type is internal
    return next(b for b in at.button if b.label == label)


def successes(at: AppTest) -> list[str]:
    return [s.value.replace("\\", "") for s in at.success]


@pytest.mark.parametrize("page", [INVOICES, CREDITS])
def test_viewers_cannot_open_them(app_as: AppAs, page: str) -> None:
    at = app_as("vic", "viewer").run()
    with pytest.raises(ValueError):
        at.switch_page(page).run()


def seed_invoices(engine: Engine) -> None:
    """October 2025 of a new account billed $200.00; one invoice equal, one 2 % above."""
    with Session(engine) as session, session.begin():
        account = add_account(session, "Billing", "anthropic")
        add_usage(session, account, dt.date(2025, 10, 6), "120.000001")
        add_usage(session, account, dt.date(2025, 10, 7), "79.999999")
        add_usage(session, account, dt.date(2025, 10, 31), "3.5", billed=False)
        for number, amount in (("A-1", "200.00"), ("A-2", "204.08")):
            invoices.add_invoice(
                session=session, actor="fin", provider="anthropic", account="Billing",
                invoice_number=number, period="2025-10", issued_on="2025-11-02", amount=amount,
            )  # fmt: skip


def test_finance_sees_each_invoice_matched_or_flagged_with_its_variance(
    app_as: AppAs, seeded_db: Engine
) -> None:
    seed_invoices(seeded_db)
    at = open_page(app_as, INVOICES)
    shown = metrics(at)
    assert (shown["Matched"], shown["Unmatched"], shown["Within tolerance"]) == ("1", "1", "0")
    table = at.dataframe[0].value.set_index("invoice_id")
    assert table.loc["A-1", "status"] == "Matched"
    assert table.loc["A-2", "status"] == "Unmatched"
    assert table.loc["A-2", "variance"] == pytest.approx(4.08)
    assert table.loc["A-2", "variance_pct"] == pytest.approx(2.0)
    assert "2025-10-31: not billed yet ($3.50 estimated)" in table.loc["A-2", "explanation"]
    # The explaining days of the invoice picked below the list.
    # The invoice explained below the list is the first one that does not match.
    picker = at.selectbox(key="inv_explain")
    assert picker.options[picker.index] == "Billing A-2 (2025-10, Unmatched)"
    picker.select_index(next(i for i, o in enumerate(picker.options) if " A-1 " in o)).run()
    assert not at.exception
    assert list(at.dataframe[1].value["reason"]) == ["Not billed yet"]  # also under a match
    picker.select_index(next(i for i, o in enumerate(picker.options) if " A-2 " in o)).run()
    assert not at.exception
    days = at.dataframe[1].value
    assert list(days["reason"]) == ["Not billed yet"]
    assert list(days["estimated"]) == [3.5]


def test_finance_records_an_invoice_and_a_duplicate_is_refused_keeping_the_form(
    app_as: AppAs, seeded_db: Engine
) -> None:
    at = open_page(app_as, INVOICES)
    at.selectbox(key="inv_account").set_value("OpenAI Prod")
    at.text_input(key="inv_number").set_value("INV-77")
    at.text_input(key="inv_amount").set_value("1,234.56")
    at.text_input(key="inv_po").set_value("PO-1")
    button(at, "Record invoice").click().run()
    assert not errors(at), errors(at)
    assert any(s.startswith("Recorded invoice INV-77 of OpenAI Prod: ") for s in successes(at))
    with Session(seeded_db) as session:
        invoice = session.scalar(select(Invoice).where(Invoice.invoice_number == "INV-77"))
        assert invoice is not None and invoice.amount == Decimal("1234.56")
        assert invoice.po_number == "PO-1" and invoice.created_by == "fin"
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "invoice.add"))
        assert entry is not None and entry.actor == "fin"
    at.text_input(key="inv_number").set_value("INV-77")
    at.text_input(key="inv_amount").set_value("5")
    button(at, "Record invoice").click().run()
    assert any(
        "'INV-77' of OpenAI account 'OpenAI Prod' is already recorded" in e for e in errors(at)
    )
    assert at.text_input(key="inv_amount").value == "5"  # what was typed is kept
    with Session(seeded_db) as session:
        assert len(session.scalars(select(Invoice)).all()) == 1


def test_finance_reads_the_credit_ledger_and_the_provider_balance(
    app_as: AppAs, seeded_db: Engine
) -> None:
    day = today()
    with Session(seeded_db) as session, session.begin():
        account = session.scalar(select(Account).where(Account.name == "OpenAI Prod"))
        assert account is not None
        account.balance_remaining, account.balance_currency = Decimal("1000"), "USD"
        credits.add_grant(
            session=session, account="OpenAI Prod", amount="2000",
            starts_on=day - dt.timedelta(days=40), actor="fin", note="Startup credits",
        )  # fmt: skip
    with Session(seeded_db) as session:
        (expected,) = credits.ledger(session=session, today=day, account="OpenAI Prod")
    at = open_page(app_as, CREDITS)
    balances = at.dataframe[0].value.set_index("account")
    left = float(expected.available.quantize(Decimal("0.01")))
    assert balances.loc["OpenAI Prod", "available"] == pytest.approx(left)
    assert balances.loc["OpenAI Prod", "difference"] == pytest.approx(1000 - left)
    grants = at.dataframe[1].value
    assert list(grants["note"]) == ["Startup credits"]
    assert list(grants["status"]) == ["active"]
    assert not at.exception


def test_finance_adds_a_grant_and_bad_input_changes_nothing(
    app_as: AppAs, seeded_db: Engine
) -> None:
    at = open_page(app_as, CREDITS)
    at.selectbox(key="credit_account").set_value("Anthropic Team")
    at.text_input(key="credit_amount").set_value("lots")
    button(at, "Add grant").click().run()
    assert any("not a number of US dollars" in e for e in errors(at)), errors(at)
    with Session(seeded_db) as session:
        assert session.scalar(select(CreditGrant.id)) is None
    at.text_input(key="credit_amount").set_value("5,000")
    button(at, "Add grant").click().run()
    assert not errors(at), errors(at)
    assert any(s.startswith("Added grant #") for s in successes(at)), successes(at)
    with Session(seeded_db) as session:
        grant = session.scalar(select(CreditGrant))
        assert grant is not None and grant.amount == Decimal("5000")
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "credit.add"))
        assert entry is not None and entry.actor == "fin" and entry.target == "Anthropic Team"
    assert "Anthropic Team" in list(at.dataframe[0].value["account"])


def _add_grant_script() -> None:
    import datetime as dt

    import streamlit as st

    from tracker.core.errors import TrackerError
    from tracker.ui import book_actions, data

    try:
        book_actions.add_grant(
            data.get_runtime(), account="OpenAI Prod", amount="1", starts_on=dt.date(2026, 1, 1)
        )
    except TrackerError as exc:
        st.error(str(exc))


def test_the_actions_check_the_role_server_side(seeded_db: Engine) -> None:
    at = signed_in(AppTest.from_function(_add_grant_script), "vic").run()
    assert errors(at) == ["this action needs the admin or finance role"]
    with Session(seeded_db) as session:
        assert session.scalar(select(CreditGrant.id)) is None
