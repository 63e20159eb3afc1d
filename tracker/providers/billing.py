"""What a connector may read about an account besides its usage: the provider's spend limits
(its caps, its spend alerts, its members' effective limits) and its invoices, and whether the
provider reports whole months rather than days.

Every `Connector` has these (`BillingFacts` is one of its bases); a connector whose provider
publishes them overrides the methods. The sync calls them after the usage, in the same
transaction: the limits replace the account's stored ones (`record_spend_limits`; compared
with our budgets by `tracker.planning.spend_limits`), the invoices go to the invoice matching
(`tracker.costs.provider_invoices`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import delete
from sqlalchemy.orm import Session

from tracker.models import LimitKind, ProviderSpendLimit

ACCOUNT_WIDE = ""  # the scope of a limit on everything the account's key reads
ALERT_ONLY = "alert only"  # the enforcement of an alert: it notifies, it never stops spend


@dataclass(frozen=True)
class SpendLimit:
    """One cap the provider keeps on spending, one spend alert, or one member's effective
    limit, as the provider reports it (`kind`: `LimitKind`).

    `scope` is `ACCOUNT_WIDE` for a cap on the whole organisation or team the key reads,
    else what it caps, e.g. `project:proj_1`, `workspace:wrkspc_1`, `budget:<id>`,
    `alert:<id>`, `member:<user id>:<period>`. `amount` None: no cap (or alert) at that
    scope (the provider says so). `readable` False: the provider would not tell (`note`
    says why), which is not the same as no cap. `account_wide` marks the limits on the
    whole account's spend (a cap there is what is compared with the account's budget; an
    alert there is shown beside it, never as a cap). A member's `spent` is the provider's
    figure for the current period, its `email` the member's address.
    """

    scope: str = ACCOUNT_WIDE
    scope_name: str | None = None
    amount: Decimal | None = None
    currency: str = "USD"
    period: str = "month"
    enforcement: str | None = None  # the provider's word: "hard", "soft", "stops usage", ...
    account_wide: bool = True
    readable: bool = True
    note: str | None = None
    kind: LimitKind = LimitKind.CAP
    spent: Decimal | None = None
    email: str | None = None


@dataclass(frozen=True)
class ProviderInvoice:
    """An invoice as the provider's billing API lists it (amount in `currency`, exact)."""

    invoice_number: str
    period: dt.date  # the first day of the month it bills
    issued_on: dt.date
    amount: Decimal
    currency: str = "USD"
    due_on: dt.date | None = None


class BillingFacts:
    """Spend limits, invoices and the grain of a provider's reports; by default, none."""

    # The provider reports months, not days (Mistral): a sync starts at the first day of the
    # first month it covers, so a month's rows are always rewritten together.
    month_grain: ClassVar[bool] = False

    def fetch_spend_limits(self) -> list[SpendLimit] | None:
        """The provider's spend limits (none on the whole account: no cap there); None: the
        provider has no such API."""
        return None

    def fetch_invoices(self) -> list[ProviderInvoice] | None:
        """The provider's invoices; None: the provider lists none by API."""
        return None


def record_spend_limits(
    session: Session, account_id: int, limits: list[SpendLimit], stamp: dt.datetime
) -> None:
    """Replace the account's stored spend limits with what the provider said at `stamp`. A
    list without a cap on the whole account records that there is none (it was read): an
    alert there does not count as one."""
    session.execute(delete(ProviderSpendLimit).where(ProviderSpendLimit.account_id == account_id))
    if not any(limit.account_wide and limit.kind == LimitKind.CAP for limit in limits):
        limits = [SpendLimit(), *limits]
    seen: set[str] = set()
    for limit in limits:
        scope = limit.scope[:255]
        if scope in seen:  # one row per scope: the first the provider listed
            continue
        seen.add(scope)
        session.add(
            ProviderSpendLimit(
                account_id=account_id,
                scope=scope,
                scope_name=limit.scope_name[:255] if limit.scope_name else None,
                amount=limit.amount,
                currency=limit.currency.upper()[:3] or "USD",
                period=limit.period[:16],
                enforcement=limit.enforcement[:32] if limit.enforcement else None,
                account_wide=limit.account_wide,
                readable=limit.readable,
                note=limit.note[:500] if limit.note else None,
                read_at=stamp,
                kind=limit.kind,
                spent=limit.spent,
                email=limit.email[:254] if limit.email else None,
            )
        )
    session.flush()
