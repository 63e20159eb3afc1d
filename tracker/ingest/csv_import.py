"""CSV import of daily usage for providers without a usage API (Groq, Perplexity; any account).

The template (docs/csv-import.md) has a header row and one row per UTC day and model:
`day, model, input_tokens, output_tokens, requests` and optionally `cached_input_tokens`,
`cost` (USD, the provider's figure), `project` and `api_key_id`. `input_tokens` counts all
input tokens as the provider reports them, cached ones included; the stored `input_tokens`
is the uncached part (`input_tokens - cached_input_tokens`), like every other source.

All or nothing: every row is checked first and any bad row raises `InvalidInput` listing the
problems by line number (the first `MAX_ERRORS`), with nothing written. Rows repeating a day,
model, project and key are added up; importing the same day, model, project and key again
replaces the earlier import. Imported rows have `usage_type = 'import'`, which a sync never
deletes.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TextIO

from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput
from tracker.core.units import today_utc
from tracker.ingest.sync import estimate_costs
from tracker.ingest.writer import IMPORT_USAGE_TYPE, merge_rows, upsert_rows
from tracker.models import utcnow
from tracker.providers.accounts import get_account
from tracker.providers.base import UsageRow

REQUIRED = ("day", "model", "input_tokens", "output_tokens", "requests")
OPTIONAL = ("cached_input_tokens", "cost", "project", "api_key_id")
MAX_ERRORS = 20
MAX_TOKENS = 10**15  # far beyond any real day; catches pasted garbage before BIGINT does


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
    """Check and import a usage CSV into an account, in the caller's transaction."""
    account = get_account(session=session, name=account_name)
    rows, errors = parse_csv(stream, today=today_utc())
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS])
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        raise InvalidInput(
            f"the CSV has {len(errors)} problem(s), nothing was imported: {shown}{more}"
        )
    if not rows:
        raise InvalidInput("the CSV has no data rows; see docs/csv-import.md for the template")
    merged: dict[tuple[object, ...], UsageRow] = {}
    for row in rows:
        key = row.natural_key
        merged[key] = merge_rows(merged[key], row) if key in merged else row
    upsert_rows(session, account.id, merged.values(), stamp=utcnow())
    days = sorted({row.day for row in merged.values()})
    estimate_costs(session, days[0], days[-1], account.id)
    result = ImportResult(len(merged), len(days), days[0], days[-1])
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


def parse_csv(stream: TextIO, *, today: dt.date) -> tuple[list[UsageRow], list[str]]:
    """Read the template; return the rows and the problems found ('line N: ...')."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return [], ["line 1: the file is empty; it needs a header row"]
    except csv.Error as exc:
        return [], [f"line 1: {exc}"]
    columns = [h.strip().lstrip("\ufeff").lower() for h in header]
    errors: list[str] = []
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c and c not in REQUIRED + OPTIONAL]
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if missing:
        errors.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown:
        errors.append(
            f"line 1: unknown column(s) {', '.join(unknown)}; allowed: "
            + ", ".join(REQUIRED + OPTIONAL)
        )
    if repeated:
        errors.append(f"line 1: column(s) {', '.join(repeated)} appear twice")
    if errors:
        return [], errors
    rows: list[UsageRow] = []
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
                rows.append(row)
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    return rows, errors


def _row(raw: dict[str, str], today: dt.date) -> tuple[UsageRow | None, list[str]]:
    problems: list[str] = []
    value = {k: v.strip() for k, v in raw.items()}
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
            elif isinstance(exponent := cost.as_tuple().exponent, int) and exponent < -6:
                problems.append(f"cost {value['cost']!r} has more than 6 decimals")
    for name in ("project", "api_key_id"):
        if len(value.get(name, "")) > 255:
            problems.append(f"{name} is longer than 255 characters")
    if problems or day is None:
        return None, problems
    return (
        UsageRow(
            day=day,
            model=model,
            project_id=value.get("project", ""),
            api_key_id=value.get("api_key_id", ""),
            usage_type=IMPORT_USAGE_TYPE,
            input_tokens=counts["input_tokens"] - counts["cached_input_tokens"],
            cached_input_tokens=counts["cached_input_tokens"],
            output_tokens=counts["output_tokens"],
            requests=counts["requests"],
            billed_cost=cost,
        ),
        [],
    )
