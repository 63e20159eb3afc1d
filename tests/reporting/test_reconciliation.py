"""The Reconciliation page's frames: billed vs estimated per grain, and what explains each
variance (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.costs.test_reconcile import DAY1, DAY2, SNAP, _seed
from tracker.costs.estimate import estimate_range
from tracker.costs.overrides import add_override
from tracker.models import Account, UsageRecord
from tracker.reporting.reconciliation import MATCHES, reconciliation


def _causes(frame: pd.DataFrame, *keys: str) -> dict[tuple[object, ...], str]:
    return {tuple(row[k] for k in keys): row["cause"] for _, row in frame.iterrows()}


def test_each_variance_says_what_explains_it(session: Session) -> None:
    _seed(session)
    # Anthropic has billed day 1 but not yet day 2.
    anthropic = session.scalars(select(Account).where(Account.name == "an")).one()
    session.add(
        UsageRecord(
            account_id=anthropic.id,
            day=DAY2,
            model="claude-3-5-haiku-20241022",
            usage_type="messages",
            input_tokens=1_000_000,
        )
    )
    session.flush()
    estimate_range(session=session, start=DAY2, end=DAY2)
    figures = reconciliation(session=session, start=DAY1, end=DAY2)

    providers = _causes(figures.providers, "provider")
    assert providers[("OpenAI",)] == (
        "Billed, not estimated: cost:Web search tool calls $0.40; "
        f"Estimated, not billed under its own name: {SNAP} $0.30; "
        "Unpriced (no list price): mystery-model (150 tokens); "
        "Unexplained: $0.01 on what is both billed and estimated"
    )
    assert providers[("Anthropic",)] == "Estimate only: 1 day(s) Anthropic has not billed ($0.80)"
    assert providers[("Groq",)] == "Estimate only: Groq reported no billed cost for these dates"

    days = _causes(figures.days, "day", "provider")
    assert days[(DAY1, "Anthropic")] == MATCHES
    assert days[(DAY2, "Anthropic")] == "Estimate only: Anthropic has not billed this day yet"
    assert days[(DAY2, "OpenAI")] == (
        "Billed, not estimated: cost:Web search tool calls $0.40; "
        f"Estimated, not billed under its own name: {SNAP} $0.30; "
        "Unpriced (no list price): mystery-model (150 tokens)"
    )  # 0.40 - 0.30 is the day's whole variance: nothing unexplained
    assert days[(DAY1, "OpenAI")] == "Unexplained: $0.01 on what is both billed and estimated"

    models = _causes(figures.models, "provider", "model")
    assert models[("OpenAI", "cost:Web search tool calls")] == (
        "Billed, not estimated: a charge the price book does not price ($0.40)"
    )
    assert models[("OpenAI", "mystery-model")] == "Unpriced: 150 tokens without a list price"
    row = figures.models.set_index(["provider", "model"]).loc[("OpenAI", SNAP)]
    assert (row["billed"], row["estimated"], row["variance"]) == (
        Decimal("0.76"),
        Decimal("1.05"),
        Decimal("-0.29"),
    )
    assert row["variance_pct"] == Decimal("-38.1600")
    assert figures.estimate_only == Decimal("0.59") + Decimal("0.80")
    assert list(figures.unpriced["model"]) == ["mystery-model"]


def test_a_price_rule_in_force_is_named_and_accounts_for_the_rest(session: Session) -> None:
    _seed(session)
    rule = add_override(
        session=session,
        provider="openai",
        model=SNAP,
        kind="discount",
        valid_from=DAY1,
        valid_to=DAY2 + dt.timedelta(days=1),
        discount_pct="10",
        actor="alice",
    )
    figures = reconciliation(session=session, start=DAY1, end=DAY2)
    days = _causes(figures.days, "day", "provider")
    assert days[(DAY1, "OpenAI")] == (
        f"Price rule in force: {SNAP} (organisation discount #{rule.id}: 10%)"
    )  # the rule may be the difference: not "unexplained"
    models = _causes(figures.models, "provider", "model")
    assert models[("OpenAI", SNAP)].endswith(
        f"Price rule in force: organisation discount #{rule.id}: 10%"
    )
    assert "Price rule" not in models[("Anthropic", "claude-3-5-haiku-20241022")]
    assert figures.totals.billed == Decimal("1.96")  # the figures themselves are reconcile's
