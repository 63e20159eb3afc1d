"""`invoices` and `credits` on the command line, against real SQLite and PostgreSQL: output,
--json, one-line errors with a non-zero exit, nothing written on bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.factories import add_account, add_usage
from tracker.models import AuditLog, CreditGrant, Invoice


def seed(engine: Engine) -> None:
    """prod: October 2026 billed $150.000001, and $2.25 estimated on a day not billed yet."""
    with Session(engine) as session, session.begin():
        account = add_account(session, "prod", "openai")
        add_usage(session, account, dt.date(2026, 10, 1), "100")
        add_usage(session, account, dt.date(2026, 10, 2), "50.000001")
        add_usage(session, account, dt.date(2026, 10, 31), "2.25", billed=False)
        add_account(session, "router", "openrouter", balance_remaining=40, balance_currency="USD")


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


ADD = ("invoices", "add", "--provider", "openai", "--account", "prod", "--period", "2026-10")


def test_invoices_add_list_and_remove(cli, committed_db: Engine) -> None:
    seed(committed_db)
    added = cli(*ADD, "--invoice-id", "INV-1", "--issue-date", "2026-11-02", "--amount", "150")
    assert added.code == 0, added.err
    assert added.out == (
        "recorded invoice INV-1 of prod (2026-10): matched; invoice $150.00, billed $150.00\n"
    )
    off = cli(
        *ADD, "--invoice-id", "INV-2", "--issue-date", "2026-11-02", "--amount", "153.06",
        "--due-date", "2026-12-02", "--po-number", "PO-9",
    )  # fmt: skip
    assert off.code == 0, off.err
    assert "INV-2 of prod (2026-10): unmatched; invoice $153.06, billed $150.00" in off.out
    assert "variance +$3.06 (+2.00 %); 2026-10-31: not billed yet ($2.25 estimated)" in off.out

    listed = cli("invoices", "list", "--json")
    assert listed.code == 0, listed.err
    rows = {r["invoice_id"]: r for r in json.loads(listed.out)}
    assert rows["INV-1"]["status"] == "matched" and rows["INV-1"]["billed"] == "150.000001"
    assert rows["INV-2"]["status"] == "unmatched"
    assert (rows["INV-2"]["variance"], rows["INV-2"]["variance_pct"]) == ("3.059999", "2")
    assert rows["INV-2"]["not_billed_days"][0]["day"] == "2026-10-31"
    assert rows["INV-2"]["po_number"] == "PO-9" and rows["INV-2"]["due_date"] == "2026-12-02"
    text = cli("invoices", "list", "--period", "2026-10")
    assert text.code == 0 and "INV-1" in text.out and "unmatched" in text.out
    assert "prod INV-2: 2026-10-31: not billed yet ($2.25 estimated)" in text.out
    assert cli("invoices", "list", "--period", "2026-09").out == (
        "no invoice recorded for that month or account\n"
    )

    removed = cli("invoices", "remove", str(rows["INV-1"]["id"]))
    assert removed.code == 0 and removed.out == "removed invoice prod/INV-1\n"
    assert count(committed_db, Invoice) == 1


def test_bad_invoice_input_is_one_line_and_changes_nothing(cli, committed_db: Engine) -> None:
    seed(committed_db)
    first = cli(*ADD, "--invoice-id", "INV-1", "--issue-date", "2026-11-02", "--amount", "150")
    assert first.code == 0
    issued = ("--issue-date", "2026-11-02")
    cases = [
        (("--invoice-id", "INV-1", *issued, "--amount", "1"), 1, "already recorded"),
        (("--invoice-id", "INV-3", *issued, "--amount", "x"), 1, "amount 'x' is not a number"),
        (("--invoice-id", "INV-3", "--issue-date", "2/11/2026", "--amount", "1"), 2, "not a date"),
    ]
    for extra, code, message in cases:
        result = cli(*ADD, *extra)
        assert result.code == code, (extra, result)
        assert result.err.startswith("error: ") and message in result.err
        assert result.err.count("\n") == 1 and result.out == ""
    assert count(committed_db, Invoice) == 1
    assert cli("invoices", "remove", "999").err == (
        "error: no invoice #999; check the list of invoices\n"
    )


def test_invoices_import_is_all_or_nothing(cli, committed_db: Engine, tmp_path: Path) -> None:
    seed(committed_db)
    header = "invoice_id,provider,account,period,issue_date,due_date,amount,currency,po_number\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        header
        + "INV-1,openai,prod,2026-10,2026-11-02,,150,USD,\n"
        + "INV-2,openai,prod,2026-10,2026-11-02,,abc,USD,\n"
    )
    refused = cli("invoices", "import", str(bad))
    assert refused.code == 1
    assert refused.err == (
        "error: the CSV has 1 problem(s), nothing was imported: line 3: amount 'abc' is not a "
        "number of US dollars, e.g. 1500.00\n"
    )
    assert count(committed_db, Invoice) == 0
    good = tmp_path / "good.csv"
    good.write_text("\ufeff" + header + "INV-1,OpenAI,prod,2026-10,2026-11-02,,150,,\n")
    imported = cli("invoices", "import", str(good))
    assert imported.code == 0, imported.err
    assert imported.out.startswith("recorded 1 invoice(s)")
    assert cli("invoices", "import", str(tmp_path / "missing.csv")).err.startswith(
        "error: cannot read "
    )
    with committed_db.connect() as conn:
        actors = conn.execute(select(AuditLog.actor).where(AuditLog.action == "invoice.import"))
        assert actors.scalars().all() == ["cli"]


def test_credits_add_list_and_remove(cli, committed_db: Engine) -> None:
    seed(committed_db)
    added = cli(
        "credits", "add", "--account", "router", "--amount", "50", "--start", "2026-01-01",
        "--expires", "2030-01-01", "--priority", "2", "--note", "launch",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert added.out.startswith("added grant #") and "50.00 USD on router" in added.out
    listed = cli("credits", "list", "--json")
    assert listed.code == 0, listed.err
    (router,) = json.loads(listed.out)
    assert router["account"] == "router" and router["available"] == "50"
    assert router["provider_balance"] == "40" and router["balance_difference"] == "-10"
    assert router["grants"][0]["note"] == "launch" and router["grants"][0]["status"] == "active"
    text = cli("credits", "list")
    assert text.code == 0
    assert "router (openrouter): $50.00 left now" in text.out
    assert "provider balance $40.00, ledger $50.00, difference -$10.00" in text.out
    bad = cli("credits", "add", "--account", "router", "--amount", "0", "--start", "2026-01-01")
    assert bad.code == 1 and bad.err == "error: the amount must be more than 0 USD\n"
    grant_id = router["grants"][0]["id"]
    assert cli("credits", "remove", str(grant_id)).code == 0
    assert count(committed_db, CreditGrant) == 0
