"""Re-pricing history after an override, and the cost engine's CLI commands.

Both on SQLite and PostgreSQL: `session` rolls back; the CLI tests commit to `committed_db`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tracker.costs.estimate import estimate_range
from tracker.costs.overrides import add_override
from tracker.costs.reprice import reprice
from tracker.models import Account, AuditLog, Service, UsageRecord

M = 1_000_000
AUG = [dt.date(2026, 8, d) for d in range(1, 6)]


def _seed(session: Session) -> int:
    service = session.scalar(select(Service).where(Service.name == "openai"))
    assert service is not None
    account = Account(
        service_id=service.id, name="oa", credential_encrypted="v1.x.y", credential_last4="abcd"
    )
    session.add(account)
    session.flush()
    for day in AUG:
        session.add(
            UsageRecord(
                account_id=account.id,
                day=day,
                model="gpt-4o-mini",
                usage_type="completions",
                input_tokens=M,
            )
        )  # 0.15 a day
        session.add(
            UsageRecord(
                account_id=account.id,
                day=day,
                usage_type="cost:gpt-4o-mini",
                billed_cost=Decimal("0.16"),
            )
        )
    session.flush()
    estimate_range(session=session, start=AUG[0], end=AUG[-1])
    return account.id


def _estimates(session: Session) -> dict[dt.date, Decimal | None]:
    rows = session.execute(
        select(UsageRecord.day, UsageRecord.estimated_cost)
        .where(UsageRecord.usage_type == "completions")
        .order_by(UsageRecord.day)
    )
    return {day: cost for day, cost in rows}


def _billed(session: Session) -> list[Decimal | None]:
    return list(session.scalars(select(UsageRecord.billed_cost).order_by(UsageRecord.id)))


def test_discount_reprices_only_its_dates_and_is_audited(session: Session) -> None:
    _seed(session)
    billed_before = _billed(session)
    # 10% off from Aug 2 up to (not including) Aug 4.
    add_override(
        session=session,
        provider="openai",
        model="gpt-4o-mini",
        kind="discount",
        valid_from=AUG[1],
        valid_to=AUG[3],
        discount_pct="10",
        actor="alice",
    )
    audits_before = session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))

    dry = reprice(session=session, start=AUG[0], end=AUG[-1], dry_run=True, actor="alice")
    assert [(d.day, d.old_estimated, d.new_estimated, d.rows_changed) for d in dry.days] == [
        (AUG[0], Decimal("0.15"), Decimal("0.15"), 0),
        (AUG[1], Decimal("0.15"), Decimal("0.135"), 1),
        (AUG[2], Decimal("0.15"), Decimal("0.135"), 1),
        (AUG[3], Decimal("0.15"), Decimal("0.15"), 0),
        (AUG[4], Decimal("0.15"), Decimal("0.15"), 0),
    ]
    assert dry.rows == 10 and dry.rows_changed == 2
    assert dry.new_total - dry.old_total == Decimal("-0.03")
    assert set(_estimates(session).values()) == {Decimal("0.15")}  # nothing written
    assert session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1)) == (
        audits_before
    )

    applied = reprice(session=session, start=AUG[0], end=AUG[-1], dry_run=False, actor="alice")
    assert applied.as_json()["days"] == dry.as_json()["days"]
    assert _estimates(session) == {
        AUG[0]: Decimal("0.15"),
        AUG[1]: Decimal("0.135"),
        AUG[2]: Decimal("0.135"),
        AUG[3]: Decimal("0.15"),
        AUG[4]: Decimal("0.15"),
    }
    assert _billed(session) == billed_before
    entry = session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(1)).one()
    assert (entry.actor, entry.action, entry.target) == (
        "alice",
        "pricing.reprice",
        "2026-08-01..2026-08-05",
    )
    assert entry.details is not None
    assert entry.details["changed_days"] == ["2026-08-02", "2026-08-03"]
    assert entry.details["rows_changed"] == 2

    again = reprice(session=session, start=AUG[0], end=AUG[-1], dry_run=True, actor="alice")
    assert again.rows_changed == 0


def test_reprice_limited_to_a_range(session: Session) -> None:
    _seed(session)
    add_override(
        session=session,
        provider="openai",
        model=None,
        kind="discount",
        valid_from=AUG[0],
        discount_pct="50",
        actor="alice",
    )
    report = reprice(session=session, start=AUG[4], end=AUG[4], dry_run=False, actor="alice")
    assert [d.day for d in report.days] == [AUG[4]]
    assert _estimates(session)[AUG[4]] == Decimal("0.075")
    assert _estimates(session)[AUG[3]] == Decimal("0.15")  # outside the requested range


# --- the CLI ----------------------------------------------------------------------------


def _seed_committed(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        _seed(session)


def test_cli_price(cli: Callable[..., Any]) -> None:
    result = cli(
        "price",
        "--provider",
        "anthropic",
        "--model",
        "claude-3-5-haiku-20241022",
        "--date",
        "2026-08-01",
        "--input-tokens",
        "1000",
        "--cached-tokens",
        "2000",
        "--cache-write-tokens",
        "3000",
        "--cache-write-1h-tokens",
        "4000",
        "--output-tokens",
        "5000",
        "--json",
    )
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    assert payload["estimated_cost"] == "0.03036"
    assert (payload["currency"], payload["priced"]) == ("USD", True)
    assert payload["unit_prices"]["cache_write_1h_per_mtok"] == "1.6"

    text = cli(
        "price",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--date",
        "2026-08-01",
        "--input-tokens",
        "1000000",
        "--batch",
    )
    assert text.code == 0 and text.out.startswith("$0.075000 USD")

    unknown = cli(
        "price",
        "--provider",
        "openai",
        "--model",
        "gpt-unknown-9",
        "--date",
        "2026-08-01",
        "--input-tokens",
        "5",
    )
    assert unknown.code == 1 and unknown.out == ""
    assert unknown.err.count("\n") == 1 and "not in the price book" in unknown.err

    bad = cli("price", "--provider", "openai", "--model", "x", "--date", "2026-13-01")
    assert bad.code == 2 and bad.err.count("\n") == 1


def test_cli_override_reprice_and_reconcile(cli: Callable[..., Any], committed_db: Engine) -> None:
    _seed_committed(committed_db)
    added = cli(
        "prices",
        "override",
        "add",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--discount",
        "10",
        "--from",
        "2026-08-02",
        "--to",
        "2026-08-04",
    )
    assert added.code == 0, added.err
    listed = json.loads(cli("prices", "override", "list", "--json").out)
    assert [(o["model"], o["discount_pct"], o["valid_to"]) for o in listed] == [
        ("gpt-4o-mini", "10", "2026-08-04")
    ]
    clash = cli(
        "prices",
        "override",
        "add",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--discount",
        "5",
        "--from",
        "2026-08-03",
    )
    assert clash.code == 1 and "overlaps" in clash.err

    dry = cli("reprice", "--start", "2026-08-01", "--end", "2026-08-05", "--dry-run")
    assert dry.code == 0, dry.err
    assert "2026-08-02" in dry.out and "2026-08-01" not in dry.out.split("\n")[1]
    assert "2 of 10 usage rows would change" in dry.out

    done = cli("reprice", "--start", "2026-08-01", "--end", "2026-08-05")
    assert done.code == 0 and "2 of 10 usage rows changed" in done.out
    with Session(committed_db) as session:
        assert _estimates(session)[AUG[1]] == Decimal("0.135")
        actions = list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions == ["price_override.add", "pricing.reprice"]

    rec = cli("reconcile", "--start", "2026-08-01", "--end", "2026-08-05", "--json")
    assert rec.code == 0, rec.err
    totals = json.loads(rec.out)["totals"]
    assert Decimal(totals["billed"]) == Decimal("0.80")
    assert Decimal(totals["estimated_on_billed_days"]) == Decimal("0.72")
    text = cli("reconcile", "--start", "2026-08-01", "--end", "2026-08-05")
    assert text.code == 0 and "openai" in text.out and "$0.080000" in text.out

    oid = str(listed[0]["id"])
    assert cli("prices", "override", "remove", oid).code == 0
    missing = cli("prices", "override", "remove", oid)
    assert missing.code == 1 and "no price override" in missing.err
