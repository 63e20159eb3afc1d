"""The Excel month pack: summary, breakdowns, budgets and the detail, one workbook."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.attribution.chargeback import chargeback
from tracker.core.units import month_bounds, month_start, next_month, to_dollars
from tracker.exports.rows import CURRENCY, ExportRow, safe_text
from tracker.exports.tabular import ExportStats
from tracker.models import Account, CostProjection, CostSource, Service, all_tokens
from tracker.providers.registry import display_name
from tracker.reporting.savings import KINDS, by_kind, savings_ledger
from tracker.reporting.sources import NOT_REPORTED, Dimensions


@dataclass
class _Agg:
    cost: Decimal = field(default_factory=lambda: Decimal(0))
    billed: Decimal = field(default_factory=lambda: Decimal(0))
    estimated: Decimal = field(default_factory=lambda: Decimal(0))
    tokens: int = 0
    requests: int = 0
    records: int = 0
    unpriced: int = 0

    def add(self, row: ExportRow) -> None:
        if row.cost_source == CostSource.BILLED and row.billed_cost is not None:
            self.billed += row.billed_cost
            self.cost += row.billed_cost
        elif row.cost_source == CostSource.ESTIMATED and row.estimated_cost is not None:
            self.estimated += row.estimated_cost
            self.cost += row.estimated_cost
        elif row.cost_source == CostSource.NONE:
            self.unpriced += 1
        self.tokens += all_tokens(row)
        self.requests += row.requests
        self.records += 1


_AGG_HEADERS = [
    "Cost (USD)",
    "Billed (USD)",
    "Estimated (USD)",
    "Tokens",
    "Requests",
    "Records",
    "Unpriced records",
]


def _agg_values(a: _Agg) -> list[Any]:
    return [a.cost, a.billed, a.estimated, a.tokens, a.requests, a.records, a.unpriced]


@dataclass(frozen=True)
class _BudgetLine:
    scope: str
    month: dt.date
    days: str  # the month's days the range covers: "1–31 Jan" or "15–31 Jan (17 of 31)"
    budget: Decimal | None
    actual: Decimal


def write_xlsx(
    rows: Iterable[ExportRow],
    out: IO[bytes],
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    filters: Dimensions,
) -> ExportStats:
    """Write the Excel month pack: Summary, By provider, By model, By project, Daily, Unpriced,
    Chargeback, Savings.

    Money cells are numbers with a currency format (Excel stores binary floats: exact to far
    below a cent at these magnitudes); headers are frozen.
    """
    import xlsxwriter  # here so the other formats do not need it loaded

    stats = ExportStats()
    total = _Agg()
    by_provider: dict[str, _Agg] = {}
    # Budgets are monthly: each month of the range meets its own budget.
    monthly: dict[
        tuple[str, str, dt.date], _Agg
    ] = {}  # (kind, name, month): kind org/service/account
    by_model: dict[tuple[str, str], _Agg] = {}
    by_project: dict[tuple[str, str, str], _Agg] = {}
    daily: dict[dt.date, _Agg] = {}
    unpriced: dict[tuple[str, str, str, str], _Agg] = {}
    for row in rows:
        total.add(row)
        by_provider.setdefault(row.provider_display_name, _Agg()).add(row)
        month = month_start(row.day)
        for kind, name in (
            ("org", ""),
            ("service", row.provider_display_name),
            ("account", row.account),
        ):
            monthly.setdefault((kind, name, month), _Agg()).add(row)
        by_model.setdefault((row.provider_display_name, row.model or NOT_REPORTED), _Agg()).add(row)
        project = row.project_name or row.project_id or "(none)"
        by_project.setdefault((row.account, row.project_id, project), _Agg()).add(row)
        daily.setdefault(row.day, _Agg()).add(row)
        if row.cost is None:
            key = (row.account, row.model, row.usage_type, row.pricing_status)
            unpriced.setdefault(key, _Agg()).add(row)
        stats.records += 1
    stats.rows = stats.records
    stats.total_cost = total.cost

    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": '"$"#,##0.00'})
    whole = book.add_format({"num_format": "#,##0"})
    date_fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    pct = book.add_format({"num_format": "0.0%"})

    def cell(sheet: Any, r: int, c: int, value: Any, kind: str = "") -> None:
        if value is None:
            sheet.write_blank(r, c, None)
        elif kind == "money":
            sheet.write_number(r, c, float(value), money)
        elif kind == "int":
            sheet.write_number(r, c, int(value), whole)
        elif kind == "pct":
            sheet.write_number(r, c, float(value), pct)
        elif isinstance(value, dt.date):
            sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date_fmt)
        else:
            sheet.write_string(r, c, safe_text(str(value)))

    kinds = ["money", "money", "money", "int", "int", "int", "int"]

    def table(
        name: str, keys: list[str], groups: dict[Any, _Agg], key_kinds: list[str] | None = None
    ) -> None:
        sheet = book.add_worksheet(name)
        for c, header in enumerate([*keys, *_AGG_HEADERS]):
            sheet.write_string(0, c, header, bold)
        sheet.freeze_panes(1, 0)
        ordered = (
            sorted(groups.items(), key=lambda kv: (-kv[1].cost, kv[0]))
            if name != "Daily"
            else sorted(groups.items())
        )
        for r, (key, agg) in enumerate(ordered, start=1):
            parts = key if isinstance(key, tuple) else (key,)
            for c, part in enumerate(parts):
                cell(sheet, r, c, part, (key_kinds or [""] * len(parts))[c])
            for c, (value, kind) in enumerate(
                zip(_agg_values(agg), kinds, strict=True), start=len(parts)
            ):
                cell(sheet, r, c, value, kind)
        last = len(ordered) + 1
        cell(sheet, last, 0, "Total")
        for c, (value, kind) in enumerate(
            zip(_agg_values(_sum_aggs(groups.values())), kinds, strict=True), start=len(keys)
        ):
            cell(sheet, last, c, value, kind)
        sheet.set_column(0, len(keys) - 1, 24)
        sheet.set_column(len(keys), len(keys) + len(_AGG_HEADERS) - 1, 16)

    summary = book.add_worksheet("Summary")
    summary.set_column(0, 0, 34)
    summary.set_column(1, 4, 18)
    lines: list[tuple[str, Any, str]] = [
        ("Period start (UTC)", start, ""),
        ("Period end (UTC, inclusive)", end, ""),
        ("Filters", _describe(filters), ""),
        ("Currency", CURRENCY, ""),
        ("Total cost", total.cost, "money"),
        ("of which billed by providers", total.billed, "money"),
        ("of which estimated", total.estimated, "money"),
        ("Usage records", total.records, "int"),
        ("Unpriced records (counted as 0)", total.unpriced, "int"),
    ]
    summary.write_string(0, 0, "Item", bold)
    summary.write_string(0, 1, "Value", bold)
    summary.freeze_panes(1, 0)
    r = 1
    for label, value, kind in lines:
        cell(summary, r, 0, label)
        cell(summary, r, 1, value, kind)
        r += 1
    r += 1
    for c, header in enumerate(
        [
            "Budget vs actual (each month against its budget)",
            "Monthly budget (USD)",
            "Actual in range (USD)",
            "Used",
            "Month",
            "Days in range",
        ]
    ):
        summary.write_string(r, c, header, bold)
    r += 1
    for line in _budget_lines(session=session, start=start, end=end, monthly=monthly):
        cell(summary, r, 0, line.scope)
        cell(summary, r, 1, line.budget, "money")
        cell(summary, r, 2, line.actual, "money")
        used = line.actual / line.budget if line.budget else None
        cell(summary, r, 3, used, "pct")
        cell(summary, r, 4, f"{line.month:%B %Y}")
        cell(summary, r, 5, line.days)
        r += 1
    r += 1
    for c, header in enumerate(
        [
            "Projection (month of the end date)",
            "Projected total (USD)",
            "Lower",
            "Upper",
            "Computed at (UTC)",
        ]
    ):
        summary.write_string(r, c, header, bold)
    r += 1
    projection = session.scalars(
        select(CostProjection).where(
            CostProjection.scope == "org", CostProjection.month == end.replace(day=1)
        )
    ).first()
    if projection is None:
        cell(summary, r, 0, "no projection yet")
    else:
        cell(summary, r, 0, f"organisation, {projection.month:%Y-%m} ({projection.method})")
        cell(summary, r, 1, projection.projected_total, "money")
        cell(summary, r, 2, projection.lower_bound, "money")
        cell(summary, r, 3, projection.upper_bound, "money")
        cell(summary, r, 4, projection.computed_at.strftime("%Y-%m-%d %H:%M"))

    table("By provider", ["Provider"], by_provider)
    table("By model", ["Provider", "Model"], by_model)
    table("By project", ["Account", "Project id", "Project"], by_project)
    table("Daily", ["Day (UTC)"], daily, ["date"])
    table("Unpriced", ["Account", "Model", "Usage type", "Pricing status"], unpriced)
    _chargeback_sheet(book.add_worksheet("Chargeback"), cell, bold, session, start, end)
    _savings_sheet(book.add_worksheet("Savings"), cell, bold, session, start, end, filters)
    book.close()
    return stats


def _chargeback_sheet(
    sheet: Any, cell: Any, bold: Any, session: Session, start: dt.date, end: dt.date
) -> None:
    """Each whole month the range touches, by team and provider (all spend, unfiltered:
    shared-cost rules split whole months; tracker.attribution.chargeback)."""
    headers = ["Month", "Team", "Cost center", "GL account", "Provider", "Cost (USD)", "How"]
    for c, header in enumerate(headers):
        sheet.write_string(0, c, header, bold)
    sheet.freeze_panes(1, 0)
    r = 1
    month = start.replace(day=1)
    while month <= end:
        result = chargeback(session=session, month=month)
        sums: dict[tuple[str, str, str, str, str], int] = {}
        for p in result.pieces:
            how = "shared" if p.shared_from else "direct"
            key = (p.team, p.cost_center or "", p.gl_account or "", p.provider, how)
            sums[key] = sums.get(key, 0) + p.micros
        for (team, center, gl, provider, how), micros in sorted(sums.items()):
            for c, (value, kind) in enumerate(
                [
                    (f"{month:%Y-%m}", ""),
                    (team, ""),
                    (center, ""),
                    (gl, ""),
                    (provider, ""),
                    (to_dollars(micros), "money"),
                    (how, ""),
                ]
            ):
                cell(sheet, r, c, value, kind)
            r += 1
        cell(sheet, r, 0, f"{month:%Y-%m}")
        cell(sheet, r, 1, "Total")
        cell(sheet, r, 5, result.total, "money")
        r += 2
        month = next_month(month)
    sheet.set_column(0, 6, 18)


def _savings_sheet(
    sheet: Any,
    cell: Any,
    bold: Any,
    session: Session,
    start: dt.date,
    end: dt.date,
    filters: Dimensions,
) -> None:
    """What cache, batch, flex, off-peak and negotiated prices saved against the list price,
    by month and provider (the Savings page's ledger; the provider filter applies)."""
    headers = [
        "Month",
        "Provider",
        "Cache (USD)",
        "Batch (USD)",
        "Flex (USD)",
        "Off-peak (USD)",
        "Negotiated (USD)",
        "Saved (USD)",
        "At list price (USD)",
        "Approximate",
        "Missed: batch-eligible at standard (USD)",
    ]
    for c, header in enumerate(headers):
        sheet.write_string(0, c, header, bold)
    sheet.freeze_panes(1, 0)
    lines = savings_ledger(session=session, start=start, end=end, providers=filters.providers)
    r = 1
    for line in lines:
        values = [
            (f"{line.month:%Y-%m}", ""),
            (display_name(line.provider), ""),
            *[(line.saved[kind], "money") for kind in KINDS],
            (line.total, "money"),
            (line.list_cost, "money"),
            ("yes" if line.approximate else "no", ""),
            (line.missed_batch, "money"),
        ]
        for c, (value, kind) in enumerate(values):
            cell(sheet, r, c, value, kind)
        r += 1
    totals = by_kind(lines)
    cell(sheet, r, 0, "Total")
    for c, kind in enumerate([*KINDS, "total"], start=2):
        cell(sheet, r, c, totals[kind], "money")
    cell(sheet, r, 8, sum((line.list_cost for line in lines), Decimal(0)), "money")
    cell(sheet, r, 10, sum((line.missed_batch for line in lines), Decimal(0)), "money")
    sheet.set_column(0, 1, 18)
    sheet.set_column(2, 10, 16)


def _sum_aggs(aggs: Iterable[_Agg]) -> _Agg:
    total = _Agg()
    for a in aggs:
        total.cost += a.cost
        total.billed += a.billed
        total.estimated += a.estimated
        total.tokens += a.tokens
        total.requests += a.requests
        total.records += a.records
        total.unpriced += a.unpriced
    return total


def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, str]]:
    """Each month start..end touches, with the days of it the range covers, as text."""
    months = []
    month = month_start(start)
    while month <= end:
        first, last = month_bounds(month)
        lo, hi = max(first, start), min(last, end)
        days = f"{lo.day}–{hi:%d %b}"
        if (lo, hi) != (first, last):
            days += f" ({(hi - lo).days + 1} of {last.day} days)"
        months.append((month, days))
        month = next_month(month)
    return months


def _budget_lines(
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    monthly: dict[tuple[str, str, dt.date], _Agg],
) -> list[_BudgetLine]:
    """Budgets (organisation, services, accounts) beside the exported actuals, month by month:
    a range of two months meets two monthly budgets, never one budget for both."""
    from tracker.planning.budgets import org_budget  # loads pandas: only the month pack needs it

    def actual(kind: str, name: str, month: dt.date) -> Decimal:
        agg = monthly.get((kind, name, month))
        return agg.cost if agg else Decimal(0)

    org, source = org_budget(session=session)
    services = session.execute(
        select(Service.display_name, Service.monthly_budget)
        .where(Service.monthly_budget.is_not(None))
        .order_by(Service.display_name)
    ).all()
    accounts = session.execute(
        select(Account.name, Account.monthly_budget)
        .where(Account.monthly_budget.is_not(None))
        .order_by(Account.name)
    ).all()
    lines = []
    for month, days in _months(start, end):
        org_scope = (
            f"Organisation ({source} budget)" if org is not None else "Organisation (no budget set)"
        )
        lines.append(_BudgetLine(org_scope, month, days, org, actual("org", "", month)))
        for display, budget in services:
            lines.append(
                _BudgetLine(
                    f"Service: {display}", month, days, budget, actual("service", display, month)
                )
            )
        for name, budget in accounts:
            lines.append(
                _BudgetLine(f"Account: {name}", month, days, budget, actual("account", name, month))
            )
    return lines


def _describe(filters: Dimensions) -> str:
    parts = [
        f"{name}: {', '.join(values)}"
        for name, values in (
            ("providers", filters.providers),
            ("accounts", filters.accounts),
            ("models", filters.models),
            ("projects", filters.projects),
            ("API keys", filters.api_keys),
            ("users", filters.users),
        )
        if values
    ]
    return "; ".join(parts) or "none (everything)"
