"""The spend limits each provider keeps on an account, as its API last reported them.

Written by the sync (`tracker.providers.billing.record_spend_limits`), compared with our own
budgets by `tracker.planning.spend_limits`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracker.models.base import ID, Base


class LimitKind(StrEnum):
    """What a stored limit is: a cap (the provider stops or refuses spend past it), an
    alert (the provider only notifies past it: never a cap), or a member's effective limit
    (the cap that applies to one member, resolved by the provider from the configured ones)."""

    CAP = "cap"
    ALERT = "alert"
    MEMBER = "member"


class ProviderSpendLimit(Base):
    """One cap, alert or member's limit of one account at the provider, in the provider's
    currency, per `period`.

    `scope` is '' for a cap on the whole account (organisation, team), else what it caps
    (`project:ID`, `workspace:ID`, `budget:ID`, `alert:ID`, `member:ID:PERIOD`, ...).
    `amount` NULL with `readable`: the provider says there is none there; `readable` false:
    it would not say (`note`). `account_wide` marks the rows about everything the account
    spends. `spent` is what the provider says was spent in the current period at that scope
    (a member's), `email` the member's address as the provider reports it.
    """

    __tablename__ = "provider_spend_limits"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(255), default="")
    scope_name: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    period: Mapped[str] = mapped_column(String(16), default="month")
    enforcement: Mapped[str | None] = mapped_column(String(32))
    account_wide: Mapped[bool] = mapped_column(Boolean, default=True)
    readable: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(String(500))
    read_at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(
        String(16), default=LimitKind.CAP, server_default=LimitKind.CAP
    )
    spent: Mapped[Decimal | None]
    email: Mapped[str | None] = mapped_column(String(254))

    __table_args__ = (
        UniqueConstraint("account_id", "scope", name="uq_provider_spend_limits_account_scope"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount"),
        CheckConstraint("kind IN ('cap', 'alert', 'member')", name="kind"),
    )

    def __repr__(self) -> str:
        return f"ProviderSpendLimit(account_id={self.account_id}, scope={self.scope!r})"
