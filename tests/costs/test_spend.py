"""The spend rule: a day the provider bills on line items is not counted twice."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

from sqlalchemy import select

from tracker.costs.estimate import estimate_range
from tracker.costs.spend import row_spend
from tracker.exports import export
from tracker.models import Account, Service, UsageRecord
from tracker.planning import budgets
from tracker.reporting import overview

BILLED_DAY, ESTIMATED_DAY = dt.date(2026, 10, 5), dt.date(2026, 10, 6)


def seed(session) -> Account:
    service = session.scalar(select(Service).where(Service.name == "openai"))
    account = Account(
        service=service, name="openai-prod", credential_encrypted="v1.x.y", credential_last4="abcd"
    )
    session.add(account)
    session.flush()
    tokens = dict(model="gpt-4o-2024-08-06", input_tokens=1_000_000, output_tokens=100_000)
    session.add_all(
        [
            # Day 1: token rows (estimated) and the provider's billed line items for the day.
            UsageRecord(account_id=account.id, day=BILLED_DAY, usage_type="completions", **tokens),
            UsageRecord(
                account_id=account.id,
                day=BILLED_DAY,
                usage_type="cost:gpt-4o-2024-08-06, input",
                billed_cost=Decimal("2.400000"),
            ),
            UsageRecord(
                account_id=account.id,
                day=BILLED_DAY,
                usage_type="cost:gpt-4o-2024-08-06, output",
                billed_cost=Decimal("0.950000"),
            ),
            # Day 2: no billed amount yet (the costs API lags): the estimate counts.
            UsageRecord(
                account_id=account.id, day=ESTIMATED_DAY, usage_type="completions", **tokens
            ),
            # An unknown model: never $0, flagged.
            UsageRecord(
                account_id=account.id,
                day=ESTIMATED_DAY,
                model="mystery-model-9",
                usage_type="completions",
                input_tokens=5000,
            ),
        ]
    )
    session.flush()
    estimate_range(session=session, start=BILLED_DAY, end=ESTIMATED_DAY)
    return account


def test_cost_sources_per_account_day(session):
    seed(session)
    rows = session.scalars(select(UsageRecord).order_by(UsageRecord.day, UsageRecord.id)).all()
    sources = [(r.day, r.usage_type.split(",")[0], r.model, r.cost_source) for r in rows]
    assert [s[3] for s in sources] == ["covered", "covered", "covered", "estimated", "none"]
    covered, estimated = rows[0], rows[3]
    # The covered row keeps its estimate (reconciliation compares it with the bill)...
    assert covered.estimated_cost == estimated.estimated_cost
    assert covered.estimated_cost is not None and covered.estimated_cost > 0
    # ...but counts the day's line items, allocated to it (the only row they match)...
    assert (covered.allocated_cost, covered.allocation_method) == (Decimal("3.35"), "exact")
    spend = [
        row_spend(r.billed_cost, r.estimated_cost, r.cost_source, r.allocated_cost)
        for r in rows[:3]
    ]
    assert spend == [Decimal("3.35"), 0, 0]  # ...and the line items count nothing more.
    assert rows[4].estimated_cost is None and rows[4].pricing_status == "unpriced"


def test_dashboard_budgets_and_exports_agree_without_double_counting(session):
    account = seed(session)
    estimate = session.scalar(
        select(UsageRecord.estimated_cost).where(
            UsageRecord.day == ESTIMATED_DAY, UsageRecord.model == "gpt-4o-2024-08-06"
        )
    )
    expected = Decimal("3.35") + estimate

    totals = overview.cost_totals(session=session, start=BILLED_DAY, end=ESTIMATED_DAY)
    assert totals.cost == expected
    assert totals.billed == Decimal("3.35") and totals.estimated == estimate
    assert totals.unpriced_rows == 1

    scope = budgets.parse_scope(f"account:{account.name}")
    assert (
        budgets.scope_spend(session=session, scope=scope, start=BILLED_DAY, end=ESTIMATED_DAY)
        == expected
    )

    out = io.StringIO()
    export.export(session=session, fmt="json", start=BILLED_DAY, end=ESTIMATED_DAY, out=out)
    document = json.loads(out.getvalue())
    exported = sum(Decimal(r["cost"]) for r in document["rows"] if r["cost"] is not None)
    assert exported == expected
    assert Decimal(document["total_cost"]) == expected


def test_billed_line_items_arriving_later_turn_estimates_into_covered(session):
    account = seed(session)
    session.add(
        UsageRecord(
            account_id=account.id,
            day=ESTIMATED_DAY,
            usage_type="cost:gpt-4o-2024-08-06, input",
            billed_cost=Decimal("2.500000"),
        )
    )
    session.flush()
    estimate_range(session=session, start=ESTIMATED_DAY, end=ESTIMATED_DAY)
    totals = overview.cost_totals(session=session, start=BILLED_DAY, end=ESTIMATED_DAY)
    assert totals.cost == Decimal("5.85") and totals.estimated == 0
