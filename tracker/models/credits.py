"""Credit grants and prepaid balances per account, burned down by the account's usage.

Read and written only by `tracker.planning.credits`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tracker.models.base import ID, Base, utcnow


class CreditGrant(Base):
    """An amount an account may spend from `starts_on` (inclusive) until `expires_on`
    (exclusive: the first day it can no longer be used; None: it never expires).

    Usage burns grants in `priority` order (lower first), then the earliest expiry. What is
    left on the expiry day is lost.
    """

    __tablename__ = "credit_grants"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    starts_on: Mapped[dt.date]
    expires_on: Mapped[dt.date | None]
    priority: Mapped[int] = mapped_column(Integer, default=1)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("expires_on IS NULL OR expires_on > starts_on", name="period"),
    )

    def __repr__(self) -> str:
        return f"CreditGrant(id={self.id}, account_id={self.account_id}, amount={self.amount})"
