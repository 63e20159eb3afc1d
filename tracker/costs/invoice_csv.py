"""The invoice CSV (docs/invoices-and-credits.md): its columns, the row checker, the import.

One row per invoice, a header row first:
`invoice_id, provider, account, period, issue_date, due_date, amount, currency, po_number`
(`due_date`, `currency` (default USD) and `po_number` may be left out or empty). All or
nothing: every row is checked (fields, and duplicates within the file and against what is
recorded) before anything is written; any problem refuses the file, listing the problems by
line and field (the first `MAX_ERRORS`).
"""

from __future__ import annotations

import csv
from typing import TextIO

from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput
from tracker.costs.invoices import (
    InvoiceFields,
    accounts_by_name,
    check_fields,
    duplicate_message,
    recorded_numbers,
    store,
)

REQUIRED = ("invoice_id", "provider", "account", "period", "issue_date", "amount")
OPTIONAL = ("due_date", "currency", "po_number")
# In the order of the template file and the docs.
COLUMNS = (
    "invoice_id",
    "provider",
    "account",
    "period",
    "issue_date",
    "due_date",
    "amount",
    "currency",
    "po_number",
)
MAX_ERRORS = 20
# Far more invoices than an organisation gets in years; more is the wrong file.
MAX_ROWS = 10_000


def template_csv() -> str:
    """The template to fill in: its header row only, so no example row can be imported."""
    return ",".join(COLUMNS) + "\n"


def _header(stream: TextIO) -> tuple[csv.DictReader[str], list[str]]:
    reader = csv.DictReader(stream)
    try:
        names = reader.fieldnames or []
    except csv.Error as exc:
        raise InvalidInput(f"line 1: {exc}; nothing was imported") from None
    columns = [(n or "").strip().lstrip("\ufeff").lower() for n in names]
    if not columns:
        raise InvalidInput("the file is empty; it needs the header row " + ",".join(COLUMNS))
    problems = []
    if missing := [c for c in REQUIRED if c not in columns]:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown := [c for c in columns if c and c not in COLUMNS]:
        problems.append(
            f"line 1: unknown column(s) {', '.join(unknown)}; allowed: {', '.join(COLUMNS)}"
        )
    if repeated := sorted({c for c in columns if c and columns.count(c) > 1}):
        problems.append(f"line 1: column(s) {', '.join(repeated)} appear twice")
    if problems:
        raise InvalidInput("; ".join(problems) + "; nothing was imported")
    reader.fieldnames = columns
    return reader, columns


def check_csv(session: Session, stream: TextIO) -> tuple[list[InvoiceFields], list[str]]:
    """Every row of the file checked: the invoices, and the problems ('line N: field ...')."""
    reader, _ = _header(stream)
    accounts = accounts_by_name(session)
    good: list[InvoiceFields] = []
    problems: list[str] = []
    seen: dict[tuple[int, str], int] = {}
    recorded = recorded_numbers(session)
    try:
        for raw in reader:
            line = reader.line_num
            if None in raw:
                problems.append(f"line {line}: more fields than the header has columns")
                continue
            row = {k: (v or "").strip() for k, v in raw.items()}
            if not any(row.values()):
                continue
            if any("\x00" in v for v in row.values()):
                problems.append(f"line {line}: a field holds a NUL byte; the file is damaged")
                continue
            if len(good) + len(problems) >= MAX_ROWS:
                raise InvalidInput(
                    f"the file has more than {MAX_ROWS:,} rows; split it; nothing was imported"
                )
            fields, found = check_fields(
                accounts,
                provider=row["provider"],
                account=row["account"],
                invoice_number=row["invoice_id"],
                period=row["period"],
                issued_on=row["issue_date"],
                due_on=row.get("due_date"),
                amount=row["amount"],
                currency=row.get("currency"),
                po_number=row.get("po_number"),
            )
            problems += [f"line {line}: {p}" for p in found]
            if fields is None:
                continue
            key = (fields.account.id, fields.invoice_number)
            if key in seen:
                problems.append(
                    f"line {line}: invoice_id {fields.invoice_number!r} of account "
                    f"{fields.account.name!r} repeats line {seen[key]}"
                )
            elif key in recorded:
                problems.append(f"line {line}: {duplicate_message(fields)}")
            else:
                seen[key] = line
                good.append(fields)
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    return good, problems


def import_invoices(*, session: Session, stream: TextIO, actor: str) -> int:
    """Record every invoice of a CSV, or none: return how many."""
    try:
        invoices, problems = check_csv(session, stream)
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text; save it as UTF-8 CSV") from None
    if problems:
        shown = "; ".join(problems[:MAX_ERRORS])
        more = f" (and {len(problems) - MAX_ERRORS} more)" if len(problems) > MAX_ERRORS else ""
        raise InvalidInput(
            f"the CSV has {len(problems)} problem(s), nothing was imported: {shown}{more}"
        )
    if not invoices:
        raise InvalidInput("the CSV has no invoice rows under its header; nothing was imported")
    for fields in invoices:
        store(session, fields, actor)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="invoice.import",
        target=f"{len(invoices)} invoice(s)",
        invoices=[f"{f.account.name}/{f.invoice_number}" for f in invoices],
    )
    return len(invoices)
