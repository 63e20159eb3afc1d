"""Provider invoices as finance records them (or a provider's billing API lists them),
matched against the synced billed totals.

Read and written only by `tracker.costs.invoices` (and its CSV import) and
`tracker.costs.provider_invoices`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracker.models.base import ID, Base, utcnow


class InvoiceSource(StrEnum):
    """Who put an invoice in: finance (the page, the CLI, a CSV) or the provider's billing
    API at a sync (`tracker.costs.provider_invoices`)."""

    RECORDED = "recorded"
    PROVIDER = "provider"


class Invoice(Base):
    """One provider invoice for one account and calendar month (`period`: its first day).

    `invoice_number` is the provider's own invoice id, unique per account (and so per
    provider and account). The amount is in `currency`, stored as the invoice says it and
    never converted. `billed_snapshot` keeps the synced billed total of each day of the
    period when the invoice was recorded ({"YYYY-MM-DD": micro-dollars}), so a later
    restatement of a day shows as a changed day. `source` says who put it in
    (`InvoiceSource`).
    """

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    invoice_number: Mapped[str] = mapped_column(String(128))
    period: Mapped[dt.date]
    issued_on: Mapped[dt.date]
    due_on: Mapped[dt.date | None]
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    po_number: Mapped[str | None] = mapped_column(String(64))
    billed_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(
        String(16), default=InvoiceSource.RECORDED, server_default=InvoiceSource.RECORDED
    )

    __table_args__ = (
        UniqueConstraint("account_id", "invoice_number", name="uq_invoices_account_number"),
        CheckConstraint("amount >= 0", name="amount"),
        CheckConstraint("due_on IS NULL OR due_on >= issued_on", name="due_after_issue"),
    )

    def __repr__(self) -> str:
        return f"Invoice(id={self.id}, number={self.invoice_number!r}, period={self.period})"
