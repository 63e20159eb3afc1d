"""Accruals of a closed month and their journal entry, with its reversal.

At the close, the part of each snapshot line that is estimated (usage the provider has not
billed yet) is accrued, per provider, team and GL account. The journal entry debits the
expense, one line per GL account and cost center, and credits the accrued-liabilities
account (the snapshot's, as set when it was prepared) with the total. Amounts are cents: the
total is the exact micro-dollars rounded half-up, split over the debit lines by largest
remainder (`costs.allocate.split`), so debits equal credits to the cent and no line is more
than a cent from its exact share. The reversal, dated the first day of the next month, swaps
debits and credits: the provider's invoice is then booked in full and the accrual is gone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from tracker.closing.ledger import gl_names
from tracker.closing.periods import SnapshotView, snapshot
from tracker.core.errors import InvalidInput
from tracker.core.units import CENT, MICRO, month_bounds, next_month
from tracker.costs.allocate import split
from tracker.models.closing import PeriodStatus

MICROS_PER_CENT = 10_000


@dataclass(frozen=True)
class Accrual:
    provider: str
    team: str
    cost_center: str | None
    gl_account: str | None
    amount: Decimal


@dataclass(frozen=True)
class JournalLine:
    number: int
    gl_account: str
    gl_name: str  # from the chart of accounts; '' for a code not in it
    cost_center: str
    description: str
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True)
class JournalEntry:
    reference: str
    period: dt.date  # the closed month it belongs to
    date: dt.date
    lines: tuple[JournalLine, ...]

    @property
    def debits(self) -> Decimal:
        return sum((line.debit for line in self.lines), Decimal("0.00"))

    @property
    def credits(self) -> Decimal:
        return sum((line.credit for line in self.lines), Decimal("0.00"))


def accruals(snap: SnapshotView) -> list[Accrual]:
    """What a snapshot accrues, per provider, team and GL account (with the team's cost
    center), largest first."""
    sums: dict[tuple[str, str, str | None, str | None], Decimal] = defaultdict(Decimal)
    for line in snap.lines:
        if line.accrued:
            sums[(line.provider, line.team, line.cost_center, line.gl_account)] += line.accrued
    found = [Accrual(*key, amount) for key, amount in sums.items()]
    return sorted(found, key=lambda a: (-a.amount, a.provider, a.team))


def journal(*, session: Session, month: dt.date) -> tuple[JournalEntry, JournalEntry]:
    """The accrual entry of a closed month and its reversal."""
    snap = snapshot(session=session, month=month)
    if snap is None or snap.state != PeriodStatus.CLOSED:
        raise InvalidInput(
            f"{month:%Y-%m} is not closed: its journal entry is of a closed month's accruals; "
            "prepare and approve its close first"
        )
    return build_journal(snap, gl_names(session=session))


def build_journal(snap: SnapshotView, names: dict[str, str]) -> tuple[JournalEntry, JournalEntry]:
    """The accrual entry of a snapshot (dated its month's last day) and its reversal (dated
    the next month's first day), balanced to the cent."""
    last = month_bounds(snap.month)[1]
    reference = f"AI-ACCRUAL-{snap.month:%Y-%m}"
    groups: dict[tuple[str, str], int] = defaultdict(int)
    providers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for line in snap.lines:
        micros = int(line.accrued / MICRO)
        if micros > 0:
            key = (line.gl_account or "", line.cost_center or "")
            groups[key] += micros
            providers[key].add(line.provider)
    keys = sorted(groups)
    total_micros = sum(groups.values())
    total_cents = (total_micros + MICROS_PER_CENT // 2) // MICROS_PER_CENT
    cents = split(total_cents, [groups[k] for k in keys]) if keys else []
    lines: list[JournalLine] = []
    for (gl, center), amount in zip(keys, cents, strict=True):
        if amount:
            lines.append(
                JournalLine(
                    len(lines) + 1,
                    gl,
                    names.get(gl, ""),
                    center,
                    f"AI usage of {snap.month:%B %Y} not yet billed "
                    f"({', '.join(sorted(providers[(gl, center)]))})",
                    Decimal(amount) * CENT,
                    Decimal("0.00"),
                )  # fmt: skip
            )
    if lines:
        liability = snap.liability_gl_account or ""
        lines.append(
            JournalLine(
                len(lines) + 1,
                liability,
                names.get(liability, ""),
                "",
                f"Accrued AI usage of {snap.month:%B %Y}",
                Decimal("0.00"),
                Decimal(total_cents) * CENT,
            )  # fmt: skip
        )
    entry = JournalEntry(reference, snap.month, last, tuple(lines))
    reversal = JournalEntry(
        f"{reference}-REV",
        snap.month,
        next_month(snap.month),
        tuple(
            JournalLine(
                line.number,
                line.gl_account,
                line.gl_name,
                line.cost_center,
                f"Reversal of {reference}: {line.description}",
                line.credit,
                line.debit,
            )  # fmt: skip
            for line in lines
        ),
    )
    return entry, reversal
