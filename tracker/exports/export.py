"""Exports for finance: usage CSV and JSON, the Excel month pack, FOCUS 1.2 CSV and the
FOCUS 1.4 datasets (a zip).

Every export reads the same filtered row query (`usage_rows`): UTC days `start..end`
inclusive and the usage explorer's filters (provider, account, model, project, API key).
Rows are streamed from the database in chunks (`yield_per`, a server-side cursor on
PostgreSQL), so a million-row CSV or FOCUS export never holds the table in memory.

Money is `Decimal` from the database to the file, written in plain notation without rounding
(`NUMERIC(18, 6)` values keep their six places; no float noise). The cost of a row is its
provider-billed cost where reported, else our estimate (the dashboard's rule); a row with
neither is unpriced and counts as zero.

Spreadsheet safety: text cells that start with `=`, `+`, `-`, `@`, a tab or a carriage return
(model, project and key names come from outside) get a leading apostrophe in CSV, FOCUS and
Excel output, so a spreadsheet shows them as text instead of running them as formulas. JSON
keeps values as they are (it is not opened by spreadsheets). Credentials are never selected.

FOCUS: one row per charge, i.e. per token kind (input, cached input, cache writes, output) of
a usage row, per request fee, per seat row, per billed line item. See `docs/exports.md` for
the column mapping and the cost columns' meaning.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from decimal import Decimal
from typing import IO, Any

from sqlalchemy.orm import Session

from tracker.attribution.teams import TeamResolver
from tracker.core.config import Settings
from tracker.core.errors import InvalidInput
from tracker.costs.pricebook import PriceBook
from tracker.exports.focus import write_focus
from tracker.exports.focus14 import write_focus14
from tracker.exports.rows import FORMATS, check_range, usage_rows
from tracker.exports.tabular import ExportStats, write_csv, write_json
from tracker.exports.xlsx import write_xlsx
from tracker.reporting.sources import Dimensions

log = logging.getLogger(__name__)


def export(
    *,
    session: Session,
    fmt: str,
    start: dt.date,
    end: dt.date,
    filters: Dimensions | None = None,
    out: IO[Any],
    invoice_tolerance_pct: Decimal = Settings.invoice_tolerance_pct,
) -> ExportStats:
    """Write an export of UTC days start..end (inclusive) to `out`.

    `out` is a text stream (UTF-8) for csv, json and focus, a binary stream for xlsx and
    focus-1.4 (zip files); a binary stream is accepted for the text formats too (wrapped as
    UTF-8). `invoice_tolerance_pct`: how far an invoice may be off and still count as within
    tolerance (FOCUS 1.4's InvoiceDetail says how each recorded invoice matches).
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    check_range(start, end)
    flt = filters or Dimensions()
    rows = usage_rows(session=session, start=start, end=end, filters=flt)
    if fmt in ("xlsx", "focus-1.4"):
        if isinstance(out, io.TextIOBase):
            raise InvalidInput(f"{fmt} is a binary file; write it to a file, not standard output")
        if fmt == "xlsx":
            return write_xlsx(rows, out, session=session, start=start, end=end, filters=flt)
        return write_focus14(
            rows,
            out,
            session=session,
            start=start,
            end=end,
            filters=flt,
            list_book=PriceBook(()),
            book=PriceBook.from_db(session),
            invoice_tolerance_pct=invoice_tolerance_pct,
        )
    text, wrapper = _text_stream(out)
    try:
        if fmt == "csv":
            stats = write_csv(rows, text, teams=TeamResolver(session))
        elif fmt == "json":
            stats = write_json(rows, text, start=start, end=end, teams=TeamResolver(session))
        else:
            stats = write_focus(
                rows,
                text,
                list_book=PriceBook(()),
                book=PriceBook.from_db(session),
                teams=TeamResolver(session),
            )
    finally:
        if wrapper is not None:
            wrapper.flush()
            wrapper.detach()
    log.info("exported %s records as %s (%s rows)", stats.records, fmt, stats.rows)
    return stats


def _text_stream(out: IO[Any]) -> tuple[IO[str], io.TextIOWrapper | None]:
    if isinstance(out, io.TextIOBase) or hasattr(out, "encoding"):
        return out, None
    wrapper = io.TextIOWrapper(out, encoding="utf-8", newline="")
    return wrapper, wrapper


def export_bytes(
    *,
    session: Session,
    fmt: str,
    start: dt.date,
    end: dt.date,
    filters: Dimensions | None = None,
    invoice_tolerance_pct: Decimal = Settings.invoice_tolerance_pct,
) -> tuple[bytes, ExportStats]:
    """The whole export as bytes, with what it holds (for download buttons; small ranges
    only)."""
    buffer = io.BytesIO()
    stats = export(
        session=session,
        fmt=fmt,
        start=start,
        end=end,
        filters=filters,
        out=buffer,
        invoice_tolerance_pct=invoice_tolerance_pct,
    )
    return buffer.getvalue(), stats


FILE_EXTENSIONS: dict[str, str] = {
    "csv": "csv",
    "json": "json",
    "xlsx": "xlsx",
    "focus": "csv",
    "focus-1.4": "zip",
}
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "focus": "text/csv",
    "focus-1.4": "application/zip",
}


def file_name(fmt: str, start: dt.date, end: dt.date) -> str:
    """A download file name such as `ai-costs-focus-2025-01-01-to-2025-01-31.csv` (FOCUS 1.2)
    or `ai-costs-focus-1.4-2025-01-01-to-2025-01-31.zip`."""
    return f"ai-costs-{fmt}-{start.isoformat()}-to-{end.isoformat()}.{FILE_EXTENSIONS[fmt]}"
