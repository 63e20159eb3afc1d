"""CSV import of daily usage for providers without a usage API (Groq, Perplexity; any account).

The template (docs/csv-import.md) has a header row and one row per UTC day and model:
`day, model, input_tokens, output_tokens, requests` and optionally `cached_input_tokens`,
`cost` (USD, the provider's figure), `project`, `api_key_id` and `user_id`, and the detail
columns (`csv_template.DETAIL_COLUMNS`: audio, image and reasoning parts of the tokens,
tool calls, sessions, images, seconds, characters, search context size). `input_tokens`
counts all input tokens as the provider reports them, cached ones included; the stored
`input_tokens` is the uncached part (`input_tokens - cached_input_tokens`), like every other
source; `input_audio_tokens` and `input_image_tokens` are parts of that uncached part, the
cached ones go in `cached_audio_tokens` and `cached_image_tokens`.

All or nothing, streaming, in a savepoint of the caller's transaction. On PostgreSQL the file
goes through COPY first (`csv_copy`: 1.84 M rows in seconds); a file that path does not
accept as certainly fine is read again by the row checker here, which checks each row and
writes in batches as it reads, so memory stays flat. Any bad row raises `InvalidInput`
listing the problems by line number (the first `MAX_ERRORS`), and the savepoint rolls back,
so nothing stays written. Rows
repeating a day, model, project, key and user are added up; importing the same day, model,
project, key and user again replaces the earlier import. Imported rows have `usage_type =
'import'`, which a sync never deletes.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TextIO

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput
from tracker.core.units import today_utc
from tracker.ingest.csv_copy import NotFastPath, copy_import
from tracker.ingest.csv_template import DETAIL_COLUMNS, MAX_ERRORS, MAX_TOKENS, header_problems
from tracker.ingest.sync import estimate_costs
from tracker.ingest.writer import upsert_rows
from tracker.models import IMPORT_USAGE_TYPE, Account, UsageRecord, utcnow
from tracker.models.usage_kinds import SEARCH_CONTEXT_SIZES, Details, pack, part_problems
from tracker.providers.accounts import get_account
from tracker.providers.base import MAX_ROW_AMOUNT, UsageRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: rows (after adding up repeats) and the days they cover."""

    rows_written: int
    days: int
    first_day: dt.date | None
    last_day: dt.date | None


def import_csv(
    *, session: Session, account_name: str, stream: TextIO, actor: str = "cli"
) -> ImportResult:
    """Check and import a usage CSV into an account, streaming, in the caller's transaction.

    Memory stays flat whatever the file's size. After the first bad row nothing more is
    written but the rest is still checked, to list every problem; then `InvalidInput` is
    raised and the savepoint, with everything written so far, rolls back: all or nothing.
    """
    account = get_account(session=session, name=account_name)
    stamp = utcnow()
    today = today_utc()
    span = _fast_path(session, account, stream, stamp, today) if _fast(session, stream) else None
    if span is None:
        span = _checked_import(session, account, stream, stamp, today)
        estimate_costs(session, span[0], span[1], account.id)
    written, days = session.execute(
        select(func.count(), func.count(distinct(UsageRecord.day))).where(
            UsageRecord.account_id == account.id, UsageRecord.synced_at == stamp
        )
    ).one()
    result = ImportResult(int(written), int(days), span[0], span[1])
    audit.record(
        session=session,
        actor=actor,
        action="usage.import",
        target=account.name,
        rows=result.rows_written,
        first_day=str(result.first_day),
        last_day=str(result.last_day),
    )
    return result


def _fast(session: Session, stream: TextIO) -> bool:
    """PostgreSQL (psycopg2's COPY) and a file that can be read again if the fast path
    refuses it."""
    dialect = session.connection().dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg2" and stream.seekable()


def _fast_path(
    session: Session, account: Account, stream: TextIO, stamp: dt.datetime, today: dt.date
) -> tuple[dt.date, dt.date] | None:
    """The import through COPY (`csv_copy`), or None (nothing written, the file rewound) when
    it needs the row checker."""
    start = stream.tell()
    try:
        with session.begin_nested():
            return copy_import(session, account, account.provider, stream, stamp=stamp, today=today)
    except NotFastPath as why:
        log.info("the CSV import takes the row checker: %s", why)
        stream.seek(start)
        return None


def _checked_import(
    session: Session, account: Account, stream: TextIO, stamp: dt.datetime, today: dt.date
) -> tuple[dt.date, dt.date]:
    """The row checker's import: every row checked in Python and written in batches."""
    errors: list[str] = []
    span = _Span()
    rows = iter_csv(stream, today=today, errors=errors)
    # A savepoint: a bad row undoes what this import wrote, whatever the caller does next.
    with session.begin_nested():
        upsert_rows(session, account.id, span.track(_while_clean(rows, errors)), stamp=stamp)
        if errors:
            shown = "; ".join(errors[:MAX_ERRORS])
            more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
            raise InvalidInput(
                f"the CSV has {len(errors)} problem(s), nothing was imported: {shown}{more}"
            )
    if span.first is None or span.last is None:
        raise InvalidInput("the CSV has no data rows; see docs/csv-import.md for the template")
    return span.first, span.last


class _Span:
    """The first and last day of the rows that went past."""

    def __init__(self) -> None:
        self.first: dt.date | None = None
        self.last: dt.date | None = None

    def track(self, rows: Iterable[UsageRow]) -> Iterator[UsageRow]:
        for row in rows:
            self.first = row.day if self.first is None else min(self.first, row.day)
            self.last = row.day if self.last is None else max(self.last, row.day)
            yield row


def _while_clean(rows: Iterable[UsageRow], errors: list[str]) -> Iterator[UsageRow]:
    """Pass rows on until the first problem; then read on (to list problems) but pass none."""
    for row in rows:
        if not errors:
            yield row


def parse_csv(stream: TextIO, *, today: dt.date) -> tuple[list[UsageRow], list[str]]:
    """The whole file's rows and problems at once (small files and tests)."""
    errors: list[str] = []
    rows = list(iter_csv(stream, today=today, errors=errors))
    return rows, errors


def iter_csv(stream: TextIO, *, today: dt.date, errors: list[str]) -> Iterator[UsageRow]:
    """Read the template row by row; yield good rows, append problems ('line N: ...')."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        errors.append("line 1: the file is empty; it needs a header row")
        return
    except csv.Error as exc:
        errors.append(f"line 1: {exc}")
        return
    except UnicodeDecodeError:
        errors.append("the file is not UTF-8 text; save it as UTF-8")
        return
    columns, problems = header_problems(header)
    errors.extend(problems)
    if errors:
        return
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                errors.append(f"line {line}: {len(values)} fields, the header has {len(columns)}")
                continue
            row, problems = _row(dict(zip(columns, values, strict=True)), today)
            errors.extend(f"line {line}: {p}" for p in problems)
            if row is not None:
                yield row
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    except UnicodeDecodeError:
        errors.append(f"line {reader.line_num + 1}: the file is not UTF-8 text; save it as UTF-8")


def _row(raw: dict[str, str], today: dt.date) -> tuple[UsageRow | None, list[str]]:
    problems: list[str] = []
    value = {k: v.strip() for k, v in raw.items()}
    if any("\x00" in v for v in value.values()):
        return None, ["a field holds a NUL byte; the file is damaged or not a text CSV"]
    day: dt.date | None = None
    try:
        day = dt.date.fromisoformat(value["day"])
        if len(value["day"]) != 10:
            raise ValueError
    except ValueError:
        problems.append(f"day {value['day']!r} is not a date (YYYY-MM-DD)")
        day = None
    if day is not None and day > today:
        problems.append(f"day {day} is in the future")
    model = value["model"]
    if not model:
        problems.append("model is empty")
    elif len(model) > 255:
        problems.append("model is longer than 255 characters")
    counts: dict[str, int] = {}
    for name in ("input_tokens", "output_tokens", "requests", "cached_input_tokens"):
        text = value.get(name, "")
        if text == "" and name == "cached_input_tokens":
            counts[name] = 0
            continue
        if not (text.isascii() and text.isdigit()):
            problems.append(f"{name} {text!r} is not a whole number of zero or more")
        elif int(text) > MAX_TOKENS:
            problems.append(f"{name} {text} is implausibly large")
        else:
            counts[name] = int(text)
    if counts.get("cached_input_tokens", 0) > counts.get("input_tokens", 0):
        problems.append("cached_input_tokens is larger than input_tokens (which includes them)")
    cost: Decimal | None = None
    if value.get("cost", ""):
        try:
            cost = Decimal(value["cost"])
        except InvalidOperation:
            problems.append(f"cost {value['cost']!r} is not a number of US dollars")
        else:
            if not cost.is_finite() or cost < 0:
                problems.append(f"cost {value['cost']!r} must be zero or more")
            elif cost > MAX_ROW_AMOUNT:
                problems.append(f"cost {value['cost']!r} is implausibly large for one day")
            elif isinstance(exponent := cost.as_tuple().exponent, int) and exponent < -6:
                problems.append(f"cost {value['cost']!r} has more than 6 decimals")
    for name in ("project", "api_key_id", "user_id"):
        if len(value.get(name, "")) > 255:
            problems.append(f"{name} is longer than 255 characters")
    details = _details(value, counts, problems)
    if problems or day is None:
        return None, problems
    return (
        UsageRow(
            day=day,
            model=model,
            project_id=value.get("project", ""),
            api_key_id=value.get("api_key_id", ""),
            user_id=value.get("user_id", ""),
            usage_type=IMPORT_USAGE_TYPE,
            input_tokens=counts["input_tokens"] - counts["cached_input_tokens"],
            cached_input_tokens=counts["cached_input_tokens"],
            output_tokens=counts["output_tokens"],
            requests=counts["requests"],
            billed_cost=cost,
            details=details,
        ),
        [],
    )


def _details(value: dict[str, str], counts: dict[str, int], problems: list[str]) -> Details:
    """The row's detail columns as usage details; their problems appended to `problems`."""
    found: dict[str, int] = {}
    for name in DETAIL_COLUMNS:
        text = value.get(name, "")
        if name == "search_context_size" or text == "":
            continue
        if not (text.isascii() and text.isdigit()):
            problems.append(f"{name} {text!r} is not a whole number of zero or more")
        elif int(text) > MAX_TOKENS:
            problems.append(f"{name} {text} is implausibly large")
        else:
            found[name] = int(text)
    size = value.get("search_context_size", "").lower()
    if size:
        if size not in SEARCH_CONTEXT_SIZES:
            problems.append(
                f"search_context_size {value['search_context_size']!r} is not one of "
                f"{', '.join(SEARCH_CONTEXT_SIZES)}"
            )
        else:
            found[f"requests_{size}_context"] = counts.get("requests", 0)
    if problems or len(counts) < 4:
        return ()
    stored = {
        "input_tokens": counts["input_tokens"] - counts["cached_input_tokens"],
        "cached_input_tokens": counts["cached_input_tokens"],
        "output_tokens": counts["output_tokens"],
        "requests": counts["requests"],
    }
    # Say it in the file's terms: its input_tokens include the cached ones.
    problems.extend(
        p.replace(
            f"input_tokens ({stored['input_tokens']:,}), which includes them",
            f"input_tokens - cached_input_tokens ({stored['input_tokens']:,})",
        )
        for p in part_problems(found, stored)
    )
    return pack(found)
