"""The journal entry of a closed month as CSV: its accrual and, dated the first day of the
next month, its reversal (`tracker.closing.journal` builds both, balanced to the cent).

One row per journal line: `journal` (the entry's reference), `date`, `period` (the month
the entry falls in), `line`, `gl_account`, `gl_account_name`, `cost_center`, `description`,
`debit`, `credit` (two decimals, 0.00 on the other side). Text cells pass through the
exports' `safe_text`: team, cost-center and account names are typed by people.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import IO

from sqlalchemy.orm import Session

from tracker.closing.journal import JournalEntry, journal
from tracker.exports.rows import safe_text

COLUMNS = (
    "journal",
    "date",
    "period",
    "line",
    "gl_account",
    "gl_account_name",
    "cost_center",
    "description",
    "debit",
    "credit",
)


@dataclass(frozen=True)
class JournalStats:
    lines: int
    debits: Decimal  # of the accrual entry (its reversal credits as much)
    credits: Decimal


def write_journal(entries: tuple[JournalEntry, ...], out: IO[str]) -> JournalStats:
    """Write the entries' lines as CSV to a text stream."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for entry in entries:
        for line in entry.lines:
            writer.writerow(
                [
                    entry.reference,
                    entry.date.isoformat(),
                    f"{entry.date:%Y-%m}",
                    line.number,
                    safe_text(line.gl_account),
                    safe_text(line.gl_name),
                    safe_text(line.cost_center),
                    safe_text(line.description),
                    f"{line.debit:.2f}",
                    f"{line.credit:.2f}",
                ]
            )
            count += 1
    first = entries[0]
    return JournalStats(count, first.debits, first.credits)


def export_journal(*, session: Session, month: dt.date, out: IO[str]) -> JournalStats:
    """Write the journal entry of a closed month and its reversal to `out`."""
    return write_journal(journal(session=session, month=month), out)


def journal_bytes(*, session: Session, month: dt.date) -> bytes:
    """The journal CSV of a closed month, for a download button."""
    buffer = io.StringIO()
    export_journal(session=session, month=month, out=buffer)
    return buffer.getvalue().encode("utf-8")


def journal_file_name(month: dt.date) -> str:
    return f"ai-costs-journal-{month:%Y-%m}.csv"
