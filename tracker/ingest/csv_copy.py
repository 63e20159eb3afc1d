"""The fast path of the CSV import on PostgreSQL: COPY the file, check it and write it set-based.

A million-row file cannot afford a Python call per row (13 minutes for 1.84 M rows). Here the
file goes to a temporary table with PostgreSQL's own COPY; one query keeps the rows that pass
a rule stricter than the row checker of `tracker.ingest.csv_import` (plain digits, no
surrounding spaces, at most 6 decimals...), adds up repeated rows, prices them
(`tracker.costs.sql_pricing`) and inserts them, after deleting what an earlier import wrote
for the same keys; so the rollup triggers run once. Unless every row passed, the import is
taken back.

Anything the strict rule does not accept (a bad row, a NUL byte, a short row, a non-UTF-8
byte, `1e3` as a cost) is refused here with `NotFastPath`; the caller rolls back to its
savepoint, rewinds the file and runs the row checker, which names every problem by line (or
imports the file, when the rule was only stricter than needed). The error messages and the
rules have one home, the row checker; this module only decides "certainly fine".
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import re
from typing import TextIO

from sqlalchemy import text
from sqlalchemy.orm import Session

from tracker.core.db import copy_in
from tracker.costs.pricebook import PriceBook
from tracker.costs.sql_pricing import UNIT_PRICES, outcome_sql, stage_unit_prices
from tracker.ingest.csv_template import DETAIL_COLUMNS, MAX_TOKENS, OPTIONAL, header_problems
from tracker.models import IMPORT_USAGE_TYPE, TOKEN_COLUMNS, USAGE_NATURAL_KEY, Account
from tracker.providers.base import MAX_ROW_AMOUNT

log = logging.getLogger(__name__)

RAW = "tmp_import_raw"  # the file as COPY read it, every field text
WORK_MEM = "256MB"
READ_SIZE = 1 << 20  # characters per read from the file, and per COPY message
# What str.strip() removes (str.isspace()), as a PostgreSQL string: a field that starts or
# ends with one goes to the row checker, which strips it.
_SPACES = "U&'" + "".join(f"\\{c:04x}" for c in range(0x3001) if chr(c).isspace()) + "'"
_DIGITS = "'0123456789'"
_BLANK_LINE = re.compile(r"^[ \t,]*(?=\r?\n)", re.MULTILINE)


class NotFastPath(Exception):
    """The file needs the row checker (a problem to name, or a form only it accepts)."""


def copy_import(
    session: Session,
    account: Account,
    provider: str,
    stream: TextIO,
    *,
    stamp: dt.datetime,
    today: dt.date,
) -> tuple[dt.date, dt.date]:
    """Import the file through COPY in the caller's transaction; return its first and last
    day. Raises `NotFastPath` (having possibly written to the transaction: the caller runs
    this in a savepoint and rolls back) when the file is not certainly fine."""
    try:
        header = next(csv.reader([stream.readline()]), [])
    except UnicodeDecodeError as exc:
        raise NotFastPath("not UTF-8") from exc
    columns, problems = header_problems(header)
    if problems:
        raise NotFastPath("; ".join(problems))
    if set(columns) & set(DETAIL_COLUMNS):
        # Usage details are JSON beside the columns and priced in Python, row by row.
        raise NotFastPath("the file has usage detail columns")
    connection = session.connection()
    slots = [f"c{i}" for i in range(len(columns))]
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {RAW} ({', '.join(f'{s} text' for s in slots)}) ON COMMIT DROP"
    )
    copy_input = _CopyInput(stream, len(columns))
    try:
        copied = copy_in(
            connection,
            f"COPY {RAW} ({', '.join(slots)}) FROM STDIN WITH (FORMAT csv)",
            copy_input,
            size=READ_SIZE,
        )
    except UnicodeDecodeError as exc:
        raise NotFastPath("not UTF-8") from exc
    except Exception as exc:  # psycopg2's own errors: a short row, a NUL byte, a bad quote
        if type(exc).__module__.startswith("psycopg2"):
            raise NotFastPath(str(exc).splitlines()[0]) from None
        raise
    field = {name: f"coalesce({slot}, '')" for name, slot in zip(columns, slots, strict=True)}
    for optional in OPTIONAL:
        field.setdefault(optional, "''")
    # Prices for each (model, day) named; a day that is not one fails the check below.
    pairs = connection.execute(
        text(f"SELECT DISTINCT {field['model']}, {field['day']} FROM {RAW}")
    ).all()
    keys = {(provider, model, day, "") for model, text_day in pairs if (day := _day(text_day))}
    if not keys:
        raise NotFastPath("no row names a day")
    stage_unit_prices(connection, PriceBook.from_db(session), sorted(keys))
    first, last = min(k[2] for k in keys), max(k[2] for k in keys)
    params = {
        "account": account.id,
        "provider": provider,
        "usage_type": IMPORT_USAGE_TYPE,
        "stamp": stamp,
        "today": today,
        "max_tokens": MAX_TOKENS,
        "max_amount": MAX_ROW_AMOUNT,
        "first": first,
        "last": last,
    }
    # A re-import replaces what an earlier import wrote for the same day, model, project
    # and key: delete those first (when there are any), then a plain INSERT, as ON CONFLICT
    # costs a fifth more a row.
    connection.execute(text(_replace_earlier(field)), params)
    # Room to group and sort a million rows in memory rather than in temporary files; a
    # sort (not a hash) groups them, which also puts them in index order for the INSERT.
    connection.exec_driver_sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
    connection.exec_driver_sql("SET LOCAL enable_hashagg = off")
    accepted = connection.execute(text(_insert(field)), params).scalar_one()
    connection.exec_driver_sql("RESET work_mem")
    connection.exec_driver_sql("RESET enable_hashagg")
    connection.exec_driver_sql(f"DROP TABLE {RAW}, {UNIT_PRICES}")
    # Every row that is not blank must have passed the check, else the row checker decides
    # (and the caller's savepoint takes back what was written).
    if not accepted or accepted != copied - copy_input.blank_rows:
        raise NotFastPath(f"{copied - copy_input.blank_rows - accepted} row(s) need the checker")
    return first, last


def _day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def _certainly_fine(f: dict[str, str]) -> str:
    """A row the row checker would certainly accept, as it would store it (in SQL).

    String functions rather than regular expressions: PostgreSQL's regex engine costs about
    a microsecond a match, several seconds over a million rows."""
    day = f["day"]

    def whole(value: str) -> str:
        return f"({value} <> '' AND length({value}) <= 16 AND ltrim({value}, {_DIGITS}) = '')"

    def dollars(value: str) -> str:
        # 0 to 10 digits, then optionally a point and at most 6 digits (not the point alone)
        point = f"strpos({value}, '.')"
        return (
            f"({value} = '' OR ({value} <> '.' AND translate({value}, {_DIGITS}, '') "
            f"IN ('', '.') AND CASE WHEN {point} = 0 THEN length({value}) <= 10 "
            f"ELSE {point} <= 11 AND length({value}) - {point} <= 6 END))"
        )

    def plain_text(value: str, *, required: bool) -> str:
        present = f"{value} <> '' AND " if required else ""
        return (
            f"{present}length({value}) <= 255 AND strpos({value}, chr(10)) = 0 "
            f"AND strpos({value}, chr(13)) = 0 AND btrim({value}, {_SPACES}) = {value}"
        )

    date_shape = (
        f"length({day}) = 10 AND translate({day}, {_DIGITS}, '') = '--' "
        f"AND substr({day}, 5, 1) = '-' AND substr({day}, 8, 1) = '-'"
    )
    year, month, day_of_month = (
        f"CAST(substr({day}, {start}, {length}) AS int)"
        for start, length in ((1, 4), (6, 2), (9, 2))
    )
    real_date = (
        f"{year} >= 1 AND {month} BETWEEN 1 AND 12 AND {day_of_month} >= 1 "
        f"AND {day_of_month} <= extract(day from make_date({year}, {month}, 1) "
        "+ interval '1 month' - interval '1 day')"
    )
    cached = f["cached_input_tokens"]
    shapes = " AND ".join(
        [
            date_shape,
            plain_text(f["model"], required=True),
            plain_text(f["project"], required=False),
            plain_text(f["api_key_id"], required=False),
            plain_text(f["user_id"], required=False),
            whole(f["input_tokens"]),
            whole(f["output_tokens"]),
            whole(f["requests"]),
            f"({cached} = '' OR {whole(cached)})",
            dollars(f["cost"]),
        ]
    )
    values = " AND ".join(
        [
            f"CASE WHEN {real_date} THEN CAST({day} AS date) <= :today ELSE false END",
            *(
                f"CAST({f[c]} AS numeric) <= :max_tokens"
                for c in ("input_tokens", "output_tokens", "requests")
            ),
            f"CAST(coalesce(nullif({cached}, ''), '0') AS numeric) <= :max_tokens",
            f"CAST(coalesce(nullif({cached}, ''), '0') AS numeric) "
            f"<= CAST({f['input_tokens']} AS numeric)",
            f"CAST(coalesce(nullif({f['cost']}, ''), '0') AS numeric) <= :max_amount",
        ]
    )
    # CASE: the casts run only on rows whose shapes are right (AND does not promise an order).
    return f"CASE WHEN {shapes} THEN {values} ELSE false END"


_WRITTEN = (
    *USAGE_NATURAL_KEY,
    "project_name",
    "api_key_name",
    "user_name",
    *TOKEN_COLUMNS,
    "requests",
    "other_units",
    "other_unit_name",
    "currency",
    "billed_cost",
    "estimated_cost",
    "pricing_status",
    "cost_source",
    "synced_at",
)


def _replace_earlier(f: dict[str, str]) -> str:
    """Delete the account's imported rows for a (day, model, project, key, user) the file names:
    as text, for the file's fields are what would be stored (else the check refuses it)."""
    named = (
        f"SELECT 1 FROM {RAW} WHERE {f['day']} = to_char(u.day, 'YYYY-MM-DD') "
        f"AND {f['model']} = u.model AND {f['project']} = u.project_id "
        f"AND {f['api_key_id']} = u.api_key_id AND {f['user_id']} = u.user_id"
    )
    earlier = (
        "u.account_id = :account AND u.usage_type = :usage_type AND u.service_tier = '' "
        "AND u.day BETWEEN :first AND :last"
    )
    # The EXISTS guard: a first import (no earlier rows) never hashes the whole file.
    return (
        f"DELETE FROM usage_records AS u WHERE {earlier} AND EXISTS ({named}) "
        f"AND EXISTS (SELECT 1 FROM usage_records AS u WHERE {earlier})"
    )


def _insert(f: dict[str, str]) -> str:
    """Insert the rows that pass the check, repeated (day, model, project, key, user) rows added
    up and priced, in index order (so each index grows at one end); answer how many file
    rows they stand for."""
    cached = f"CAST(coalesce(nullif({f['cached_input_tokens']}, ''), '0') AS bigint)"
    grouped = (
        f"SELECT CAST({f['day']} AS date) AS day, {f['model']} AS model, "
        f"{f['project']} AS project_id, {f['api_key_id']} AS api_key_id, "
        f"{f['user_id']} AS user_id, "
        f"sum(CAST({f['input_tokens']} AS bigint) - {cached}) AS input_tokens, "
        f"sum({cached}) AS cached_input_tokens, "
        f"sum(CAST({f['output_tokens']} AS bigint)) AS output_tokens, "
        f"sum(CAST({f['requests']} AS bigint)) AS requests, "
        f"sum(CAST(nullif({f['cost']}, '') AS numeric)) AS billed_cost, count(*) AS file_rows "
        f"FROM {RAW} WHERE {_certainly_fine(f)} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    )
    columns = {
        "input_tokens": "g.input_tokens",
        "cached_input_tokens": "g.cached_input_tokens",
        "cache_write_tokens": "0",
        "cache_write_1h_tokens": "0",
        "output_tokens": "g.output_tokens",
        "requests": "g.requests",
        "other_units": "0",
        "billed_cost": "g.billed_cost",
        "usage_type": ":usage_type",
    }
    cost, status = outcome_sql(columns)
    priced = (
        f"SELECT g.*, {cost} AS estimated_cost, {status} AS pricing_status FROM grouped AS g "
        f"LEFT JOIN {UNIT_PRICES} AS p ON p.provider = :provider AND p.model = g.model "
        "AND p.day = g.day AND p.tier = ''"
    )
    source = (
        "CASE WHEN billed_cost IS NOT NULL THEN 'billed' "
        "WHEN estimated_cost IS NOT NULL THEN 'estimated' ELSE 'none' END"
    )
    values = {
        "account_id": ":account",
        "usage_type": ":usage_type",
        "service_tier": "''",
        "project_name": "NULL",
        "api_key_name": "NULL",
        "user_name": "NULL",
        "cache_write_tokens": "0",
        "cache_write_1h_tokens": "0",
        "other_units": "0",
        "other_unit_name": "NULL",
        "currency": "'USD'",
        "cost_source": source,
        "synced_at": ":stamp",
    }
    select = ", ".join(values.get(c, c) for c in _WRITTEN)
    return (
        f"WITH grouped AS ({grouped}), written AS (INSERT INTO usage_records "
        f"({', '.join(_WRITTEN)}) SELECT {select} FROM ({priced}) AS q RETURNING 1) "
        "SELECT coalesce(sum(file_rows), 0) FROM grouped"
    )


class _CopyInput:
    """The file after its header, as COPY reads it: whole lines, and a blank line (which
    COPY would refuse) turned into a row of empty fields, which the check skips as the row
    checker does, so line numbers stay the file's."""

    def __init__(self, stream: TextIO, fields: int) -> None:
        self.stream = stream
        self.empty_row = "," * (fields - 1)
        self.tail = ""
        self.blank_rows = 0
        self.quotes = 0  # quote characters passed so far

    def read(self, size: int = -1) -> str:
        while True:
            chunk = self.stream.read(READ_SIZE)
            if not chunk:
                rest, self.tail = self.tail, ""
                return "" if not rest.strip(" \t\r\n,") else rest
            buffered = self.tail + chunk
            cut = buffered.rfind("\n") + 1
            if cut == 0:
                self.tail = buffered
                continue
            self.tail = buffered[cut:]
            return self._fill_blank_lines(buffered[:cut])

    def _fill_blank_lines(self, lines: str) -> str:
        """Blank lines (spaces, tabs, commas) as rows of empty fields, counted; a blank line
        inside a quoted field (an odd number of quotes before it) is part of the field."""
        parts, position = [], 0
        for match in _BLANK_LINE.finditer(lines):
            self.quotes += lines.count('"', position, match.start())
            parts.append(lines[position : match.start()])
            position = match.start()
            if self.quotes % 2 == 0:
                parts.append(self.empty_row)
                position = match.end()
                self.blank_rows += 1
        self.quotes += lines.count('"', position)
        parts.append(lines[position:])
        return "".join(parts)
