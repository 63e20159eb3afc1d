"""`periods`, `gl` and `export --format journal` against SQLite and PostgreSQL: the command
line names its signer with --as, and the two-people rule holds there as in the app."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import CliResult
from tests.factories import add_account, add_usage, add_user
from tracker.models import AuditLog

OCT = dt.date(2026, 10, 1)
Cli = Callable[..., CliResult]
USERS = (("fin", "finance"), ("fay", "finance"), ("alice", "admin"), ("vic", "viewer"))


def seed(engine: Engine) -> None:
    """October: $10 billed, $2.50 estimated (not billed yet); four users."""
    with Session(engine) as session, session.begin():
        add_usage(session, add_account(session, "oa"), OCT + dt.timedelta(days=4), "10")
        an = add_account(session, "an", "anthropic")
        add_usage(session, an, OCT + dt.timedelta(days=5), "2.5", billed=False)
        for name, role in USERS:
            add_user(session, name, role)


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.err
    return result


def refused(result: CliResult, message: str) -> None:
    assert result.code == 1, result.out
    assert result.err.count("\n") == 1 and message in result.err, result.err


def test_close_a_month_from_the_command_line(
    cli: Cli, committed_db: Engine, tmp_path: Path
) -> None:
    seed(committed_db)
    refused(cli("periods", "close", "2026-10", "--as", "fin"), "no accrued-liabilities GL account")
    ok(cli("gl", "add", "6100", "--name", "AI services", "--kind", "expense"))
    ok(cli("gl", "add", "2150", "--name", "Accrued liabilities", "--kind", "liability"))
    refused(cli("gl", "defaults", "--expense", "2150"), "2150 is a liability account")
    done = ok(cli("gl", "defaults", "--expense", "6100", "--accrued-liabilities", "2150"))
    assert "default expense account: 6100; accrued-liabilities account: 2150" in done.out
    assert "2150  Accrued liabilities  liability" in ok(cli("gl", "list")).out

    prepared = ok(cli("periods", "close", "2026-10", "--as", "fin"))
    assert "prepared 2026-10 as fin: total $12.50, accrued $2.50" in prepared.out
    refused(cli("periods", "approve", "2026-10", "--as", "fin"), "two people close a month")
    refused(cli("periods", "approve", "2026-10", "--as", "vic"), "vic is viewer")
    assert (
        "closed 2026-10: approved by fay"
        in ok(cli("periods", "approve", "2026-10", "--as", "fay")).out
    )

    listed = json.loads(ok(cli("periods", "list", "--json")).out)
    october = next(p for p in listed if p["month"] == "2026-10")
    assert (october["status"], october["prepared_by"], october["approved_by"]) == (
        "closed",
        "fin",
        "fay",
    )
    assert october["closed_total"] == october["current_total"] == "12.5"
    shown = ok(cli("periods", "show", "2026-10", "--by", "provider")).out
    assert "Anthropic  $2.50" in shown and "OpenAI     $10.00" in shown
    with Session(committed_db) as session:
        signed = session.execute(
            select(AuditLog.actor, AuditLog.action).where(AuditLog.action.like("period.%"))
        ).all()
    assert signed == [("fin", "period.prepare"), ("fay", "period.approve")]

    target = tmp_path / "journal.csv"
    written = ok(
        cli("export", "--format", "journal", "--period", "2026-10", "--output", str(target))
    )
    assert "debits $2.50 = credits $2.50" in written.out
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    accrual = [r for r in rows if r["journal"] == "AI-ACCRUAL-2026-10"]
    reversal = [r for r in rows if r["journal"] == "AI-ACCRUAL-2026-10-REV"]
    assert {r["date"] for r in accrual} == {"2026-10-31"}
    assert {r["date"] for r in reversal} == {"2026-11-01"}
    for entry in (accrual, reversal):
        debits = sum(Decimal(r["debit"]) for r in entry)
        assert debits == sum(Decimal(r["credit"]) for r in entry) == Decimal("2.50")
    assert [(r["gl_account"], r["debit"], r["credit"]) for r in accrual] == [
        ("6100", "2.50", "0.00"),
        ("2150", "0.00", "2.50"),
    ]
    assert [(r["gl_account"], r["debit"], r["credit"]) for r in reversal] == [
        ("6100", "0.00", "2.50"),
        ("2150", "2.50", "0.00"),
    ]
    assert "no corrections" in ok(cli("periods", "corrections")).out


def test_reopen_needs_an_admin_and_a_reason(cli: Cli, committed_db: Engine) -> None:
    seed(committed_db)
    ok(cli("gl", "add", "6100", "--name", "AI", "--kind", "expense"))
    ok(cli("gl", "add", "2150", "--name", "Accrued", "--kind", "liability"))
    ok(cli("gl", "defaults", "--expense", "6100", "--accrued-liabilities", "2150"))
    ok(cli("periods", "close", "2026-10", "--as", "fin"))
    ok(cli("periods", "approve", "2026-10", "--as", "alice"))
    refused(cli("periods", "reopen", "2026-10", "--reason", "x", "--as", "fin"), "needs an admin")
    refused(
        cli("periods", "reopen", "2026-10", "--reason", " ", "--as", "alice"), "give the reason"
    )
    assert cli("periods", "reopen", "2026-10", "--as", "alice").code == 2  # --reason required
    ok(cli("periods", "reopen", "2026-10", "--reason", "invoice differs", "--as", "alice"))
    listed = json.loads(ok(cli("periods", "list", "--json")).out)
    assert next(p for p in listed if p["month"] == "2026-10")["status"] == "open"
    refused(
        cli("export", "--format", "journal", "--period", "2026-10", "--output", "-"),
        "2026-10 is not closed",
    )


def test_bad_input_is_one_line(cli: Cli, committed_db: Engine) -> None:
    seed(committed_db)
    assert cli("periods", "close", "2026-10").code == 2  # --as is required
    assert cli("periods", "close", "October", "--as", "fin").code == 2  # not YYYY-MM
    refused(cli("periods", "close", "2999-01", "--as", "fin"), "2999-01 has not ended yet")
    refused(cli("periods", "approve", "2026-10", "--as", "fay"), "not prepared yet")
    refused(
        cli("export", "--format", "journal", "--start", "2026-10-01", "--output", "-"),
        "give --period YYYY-MM",
    )
    refused(
        cli("export", "--format", "csv", "--period", "2026-10", "--output", "-"),
        "give --start and --end",
    )
