"""Billed vs estimated cost on priced usage, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.costs.estimate import estimate_range
from tracker.costs.reconcile import reconcile, unpriced_models
from tracker.models import Account, Service, UsageRecord

DAY1, DAY2 = dt.date(2026, 8, 1), dt.date(2026, 8, 2)
M = 1_000_000
SNAP = "gpt-4o-mini-2024-07-18"


def _account(session: Session, provider: str, name: str) -> int:
    service = session.scalar(select(Service).where(Service.name == provider))
    assert service is not None
    account = Account(
        service_id=service.id, name=name, credential_encrypted="v1.x.y", credential_last4="abcd"
    )
    session.add(account)
    session.flush()
    return account.id


def _seed(session: Session) -> None:
    """Rows shaped like the connectors' output: usage rows, and billed `cost:` rows apart."""
    oa = _account(session, "openai", "oa")
    an = _account(session, "anthropic", "an")
    gq = _account(session, "groq", "gq")
    u = UsageRecord
    session.add_all(
        [
            # OpenAI day 1: usage by model; billed line items that name the model.
            u(
                account_id=oa,
                day=DAY1,
                model=SNAP,
                usage_type="completions",
                input_tokens=M,
                output_tokens=M,
            ),  # estimated 0.15 + 0.60
            u(
                account_id=oa,
                day=DAY1,
                model=SNAP,
                project_id="p1",
                usage_type=f"cost:{SNAP}, input",
                billed_cost=Decimal("0.15"),
            ),
            u(
                account_id=oa,
                day=DAY1,
                model=SNAP,
                project_id="p1",
                usage_type=f"cost:{SNAP}, output",
                billed_cost=Decimal("0.61"),
            ),
            # OpenAI day 2: a line item without a model, and an unpriced model.
            u(
                account_id=oa, day=DAY2, model=SNAP, usage_type="completions", input_tokens=2 * M
            ),  # estimated 0.30
            u(
                account_id=oa,
                day=DAY2,
                project_id="p1",
                usage_type="cost:Web search tool calls",
                billed_cost=Decimal("0.40"),
            ),
            u(
                account_id=oa,
                day=DAY2,
                model="mystery-model",
                usage_type="completions",
                input_tokens=100,
                output_tokens=50,
            ),
            # Anthropic: billed per model on its own rows, matching the estimate exactly.
            u(
                account_id=an,
                day=DAY1,
                model="claude-3-5-haiku-20241022",
                usage_type="messages",
                input_tokens=M,
            ),  # estimated 0.80
            u(
                account_id=an,
                day=DAY1,
                model="claude-3-5-haiku-20241022",
                usage_type="cost:uncached_input_tokens",
                billed_cost=Decimal("0.80"),
            ),
            # Groq: no cost API, estimate only.
            u(account_id=gq, day=DAY1, model="llama-3.3-70b-versatile", input_tokens=M),
            # Outside the range.
            u(account_id=gq, day=DAY2 + dt.timedelta(days=1), model="mystery-2", input_tokens=9),
        ]
    )
    session.flush()
    estimate_range(session=session, start=DAY1, end=DAY2 + dt.timedelta(days=1))


def test_reconcile_compares_at_the_grain_both_sides_have(session: Session) -> None:
    _seed(session)
    report = reconcile(session=session, start=DAY1, end=DAY2)

    rows = {(r.day, r.provider, r.item): r for r in report.rows}
    per_model = rows[(DAY1, "openai", SNAP)]
    assert (per_model.billed, per_model.estimated) == (Decimal("0.76"), Decimal("0.75"))
    assert per_model.comparable and per_model.variance == Decimal("0.01")
    assert per_model.variance_share == Decimal("0.0132")
    line_item = rows[(DAY2, "openai", "cost:Web search tool calls")]
    assert line_item.billed == Decimal("0.40") and line_item.estimated is None
    assert not line_item.comparable and line_item.variance is None
    estimate_only = rows[(DAY2, "openai", SNAP)]
    assert estimate_only.billed is None and estimate_only.estimated == Decimal("0.30")
    unpriced_row = rows[(DAY2, "openai", "mystery-model")]
    assert unpriced_row.estimated is None and unpriced_row.unpriced_tokens == 150
    assert rows[(DAY1, "anthropic", "claude-3-5-haiku-20241022")].variance == 0

    days = {(d.day, d.provider): d for d in report.days}
    day2 = days[(DAY2, "openai")]
    assert (day2.billed, day2.estimated, day2.variance) == (
        Decimal("0.40"),
        Decimal("0.30"),
        Decimal("0.10"),
    )
    assert day2.variance_share == Decimal("0.25") and not day2.complete
    assert days[(DAY1, "openai")].complete
    groq = days[(DAY1, "groq")]
    assert groq.billed is None and not groq.comparable and groq.variance is None

    totals = {p.provider: p for p in report.totals.providers}
    assert totals["openai"].billed == Decimal("1.16")
    assert totals["openai"].estimated_on_billed_days == Decimal("1.05")
    assert totals["openai"].variance == Decimal("0.11")
    assert totals["openai"].variance_share == Decimal("0.0948")
    assert totals["openai"].days_compared == 2
    assert totals["groq"].billed is None and totals["groq"].estimated == Decimal("0.59")
    t = report.totals
    assert (t.billed, t.estimated_on_billed_days, t.estimated) == (
        Decimal("1.96"),
        Decimal("1.85"),
        Decimal("2.44"),
    )
    assert t.variance == Decimal("0.11") and t.variance_share == Decimal("0.0561")
    assert t.unpriced_tokens == 150

    assert [(m.provider, m.model, m.tokens, m.rows) for m in report.unpriced] == [
        ("openai", "mystery-model", 150, 1)
    ]

    payload = json.loads(json.dumps(report.as_json()))
    assert payload["totals"]["billed"] == "1.960000"
    assert payload["totals"]["variance_share"] == "0.0561"
    assert payload["unpriced"][0]["model"] == "mystery-model"
    assert {d["provider"] for d in payload["days"]} == {"openai", "anthropic", "groq"}


def test_by_model_compared_on_the_days_the_provider_billed(session: Session) -> None:
    _seed(session)
    report = reconcile(session=session, start=DAY1, end=DAY2)
    models = {(m.provider, m.item): m for m in report.models}
    snap = models[("openai", SNAP)]
    # Billed 0.76 on day 1; estimated 0.75 on day 1 and 0.30 on day 2, when OpenAI billed
    # only a line item that names no model.
    assert (snap.billed, snap.estimated, snap.estimated_on_billed_days) == (
        Decimal("0.76"),
        Decimal("1.05"),
        Decimal("1.05"),
    )
    assert snap.variance == Decimal("-0.29") and snap.days_compared == 2
    fee = models[("openai", "cost:Web search tool calls")]
    assert (fee.billed, fee.estimated, fee.variance) == (Decimal("0.40"), None, Decimal("0.40"))
    assert fee.variance_share == 1
    mystery = models[("openai", "mystery-model")]
    assert (mystery.billed, mystery.estimated, mystery.variance) == (0, None, 0)
    assert mystery.unpriced_tokens == 150 and mystery.variance_share is None
    groq = models[("groq", "llama-3.3-70b-versatile")]
    assert groq.billed is None and groq.variance is None and groq.days_compared == 0
    assert groq.estimated == Decimal("0.59") and groq.estimated_on_billed_days == 0
    # The models' variances add up to their provider's.
    for p in report.totals.providers:
        parts = [m.variance for m in report.models if m.provider == p.provider]
        assert sum((v for v in parts if v is not None), Decimal(0)) == (p.variance or 0)
    assert json.loads(json.dumps(report.as_json()))["models"][0]["provider"] == "anthropic"


def test_unpriced_models_for_alerts(session: Session) -> None:
    _seed(session)
    found = unpriced_models(session=session, start=DAY1, end=DAY2 + dt.timedelta(days=1))
    assert [(m.model, m.tokens, m.first_day, m.last_day) for m in found] == [
        ("mystery-model", 150, DAY2, DAY2),
        ("mystery-2", 9, DAY2 + dt.timedelta(days=1), DAY2 + dt.timedelta(days=1)),
    ]
    assert unpriced_models(session=session, start=DAY1, end=DAY1) == []


def test_empty_range_and_bad_range(session: Session) -> None:
    report = reconcile(session=session, start=DAY1, end=DAY2)
    assert report.rows == [] and report.totals.billed == 0 and report.totals.variance_share is None
    with pytest.raises(InvalidInput):
        reconcile(session=session, start=DAY2, end=DAY1)
