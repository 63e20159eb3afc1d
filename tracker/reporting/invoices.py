"""The Invoices page's frames: every recorded invoice with its match, and the days that
explain one invoice's variance (`tracker.costs.invoices`)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.orm import Session

from tracker.core.config import Settings
from tracker.costs.invoices import InvoiceMatch, MatchStatus, list_invoices
from tracker.providers.registry import display_name

# Each match status as the page says it, and its level in the app's one status palette.
STATUS_LABELS = {
    MatchStatus.MATCHED: "Matched",
    MatchStatus.WITHIN_TOLERANCE: "Within tolerance",
    MatchStatus.UNMATCHED: "Unmatched",
    MatchStatus.NOT_COMPARABLE: "Not comparable",
}
STATUS_LEVELS = {"Matched": "OK", "Within tolerance": "Warning", "Unmatched": "Critical"}
INVOICE_COLUMNS = [
    "id",
    "period",
    "provider",
    "account",
    "invoice_id",
    "amount",
    "currency",
    "billed",
    "variance",
    "variance_pct",
    "status",
    "explanation",
    "issue_date",
    "due_date",
    "po_number",
    "source",
]
# Who put the invoice in: finance, or the provider's billing API at a sync (xAI).
SOURCE_LABELS = {"recorded": "Recorded", "provider": "Provider's billing API"}
REASON_LABELS = {"not billed": "Not billed yet", "changed": "Changed since recorded"}
MONEY_COLUMNS = ["amount", "billed", "variance", "estimated", "billed_then", "billed_now"]


def invoice_matches(*, session: Session, settings: Settings) -> list[InvoiceMatch]:
    """Every invoice matched with the tolerance the settings give."""
    return list_invoices(session=session, tolerance_pct=settings.invoice_tolerance_pct)


def invoices_frame(matches: list[InvoiceMatch]) -> pd.DataFrame:
    """One row per invoice; money as exact Decimals (amount in its own currency)."""
    rows = [
        (
            m.id,
            f"{m.period:%Y-%m}",
            display_name(m.provider),
            m.account,
            m.invoice_number,
            m.amount,
            m.currency,
            m.billed,
            m.variance,
            None if m.variance_pct is None else float(m.variance_pct),
            STATUS_LABELS[m.status],
            m.explanation(),
            m.issued_on,
            m.due_on,
            m.po_number,
            SOURCE_LABELS.get(m.source, m.source),
        )
        for m in matches
    ]
    return pd.DataFrame(rows, columns=INVOICE_COLUMNS)


def explaining_days_frame(match: InvoiceMatch) -> pd.DataFrame:
    """The days behind one invoice's variance: not billed yet (largest estimate first), then
    changed since the invoice was recorded."""
    rows = [
        (d.day, REASON_LABELS[d.reason], d.estimated, d.billed_then, d.billed_now)
        for d in [*match.not_billed, *match.changed]
    ]
    return pd.DataFrame(rows, columns=["day", "reason", "estimated", "billed_then", "billed_now"])
