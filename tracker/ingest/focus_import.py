"""Import a cloud bill's FOCUS export: the AI charges of an AWS, Azure or Google Cloud bill.

`python -m tracker import-focus FILE_OR_FOLDER --account NAME` and the Accounts page's Cloud
bill tab read a FOCUS export as the clouds write it (AWS Data Exports "FOCUS 1.0/1.2 with AWS
columns", Azure Cost Management "FocusCost" 1.0r2 and 1.2, Google Cloud's FOCUS BigQuery
export): CSV or Parquet, gzip-compressed or not, one file, a folder of partitioned files with
their manifest, or a zip of that folder (`focus_files`). The account is one of the cloud
providers of the registry (`aws_bedrock`, `azure_openai`, `google_vertex`); rows of other
providers in the file are left out.

- **Columns**: by their FOCUS names, case-insensitively. The provider is `ServiceProviderName`
  (FOCUS 1.3+) or else `ProviderName` (1.0-1.2). Needed: BilledCost, BillingCurrency,
  BillingPeriodStart, BillingPeriodEnd, ChargeCategory, ChargePeriodStart, ServiceCategory,
  ServiceName; read where present: ChargeClass, ConsumedQuantity/ConsumedUnit,
  PricingQuantity/PricingUnit, SubAccountId/SubAccountName, Tags, the SKU text (`focus_skus`)
  and Azure's x_BilledCostInUsd.
- **Which rows**: the AI ones: ServiceCategory "AI and Machine Learning", or a ServiceName
  that names the cloud's AI service (Bedrock; Azure OpenAI, Foundry, Azure AI services;
  Vertex AI, Gemini). Every other row is left out (and counted).
- **What a row becomes**: its `BilledCost` (exact Decimal, US dollars; for another billing
  currency Azure's x_BilledCostInUsd, else the file is refused) on the UTC day its charge
  period starts, kept inside its billing period (a late charge lands on the period's first or
  last day, so a month's total is that bill's). A usage charge whose SKU names a token
  direction adds its tokens (quantity x unit) to a `focus` row of its model; any other charge
  keeps its money under `focus:<credit|tax|...>` or `focus:<its SKU>`. The project is the
  project/team tag, else the sub-account (AWS account, Azure subscription, Google project);
  the user is the user tag (`focus_skus.USER_TAGS`, `PROJECT_TAGS`, or the keys given).
- **Restated periods**: the import replaces every `focus` row of its billing periods' days for
  that account, so importing a period again (clouds restate until it closes) gives exactly the
  new file's figures. Everything happens in a savepoint of the caller's transaction; any
  problem in any row or file and nothing is written (the problems are listed, first 20).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput
from tracker.ingest import focus_skus
from tracker.ingest.csv_template import MAX_ERRORS
from tracker.ingest.focus_files import DataFile, open_export, open_rows
from tracker.ingest.sync import estimate_costs
from tracker.ingest.writer import merge_rows, upsert_rows
from tracker.models import FOCUS_USAGE_TYPE, UsageRecord, utcnow
from tracker.providers.accounts import get_account
from tracker.providers.base import MAX_ROW_AMOUNT, MAX_ROW_COUNT, UsageRow
from tracker.providers.registry import PROVIDERS, provider_info

CLOUD_OF = {"aws_bedrock": "aws", "azure_openai": "azure", "google_vertex": "google"}
AI_CATEGORY = "ai and machine learning"
AI_SERVICE = {
    "aws": re.compile(r"bedrock", re.IGNORECASE),
    "azure": re.compile(r"openai|foundry|azure ai|cognitive services", re.IGNORECASE),
    "google": re.compile(r"vertex ai|gemini|generative language", re.IGNORECASE),
}
# Where each cloud writes what its SKU is, first found wins (focus_skus reads it).
SKU_COLUMNS = {
    "aws": ("x_UsageType", "SkuMeter", "ChargeDescription"),
    "azure": ("SkuMeter", "x_SkuMeterName", "x_SkuDescription", "ChargeDescription"),
    "google": ("x_SkuDescription", "SkuMeter", "ChargeDescription"),
}
REQUIRED = (
    "BilledCost",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargePeriodStart",
    "ServiceCategory",
    "ServiceName",
)
PROVIDER_COLUMNS = ("ServiceProviderName", "ProviderName")  # FOCUS 1.3+, then 1.0-1.2
CATEGORIES = ("usage", "purchase", "tax", "credit", "adjustment")
MICRO = Decimal("0.000001")
MAX_PERIOD_DAYS = 366
NOT_FOCUS = (
    "it does not look like a FOCUS export (AWS Data Exports 'FOCUS 1.0/1.2 with AWS columns', "
    "Azure 'FocusCost', Google Cloud's FOCUS export)"
)


@dataclass(frozen=True)
class FocusImportResult:
    """What an import found and wrote."""

    account: str
    rows_read: int
    ai_rows: int
    left_out: int  # rows of other services, or of other providers
    rows_written: int  # usage rows after adding up by day, model, project and user
    periods: tuple[tuple[dt.date, dt.date], ...]  # billing periods replaced, [start, end)
    billed: Decimal  # the AI rows' BilledCost, US dollars
    focus_versions: tuple[str, ...]

    @property
    def period_names(self) -> str:
        return ", ".join(_period_name(s, e) for s, e in self.periods)

    def summary(self) -> str:
        left = f"; {self.left_out} row(s) of other services left out" if self.left_out else ""
        return (
            f"imported {self.ai_rows} AI charge(s) of billing period(s) {self.period_names} "
            f"into {self.account} as {self.rows_written} usage row(s), ${self.billed:,.2f} "
            f"billed (the periods' earlier imports replaced){left}"
        )


def _period_name(start: dt.date, end: dt.date) -> str:
    if start.day == 1 and end == (start + dt.timedelta(days=32)).replace(day=1):
        return f"{start:%Y-%m}"
    return f"{start}..{end - dt.timedelta(days=1)}"


def import_focus(
    *,
    session: Session,
    account_name: str,
    source: Path,
    user_tag: str | None = None,
    project_tag: str | None = None,
    actor: str = "cli",
) -> FocusImportResult:
    """Import the AI rows of the FOCUS export at `source` into a cloud account, replacing its
    earlier imports of the same billing periods; all or nothing, in the caller's transaction."""
    account = get_account(session=session, name=account_name)
    info = provider_info(account.provider)
    if not info.focus_import:
        clouds = ", ".join(p.id for p in PROVIDERS.values() if p.focus_import)
        raise InvalidInput(
            f"{account.name} is a {info.display_name} account; a cloud bill's FOCUS export goes "
            f"into an account of a cloud provider ({clouds}), which needs no key"
        )
    reader = _Reader(
        cloud=CLOUD_OF[info.id],
        display=info.display_name,
        provider_names={n.lower() for n in info.focus_provider_names},
        user_keys=(user_tag,) if user_tag else focus_skus.USER_TAGS,
        project_keys=(project_tag,) if project_tag else focus_skus.PROJECT_TAGS,
    )
    with open_export(source) as export:
        if export.focus_version:
            reader.versions.add(export.focus_version)
        for file in export.files:
            reader.read(file)
    reader.finish()
    rows = _rounded(list(reader.rows.values()))
    periods = tuple(sorted(reader.periods))
    stamp = utcnow()
    with session.begin_nested():  # a failure undoes the delete and the writes alike
        session.execute(
            delete(UsageRecord).where(
                UsageRecord.account_id == account.id,
                or_(*(UsageRecord.day.between(s, e - dt.timedelta(days=1)) for s, e in periods)),
                or_(
                    UsageRecord.usage_type == FOCUS_USAGE_TYPE,
                    UsageRecord.usage_type.like(f"{FOCUS_USAGE_TYPE}:%"),
                ),
            )
        )
        upsert_rows(session, account.id, rows, stamp=stamp)
        estimate_costs(session, periods[0][0], periods[-1][1] - dt.timedelta(days=1), account.id)
    result = FocusImportResult(
        account=account.name,
        rows_read=reader.rows_read,
        ai_rows=reader.ai_rows,
        left_out=reader.left_out,
        rows_written=len(rows),
        periods=periods,
        billed=sum((r.billed_cost or Decimal(0) for r in rows), Decimal(0)),
        focus_versions=tuple(sorted(reader.versions)),
    )
    audit.record(
        session=session,
        actor=actor,
        action="usage.import_focus",
        target=account.name,
        periods=result.period_names,
        ai_rows=result.ai_rows,
        rows=result.rows_written,
        billed=str(result.billed),
    )
    return result


class _Columns:
    """A file's columns, found by their FOCUS names whatever their case."""

    def __init__(self, names: Iterable[str]) -> None:
        self.actual = {n.strip().lower(): n for n in names}

    def has(self, name: str) -> bool:
        return name.lower() in self.actual

    def value(self, record: dict[str, Any], name: str) -> Any:
        key = self.actual.get(name.lower())
        return None if key is None else record.get(key)

    def text(self, record: dict[str, Any], name: str) -> str:
        value = self.value(record, name)
        return "" if value is None else str(value).strip()


@dataclass
class _Reader:
    """Reads the files of one import: checks every row, adds the AI rows up by natural key."""

    cloud: str
    display: str
    provider_names: set[str]
    user_keys: tuple[str, ...]
    project_keys: tuple[str, ...]
    rows: dict[tuple[object, ...], UsageRow] = field(default_factory=dict)
    periods: set[tuple[dt.date, dt.date]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)
    rows_read: int = 0
    own_rows: int = 0
    ai_rows: int = 0
    left_out: int = 0

    def read(self, file: DataFile) -> None:
        with open_rows(file) as (names, records):
            self._read(file, names, records)

    def _read(
        self, file: DataFile, names: list[str], records: Iterable[tuple[str, dict[str, Any]]]
    ) -> None:
        columns = _Columns(names)
        missing = [c for c in REQUIRED if not columns.has(c)]
        provider_column = next((c for c in PROVIDER_COLUMNS if columns.has(c)), None)
        if provider_column is None:
            missing.append("ProviderName (FOCUS 1.0-1.2) or ServiceProviderName (1.3+)")
        if missing:
            self.errors.append(f"{file.label}: no column {', '.join(missing)}; {NOT_FOCUS}")
            return
        assert provider_column is not None
        self.versions.add("1.3+" if provider_column == "ServiceProviderName" else "1.0-1.2")
        for position, record in records:
            self.rows_read += 1
            provider = columns.text(record, provider_column)
            if provider.lower() not in self.provider_names:
                self.left_out += 1
                self.others.add(provider or "(empty)")
                continue
            self.own_rows += 1
            problems: list[str] = []
            row = self._row(columns, record, problems)
            self.errors.extend(f"{file.label}, {position}: {p}" for p in problems)
            if row is None:
                continue
            if not self.errors:  # after the first problem nothing more is kept
                key = row.natural_key
                self.rows[key] = merge_rows(self.rows[key], row) if key in self.rows else row

    def finish(self) -> None:
        """Refuse the import if anything was wrong or nothing was the account's."""
        for row in self.rows.values():
            if abs(row.billed_cost or Decimal(0)) > MAX_ROW_AMOUNT or any(
                getattr(row, c) > MAX_ROW_COUNT for c in focus_skus.TOKEN_COLUMN.values()
            ):
                self.errors.append(
                    f"{row.model or row.usage_type} on {row.day} adds up to an implausible "
                    f"amount (${row.billed_cost}) or token count; check the export"
                )
        if self.errors:
            shown = "; ".join(self.errors[:MAX_ERRORS])
            more = (
                f" (and {len(self.errors) - MAX_ERRORS} more)"
                if len(self.errors) > MAX_ERRORS
                else ""
            )
            raise InvalidInput(
                f"the FOCUS export has {len(self.errors)} problem(s), nothing was imported: "
                f"{shown}{more}"
            )
        if not self.own_rows:
            found = ", ".join(sorted(self.others)) or "none"
            raise InvalidInput(
                f"no row of the export is from {self.display}'s cloud (its providers: {found}); "
                "import it into the account of the cloud that billed it"
            )

    def _row(self, c: _Columns, record: dict[str, Any], problems: list[str]) -> UsageRow | None:
        period = self._period(c, record, problems)
        if period is None:
            return None
        self.periods.add(period)
        service = c.text(record, "ServiceName")
        category = " ".join(c.text(record, "ServiceCategory").lower().split())
        if category != AI_CATEGORY and not AI_SERVICE[self.cloud].search(service):
            self.left_out += 1
            return None
        self.ai_rows += 1
        billed = self._billed(c, record, problems)
        charge = c.text(record, "ChargeCategory").lower()
        if charge not in CATEGORIES:
            problems.append(
                f"ChargeCategory {c.text(record, 'ChargeCategory')!r} is not one of Usage, "
                "Purchase, Tax, Credit, Adjustment"
            )
        day = self._day(c, record, period, problems)
        try:
            tags = focus_skus.parse_tags(c.value(record, "Tags"))
        except focus_skus.BadTags as bad:
            problems.append(f"Tags {bad} is not a JSON object of tag keys and values")
            tags = {}
        consumed = self._quantity(c, record, "ConsumedQuantity", problems)
        priced = self._quantity(c, record, "PricingQuantity", problems)
        if problems or billed is None or day is None:
            return None
        sku_text = next((t for n in SKU_COLUMNS[self.cloud] if (t := c.text(record, n))), "")
        sku = focus_skus.parse_sku(sku_text, self.cloud)
        correction = c.text(record, "ChargeClass").lower() == "correction"
        tokens: int | None = None
        if charge == "usage" and not correction and sku.direction is not None:
            for quantity, unit in (
                (consumed, c.text(record, "ConsumedUnit")),
                (priced, c.text(record, "PricingUnit")),
            ):
                if quantity is not None and unit and tokens is None:
                    tokens = focus_skus.token_count(quantity, unit)
        project = focus_skus.tag_value(tags, self.project_keys)
        common: dict[str, Any] = {
            "day": day,
            "model": sku.model,
            "project_id": project or c.text(record, "SubAccountId")[:255],
            "project_name": None if project else (c.text(record, "SubAccountName")[:255] or None),
            "user_id": focus_skus.tag_value(tags, self.user_keys),
            "service_tier": sku.tier,
            "billed_cost": billed,
        }
        if tokens is not None and sku.direction is not None:
            counts: dict[str, Any] = {focus_skus.TOKEN_COLUMN[sku.direction]: tokens}
            return UsageRow(usage_type=FOCUS_USAGE_TYPE, **common, **counts)
        if charge != "usage" or correction:
            what = "correction" if correction else charge
            return UsageRow(usage_type=f"{FOCUS_USAGE_TYPE}:{what}", **common)
        units = consumed if consumed is not None and consumed >= 0 else Decimal(0)
        return UsageRow(
            usage_type=f"{FOCUS_USAGE_TYPE}:{sku_text or service}"[:255],
            other_units=units,
            other_unit_name=c.text(record, "ConsumedUnit")[:64] or None,
            **common,
        )

    def _period(
        self, c: _Columns, record: dict[str, Any], problems: list[str]
    ) -> tuple[dt.date, dt.date] | None:
        start = _instant(c.value(record, "BillingPeriodStart"), "BillingPeriodStart", problems)
        end = _instant(c.value(record, "BillingPeriodEnd"), "BillingPeriodEnd", problems)
        if start is None or end is None:
            return None
        first, after = start.date(), end.date()
        if not 0 < (after - first).days <= MAX_PERIOD_DAYS:
            problems.append(
                f"the billing period {start.isoformat()} .. {end.isoformat()} is not a period "
                f"of 1 to {MAX_PERIOD_DAYS} days (BillingPeriodEnd is exclusive)"
            )
            return None
        return first, after

    def _day(
        self,
        c: _Columns,
        record: dict[str, Any],
        period: tuple[dt.date, dt.date],
        problems: list[str],
    ) -> dt.date | None:
        start = _instant(c.value(record, "ChargePeriodStart"), "ChargePeriodStart", problems)
        if start is None:
            return None
        # A charge outside its billing period (a late charge, a Pacific-time month) is kept
        # in it: a month's total stays that bill's.
        return min(max(start.date(), period[0]), period[1] - dt.timedelta(days=1))

    def _billed(self, c: _Columns, record: dict[str, Any], problems: list[str]) -> Decimal | None:
        currency = c.text(record, "BillingCurrency").upper()
        column = "BilledCost"
        if currency != "USD":
            if not c.has("x_BilledCostInUsd"):
                problems.append(
                    f"BillingCurrency is {currency or 'empty'}: the tracker keeps US dollars, and "
                    "the export has no x_BilledCostInUsd column to take them from; export the "
                    "bill in USD"
                )
                return None
            column = "x_BilledCostInUsd"
        try:
            amount = focus_skus.decimal_of(c.value(record, column))
        except ValueError:
            problems.append(f"{column} {c.text(record, column)!r} is not a number")
            return None
        if amount is None:
            problems.append(f"{column} is empty; every FOCUS row has a billed cost")
        elif abs(amount) > MAX_ROW_AMOUNT:
            problems.append(f"{column} {amount} is implausibly large for one charge")
            return None
        return amount

    def _quantity(
        self, c: _Columns, record: dict[str, Any], column: str, problems: list[str]
    ) -> Decimal | None:
        try:
            return focus_skus.decimal_of(c.value(record, column))
        except ValueError:
            problems.append(f"{column} {c.text(record, column)!r} is not a number")
            return None


def _instant(value: Any, column: str, problems: list[str]) -> dt.datetime | None:
    """A FOCUS date-time (ISO 8601 text, BigQuery's `... UTC`, a Parquet timestamp) in UTC."""
    try:
        if isinstance(value, dt.datetime):
            parsed = value
        elif isinstance(value, dt.date):
            parsed = dt.datetime(value.year, value.month, value.day)
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            text = text[:-4] if text.upper().endswith(" UTC") else text
            parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
        else:
            problems.append(f"{column} is empty")
            return None
    except ValueError:
        problems.append(f"{column} {value!r} is not a date and time (ISO 8601)")
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _rounded(rows: list[UsageRow]) -> list[UsageRow]:
    """Rows with their billed cost rounded to the stored 6 decimals, the rounding spread so
    the stored total is the exact total rounded once (largest remainders)."""
    exact = [r.billed_cost or Decimal(0) for r in rows]
    parts = [e.quantize(MICRO, rounding=ROUND_HALF_UP) for e in exact]
    rest = int(
        (sum(exact, Decimal(0)).quantize(MICRO, rounding=ROUND_HALF_UP) - sum(parts)) / MICRO
    )
    # Short of the total: the rows rounded down the most get a micro-dollar more; over it:
    # the rows rounded up the most give one back.
    order = sorted(range(len(rows)), key=lambda i: exact[i] - parts[i], reverse=rest > 0)
    for i in order[: abs(rest)]:
        parts[i] += MICRO if rest > 0 else -MICRO
    return [replace(r, billed_cost=p) for r, p in zip(rows, parts, strict=True)]
