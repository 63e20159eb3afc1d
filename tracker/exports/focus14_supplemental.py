"""FOCUS 1.4's supplemental datasets, from the month-end close and the recorded invoices.

- **BillingPeriod**: one row per month of the export and invoice issuer (provider) that has
  charges or a recorded invoice in it. `Closed` once the month's close is approved, else
  `Open` (a prepared month is still open: its figures may still move). The record exists from
  the month's first moment; it was last updated when its status changed or an invoice for it
  was recorded. Custom columns: what the close booked for the provider (`x_BookedCost`) and
  what has been restated since (`x_RestatedCost`, the corrections recorded against it).
- **InvoiceDetail**: one row per recorded provider invoice of the export's months (and its
  provider and account filters): finance records an invoice's total, so each invoice is one
  line. Custom columns: its match against the synced billed total (`x_MatchStatus`,
  `x_SyncedBilledCost`, `x_Variance`; `tracker.costs.invoices`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.closing.corrections import period_books
from tracker.core.units import month_start, next_month, to_dollars
from tracker.costs.invoices import InvoiceMatch, MatchStatus, list_invoices
from tracker.exports.focus import service_name
from tracker.exports.rows import decimal_str, safe_text
from tracker.models import Account, Service
from tracker.models.closing import PeriodStatus
from tracker.providers.registry import display_name
from tracker.reporting.sources import Dimensions

BILLING_PERIOD_COLUMNS = (
    "BillingPeriodCreated",
    "BillingPeriodEnd",
    "BillingPeriodLastUpdated",
    "BillingPeriodStart",
    "BillingPeriodStatus",
    "InvoiceIssuerName",
    "x_BookedCost",
    "x_RestatedCost",
)
BILLING_PERIOD_TYPES = {
    **dict.fromkeys(BILLING_PERIOD_COLUMNS[:4], "Date/Time"),
    "BillingPeriodStatus": "String",
    "InvoiceIssuerName": "String",
    "x_BookedCost": "Decimal",
    "x_RestatedCost": "Decimal",
}
INVOICE_DETAIL_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "InvoiceDetailCreated",
    "InvoiceDetailDescription",
    "InvoiceDetailGrain",
    "InvoiceDetailId",
    "InvoiceDetailLastUpdated",
    "InvoiceId",
    "InvoiceIssueDate",
    "InvoiceIssueStatus",
    "InvoiceIssuerName",
    "PaymentDueDate",
    "PaymentTerms",
    "PurchaseOrderNumber",
    "ReferenceInvoiceId",
    "x_MatchStatus",
    "x_SyncedBilledCost",
    "x_Variance",
)
INVOICE_DETAIL_TYPES = {
    **dict.fromkeys(INVOICE_DETAIL_COLUMNS, "String"),
    **dict.fromkeys(("BilledCost", "x_SyncedBilledCost", "x_Variance"), "Decimal"),
    **dict.fromkeys(
        (
            "BillingPeriodEnd",
            "BillingPeriodStart",
            "InvoiceDetailCreated",
            "InvoiceDetailLastUpdated",
            "InvoiceIssueDate",
            "PaymentDueDate",
        ),
        "Date/Time",
    ),
    "InvoiceDetailGrain": "JSON",
}
# API providers charge the card on file when they issue an invoice: with no due date recorded,
# that is what the invoice's terms are.
ON_RECEIPT = "Due on receipt"


class Dataset(NamedTuple):
    id: str  # the FOCUS dataset id, also the file's name
    columns: tuple[str, ...]
    data_types: dict[str, str]
    records: list[dict[str, str]]


def stamp(moment: dt.datetime | dt.date) -> str:
    """A FOCUS date/time: ISO 8601 in UTC with a `Z` (a date is its first moment)."""
    if not isinstance(moment, dt.datetime):
        return moment.isoformat() + "T00:00:00Z"
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return f"{moment.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


def invoices(
    *, session: Session, months: Iterable[dt.date], filters: Dimensions, tolerance_pct: Decimal
) -> list[InvoiceMatch]:
    """The recorded invoices of the months, for the filters' providers and accounts (an
    invoice covers a whole account: the other filters do not narrow it)."""
    wanted = set(months)
    return sorted(
        (
            inv
            for inv in list_invoices(session=session, tolerance_pct=tolerance_pct)
            if inv.period in wanted
            and (not filters.providers or inv.provider in filters.providers)
            and (not filters.accounts or inv.account in filters.accounts)
        ),
        key=lambda inv: (inv.period, inv.provider, inv.account, inv.invoice_number),
    )


def datasets(
    *,
    session: Session,
    invoices: list[InvoiceMatch],
    issuers: set[tuple[str, str]],
) -> tuple[Dataset, Dataset]:
    """The BillingPeriod and InvoiceDetail datasets; `issuers`: (BillingPeriodStart,
    InvoiceIssuerName) pairs the cost and usage rows hold."""
    # The billing account id and issuer name as the cost and usage rows write them.
    accounts = {
        name: (org or name, issuer)
        for name, org, issuer in session.execute(
            select(Account.name, Account.organization_id, Service.display_name).join(
                Service, Service.id == Account.service_id
            )
        )
    }
    detail = [
        _invoice_record(inv, *accounts.get(inv.account, (inv.account, display_name(inv.provider))))
        for inv in invoices
    ]
    recorded: dict[tuple[str, str], dt.datetime] = {}
    for inv, rec in zip(invoices, detail, strict=True):
        key = (rec["BillingPeriodStart"], rec["InvoiceIssuerName"])
        at = _utc(inv.created_at)
        recorded[key] = max(recorded.get(key, at), at)
    pairs = sorted(issuers | set(recorded))
    books = period_books(
        session=session, months={dt.date.fromisoformat(start[:10]) for start, _ in pairs}
    )
    periods = []
    for start, issuer in pairs:
        month = dt.date.fromisoformat(start[:10])
        held = books[month]
        closed = held.status == PeriodStatus.CLOSED
        changed = _utc(held.changed_at) if held.changed_at is not None else None
        moments = [m for m in (changed, recorded.get((start, issuer))) if m is not None]
        created = dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC)
        periods.append(
            {
                "BillingPeriodCreated": stamp(created),
                "BillingPeriodEnd": stamp(next_month(month)),
                "BillingPeriodLastUpdated": stamp(max([created, *moments])),
                "BillingPeriodStart": start,
                "BillingPeriodStatus": "Closed" if closed else "Open",
                "InvoiceIssuerName": issuer,
                "x_BookedCost": (
                    decimal_str(to_dollars(held.booked.get(issuer, 0))) if closed else ""
                ),
                "x_RestatedCost": (
                    decimal_str(to_dollars(held.restated.get(issuer, 0))) if closed else ""
                ),
            }
        )
    return (
        Dataset("BillingPeriod", BILLING_PERIOD_COLUMNS, BILLING_PERIOD_TYPES, periods),
        Dataset("InvoiceDetail", INVOICE_DETAIL_COLUMNS, INVOICE_DETAIL_TYPES, detail),
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def invoice_detail_id(invoice_number: str) -> str:
    """The InvoiceDetailId of a recorded invoice's one line (the tracker records an invoice's
    total, not its lines); the cost and usage rows of its account and month carry it too."""
    return f"{invoice_number}-1"


def _invoice_record(inv: InvoiceMatch, billing_account: str, issuer: str) -> dict[str, str]:
    terms = f"Net {(inv.due_on - inv.issued_on).days}" if inv.due_on else ON_RECEIPT
    comparable = inv.status is not MatchStatus.NOT_COMPARABLE
    return {
        "BilledCost": decimal_str(inv.amount),
        "BillingAccountId": safe_text(billing_account),
        "BillingCurrency": inv.currency.upper(),
        "BillingPeriodEnd": stamp(next_month(inv.period)),
        "BillingPeriodStart": stamp(month_start(inv.period)),
        # One line aggregates the month's usage and credits: "Usage" (never taxes apart).
        "ChargeCategory": "Usage",
        "InvoiceDetailCreated": stamp(inv.created_at),
        "InvoiceDetailDescription": safe_text(
            f"{issuer} invoice {inv.invoice_number} for {inv.period:%Y-%m}, account {inv.account}"
        ),
        "InvoiceDetailGrain": json.dumps({"ServiceName": service_name(inv.provider)}),
        "InvoiceDetailId": safe_text(invoice_detail_id(inv.invoice_number)),
        "InvoiceDetailLastUpdated": stamp(inv.created_at),
        "InvoiceId": safe_text(inv.invoice_number),
        "InvoiceIssueDate": stamp(inv.issued_on),
        "InvoiceIssueStatus": "Issued",
        "InvoiceIssuerName": issuer,
        "PaymentDueDate": stamp(inv.due_on) if inv.due_on else "",
        "PaymentTerms": terms,
        "PurchaseOrderNumber": safe_text(inv.po_number),
        # The tracker records no invoice that adjusts another: each references itself.
        "ReferenceInvoiceId": safe_text(inv.invoice_number),
        "x_MatchStatus": str(inv.status),
        "x_SyncedBilledCost": decimal_str(inv.billed),
        "x_Variance": decimal_str(inv.variance) if comparable and inv.variance is not None else "",
    }
