"""Seeded usage for the export tests: several providers, billed and estimated rows, a
Copilot seat row, cached tokens, a batch row, a discount override, an unpriced row whose
names try spreadsheet formula injection, and a row outside the exported month."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from tests.factories import add_account
from tracker.costs.pricebook import PriceBook, store_amount
from tracker.models import Account, PriceOverride, UsageRecord

SECRET = "ENCRYPTED-CREDENTIAL-never-exported-7f3a"
LAST4 = "q9Zk"
JAN = (dt.date(2025, 1, 1), dt.date(2025, 1, 31))
DAY = dt.date(2025, 1, 15)
INJECTION_MODEL = '=HYPERLINK("http://evil.example","x")'
INJECTION_PROJECT = "+SUM(A1:A9)"
INJECTION_KEY = "@cmd"


@dataclass(frozen=True)
class Seeded:
    january_cost: Decimal  # billed else estimated, summed, January only
    january_rows: int
    openai_cost: Decimal


def _account(session: Session, provider: str, name: str, org: str | None) -> Account:
    return add_account(
        session,
        name,
        provider,
        budget="100.00",
        credential=(SECRET, LAST4),
        organization_id=org,
    )


def seed(session: Session) -> Seeded:
    """Insert the seeded accounts, override and usage; flush (the caller commits or not)."""
    session.add(
        PriceOverride(
            provider="openai",
            model="gpt-4o",
            kind="discount",
            discount_pct=Decimal("20"),
            valid_from=dt.date(2025, 1, 1),
            note="negotiated discount",
        )
    )
    session.flush()
    book = PriceBook.from_db(session)
    openai = _account(session, "openai", "Acme OpenAI", "org-openai-1")
    anthropic = _account(session, "anthropic", "Acme Anthropic", None)
    github = _account(session, "github_copilot", "Acme GitHub", "acme")

    def estimated(provider: str, model: str, tier: str = "", **tokens: int) -> Decimal:
        quote = book.quote(provider=provider, model=model, day=DAY, tier=tier, **tokens)
        assert quote.estimated_cost is not None, quote.reason
        return store_amount(quote.estimated_cost)

    rows = [
        UsageRecord(
            account_id=openai.id,
            day=DAY,
            model="gpt-4o",
            project_id="proj-1",
            project_name="Default project",
            api_key_id="key-1",
            api_key_name="ci key",
            usage_type="completions",
            input_tokens=100_000,
            cached_input_tokens=20_000,
            output_tokens=50_000,
            requests=40,
            estimated_cost=estimated(
                "openai", "gpt-4o", input_tokens=100_000, cached_tokens=20_000, output_tokens=50_000
            ),
            cost_source="estimated",
            pricing_status="priced",
        ),
        UsageRecord(
            account_id=openai.id,
            day=DAY,
            model="gpt-4o-mini",
            project_id="proj-2",
            project_name="Batch jobs",
            usage_type="completions",
            service_tier="batch",
            input_tokens=1_000_000,
            output_tokens=200_000,
            requests=7,
            estimated_cost=estimated(
                "openai", "gpt-4o-mini", "batch", input_tokens=1_000_000, output_tokens=200_000
            ),
            cost_source="estimated",
            pricing_status="priced",
        ),
        # Two billed line items that add up to 0.3 exactly (no float noise allowed).
        UsageRecord(
            account_id=openai.id,
            day=DAY,
            model="gpt-4o",
            project_id="proj-1",
            project_name="Default project",
            usage_type="cost:gpt-4o, input",
            billed_cost=Decimal("0.100000"),
            other_units=Decimal("40000"),
            cost_source="billed",
            pricing_status="not_applicable",
        ),
        UsageRecord(
            account_id=openai.id,
            day=DAY,
            model="gpt-4o",
            project_id="proj-1",
            project_name="Default project",
            usage_type="cost:gpt-4o, output",
            billed_cost=Decimal("0.200000"),
            cost_source="billed",
            pricing_status="not_applicable",
        ),
        # Unpriced, and every name tries formula injection.
        UsageRecord(
            account_id=openai.id,
            day=dt.date(2025, 1, 16),
            model=INJECTION_MODEL,
            project_id="-proj-evil",
            project_name=INJECTION_PROJECT,
            api_key_id="key-evil",
            api_key_name=INJECTION_KEY,
            usage_type="completions",
            input_tokens=1_000,
            output_tokens=10,
            requests=1,
            cost_source="none",
            pricing_status="unpriced",
        ),
        UsageRecord(
            account_id=anthropic.id,
            day=DAY,
            model="claude-sonnet-4-5",
            project_id="ws-1",
            project_name="Default workspace",
            usage_type="messages",
            input_tokens=300_000,
            cached_input_tokens=1_000_000,
            cache_write_tokens=50_000,
            cache_write_1h_tokens=10_000,
            output_tokens=40_000,
            estimated_cost=estimated(
                "anthropic",
                "claude-sonnet-4-5",
                input_tokens=300_000,
                cached_tokens=1_000_000,
                cache_write_tokens=50_000,
                cache_write_1h_tokens=10_000,
                output_tokens=40_000,
            ),
            cost_source="estimated",
            pricing_status="priced",
        ),
        UsageRecord(
            account_id=anthropic.id,
            day=DAY,
            project_id="ws-1",
            project_name="Default workspace",
            usage_type="cost:output_tokens",
            billed_cost=Decimal("1.234567"),
            cost_source="billed",
            pricing_status="not_applicable",
        ),
        UsageRecord(
            account_id=github.id,
            day=DAY,
            model="business",
            usage_type="seats",
            other_units=Decimal(3),
            other_unit_name="seats",
            billed_cost=Decimal("1.838710"),
            cost_source="billed",
            pricing_status="not_applicable",
        ),
        # February: outside the exported range.
        UsageRecord(
            account_id=openai.id,
            day=dt.date(2025, 2, 1),
            model="gpt-4o",
            usage_type="completions",
            input_tokens=5,
            estimated_cost=Decimal("9.000000"),
            cost_source="estimated",
            pricing_status="priced",
        ),
    ]
    session.add_all(rows)
    session.flush()
    january = [r for r in rows if r.day <= JAN[1]]

    def cost(r: UsageRecord) -> Decimal:
        value = r.billed_cost if r.billed_cost is not None else r.estimated_cost
        return value or Decimal(0)

    return Seeded(
        january_cost=sum((cost(r) for r in january), Decimal(0)),
        january_rows=len(january),
        openai_cost=sum((cost(r) for r in january if r.account_id == openai.id), Decimal(0)),
    )
