"""FOCUS 1.4: the cost and usage dataset, written with the BillingPeriod and InvoiceDetail
supplemental datasets (`tracker.exports.focus14_supplemental`) as one zip with a manifest.

The charges are the FOCUS 1.2 export's (`tracker.exports.focus.charge_records`: one per token
kind, request fee, seat row or billed line item, the same cost columns), with the 1.4 column
set:

- `ServiceProviderName` and `HostProviderName` in place of 1.2's `ProviderName` and
  `PublisherName` (deprecated in 1.3, gone from 1.4's column list);
- the team split in the `Allocated*` columns (split cost allocation, introduced in 1.3): a
  charge whose spend belongs to a team is an allocated charge of that team; a charge a
  shared-cost rule spreads over several teams is split into one allocated charge per team,
  its costs and quantities divided exactly (whole micro-units, largest remainder) and every
  dimension kept; a charge no team holds carries none (null `Allocated*` columns);
- `InvoiceId` / `InvoiceDetailId` of the invoice recorded for the account and month (null
  when none is recorded; the InvoiceDetail dataset holds that invoice);
- `SkuMeter` (the metered token kind, requests, seats, the line item); `SkuPriceDetails` null;
- FOCUS 1.5's AI fields, as custom columns until 1.5 is released: `x_ModelId`,
  `x_TokenDirection` (Input / Output), `x_CacheAction` (Read / Write / Uncached),
  `x_PrincipalId` (the provider's user) and `x_CredentialId` (the API key's id, never a
  secret); the provider's billed line items spread over usage rows (1.2's
  `x_AllocatedMethod*`) move to `x_BillAllocationMethodId` / `x_BillAllocationMethodDetails`.

See `docs/exports.md` for the mapping and the specification text it follows.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import operator
import zipfile
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from sqlalchemy.orm import Session

from tracker.attribution.chargeback import Share, TeamShares
from tracker.attribution.teams import UNASSIGNED, TeamResolver
from tracker.core.units import month_start, next_month
from tracker.costs.invoices import InvoiceMatch
from tracker.costs.pricebook import PriceBook
from tracker.exports import focus14_supplemental as supplemental
from tracker.exports.focus import ChargeRecord, allocate, charge_records
from tracker.exports.rows import ExportRow, decimal_str, safe_text
from tracker.exports.tabular import ExportStats
from tracker.models import utcnow
from tracker.reporting.sources import Dimensions

FOCUS_VERSION = "1.4"
COST_AND_USAGE = "CostAndUsage"
# FOCUS columns in alphabetical order, then the custom (x_) columns in alphabetical order.
FOCUS_COLUMNS = (
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "HostProviderName",
    "InvoiceDetailId",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)
CUSTOM_COLUMNS = (
    "x_BillAllocationMethodDetails",
    "x_BillAllocationMethodId",
    "x_CacheAction",
    "x_CredentialId",
    "x_ModelId",
    "x_PrincipalId",
    "x_TokenDirection",
)
COLUMNS = FOCUS_COLUMNS + CUSTOM_COLUMNS
# Each column's FOCUS data type (the manifest's ColumnDefinition).
DATA_TYPES: dict[str, str] = {
    **dict.fromkeys(COLUMNS, "String"),
    **dict.fromkeys(
        (
            "BilledCost",
            "ConsumedQuantity",
            "ContractedCost",
            "ContractedUnitPrice",
            "EffectiveCost",
            "ListCost",
            "ListUnitPrice",
            "PricingQuantity",
        ),
        "Decimal",
    ),
    **dict.fromkeys(
        ("BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"),
        "Date/Time",
    ),
    **dict.fromkeys(
        (
            "AllocatedMethodDetails",
            "AllocatedTags",
            "SkuPriceDetails",
            "Tags",
            "x_BillAllocationMethodDetails",
        ),
        "JSON",
    ),
}
# 1.2 columns that 1.4 keeps as they are.
_KEPT = tuple(
    c
    for c in FOCUS_COLUMNS
    if not c.startswith("Allocated")
    and c not in ("HostProviderName", "InvoiceDetailId", "InvoiceId", "SkuMeter", "SkuPriceDetails")
)
_ALLOCATED = tuple(c for c in FOCUS_COLUMNS if c.startswith("Allocated"))
# Summable metrics: split over a charge's allocated charges (unit prices are kept whole).
_MONEY = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")
_QUANTITIES = ("ConsumedQuantity", "PricingQuantity")
# The documented methods (AllocatedMethodId -> what it means; docs/exports.md).
ALLOCATION_METHODS = {
    "direct": "the team its user, API key, project or account is mapped to",
    "shared_even": "a shared-cost rule, in equal parts",
    "shared_fixed": "a shared-cost rule, by fixed percentages",
    "shared_proportional": "a shared-cost rule, in proportion to the teams' own spend",
}
# FOCUS 1.5's token properties (SkuPriceDetails TokenDirection and CacheAction), per charge kind.
_TOKEN_DIRECTION = {
    "input": "Input",
    "cached_input": "Input",
    "cache_write": "Input",
    "cache_write_1h": "Input",
    "output": "Output",
}
_CACHE_ACTION = {
    "input": "Uncached",
    "cached_input": "Read",
    "cache_write": "Write",
    "cache_write_1h": "Write",
    "output": "Uncached",
}
_METERS = {
    "input": "Input Tokens",
    "cached_input": "Cached Input Tokens",
    "cache_write": "Cache Write Tokens",
    "cache_write_1h": "Cache Write (1 h) Tokens",
    "output": "Output Tokens",
    "request": "Requests",
    "seat": "Seats",
}


def cost_and_usage_records(
    charges: Iterable[ChargeRecord],
    *,
    teams: TeamResolver,
    shares: Callable[[dt.date], TeamShares],
    invoices: dict[tuple[str, dt.date], str],
) -> Iterator[dict[str, str]]:
    """FOCUS 1.4 cost and usage rows (column -> text, formula-safe; '' is null) for charges
    of `charge_records(..., teams=None)`; `shares(month)`: the month's team shares;
    `invoices`: (account, month) -> the recorded invoice number."""
    last_row: ExportRow | None = None
    team = UNASSIGNED
    for row, kind, rec in charges:
        if row is not last_row:
            last_row = row
            team = teams.team(
                row.day,
                user=row.user_id,
                api_key=row.api_key_id,
                project=row.project_id,
                account=row.account,
            )
        out = {c: rec[c] for c in _KEPT}
        out["HostProviderName"] = rec["ServiceProviderName"]  # no separate host for AI APIs
        invoice = invoices.get((row.account, month_start(row.day)))
        out["InvoiceId"] = safe_text(invoice) if invoice else ""
        out["InvoiceDetailId"] = (
            safe_text(supplemental.invoice_detail_id(invoice)) if invoice else ""
        )
        out["SkuMeter"] = _METERS.get(kind) or rec["ChargeDescription"] or rec["PricingUnit"]
        out["SkuPriceDetails"] = ""
        out["x_BillAllocationMethodId"] = rec["x_AllocatedMethodId"]
        out["x_BillAllocationMethodDetails"] = rec["x_AllocatedMethodDetails"]
        out["x_ModelId"] = safe_text(row.model) if kind != "seat" else ""
        out["x_TokenDirection"] = _TOKEN_DIRECTION.get(kind, "")
        out["x_CacheAction"] = _CACHE_ACTION.get(kind, "")
        out["x_PrincipalId"] = safe_text(row.user_id)
        out["x_CredentialId"] = safe_text(row.api_key_id)
        parts = shares(month_start(row.day)).of(team, positive=Decimal(out["BilledCost"]) > 0)
        if len(parts) == 1 and parts[0].team == UNASSIGNED:
            out.update(dict.fromkeys(_ALLOCATED, ""))  # no team's: not allocated
            yield out
            continue
        yield from _allocated(out, parts, teams)


def _allocated(
    out: dict[str, str], parts: tuple[Share, ...], teams: TeamResolver
) -> Iterator[dict[str, str]]:
    """The allocated charges of one charge, one per team: summable metrics split exactly by
    the parts' weights, everything else as on the charge."""
    weights = [Decimal(p.weight) for p in parts]
    ratios = allocate(Decimal(1), weights)
    split: dict[str, list[str]] = {}
    for column in _MONEY:
        split[column] = [decimal_str(v) for v in allocate(Decimal(out[column]), weights)]
    for column in _QUANTITIES:
        value = out[column]
        split[column] = (
            [_quantity(v) for v in allocate(Decimal(value), weights)]
            if value
            else [""] * len(parts)
        )
    for i, part in enumerate(parts):
        piece = dict(out)
        for column, values in split.items():
            piece[column] = values[i]
        team = teams.teams.get(part.team)
        details: dict[str, Any] = {
            "Elements": [{"AllocatedRatio": float(ratios[i])}],
            "x_Basis": ALLOCATION_METHODS[part.method],
        }
        if part.shared_from is not None:
            details["x_SharedFrom"] = part.shared_from
        tags = {"x_team": part.team}
        center, gl = teams.books(part.team)
        if center:
            tags["x_cost_center"] = center
        if gl:
            tags["x_gl_account"] = gl
        piece.update(
            AllocatedMethodId=part.method,
            AllocatedMethodDetails=json.dumps(details, ensure_ascii=False, sort_keys=True),
            AllocatedResourceId=f"team-{team.id}" if team is not None else safe_text(part.team),
            AllocatedResourceName=safe_text(part.team),
            AllocatedTags=json.dumps(tags, ensure_ascii=False, sort_keys=True),
        )
        yield piece


def _quantity(value: Decimal) -> str:
    # A whole quantity keeps FOCUS's decimal point (`3.0`), a part of one its decimals.
    if value == value.to_integral_value():
        return f"{int(value)}.0"
    return decimal_str(value)


# --- the zip ---------------------------------------------------------------------------------


def write_focus14(
    rows: Iterable[ExportRow],
    out: IO[bytes],
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    filters: Dimensions,
    list_book: PriceBook,
    book: PriceBook,
    invoice_tolerance_pct: Decimal,
    now: dt.datetime | None = None,
) -> ExportStats:
    """Write the FOCUS 1.4 zip: `CostAndUsage.csv`, `BillingPeriod.csv`, `InvoiceDetail.csv`
    and `manifest.json` (the datasets, their rows and column types)."""
    stats = ExportStats()
    teams = TeamResolver(session)
    months = _months(start, end)
    recorded = supplemental.invoices(
        session=session, months=months, filters=filters, tolerance_pct=invoice_tolerance_pct
    )
    invoices = invoice_numbers(recorded)
    month_shares: dict[dt.date, TeamShares] = {}

    def shares(month: dt.date) -> TeamShares:
        found = month_shares.get(month)
        if found is None:
            found = month_shares[month] = TeamShares(session, teams, month)
        return found

    def counted() -> Iterator[ExportRow]:
        for row in rows:
            stats.records += 1
            yield row

    issuers: set[tuple[str, str]] = set()  # (BillingPeriodStart, InvoiceIssuerName)
    counts: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with _entry(archive, f"{COST_AND_USAGE}.csv") as text:
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(COLUMNS)
            values = operator.itemgetter(*COLUMNS)
            charges = charge_records(counted(), list_book=list_book, book=book, teams=None)
            records = cost_and_usage_records(charges, teams=teams, shares=shares, invoices=invoices)
            for rec in records:
                writer.writerow(values(rec))
                stats.rows += 1
                stats.total_cost += Decimal(rec["BilledCost"])
                issuers.add((rec["BillingPeriodStart"], rec["InvoiceIssuerName"]))
        counts[COST_AND_USAGE] = stats.rows
        datasets = supplemental.datasets(session=session, invoices=recorded, issuers=issuers)
        for dataset in datasets:
            with _entry(archive, f"{dataset.id}.csv") as text:
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(dataset.columns)
                for rec in dataset.records:
                    writer.writerow([rec[c] for c in dataset.columns])
            counts[dataset.id] = len(dataset.records)
        manifest = _manifest(
            start=start,
            end=end,
            filters=filters,
            now=now or utcnow(),
            columns={COST_AND_USAGE: (COLUMNS, DATA_TYPES)}
            | {d.id: (d.columns, d.data_types) for d in datasets},
            counts=counts,
        )
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
    return stats


class _entry:
    """A zip member written as UTF-8 text (streamed: the archive never holds it whole)."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self._raw = archive.open(name, "w", force_zip64=True)
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8", newline="")

    def __enter__(self) -> io.TextIOWrapper:
        return self._text

    def __exit__(self, *exc: object) -> None:
        self._text.flush()
        self._text.detach()
        self._raw.close()


def _months(start: dt.date, end: dt.date) -> list[dt.date]:
    month, out = month_start(start), []
    while month <= end:
        out.append(month)
        month = next_month(month)
    return out


def invoice_numbers(recorded: list[InvoiceMatch]) -> dict[tuple[str, dt.date], str]:
    """(account, month) -> the invoice its charges carry: the first one issued, when several
    were recorded for the same account and month."""
    found: dict[tuple[str, dt.date], InvoiceMatch] = {}
    for inv in recorded:
        key = (inv.account, inv.period)
        held = found.get(key)
        if held is None or (inv.issued_on, inv.invoice_number) < (
            held.issued_on,
            held.invoice_number,
        ):
            found[key] = inv
    return {key: inv.invoice_number for key, inv in found.items()}


def _manifest(
    *,
    start: dt.date,
    end: dt.date,
    filters: Dimensions,
    now: dt.datetime,
    columns: dict[str, tuple[tuple[str, ...], dict[str, str]]],
    counts: dict[str, int],
) -> dict[str, Any]:
    """What the zip holds, in the shape of FOCUS metadata (schema and column definitions)."""
    return {
        "FocusVersion": FOCUS_VERSION,
        "DataGenerator": {"DataGenerator": "ai-cost-tracker"},
        "CreationDate": supplemental.stamp(now),
        "CorrectionHandling": "Replacement",
        "DeliveryHandling": "Overwrite",
        "x_Range": {"Start": start.isoformat(), "End": end.isoformat()},
        "x_Filters": {
            f.name: list(getattr(filters, f.name))
            for f in dataclasses.fields(Dimensions)
            if getattr(filters, f.name)
        },
        "Datasets": [
            {
                "FocusDatasetId": dataset,
                "File": f"{dataset}.csv",
                "Rows": counts.get(dataset, 0),
                "ColumnDefinition": [
                    {"ColumnName": c, "DataType": types[c]} for c in dataset_columns
                ],
            }
            for dataset, (dataset_columns, types) in columns.items()
        ],
    }
