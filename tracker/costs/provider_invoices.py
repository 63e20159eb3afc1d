"""Invoices a provider's billing API lists (xAI), recorded at each sync so they are matched
against the synced billed totals exactly like the ones finance records.

A provider's invoice is keyed like any other: account and invoice number. A new one is
recorded with source `provider` and the billed snapshot of its month at that moment; one
the provider restated (amount, month, dates, currency) is updated; one finance already
recorded by hand under the same number is left as they wrote it. Re-reading the same list
changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.units import dec_str
from tracker.costs.invoices import billed_snapshot
from tracker.models import Account, Invoice, InvoiceSource
from tracker.providers.billing import ProviderInvoice

SYNC_ACTOR = "sync"
MICRO = Decimal("0.000001")


def record_provider_invoices(
    *, session: Session, account: Account, invoices: list[ProviderInvoice]
) -> int:
    """Record or update the provider's invoices of an account; return how many changed."""
    stored = {
        inv.invoice_number: inv
        for inv in session.scalars(select(Invoice).where(Invoice.account_id == account.id))
    }
    changed: list[ProviderInvoice] = []
    for item in invoices:
        found = stored.get(item.invoice_number)
        if found is None:
            invoice = Invoice(
                account_id=account.id,
                invoice_number=item.invoice_number,
                period=item.period,
                issued_on=item.issued_on,
                due_on=item.due_on,
                amount=item.amount,
                currency=item.currency,
                billed_snapshot=billed_snapshot(session, account.id, item.period),
                created_by=SYNC_ACTOR,
                source=InvoiceSource.PROVIDER,
            )
            session.add(invoice)
            stored[item.invoice_number] = invoice
            changed.append(item)
        elif found.source == InvoiceSource.PROVIDER and _restated(found, item):
            found.period, found.issued_on, found.due_on = item.period, item.issued_on, item.due_on
            found.amount, found.currency = item.amount, item.currency
            changed.append(item)
    session.flush()
    for item in changed:
        audit.record(
            session=session,
            actor=SYNC_ACTOR,
            action="invoice.import",
            target=f"{account.name}/{item.invoice_number}",
            period=f"{item.period:%Y-%m}",
            amount=dec_str(item.amount),
            currency=item.currency,
        )
    return len(changed)


def _restated(stored: Invoice, item: ProviderInvoice) -> bool:
    """Whether the provider now says something else (amounts compared to the micro-dollar
    the column keeps)."""
    before = (stored.period, stored.issued_on, stored.due_on, stored.currency)
    now = (item.period, item.issued_on, item.due_on, item.currency)
    return before != now or Decimal(stored.amount).quantize(MICRO) != item.amount.quantize(MICRO)
