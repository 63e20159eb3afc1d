"""The savings ledger: cache, batch, flex, off-peak and negotiated savings against list
prices, by month and provider, worked out by hand; and the month pack's Savings sheet."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.exports import export
from tracker.models import Account, Service, UsageRecord
from tracker.reporting.savings import by_kind, savings_frame, savings_ledger

M = 1_000_000
D = dt.date


def _account(session: Session, provider: str) -> int:
    service = session.scalar(select(Service).where(Service.name == provider))
    assert service is not None
    account = Account(
        service_id=service.id, name=f"{provider}-s", credential_encrypted="v1.x.y",
        credential_last4="abcd",
    )  # fmt: skip
    session.add(account)
    session.flush()
    return account.id


def seed(session: Session) -> None:
    openai, anthropic, deepseek = (
        _account(session, p) for p in ("openai", "anthropic", "deepseek")
    )
    aug = D(2026, 8, 3)
    rows = [
        # gpt-4o-mini: 1M uncached + 1M cache reads (0.15 and 0.075 a million).
        dict(account_id=openai, day=aug, model="gpt-4o-mini", input_tokens=M,
             cached_input_tokens=M, requests=10, cost_source="estimated"),
        # Batch, before the catalog's batch prices: half of 0.15 + 0.60.
        dict(account_id=openai, day=aug, model="gpt-4o-mini", service_tier="batch",
             input_tokens=M, output_tokens=M, cost_source="estimated"),
        # Flex (the catalog's): 0.625 + 5 against 1.25 + 10.
        dict(account_id=openai, day=D(2026, 11, 2), model="gpt-5", service_tier="flex",
             input_tokens=M, output_tokens=M, cost_source="estimated"),
        # Billed by Anthropic as its share of a line item: $4.50 against 1 + 5 at list.
        dict(account_id=anthropic, day=aug, model="claude-haiku-4-5", input_tokens=M,
             output_tokens=M, cost_source="covered", allocated_cost=Decimal("4.5")),
        # Time-of-day prices: off-peak 0.15 + 0.60 used, peak 0.30 + 1.20.
        dict(account_id=deepseek, day=D(2026, 9, 15), model="deepseek-v4-flash",
             input_tokens=M, output_tokens=M, cost_source="estimated"),
        # Not in the ledger: a billed line item, and a model with no list price.
        dict(account_id=anthropic, day=aug, usage_type="cost:output_tokens",
             billed_cost=Decimal("4.5"), cost_source="billed"),
        dict(account_id=openai, day=aug, model="ft:unknown", input_tokens=M,
             cost_source="none"),
    ]  # fmt: skip
    for row in rows:
        session.add(UsageRecord(**{"usage_type": "completions", **row}))
    session.flush()


def test_savings_by_kind_month_and_provider(session: Session) -> None:
    seed(session)
    lines = savings_ledger(session=session, start=D(2026, 8, 1), end=D(2026, 11, 30))
    found = {(line.month, line.provider): line for line in lines}
    assert list(found) == [
        (D(2026, 8, 1), "anthropic"),
        (D(2026, 8, 1), "openai"),
        (D(2026, 9, 1), "deepseek"),
        (D(2026, 11, 1), "openai"),
    ]
    august = found[(D(2026, 8, 1), "openai")]
    assert august.saved["cache"] == Decimal("0.075")  # 2M * 0.15 - (0.15 + 0.075)
    assert august.saved["batch"] == Decimal("0.375")
    assert august.list_cost == Decimal("0.6")  # 0.225 + 0.375
    assert found[(D(2026, 11, 1), "openai")].saved["flex"] == Decimal("5.625")
    negotiated = found[(D(2026, 8, 1), "anthropic")]
    assert (negotiated.saved["negotiated"], negotiated.list_cost) == (Decimal("1.5"), Decimal(6))
    off_peak = found[(D(2026, 9, 1), "deepseek")]
    assert off_peak.saved["off_peak"] == Decimal("0.75") and off_peak.approximate
    assert not august.approximate
    totals = by_kind(lines)
    assert totals["total"] == Decimal("0.075") + Decimal("0.375") + Decimal("5.625") + Decimal(
        "1.5"
    ) + Decimal("0.75")
    # The provider filter; and the page's frame.
    only = savings_ledger(session=session, start=D(2026, 8, 1), end=D(2026, 8, 31),
                          providers=["anthropic"])  # fmt: skip
    assert [(line.provider, line.total) for line in only] == [("anthropic", Decimal("1.5"))]
    frame = savings_frame(session=session, start=D(2026, 8, 1), end=D(2026, 8, 31))
    assert list(frame["provider"]) == ["Anthropic", "OpenAI"]
    assert frame["total"].sum() == Decimal("1.95")


def test_missed_batch_counts_embeddings_only_where_batch_is_in_use(session: Session) -> None:
    """Embeddings at the standard tier are batch-eligible: missed savings where the provider's
    batch is used that month (August), none where it is not (September)."""
    seed(session)
    before = savings_ledger(session=session, start=D(2026, 8, 1), end=D(2026, 8, 31))
    openai = session.scalar(select(Account.id).where(Account.name == "openai-s"))
    for day in (D(2026, 8, 5), D(2026, 9, 5)):
        session.add(
            UsageRecord(account_id=openai, day=day, model="text-embedding-3-small",
                        usage_type="embeddings", input_tokens=10 * M, cost_source="estimated")
        )  # fmt: skip
    session.flush()
    lines = {
        (line.month, line.provider): line
        for line in savings_ledger(session=session, start=D(2026, 8, 1), end=D(2026, 9, 30))
    }
    august = lines[(D(2026, 8, 1), "openai")]
    # 10M tokens at $0.02 a million, batch at half: $0.10 missed.
    assert august.uses_batch and august.missed_batch == Decimal("0.1")
    september = lines[(D(2026, 9, 1), "openai")]
    assert not september.uses_batch and september.missed_batch == 0
    # Missed savings are not savings: August's embeddings add nothing to what was saved.
    assert august.saved == next(x for x in before if x.provider == "openai").saved
    frame = savings_frame(session=session, start=D(2026, 8, 1), end=D(2026, 8, 31))
    assert frame.set_index("provider").at["OpenAI", "missed_batch"] == Decimal("0.1")


def test_month_pack_has_the_savings_sheet(session: Session) -> None:
    seed(session)
    data = export.export_bytes(session=session, fmt="xlsx", start=D(2026, 8, 1),
                               end=D(2026, 11, 30))[0]  # fmt: skip
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Savings"]
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=2) if r[0].value]
    assert [r[:2] for r in rows] == [
        ["2026-08", "Anthropic"],
        ["2026-08", "OpenAI"],
        ["2026-09", "DeepSeek"],
        ["2026-11", "OpenAI"],
        ["Total", None],
    ]
    assert rows[1][2:5] == [0.075, 0.375, 0]  # cache, batch, flex
    assert rows[2][5] == 0.75 and rows[2][9] == "yes"  # off-peak, approximate
    assert rows[-1][7] == 8.325  # every saving
    assert "$" in sheet.cell(2, 3).number_format


def test_an_unallocated_line_item_with_its_list_amount_counts_as_negotiated(
    session: Session,
) -> None:
    anthropic = _account(session, "anthropic")
    aug, sep = D(2026, 8, 3), D(2026, 9, 1)
    rows = [
        # claude.ai spend with no token rows: $3.44 billed, $4.00 at list.
        dict(day=aug, usage_type="cost:claude_ai", billed_cost=Decimal("3.44"),
             list_cost=Decimal("4"), cost_source="billed"),
        # Allocated to usage rows: its discount is counted there, not again here.
        dict(day=aug, usage_type="cost:api", billed_cost=Decimal("6"), list_cost=Decimal("7"),
             cost_source="covered"),
        # No list amount reported: nothing to compare.
        dict(day=sep, usage_type="cost:output_tokens", billed_cost=Decimal("1"),
             cost_source="billed"),
    ]  # fmt: skip
    for row in rows:
        session.add(UsageRecord(account_id=anthropic, **row))
    session.flush()
    lines = savings_ledger(session=session, start=aug, end=D(2026, 9, 30))
    assert [(s.month, s.saved["negotiated"], s.list_cost) for s in lines] == [
        (D(2026, 8, 1), Decimal("0.56"), Decimal("4"))
    ]
