"""Seeded usage for the export tests: several providers, billed and estimated rows, a
Copilot seat row, cached tokens, a batch row, a discount override, an unpriced row whose
names try spreadsheet formula injection, and a row outside the exported month."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import add_account, add_chart_of_accounts, add_user
from tracker.attribution import teams
from tracker.closing import corrections, periods
from tracker.costs import invoices
from tracker.costs.allocate import allocate
from tracker.costs.pricebook import PriceBook, store_amount
from tracker.costs.spend import assign_cost_sources
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


FEB = (dt.date(2025, 2, 1), dt.date(2025, 2, 28))
JAN_20 = dt.date(2025, 1, 20)
# "Today" for the close: January has ended.
CLOSED_ON = dt.date(2025, 2, 3)
OPENAI_INVOICE = "INV-2025-01"
ANTHROPIC_INVOICE = "=ANT-1"  # tries formula injection


@dataclass(frozen=True)
class Books:
    january_cost: Decimal  # as the usage stands now (after the restatement)
    february_cost: Decimal
    restated: Decimal  # the correction posted to February
    openai_billed_january: Decimal  # OpenAI's billed (not estimated) January


def seed_books(session: Session) -> Books:
    """The seeded January closed by two people, with more of what a month-end holds:

    - teams: Acme OpenAI's spend is Web's (CC-100, GL 6100), its project proj-2 ML's
      (CC-200), Acme Anthropic's Platform's, and a shared-cost rule gives Platform's spend to
      Web (60 %) and ML (40 %); GitHub's spend belongs to no team;
    - a billed line item of 2025-01-20 allocated over two usage rows it pays for;
    - after the close, the provider restates OpenAI's billed input line item of 2025-01-15
      (0.10 -> 0.15): one correction of +0.05 is posted to February;
    - February: an estimated row (the seed's) and a $2 Anthropic credit;
    - recorded invoices: OpenAI's January (Net 30, a PO number, equal to the billed total)
      and Anthropic's January in EUR without a due date.
    """
    seeded = seed(session)
    openai = session.scalar(select(Account).where(Account.name == "Acme OpenAI"))
    anthropic = session.scalar(select(Account).where(Account.name == "Acme Anthropic"))
    assert openai is not None and anthropic is not None
    book = PriceBook.from_db(session)
    billed_line = Decimal("0.050000")
    session.add_all(
        [
            UsageRecord(
                account_id=openai.id,
                day=JAN_20,
                model="gpt-4o-mini",
                project_id="proj-1",
                usage_type="cost:gpt-4o-mini, input",
                billed_cost=billed_line,
                pricing_status="not_applicable",
            ),
            *(
                UsageRecord(
                    account_id=openai.id,
                    day=JAN_20,
                    model="gpt-4o-mini",
                    project_id="proj-1",
                    api_key_id=key,
                    user_id=user,
                    usage_type="completions",
                    input_tokens=tokens,
                    requests=2,
                    estimated_cost=store_amount(
                        book.quote(
                            provider="openai", model="gpt-4o-mini", day=JAN_20, input_tokens=tokens
                        ).estimated_cost
                        or Decimal(0)
                    ),
                    pricing_status="priced",
                )
                for key, user, tokens in (("key-1", "user-ann", 10_000), ("key-2", "", 30_000))
            ),
        ]
    )
    session.flush()
    assign_cost_sources(session=session, start=JAN_20, end=JAN_20, account_ids=[openai.id])
    allocate(session=session, start=JAN_20, end=JAN_20, account_ids=[openai.id])

    for name, center, gl in (
        ("Web", "CC-100", "6100"),
        ("ML", "CC-200", None),
        ("Platform", None, None),
    ):
        teams.add_team(session=session, name=name, cost_center=center, gl_account=gl, actor="t")
    for kind, value, team in (
        ("account", "Acme OpenAI", "Web"),
        ("project", "proj-2", "ML"),
        ("account", "Acme Anthropic", "Platform"),
    ):
        teams.add_mapping(
            session=session, kind=kind, value=value, team=team, valid_from=JAN[0], actor="t"
        )
    teams.add_rule(
        session=session,
        source="Platform",
        method="fixed",
        targets=[("Web", "60"), ("ML", "40")],
        valid_from=JAN[0],
        actor="t",
    )
    for name, role in (("fin", "finance"), ("alice", "admin")):
        add_user(session, name, role)
    add_chart_of_accounts(session, expense="6100")
    periods.prepare(session=session, month=JAN[0], actor="fin", today=CLOSED_ON)
    periods.approve(session=session, month=JAN[0], actor="alice")

    restated = session.scalar(
        select(UsageRecord).where(UsageRecord.usage_type == "cost:gpt-4o, input")
    )
    assert restated is not None
    restated.billed_cost = Decimal("0.150000")
    session.flush()
    found = corrections.detect_corrections(session=session)
    assert [c.difference for c in found] == [Decimal("0.05")], found

    session.add(
        UsageRecord(
            account_id=anthropic.id,
            day=dt.date(2025, 2, 10),
            project_id="ws-1",
            usage_type="cost:promotional credit",
            billed_cost=Decimal("-2.000000"),
            cost_source="billed",
            pricing_status="not_applicable",
        )
    )
    session.flush()
    openai_billed = Decimal("0.150000") + Decimal("0.200000") + billed_line
    for fields in (
        {
            "provider": "openai",
            "account": "Acme OpenAI",
            "invoice_number": OPENAI_INVOICE,
            "issued_on": "2025-02-02",
            "due_on": "2025-03-04",
            "amount": str(openai_billed),
            "po_number": "PO-7",
        },
        {
            "provider": "anthropic",
            "account": "Acme Anthropic",
            "invoice_number": ANTHROPIC_INVOICE,
            "issued_on": "2025-02-05",
            "amount": "1.10",
            "currency": "EUR",
        },
    ):
        invoices.add_invoice(session=session, actor="fin", period="2025-01", **fields)
    return Books(
        january_cost=seeded.january_cost + Decimal("0.05") + billed_line,
        february_cost=Decimal("9.000000") - Decimal("2.000000"),
        restated=Decimal("0.05"),
        openai_billed_january=openai_billed,
    )
