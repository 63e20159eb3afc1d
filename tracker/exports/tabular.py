"""Usage as CSV and JSON: one line per usage row, money in plain notation without rounding.

JSON keeps values as they are (it is not opened by spreadsheets); CSV neutralises formulas.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from tracker.attribution.teams import TeamResolver
from tracker.exports.rows import ExportRow, money_str, safe_text

CSV_COLUMNS = (
    "day",
    "provider",
    "account",
    "model",
    "project_id",
    "project_name",
    "api_key_id",
    "api_key_name",
    "user_id",
    "user_name",
    "usage_type",
    "service_tier",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "requests",
    "other_units",
    "other_unit_name",
    "billed_cost",
    "estimated_cost",
    "allocated_cost",
    "cost",
    "currency",
    "cost_source",
    "allocation_method",
    "pricing_status",
    "team",
    "cost_center",
    "gl_account",
)
_TEXT_COLUMNS = frozenset(
    {
        "provider",
        "account",
        "model",
        "project_id",
        "project_name",
        "api_key_id",
        "api_key_name",
        "user_id",
        "user_name",
        "usage_type",
        "service_tier",
        "other_unit_name",
        "currency",
        "cost_source",
        "allocation_method",
        "pricing_status",
        "team",
        "cost_center",
        "gl_account",
    }
)
_INT_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "requests",
)


def _row_values(row: ExportRow, teams: TeamResolver | None) -> dict[str, Any]:
    """A row's export values; `team` by the mapping in force on its day (direct, before
    shared-cost rules, which split whole months: the Chargeback page and sheet)."""
    team = (
        teams.team(
            row.day,
            user=row.user_id,
            api_key=row.api_key_id,
            project=row.project_id,
            account=row.account,
        )
        if teams is not None
        else None
    )
    center, gl = teams.books(team) if teams is not None and team is not None else (None, None)
    return {
        "day": row.day.isoformat(),
        "provider": row.provider,
        "account": row.account,
        "model": row.model,
        "project_id": row.project_id,
        "project_name": row.project_name,
        "api_key_id": row.api_key_id,
        "api_key_name": row.api_key_name,
        "user_id": row.user_id,
        "user_name": row.user_name,
        "usage_type": row.usage_type,
        "service_tier": row.service_tier,
        **{name: int(getattr(row, name)) for name in _INT_COLUMNS},
        "other_units": money_str(row.other_units),
        "other_unit_name": row.other_unit_name,
        "billed_cost": money_str(row.billed_cost),
        "estimated_cost": money_str(row.estimated_cost),
        "allocated_cost": money_str(row.allocated_cost),
        "cost": money_str(row.cost),
        "currency": row.currency,
        "cost_source": row.cost_source,
        "allocation_method": row.allocation_method,
        "pricing_status": row.pricing_status,
        "team": team,
        "cost_center": center,
        "gl_account": gl,
    }


@dataclass
class ExportStats:
    """What an export wrote: usage records read, rows written and the cost total (USD)."""

    records: int = 0
    rows: int = 0
    total_cost: Decimal = field(default_factory=lambda: Decimal(0))


def write_csv(
    rows: Iterable[ExportRow], out: IO[str], *, teams: TeamResolver | None = None
) -> ExportStats:
    """Write one CSV line per usage record (columns `CSV_COLUMNS`, UTF-8, ISO dates)."""
    stats = ExportStats()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = _row_values(row, teams)
        writer.writerow(
            [safe_text(values[c]) if c in _TEXT_COLUMNS else values[c] for c in CSV_COLUMNS]
        )
        stats.records += 1
        stats.rows += 1
        stats.total_cost += row.cost or 0
    return stats


def write_json(
    rows: Iterable[ExportRow],
    out: IO[str],
    *,
    start: dt.date,
    end: dt.date,
    teams: TeamResolver | None = None,
) -> ExportStats:
    """Write one JSON document: range, then `rows` (money as exact decimal strings), totals."""
    stats = ExportStats()
    head = {"format": "ai-cost-tracker.usage/1", "start": start.isoformat(), "end": end.isoformat()}
    out.write(json.dumps(head)[:-1] + ', "currency": "USD", "rows": [')
    for row in rows:
        values = _row_values(row, teams)
        # Money stays a string: JSON numbers become binary floats in most readers.
        for name in ("other_units", "billed_cost", "estimated_cost", "cost"):
            values[name] = values[name] or None
        out.write(("\n" if not stats.rows else ",\n") + json.dumps(values, ensure_ascii=False))
        stats.records += 1
        stats.rows += 1
        stats.total_cost += row.cost or 0
    out.write(f'\n], "row_count": {stats.rows}, "total_cost": "{money_str(stats.total_cost)}"}}\n')
    return stats
