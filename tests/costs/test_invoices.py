"""Invoices: matched against the synced billed total to the cent, the tolerance setting, the
days that explain a variance, and the all-or-nothing CSV import (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.factories import add_account, add_usage
from tracker.core import migrate
from tracker.core.config import load_settings
from tracker.core.db import make_engine
from tracker.core.errors import ConfigError, InvalidInput
from tracker.costs import invoice_csv, invoices
from tracker.costs.invoices import MatchStatus
from tracker.costs.spend import assign_cost_sources
from tracker.models import Account, AuditLog, CreditGrant, Invoice, UsageRecord
from tracker.planning import credits
from tracker.providers import accounts

OCTOBER = dt.date(2026, 10, 1)


def billed_october(session: Session) -> Account:
    """An OpenAI account whose October bill is $98.000004 over three days (an estimate on a
    billed day is covered and counts no billed money), plus two days not billed yet."""
    account = add_account(session, "prod", "openai")
    add_usage(session, account, dt.date(2026, 10, 2), "40.000001")
    add_usage(session, account, dt.date(2026, 10, 3), "50.000002")
    add_usage(session, account, dt.date(2026, 10, 3), "7.5", billed=False, model="gpt-4o-mini")
    add_usage(session, account, dt.date(2026, 10, 9), "8.000001")
    # Not billed yet: these count as our estimate, never as billed money.
    add_usage(session, account, dt.date(2026, 10, 30), "1.25", billed=False)
    add_usage(session, account, dt.date(2026, 10, 31), "3.5", billed=False)
    # Another month and another account never count toward October's prod bill.
    add_usage(session, account, dt.date(2026, 11, 1), "11")
    add_usage(session, add_account(session, "other", "openai"), dt.date(2026, 10, 2), "13")
    return account


def record(session: Session, amount: str, **fields: object) -> invoices.InvoiceMatch:
    raw = {
        "provider": "openai",
        "account": "prod",
        "invoice_number": "INV-1",
        "period": "2026-10",
        "issued_on": "2026-11-03",
        "due_on": "2026-12-03",
        "amount": amount,
        **fields,
    }
    invoice_id = invoices.add_invoice(session=session, actor="fin", **raw)
    return shown(session, invoice_id)


def shown(session: Session, invoice_id: int, tolerance: str = "1") -> invoices.InvoiceMatch:
    (found,) = invoices.list_invoices(
        session=session, tolerance_pct=Decimal(tolerance), ids=[invoice_id]
    )
    return found


def test_an_invoice_equal_to_the_synced_billed_total_is_matched(session: Session) -> None:
    billed_october(session)
    found = record(session, "98.00")
    assert found.billed == Decimal("98.000004")  # exact, estimates left out
    assert found.status is MatchStatus.MATCHED
    assert found.variance == Decimal("-0.000004")
    assert found.explanation() == ""
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "invoice.add"))
    assert entry is not None and entry.target == "prod/INV-1" and entry.actor == "fin"


@pytest.mark.parametrize(
    ("tolerance", "status"),
    [
        ("1", MatchStatus.UNMATCHED),
        ("1.99", MatchStatus.UNMATCHED),
        ("2", MatchStatus.WITHIN_TOLERANCE),
        ("5", MatchStatus.WITHIN_TOLERANCE),
    ],
)
def test_an_invoice_two_percent_off_is_flagged_and_the_tolerance_decides(
    session: Session, tolerance: str, status: MatchStatus
) -> None:
    billed_october(session)
    invoice_id = record(session, "100.00").id  # 2 % of the invoice above the $98 billed
    found = shown(session, invoice_id, tolerance)
    assert found.status is status
    assert found.variance == Decimal("1.999996")
    assert found.variance_pct == Decimal("2.00")


def test_an_unmatched_invoice_names_the_days_the_provider_has_not_billed(
    session: Session,
) -> None:
    billed_october(session)
    found = record(session, "102.75")
    assert found.status is MatchStatus.UNMATCHED
    assert found.variance == Decimal("4.749996")
    # Largest estimate first; together they explain the variance to the cent.
    assert [(d.day, d.estimated) for d in found.not_billed] == [
        (dt.date(2026, 10, 31), Decimal("3.500000")),
        (dt.date(2026, 10, 30), Decimal("1.250000")),
    ]
    assert found.unbilled_estimate == Decimal("4.750000")
    assert found.changed == []
    assert found.explanation() == (
        "2026-10-31: not billed yet ($3.50 estimated); 2026-10-30: not billed yet ($1.25 estimated)"
    )


def test_a_day_restated_after_the_invoice_was_recorded_explains_the_variance(
    session: Session,
) -> None:
    account = billed_october(session)
    invoice_id = record(session, "98.00").id
    assert shown(session, invoice_id).status is MatchStatus.MATCHED
    # The provider restates 9 October: a re-sync writes the new billed amount.
    session.execute(
        update(UsageRecord)
        .where(UsageRecord.account_id == account.id, UsageRecord.day == dt.date(2026, 10, 9))
        .values(billed_cost=Decimal("10.500001"))
    )
    assign_cost_sources(session=session, start=OCTOBER, end=dt.date(2026, 10, 31))
    found = shown(session, invoice_id)
    assert found.status is MatchStatus.UNMATCHED
    assert found.variance == Decimal("-2.500004")
    assert [(d.day, d.billed_then, d.billed_now) for d in found.changed] == [
        (dt.date(2026, 10, 9), Decimal("8.000001"), Decimal("10.500001"))
    ]
    assert "2026-10-09: billed $8.00 when recorded, $10.50 now" in found.explanation()


def test_an_invoice_in_another_currency_is_stored_as_written_and_not_compared(
    session: Session,
) -> None:
    billed_october(session)
    found = record(session, "91.40", currency="eur")
    assert (found.amount, found.currency) == (Decimal("91.40"), "EUR")
    assert found.status is MatchStatus.NOT_COMPARABLE
    assert found.variance is None and found.billed == Decimal("98.000004")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "12,x"}, "amount '12,x' is not a number of US dollars"),
        ({"amount": "-5"}, "amount must be between 0"),
        ({"amount": "5", "currency": "euro"}, "currency 'euro' is not a three-letter ISO code"),
        ({"period": "2026-13"}, "period '2026-13' is not a month (YYYY-MM)"),
        ({"issued_on": "3/11/2026"}, "issue_date '3/11/2026' is not a date (YYYY-MM-DD)"),
        ({"due_on": "2026-11-01"}, "due_date 2026-11-01 is before issue_date 2026-11-03"),
        ({"provider": "anthropic"}, "account 'prod' belongs to OpenAI, not Anthropic"),
        ({"provider": "acme"}, "provider 'acme' is not one of openai"),
        ({"account": "nope"}, "account 'nope' does not exist"),
        ({"invoice_number": " "}, "invoice_id is empty"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(
    session: Session, fields: dict[str, str], message: str
) -> None:
    billed_october(session)
    given = dict(fields)  # the parameters are shared by both backends' runs
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        record(session, given.pop("amount", "98.00"), **given)
    assert session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_the_provider_may_be_written_as_its_display_name(session: Session) -> None:
    billed_october(session)
    assert record(session, "98.00", provider="OpenAI").provider == "openai"


def test_a_duplicate_invoice_is_refused(session: Session) -> None:
    billed_october(session)
    record(session, "98.00")
    with pytest.raises(InvalidInput, match="'INV-1' of OpenAI account 'prod' is already recorded"):
        record(session, "1.00", period="2026-09")
    # The same number on another account is another invoice.
    record(session, "13.00", account="other")
    assert session.scalar(select(func.count()).select_from(Invoice)) == 2


def test_removing_an_invoice_is_audited(session: Session) -> None:
    billed_october(session)
    invoice_id = record(session, "98.00").id
    assert invoices.remove_invoice(session=session, invoice_id=invoice_id, actor="fin") == (
        "prod/INV-1"
    )
    assert session.get(Invoice, invoice_id) is None
    assert session.scalar(select(AuditLog.target).where(AuditLog.action == "invoice.remove"))


# --- the CSV ------------------------------------------------------------------------------------

HEADER = "invoice_id,provider,account,period,issue_date,due_date,amount,currency,po_number\n"


def import_text(session: Session, text: str) -> int:
    return invoice_csv.import_invoices(session=session, stream=io.StringIO(text), actor="fin")


def test_a_csv_of_invoices_is_imported_and_matched(session: Session) -> None:
    billed_october(session)
    count = import_text(
        session,
        HEADER
        + 'INV-1,openai,prod,2026-10,2026-11-03,2026-12-03,"$98.00",USD,PO-7\n'
        + "INV-2,OpenAI,other,2026-10,2026-11-03,,13,,\n"
        + ",,,,,,,,\n",  # an empty row is skipped
    )
    assert count == 2
    found = invoices.list_invoices(session=session, tolerance_pct=Decimal(1))
    assert [(f.account, f.invoice_number, f.status, f.po_number) for f in found] == [
        ("other", "INV-2", MatchStatus.MATCHED, None),
        ("prod", "INV-1", MatchStatus.MATCHED, "PO-7"),
    ]
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "invoice.import"))
    assert entry is not None and entry.details == {"invoices": ["prod/INV-1", "other/INV-2"]}


def test_a_csv_with_bad_or_duplicate_rows_is_refused_by_line_and_field(
    session: Session,
) -> None:
    billed_october(session)
    record(session, "98.00")  # INV-1 of prod is recorded already
    text = (
        HEADER
        + "INV-2,openai,prod,2026-10,2026-11-03,,12.50,USD,\n"  # fine on its own
        + "INV-3,openai,prod,2026-10,2026-11-03,,twelve,USD,\n"
        + "INV-4,openai,prod,Oct 2026,2026-11-03,,1,USD,\n"
        + "INV-2,openai,prod,2026-10,2026-11-04,,3,USD,\n"
        + "INV-1,openai,prod,2026-10,2026-11-03,,98,USD,\n"
        + "INV-5,anthropic,prod,2026-10,2026-11-03,,1,USD,\n"
        + "INV-6,openai,prod,2026-10,,,1,USD,\n"
    )
    with pytest.raises(InvalidInput) as refused:
        import_text(session, text)
    message = str(refused.value)
    assert message.startswith("the CSV has 6 problem(s), nothing was imported: ")
    for problem in (
        "line 3: amount 'twelve' is not a number of US dollars",
        "line 4: period 'Oct 2026' is not a month (YYYY-MM)",
        "line 5: invoice_id 'INV-2' of account 'prod' repeats line 2",
        "line 6: invoice_id 'INV-1' of OpenAI account 'prod' is already recorded",
        "line 7: account 'prod' belongs to OpenAI, not Anthropic",
        "line 8: issue_date is empty",
    ):
        assert problem in message
    assert session.scalar(select(func.count()).select_from(Invoice)) == 1  # INV-2 not written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("invoice_id,provider,account\n", "line 1: missing column(s) period, issue_date, amount"),
        (HEADER.replace("po_number", "po"), "line 1: unknown column(s) po"),
        (HEADER, "no invoice rows"),
        (HEADER + "INV-9,openai,prod,2026-10,2026-11-03,,1,USD,,extra\n", "more fields"),
    ],
)
def test_a_csv_with_a_bad_shape_is_refused(session: Session, text: str, message: str) -> None:
    billed_october(session)
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_text(session, text)
    assert session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_the_template_is_the_header_only() -> None:
    assert invoice_csv.template_csv() == HEADER


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_invoice_and_credit_tables_migrate_down_and_up(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'invoices.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_databases").create()
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    config = migrate.alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0019-1")  # the revision before this one
    assert not {"invoices", "credit_grants"} & set(inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert {"invoices", "credit_grants"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_the_tolerance_is_a_setting(tmp_path: Path) -> None:
    env = {"SECRET_KEY": TEST_SECRET_KEY, "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY}
    env["DATA_DIR"] = str(tmp_path)
    assert load_settings(env, dotenv_path=None).invoice_tolerance_pct == Decimal(1)
    tight = load_settings({**env, "INVOICE_TOLERANCE_PCT": "0.5"}, dotenv_path=None)
    assert tight.invoice_tolerance_pct == Decimal("0.5")
    for bad, message in (("150", "from 0 to 100"), ("-1", "non-negative"), ("x", "a number")):
        with pytest.raises(ConfigError, match=f"INVOICE_TOLERANCE_PCT must be .*{message}"):
            load_settings({**env, "INVOICE_TOLERANCE_PCT": bad}, dotenv_path=None)


def test_removing_an_account_removes_its_invoices_and_grants(session: Session) -> None:
    billed_october(session)
    record(session, "98.00")
    credits.add_grant(session=session, account="prod", amount="5", starts_on=OCTOBER, actor="a")
    accounts.remove_account(session=session, name="prod", actor="admin")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Invoice)) == 0
    assert session.scalar(select(func.count()).select_from(CreditGrant)) == 0
