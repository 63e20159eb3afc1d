"""Every billed dollar lands on the usage rows it pays for, to the micro-dollar.

OpenAI's costs API bills per project and line item (model, token kind); Anthropic's cost
report per workspace and description (model, token kind, tier). After a sync from the fake
admin APIs, spend grouped by API key, user, project, model or usage type adds up, every day, to
what the provider billed; usage of a billed model never shows $0; a re-sync and a re-price
change nothing. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.ingest.test_sync import (
    ANTHROPIC_BILLED,
    AUG1,
    AUG3,
    OPENAI_BILLED,
    add_anthropic,
    add_openai,
)
from tracker.core.runtime import Runtime
from tracker.costs.allocate import LINE_ITEM, split
from tracker.costs.estimate import estimate_range
from tracker.costs.spend import ROW_SPEND
from tracker.exports.export import export
from tracker.ingest import sync
from tracker.models import UsageRecord

u = UsageRecord
DIMENSIONS = ("api_key_id", "user_id", "project_id", "model", "usage_type")


def spend_by(runtime: Runtime, account_id: int, dimension: str) -> dict[dt.date, Decimal]:
    """Per day, the sum over the groups of `dimension` of each group's spend."""
    column = u.__table__.c[dimension]
    with runtime.session_factory() as session:
        groups = session.execute(
            select(u.day, column, func.sum(ROW_SPEND))
            .where(u.account_id == account_id)
            .group_by(u.day, column)
        ).all()
    totals: dict[dt.date, Decimal] = {}
    for day, _, amount in groups:
        totals[day] = totals.get(day, Decimal(0)) + Decimal(amount or 0)
    return {day: total.quantize(Decimal("0.000001")).normalize() for day, total in totals.items()}


def allocation(runtime: Runtime) -> list[tuple]:
    with runtime.session_factory() as session:
        return [
            tuple(r)
            for r in session.execute(
                select(u.id, u.cost_source, u.allocated_cost, u.allocation_method).order_by(u.id)
            )
        ]


def check_every_breakdown(runtime: Runtime, ids: dict[int, dict[dt.date, Decimal]]) -> None:
    for account_id, billed in ids.items():
        for dimension in DIMENSIONS:
            assert spend_by(runtime, account_id, dimension) == billed, (account_id, dimension)
        with runtime.session_factory() as session:
            rows = session.scalars(select(u).where(u.account_id == account_id)).all()
        named = {
            (r.day, r.project_id, r.model)
            for r in rows
            if r.usage_type.startswith(LINE_ITEM) and r.allocation_method != "unallocated"
        }
        usage = [r for r in rows if not r.usage_type.startswith(LINE_ITEM)]
        billed_usage = [
            r
            for r in usage
            if any(
                day == r.day and project in ("", r.project_id) and model in ("", r.model)
                for day, project, model in named
            )
        ]
        assert billed_usage, "the fake data bills some usage"
        for r in billed_usage:
            # No usage of a billed model shows $0: it carries its share of the bill.
            assert r.cost_source == "covered" and r.allocated_cost, r
            assert r.allocation_method in ("exact", "proportional_estimate", "proportional_tokens")


def test_every_billed_dollar_lands_on_usage_in_every_breakdown(runtime, server) -> None:
    ids = {
        add_openai(runtime, server): OPENAI_BILLED,
        add_anthropic(runtime, server): ANTHROPIC_BILLED,
    }
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    check_every_breakdown(runtime, ids)
    before = allocation(runtime)
    assert {method for *_, method in before} >= {"proportional_estimate"}
    # Every line item of the fake data names usage that exists ("standard" tier included).
    assert "unallocated" not in {method for *_, method in before}

    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok  # a re-sync
    assert allocation(runtime) == before
    with runtime.session_factory.begin() as session:  # a re-price
        estimate_range(session=session, start=AUG1, end=AUG3)
    assert allocation(runtime) == before
    check_every_breakdown(runtime, ids)


def test_a_bill_that_matches_no_usage_stays_its_own_line(runtime, server) -> None:
    openai_id = add_openai(runtime, server)
    for bucket in server.openai_costs:
        for result in bucket["results"]:
            result["line_item"] = "retired-model-9, input"
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    with runtime.session_factory() as session:
        lines = session.scalars(
            select(u).where(u.account_id == openai_id, u.usage_type.like(f"{LINE_ITEM}%"))
        ).all()
    assert lines and {(r.cost_source, r.allocation_method) for r in lines} == {
        ("billed", "unallocated")
    }
    assert spend_by(runtime, openai_id, "model") == OPENAI_BILLED


@pytest.mark.parametrize(
    ("amount", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # a tie goes to the earlier part
        (10, [0, 5, 5], [0, 5, 5]),
        (1, [3, 7], [0, 1]),
        (2_820_000, [123_456, 654_321, 1], [447_616, 2_372_380, 4]),
        (0, [5, 5], [0, 0]),
    ],
)
def test_split_is_exact_and_deterministic(amount, weights, parts) -> None:
    assert split(amount, weights) == parts
    assert sum(split(amount, weights)) == amount


def test_keys_are_named_and_each_keys_bill_lands_on_its_usage(runtime, server) -> None:
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    with runtime.session_factory() as session:
        rows = session.scalars(select(u).where(u.account_id == openai_id)).all()
        by_key = dict(
            session.execute(
                select(u.api_key_name, func.sum(ROW_SPEND))
                .where(u.account_id == openai_id)
                .group_by(u.api_key_name)
            ).all()
        )
    names = {(r.api_key_id, r.api_key_name) for r in rows if r.api_key_id}
    assert names == {
        ("key_sb7Qx2", "support-bot production"),
        ("key_ra4Lm9", "research notebooks"),
    }
    # The costs API names the key: each key's usage carries exactly its own bills.
    billed_by_key: dict[str, Decimal] = {}
    for r in rows:
        if r.usage_type.startswith(LINE_ITEM) and r.api_key_name:
            billed_by_key[r.api_key_name] = (
                billed_by_key.get(r.api_key_name, Decimal(0)) + r.billed_cost
            )
    assert {k: Decimal(v) for k, v in by_key.items() if k} == billed_by_key


def test_users_are_named_and_share_their_keys_bill(runtime, server) -> None:
    """OpenAI bills per key, not per user: the key's bill is split over its users' usage in
    proportion to their list-price estimates, to the micro-dollar."""
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    with runtime.session_factory() as session:
        rows = session.scalars(
            select(u).where(u.account_id == openai_id, u.api_key_id == "key_ra4Lm9", u.day == AUG1)
        ).all()
    usage = [r for r in rows if not r.usage_type.startswith(LINE_ITEM)]
    completions = {r.user_name: r for r in usage if r.usage_type == "completions"}
    ada, tomas = completions["Ada Park"], completions["tomas.ruiz@example.com"]
    assert ada.user_id == "user_Lq5Zr1" and tomas.user_id == "user_Mt7Ys3"
    assert ada.allocated_cost and tomas.allocated_cost
    # Ada used twice Tomas's tokens of the same model: about twice his share of the bill.
    assert abs(ada.allocated_cost - 2 * tomas.allocated_cost) <= Decimal("0.000002")
    billed = sum((r.billed_cost for r in rows if r.usage_type.startswith(LINE_ITEM)), Decimal(0))
    assert sum((r.allocated_cost or Decimal(0) for r in usage), Decimal(0)) == billed


def test_anthropic_workspaces_and_keys_are_named(runtime, server) -> None:
    anthropic_id = add_anthropic(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    with runtime.session_factory() as session:
        named = set(
            session.execute(
                select(u.project_name, u.api_key_name).where(
                    u.account_id == anthropic_id, u.api_key_id != ""
                )
            ).all()
        )
    assert named == {("Support agents", "support-agent prod")}


def test_the_focus_export_marks_allocated_charges(runtime, server) -> None:
    """Usage rows that carry a share of a bill are FOCUS 1.3 allocated charges: the method
    and its details in the x_Allocated* columns, on those rows only; the BilledCost of the
    day still adds up to the provider's bill."""
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    out = io.StringIO()
    with runtime.session_factory() as session:
        export(session=session, fmt="focus", start=AUG1, end=AUG3, out=out)
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    allocated = [r for r in records if r["x_AllocatedMethodId"]]
    assert allocated and {r["x_AllocatedMethodId"] for r in allocated} <= {
        "exact", "proportional_estimate", "proportional_tokens"
    }  # fmt: skip
    details = json.loads(allocated[0]["x_AllocatedMethodDetails"])
    assert details["Origin"].startswith("OpenAI billed line items of 2026-08-0")
    # Exactly the usage rows' shares are marked (the line items they came from are not).
    with runtime.session_factory() as session:
        shares = session.scalar(
            select(func.sum(u.allocated_cost)).where(
                u.account_id == openai_id, u.usage_type.not_like(f"{LINE_ITEM}%")
            )
        )
    assert sum(Decimal(r["BilledCost"]) for r in allocated) == Decimal(shares)
    by_day: dict[str, Decimal] = {}
    for r in records:
        day = r["ChargePeriodStart"][:10]
        by_day[day] = by_day.get(day, Decimal(0)) + Decimal(r["BilledCost"])
    assert openai_id and by_day == {str(d): v for d, v in OPENAI_BILLED.items()}
