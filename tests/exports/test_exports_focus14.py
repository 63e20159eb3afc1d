"""The FOCUS 1.4 export, checked against the FOCUS 1.4 specification's requirements for every
column and dataset it writes, on SQLite and PostgreSQL.

The FinOps Foundation's focus-validator (2.2.1) ships only the 1.2 rule model and fetches
the 1.4 one from the specification's release assets, which these machines cannot reach; so
the requirements are written out here. The specification does not number its normative
statements: the ids below are those of Microsoft's FOCUS 1.4 conformance report
(microsoft/finops-toolkit, docs-mslearn/focus/conformance-full-report.md), which lists the
statements of FOCUS_Spec v1.4 one by one with their text; the text is quoted beside each id.

Data: `tests.factories.exports.seed_books`, January 2025 closed by two people with teams and
a shared-cost rule, a billed line item allocated over usage rows, estimates, a restatement
after the close, a February credit and two recorded invoices.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.conftest import BACKENDS
from tests.factories.exports import (
    ANTHROPIC_INVOICE,
    FEB,
    JAN,
    LAST4,
    OPENAI_INVOICE,
    SECRET,
    Books,
    seed,
    seed_books,
)
from tracker.attribution.chargeback import Share, chargeback
from tracker.attribution.teams import TeamResolver
from tracker.costs.pricebook import PriceBook
from tracker.exports import export, focus14
from tracker.exports import focus14_supplemental as supplemental
from tracker.exports.focus import charge_records
from tracker.exports.rows import usage_rows
from tracker.reporting.sources import Dimensions

Row = dict[str, str | None]
DECIMAL = re.compile(r"^-?\d+\.\d+$")  # NumericFormat, and always a decimal point
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # DTF1.1.1-DTF1.1.4
CURRENCY = re.compile(r"^[A-Z]{3}$")  # CF1.2: ISO 4217 three-letter code
MICRO = Decimal("0.000001")  # the money columns' stored precision
# A product of a unit price and a quantity, against a cost rounded to the micro-dollar once for
# the charge and once more where the team split divides it.
PRODUCT_TOLERANCE = 2 * MICRO

SERVICE_CATEGORIES = {
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
}
# ServiceSubcategory -> its one parent ServiceCategory (the categories the tracker uses).
SUBCATEGORY_PARENTS = {
    "AI Platforms": "AI and Machine Learning",
    "Bots": "AI and Machine Learning",
    "Generative AI": "AI and Machine Learning",
    "Machine Learning": "AI and Machine Learning",
    "Natural Language Processing": "AI and Machine Learning",
    "Other (AI and Machine Learning)": "AI and Machine Learning",
    "Developer Platforms": "Developer Tools",
    "Continuous Integration and Deployment": "Developer Tools",
    "Development Environments": "Developer Tools",
    "Source Code Management": "Developer Tools",
    "Quality Assurance": "Developer Tools",
    "Other (Developer Tools)": "Developer Tools",
}


@dataclass(frozen=True)
class Exported:
    books: Books
    datasets: dict[str, list[Row]]
    header: dict[str, list[str]]
    manifest: dict[str, Any]
    unsplit: list[Row]  # the same charges before the team split (the origin charges)
    team_totals: dict[str, Decimal]  # the chargeback's, January + February
    stats_total: Decimal


def _null(value: str) -> str | None:
    return value if value != "" else None  # CSV has no other null than the empty cell


def _read(payload: bytes) -> tuple[dict[str, list[Row]], dict[str, list[str]], dict[str, Any]]:
    archive = zipfile.ZipFile(io.BytesIO(payload))
    datasets, header = {}, {}
    for name in archive.namelist():
        if name.endswith(".csv"):
            text = archive.read(name).decode("utf-8")
            reader = csv.DictReader(io.StringIO(text))
            rows = [{k: _null(v) for k, v in r.items()} for r in reader]
            datasets[name.removesuffix(".csv")] = rows
            header[name.removesuffix(".csv")] = list(reader.fieldnames or [])
    return datasets, header, json.loads(archive.read("manifest.json"))


class _NoSharing:
    """Team shares without shared-cost rules: each charge whole, to its own team."""

    def of(self, team: str, *, positive: bool = True) -> tuple[Share, ...]:
        return (Share(team, 1, "direct", None),)


@pytest.fixture(scope="module", params=BACKENDS)
def exported(request: pytest.FixtureRequest) -> Exported:
    """The books seeded once per backend, exported as FOCUS 1.4 (January and February), then
    rolled back at once (an open transaction would hold the seed's unique keys against the
    other tests of this module)."""
    engine = request.getfixturevalue(f"{request.param}_engine")
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        books = seed_books(session)
        payload, stats = export.export_bytes(
            session=session, fmt="focus-1.4", start=JAN[0], end=FEB[1]
        )
        datasets, header, manifest = _read(payload)
        teams = TeamResolver(session)
        unsplit = [
            {k: _null(v) for k, v in rec.items()}
            for rec in focus14.cost_and_usage_records(
                charge_records(
                    usage_rows(session=session, start=JAN[0], end=FEB[1]),
                    list_book=PriceBook(()),
                    book=PriceBook.from_db(session),
                    teams=None,
                ),
                teams=teams,
                shares=lambda _month: _NoSharing(),  # type: ignore[arg-type,return-value]
                invoices=focus14.invoice_numbers(
                    supplemental.invoices(
                        session=session,
                        months=[JAN[0], FEB[0]],
                        filters=Dimensions(),
                        tolerance_pct=Decimal(1),
                    )
                ),
            )
        ]
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for month in (JAN[0], FEB[0]):
            for team, amount in chargeback(session=session, month=month).by_team().items():
                totals[team] += amount
        return Exported(books, datasets, header, manifest, unsplit, dict(totals), stats.total_cost)
    finally:
        session.close()
        outer.rollback()
        connection.close()


# --- column by column ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a dataset as the 1.4 specification defines it: its data type, whether it
    allows nulls, its allowed values, and the requirements (id: text) that say so."""

    name: str
    type: str  # Decimal, Date/Time, String, JSON, KeyValue (a JSON object of scalar values)
    nullable: bool
    requirements: tuple[str, ...]
    allowed: frozenset[str] | None = None


def _c(
    name: str, type_: str, nullable: bool, *requirements: str, allowed: set[str] | None = None
) -> Column:
    return Column(name, type_, nullable, requirements, frozenset(allowed) if allowed else None)


COST_AND_USAGE = (
    _c("AllocatedMethodDetails", "JSON", True, "CU-AMD1.1 MUST be of type JSON Object"),
    _c("AllocatedMethodId", "String", True, "CU-AMI1.1 MUST be of type String"),
    _c("AllocatedResourceId", "String", True, "CU-ARI1.1 MUST be of type String"),
    _c("AllocatedResourceName", "String", True, "CU-ARN1.1 MUST be of type String"),
    _c("AllocatedTags", "KeyValue", True, "CU-AT1.3 MUST conform to KeyValueFormat"),
    _c("BilledCost", "Decimal", False, "CU-BC1.1 MUST be of type Decimal", "CU-BC1.3 NOT null"),
    _c("BillingAccountId", "String", False, "CU-BAI1.3 BillingAccountId MUST NOT be null"),
    _c("BillingAccountName", "String", False, "CU-BAN1.3 NOT null when names are supported"),
    _c("BillingCurrency", "Currency", False, "CU-BiC1.3 CurrencyFormat", "CU-BiC1.4 NOT null"),
    _c("BillingPeriodEnd", "Date/Time", False, "CU-BPE1.1 Date/Time", "CU-BPE1.3 NOT null"),
    _c("BillingPeriodStart", "Date/Time", False, "CU-BPS1.1 Date/Time", "CU-BPS1.3 NOT null"),
    _c(
        "ChargeCategory",
        "String",
        False,
        "CU-CC1.2 MUST NOT be null",
        "CU-CC1.3 MUST be one of the allowed values",
        allowed={"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
    ),
    _c(
        "ChargeClass",
        "String",
        True,
        "CU-ChC1.3 ChargeClass MUST be 'Correction' when ChargeClass is not null",
        allowed={"Correction"},
    ),
    _c("ChargeDescription", "String", False, "CU-CD1.3 SHOULD NOT be null"),
    _c(
        "ChargeFrequency",
        "String",
        False,
        "CU-CF1.2 MUST NOT be null",
        "CU-CF1.3 MUST be one of the allowed values",
        allowed={"One-Time", "Recurring", "Usage-Based"},
    ),
    _c("ChargePeriodEnd", "Date/Time", False, "CU-CPE1.1 Date/Time", "CU-CPE1.3 NOT null"),
    _c("ChargePeriodStart", "Date/Time", False, "CU-CPS1.1 Date/Time", "CU-CPS1.3 NOT null"),
    _c("ConsumedQuantity", "Decimal", True, "CU-CQ1.1 MUST be of type Decimal"),
    _c("ConsumedUnit", "String", True, "CU-CU1.1 MUST be of type String"),
    _c("ContractedCost", "Decimal", False, "CU-CoC1.1 Decimal", "CU-CoC1.3 MUST NOT be null"),
    _c("ContractedUnitPrice", "Decimal", True, "CU-CUP1.1 MUST be of type Decimal"),
    _c("EffectiveCost", "Decimal", False, "CU-EC1.1 Decimal", "CU-EC1.3 MUST NOT be null"),
    _c("HostProviderName", "String", False, "CU-HPN1.3.3 MUST NOT be null in all other cases"),
    _c("InvoiceDetailId", "String", True, "CU-IDI1.1 MUST be of type String"),
    _c("InvoiceId", "String", True, "CU-II1.1 MUST be of type String"),
    _c("InvoiceIssuerName", "String", False, "CU-IIN1.3 MUST NOT be null"),
    _c("ListCost", "Decimal", False, "CU-LC1.1 Decimal", "CU-LC1.3 MUST NOT be null"),
    _c("ListUnitPrice", "Decimal", True, "CU-LUP1.1 MUST be of type Decimal"),
    _c(
        "PricingCategory",
        "String",
        True,
        "CU-PC1.3.1 MUST be one of the allowed values",
        allowed={"Standard", "Dynamic", "Committed", "Other"},
    ),
    _c("PricingQuantity", "Decimal", True, "CU-PQ1.1 MUST be of type Decimal"),
    _c("PricingUnit", "String", True, "CU-PU1.1 MUST be of type String"),
    _c(
        "ServiceCategory",
        "String",
        False,
        "CU-SC1.2 MUST NOT be null",
        "CU-SC1.3 MUST be one of the allowed values",
        allowed=SERVICE_CATEGORIES,
    ),
    _c("ServiceName", "String", False, "CU-SN1.3 MUST NOT be null"),
    _c("ServiceProviderName", "String", False, "CU-SPN1.3 MUST NOT be null"),
    _c(
        "ServiceSubcategory",
        "String",
        False,
        "CU-SS1.2 MUST NOT be null",
        "CU-SS1.3 MUST be one of the allowed values",
        allowed=set(SUBCATEGORY_PARENTS),
    ),
    _c("SkuId", "String", True, "CU-SI1.1 MUST be of type String"),
    _c("SkuMeter", "String", True, "CU-SM1.1 MUST be of type String"),
    _c("SkuPriceDetails", "KeyValue", True, "CU-SPD1.3 MUST conform to KeyValueFormat"),
    _c("SkuPriceId", "String", True, "CU-SPI1.1 MUST be of type String"),
    _c("SubAccountId", "String", True, "CU-SAI1.1 MUST be of type String"),
    _c("SubAccountName", "String", True, "CU-SAN1.1 MUST be of type String"),
    _c("Tags", "KeyValue", True, "CU-T1.1 JSON Object", "CU-T1.3 KeyValueFormat"),
    # FOCUS 1.5's AI fields, as custom columns (CCH1.1.1: x_ prefix).
    _c("x_CacheAction", "String", True, "CacheAction", allowed={"Read", "Write", "Uncached"}),
    _c("x_CredentialId", "String", True, "CredentialId (1.5) MUST be of type String"),
    _c("x_ModelId", "String", True, "ModelId (1.5 SkuPriceDetails property) String"),
    _c("x_PrincipalId", "String", True, "PrincipalId (1.5) MUST be of type String"),
    _c("x_TokenDirection", "String", True, "TokenDirection", allowed={"Input", "Output"}),
    _c("x_BillAllocationMethodId", "String", True, "custom column (CCH1.1.1)"),
    _c("x_BillAllocationMethodDetails", "JSON", True, "CCH1.5 a documented JSON object"),
)
BILLING_PERIOD = (
    _c("BillingPeriodCreated", "Date/Time", False, "BP-BPC1.1 Date/Time", "BP-BPC1.3 NOT null"),
    _c("BillingPeriodEnd", "Date/Time", False, "BP-BPE1.1 Date/Time", "BP-BPE1.3 NOT null"),
    _c("BillingPeriodLastUpdated", "Date/Time", False, "BP-BPLU1.1", "BP-BPLU1.3 NOT null"),
    _c("BillingPeriodStart", "Date/Time", False, "BP-BPS1.1 Date/Time", "BP-BPS1.3 NOT null"),
    _c(
        "BillingPeriodStatus",
        "String",
        False,
        "BP-BiPS1.2 MUST NOT be null",
        "BP-BiPS1.3 MUST be one of the allowed values",
        allowed={"Open", "Closed"},
    ),
    _c("InvoiceIssuerName", "String", False, "BP-IIN1.3 MUST NOT be null"),
    _c("x_BookedCost", "Decimal", True, "CCH1.7 custom numeric column: NumericFormat"),
    _c("x_RestatedCost", "Decimal", True, "CCH1.7 custom numeric column: NumericFormat"),
)
INVOICE_DETAIL = (
    _c("BilledCost", "Decimal", False, "ID-BC1.1 MUST be of type Decimal", "ID-BC1.3 NOT null"),
    _c("BillingAccountId", "String", False, "ID-BAI1.3 MUST NOT be null"),
    _c("BillingCurrency", "Currency", False, "ID-BiC1.3 CurrencyFormat", "ID-BiC1.4 NOT null"),
    _c("BillingPeriodEnd", "Date/Time", False, "ID-BPE1.1 Date/Time", "ID-BPE1.3 NOT null"),
    _c("BillingPeriodStart", "Date/Time", False, "ID-BPS1.1 Date/Time", "ID-BPS1.3 NOT null"),
    _c(
        "ChargeCategory",
        "String",
        False,
        "ID-CC1.2 MUST NOT be null",
        "ID-CC1.3 MUST be one of the allowed values",
        allowed={"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
    ),
    _c("InvoiceDetailCreated", "Date/Time", False, "ID-IDC1.1", "ID-IDC1.3 MUST NOT be null"),
    _c("InvoiceDetailDescription", "String", False, "ID-IDD1.3 SHOULD NOT be null"),
    _c("InvoiceDetailGrain", "KeyValue", False, "ID-IDG1.3 KeyValueFormat", "ID-IDG1.4"),
    _c("InvoiceDetailId", "String", False, "ID-IDI1.3 MUST NOT be null"),
    _c("InvoiceDetailLastUpdated", "Date/Time", False, "ID-IDLU1.1", "ID-IDLU1.3 NOT null"),
    _c("InvoiceId", "String", False, "ID-II1.3 MUST NOT be null"),
    _c("InvoiceIssueDate", "Date/Time", True, "ID-IID1.1 Date/Time", "ID-IID1.3 MAY be null"),
    _c(
        "InvoiceIssueStatus",
        "String",
        False,
        "ID-IIS1.3 MUST NOT be null",
        "ID-IIS1.4 MUST be one of the allowed values",
        allowed={"Open", "Issued", "Voided"},
    ),
    _c("InvoiceIssuerName", "String", False, "ID-IIN1.3 MUST NOT be null"),
    _c("PaymentDueDate", "Date/Time", True, "ID-PDD1.1 Date/Time", "ID-PDD1.3 MAY be null"),
    _c("PaymentTerms", "String", False, "ID-PT1.3 MUST NOT be null"),
    _c("PurchaseOrderNumber", "String", True, "ID-PON1.3 MAY be null"),
    _c("ReferenceInvoiceId", "String", False, "ID-RII1.3 MUST NOT be null"),
    _c(
        "x_MatchStatus",
        "String",
        False,
        "custom column: the invoice's match",
        allowed={"matched", "within tolerance", "unmatched", "not comparable"},
    ),
    _c("x_SyncedBilledCost", "Decimal", False, "CCH1.7 NumericFormat"),
    _c("x_Variance", "Decimal", True, "CCH1.7 NumericFormat"),
)
SPECS = {
    "CostAndUsage": COST_AND_USAGE,
    "BillingPeriod": BILLING_PERIOD,
    "InvoiceDetail": INVOICE_DETAIL,
}
CASES = [(dataset, column) for dataset, columns in SPECS.items() for column in columns]


def _check_value(column: Column, value: str) -> str | None:
    """Why a non-null value breaks its column's type and allowed values (None: it does not)."""
    if column.type == "Decimal" and not DECIMAL.match(value):
        return f"{value!r} is not a plain decimal with a point"
    if column.type == "Date/Time" and not DATETIME.match(value):
        return f"{value!r} is not YYYY-MM-DDTHH:mm:ssZ"
    if column.type == "Currency" and not CURRENCY.match(value):
        return f"{value!r} is not an ISO 4217 code"
    if column.type in ("JSON", "KeyValue"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return f"{value!r} is not JSON"
        if not isinstance(parsed, dict):
            return f"{value!r} is not a JSON object"
        if column.type == "KeyValue" and any(isinstance(v, dict | list) for v in parsed.values()):
            return f"{value!r}: KVF1.3 key values MUST NOT be objects or arrays"
    if column.allowed is not None and value not in column.allowed:
        return f"{value!r} is not one of {sorted(column.allowed)}"
    return None


@pytest.mark.parametrize(("dataset", "column"), CASES, ids=[f"{d}.{c.name}" for d, c in CASES])
def test_each_column_has_its_type_nullability_and_allowed_values(
    exported: Exported, dataset: str, column: Column
) -> None:
    assert column.name in exported.header[dataset], f"{dataset} has no {column.name}"
    rows = exported.datasets[dataset]
    assert rows, f"{dataset} is empty"
    problems = []
    for i, row in enumerate(rows):
        value = row[column.name]
        if value is None:
            if not column.nullable:
                problems.append(f"row {i}: null")
            continue
        why = _check_value(column, value)
        if why:
            problems.append(f"row {i}: {why}")
    assert not problems, f"{dataset}.{column.name} ({'; '.join(column.requirements)}): {problems}"


# --- the datasets ----------------------------------------------------------------------------

PRESENCE = {
    # CAU1.2.x "CostAndUsage MUST include ..." (mandatory, and conditional where the tracker
    # supports the feature: split cost allocation, usage measurement, negotiated and list
    # prices, payable invoices, unit pricing, sub accounts, tags).
    "CostAndUsage": (
        "AllocatedMethodDetails AllocatedMethodId AllocatedResourceId AllocatedResourceName "
        "AllocatedTags BilledCost BillingAccountId BillingAccountName BillingCurrency "
        "BillingPeriodEnd BillingPeriodStart ChargeCategory ChargeClass ChargeDescription "
        "ChargeFrequency ChargePeriodEnd ChargePeriodStart ConsumedQuantity ConsumedUnit "
        "ContractedCost ContractedUnitPrice EffectiveCost HostProviderName InvoiceDetailId "
        "InvoiceId InvoiceIssuerName ListCost ListUnitPrice PricingCategory PricingQuantity "
        "PricingUnit ServiceCategory ServiceName ServiceProviderName ServiceSubcategory SkuId "
        "SkuMeter SkuPriceDetails SkuPriceId SubAccountId SubAccountName Tags"
    ),
    # BP1.2.1-BP1.2.6
    "BillingPeriod": (
        "BillingPeriodCreated BillingPeriodEnd BillingPeriodLastUpdated BillingPeriodStart "
        "BillingPeriodStatus InvoiceIssuerName"
    ),
    # ID1.2.x (PaymentCurrency* only when billing and payment currencies differ: never here;
    # PurchaseOrderNumber: finance may record one)
    "InvoiceDetail": (
        "BilledCost BillingAccountId BillingCurrency BillingPeriodEnd BillingPeriodStart "
        "ChargeCategory InvoiceDetailCreated InvoiceDetailDescription InvoiceDetailGrain "
        "InvoiceDetailId InvoiceDetailLastUpdated InvoiceId InvoiceIssueDate InvoiceIssueStatus "
        "InvoiceIssuerName PaymentDueDate PaymentTerms PurchaseOrderNumber ReferenceInvoiceId"
    ),
}
PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")


@pytest.mark.parametrize("dataset", list(PRESENCE))
def test_each_dataset_holds_its_columns_named_and_ordered_as_required(
    exported: Exported, dataset: str
) -> None:
    header = exported.header[dataset]
    missing = set(PRESENCE[dataset].split()) - set(header)
    assert not missing, f"CAU1.2 / BP1.2 / ID1.2 MUST include: {missing}"
    focus_columns = [c for c in header if not c.startswith("x_")]
    custom = [c for c in header if c.startswith("x_")]
    # FCH1.2-FCH1.4: Pascal case, alphanumeric; FCH1.7: at most 50 characters.
    assert all(PASCAL.match(c) and len(c) <= 50 for c in focus_columns), focus_columns
    # CCH1.1.1-CCH1.1.3: an x_ prefix, then Pascal case and alphanumeric.
    assert all(PASCAL.match(c.removeprefix("x_")) for c in custom), custom
    # FOCUS columns outside the 1.4 column list would have to be custom: none is.
    assert not {"ProviderName", "PublisherName"} & set(header)  # deprecated in 1.3
    # DC1.4: FOCUS columns alphabetically first, then custom columns alphabetically.
    assert header == sorted(focus_columns) + sorted(custom)


def test_the_manifest_describes_every_dataset(exported: Exported) -> None:
    manifest = exported.manifest
    assert manifest["FocusVersion"] == "1.4" and DATETIME.match(manifest["CreationDate"])
    assert manifest["CorrectionHandling"] == "Replacement"
    by_id = {d["FocusDatasetId"]: d for d in manifest["Datasets"]}
    assert set(by_id) == {"CostAndUsage", "BillingPeriod", "InvoiceDetail"}
    for dataset, described in by_id.items():
        assert described["File"] == f"{dataset}.csv"
        assert described["Rows"] == len(exported.datasets[dataset])
        names = [c["ColumnName"] for c in described["ColumnDefinition"]]
        assert names == exported.header[dataset]
        types = {c["ColumnName"]: c["DataType"] for c in described["ColumnDefinition"]}
        for column in SPECS[dataset]:
            expected = {"KeyValue": "JSON", "Currency": "String"}.get(column.type, column.type)
            assert types[column.name] == expected, column.name


# --- relationships between columns (cost and usage) ------------------------------------------


def _d(value: str | None) -> Decimal:
    assert value is not None
    return Decimal(value)


def _rule(requirement: str, check: Callable[[Row], bool]) -> tuple[str, Callable[[Row], bool]]:
    return requirement, check


ROW_RULES = [
    _rule(
        'CU-CQ1.3.2 ConsumedQuantity MUST be null when ChargeCategory is not "Usage"',
        lambda r: r["ChargeCategory"] == "Usage" or r["ConsumedQuantity"] is None,
    ),
    _rule(
        'CU-CQ1.3.3.1 ConsumedQuantity MUST NOT be null when ChargeCategory is "Usage" and '
        'ChargeClass is not "Correction"',
        lambda r: r["ChargeCategory"] != "Usage" or r["ConsumedQuantity"] is not None,
    ),
    _rule(
        "CU-CU1.4 ConsumedUnit MUST be null when ConsumedQuantity is null, else MUST NOT be",
        lambda r: (r["ConsumedUnit"] is None) == (r["ConsumedQuantity"] is None),
    ),
    _rule(
        "CU-PU1.4 PricingUnit MUST be null when PricingQuantity is null, else MUST NOT be",
        lambda r: (r["PricingUnit"] is None) == (r["PricingQuantity"] is None),
    ),
    _rule(
        'CU-PQ1.3.3 PricingQuantity MUST NOT be null when ChargeCategory is "Usage"',
        lambda r: r["ChargeCategory"] != "Usage" or r["PricingQuantity"] is not None,
    ),
    _rule(
        'CU-SI1.3.2 / CU-SPI1.3.2 SkuId and SkuPriceId MUST NOT be null for "Usage"',
        lambda r: r["ChargeCategory"] != "Usage" or None not in (r["SkuId"], r["SkuPriceId"]),
    ),
    _rule(
        'CU-LUP1.3.4 / CU-CUP1.3.4 unit prices MUST NOT be null for "Usage"',
        lambda r: (
            r["ChargeCategory"] != "Usage"
            or None not in (r["ListUnitPrice"], r["ContractedUnitPrice"])
        ),
    ),
    _rule(
        'CU-PC1.2.3 PricingCategory MUST NOT be null for "Usage"',
        lambda r: r["ChargeCategory"] != "Usage" or r["PricingCategory"] is not None,
    ),
    _rule(
        "CU-LUP1.4.1 / CU-CUP1.4.1 unit prices MUST be non-negative decimal values",
        lambda r: all(_d(r[c]) >= 0 for c in ("ListUnitPrice", "ContractedUnitPrice") if r[c]),
    ),
    _rule(
        "CU-LC1.6 ListCost MUST equal ListUnitPrice x PricingQuantity (to the micro-dollar)",
        lambda r: (
            r["ListUnitPrice"] is None
            or abs(_d(r["ListUnitPrice"]) * _d(r["PricingQuantity"]) - _d(r["ListCost"])) <= MICRO
        ),
    ),
    _rule(
        "CU-CoC1.6 ContractedCost MUST equal ContractedUnitPrice x PricingQuantity (to the "
        "stored micro-dollar)",
        lambda r: (
            r["ContractedUnitPrice"] is None
            or abs(
                _d(r["ContractedUnitPrice"]) * _d(r["PricingQuantity"]) - _d(r["ContractedCost"])
            )
            <= MICRO
        ),
    ),
    _rule(
        "CU-LC1.5.2 / CU-CoC1.5.2 without a unit price, a Credit's List and Contracted cost "
        "MUST equal its BilledCost",
        lambda r: (
            r["ChargeCategory"] != "Credit"
            or r["ListCost"] == r["ContractedCost"] == r["BilledCost"]
        ),
    ),
    _rule(
        'CU-EC1.6 / CU-EC1.8 EffectiveCost MUST equal BilledCost for "Usage" and "Credit"',
        lambda r: r["EffectiveCost"] == r["BilledCost"],
    ),
    _rule(
        'CU-CF1.4 ChargeFrequency MUST NOT be "Usage-Based" when ChargeCategory is "Purchase"',
        lambda r: not (r["ChargeCategory"] == "Purchase" and r["ChargeFrequency"] == "Usage-Based"),
    ),
    _rule(
        "CU-ChC1.2.1 ChargeClass MUST be null when the charge is not a correction of a closed "
        "period (restatements are in the closed month's own rows: Replacement style)",
        lambda r: r["ChargeClass"] is None,
    ),
    _rule(
        "CU-HPN1.4.3 HostProviderName MUST match ServiceProviderName in all other cases",
        lambda r: r["HostProviderName"] == r["ServiceProviderName"],
    ),
    _rule(
        "CU-SS1.4 ServiceSubcategory MUST have one and only one parent ServiceCategory",
        lambda r: SUBCATEGORY_PARENTS[r["ServiceSubcategory"] or ""] == r["ServiceCategory"],
    ),
    _rule(
        "CU-SM1.3.1 SkuMeter MUST be null when SkuId is null",
        lambda r: r["SkuId"] is not None or r["SkuMeter"] is None,
    ),
    _rule(
        "CU-SPD1.5.1 SkuPriceDetails MUST be null when SkuPriceId is null",
        lambda r: r["SkuPriceId"] is not None or r["SkuPriceDetails"] is None,
    ),
    _rule(
        "CU-SAN1.3 SubAccountName MUST be null when SubAccountId is null, else MUST NOT be",
        lambda r: (r["SubAccountName"] is None) == (r["SubAccountId"] is None),
    ),
    _rule(
        "CU-IDI1.3 InvoiceDetailId MUST be null exactly when the charge has no invoice",
        lambda r: (r["InvoiceDetailId"] is None) == (r["InvoiceId"] is None),
    ),
    _rule(
        "CU-BPS1.4 / CU-BPE1.4 the billing period is the calendar month of the charge",
        lambda r: (
            (r["BillingPeriodStart"] or "")[:7] == (r["ChargePeriodStart"] or "")[:7]
            and (r["BillingPeriodStart"] or "").endswith("-01T00:00:00Z")
            and (r["BillingPeriodEnd"] or "").endswith("-01T00:00:00Z")
        ),
    ),
    _rule(
        "CU-CPS1.4 / CU-CPE1.4 the charge period is one UTC day, [start, end)",
        lambda r: (
            dt.datetime.fromisoformat(r["ChargePeriodEnd"] or "")
            - dt.datetime.fromisoformat(r["ChargePeriodStart"] or "")
            == dt.timedelta(days=1)
        ),
    ),
    _rule(
        "CU-AMI1.3 AllocatedMethodId MUST be null exactly when the charge is not allocated",
        lambda r: (r["AllocatedMethodId"] is None) == (r["AllocatedResourceId"] is None),
    ),
    _rule(
        "CU-ARN1.3 AllocatedResourceName MUST be null when AllocatedResourceId is null, else "
        "MUST NOT be",
        lambda r: (r["AllocatedResourceName"] is None) == (r["AllocatedResourceId"] is None),
    ),
    _rule(
        "CU-AT1.4.1 AllocatedTags MUST be null when the charge is not allocated",
        lambda r: r["AllocatedMethodId"] is not None or r["AllocatedTags"] is None,
    ),
    _rule(
        "CU-AT1.5.1 AllocatedTags MUST NOT include tags already present in Tags",
        lambda r: (
            r["AllocatedTags"] is None
            or not set(json.loads(r["AllocatedTags"])) & set(json.loads(r["Tags"] or "{}"))
        ),
    ),
    _rule(
        "CU-AMD2.1 AllocatedMethodDetails holds Elements, each with a numeric AllocatedRatio; "
        "custom keys x_",
        lambda r: (
            r["AllocatedMethodDetails"] is None
            or _method_details_ok(json.loads(r["AllocatedMethodDetails"]))
        ),
    ),
    _rule(
        "x_TokenDirection: Input for tokens of a request, Output for tokens of a response; "
        "x_CacheAction: Read for cache reads, Write for cache writes, else Uncached",
        lambda r: (
            (r["x_TokenDirection"], r["x_CacheAction"])
            == {
                "Input Tokens": ("Input", "Uncached"),
                "Cached Input Tokens": ("Input", "Read"),
                "Cache Write Tokens": ("Input", "Write"),
                "Cache Write (1 h) Tokens": ("Input", "Write"),
                "Output Tokens": ("Output", "Uncached"),
            }.get(r["SkuMeter"] or "", (None, None))
        ),
    ),
]


def _method_details_ok(details: Any) -> bool:
    elements = details.get("Elements")
    return (
        isinstance(elements, list)
        and bool(elements)
        and all(isinstance(e.get("AllocatedRatio"), int | float) for e in elements)
        and all(k == "Elements" or k.startswith("x_") for k in details)
    )


@pytest.mark.parametrize(("requirement", "check"), ROW_RULES, ids=[r[:24] for r, _ in ROW_RULES])
def test_each_cost_and_usage_row_keeps_the_relationships_between_its_columns(
    exported: Exported, requirement: str, check: Callable[[Row], bool]
) -> None:
    rows = exported.datasets["CostAndUsage"]
    broken = [i for i, row in enumerate(rows) if not check(row)]
    assert not broken, f"{requirement}: rows {broken}"


# --- the team split: split cost allocation -----------------------------------------------------

SUMMABLE = ("BilledCost", "EffectiveCost", "ContractedCost", "ListCost")
QUANTITIES = ("ConsumedQuantity", "PricingQuantity")
SPLIT_COLUMNS = {
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    *SUMMABLE,
    *QUANTITIES,
}


def _origin_key(row: Row) -> tuple[tuple[str, str | None], ...]:
    return tuple(sorted((k, v) for k, v in row.items() if k not in SPLIT_COLUMNS))


def test_allocated_charges_add_up_to_their_origin_charge(exported: Exported) -> None:
    """DGCSCAH1.1: dimensions and non-summable metrics of allocated charges match the origin
    charge; the sums of summable metrics (costs, quantities) match it; CU-AMD2.3: the
    AllocatedRatio of one origin charge's allocated charges add up to 1."""
    origins = defaultdict(list)
    for row in exported.unsplit:
        origins[_origin_key(row)].append(row)
    pieces = defaultdict(list)
    for row in exported.datasets["CostAndUsage"]:
        pieces[_origin_key(row)].append(row)
    assert set(pieces) == set(origins)  # every dimension of every piece is its origin's
    split = 0
    for key, parts in pieces.items():
        whole = origins[key]
        for column in (*SUMMABLE, *QUANTITIES):
            got = sum((_d(p[column]) for p in parts if p[column] is not None), Decimal(0))
            want = sum((_d(o[column]) for o in whole if o[column] is not None), Decimal(0))
            assert got == want, (column, key)
        allocated = [p for p in parts if p["AllocatedMethodDetails"]]
        if allocated:
            ratios = [
                Decimal(str(e["AllocatedRatio"]))
                for p in allocated
                for e in json.loads(p["AllocatedMethodDetails"] or "")["Elements"]
            ]
            assert sum(ratios) == len(whole), key  # 1 per origin charge
        split += len(parts) > len(whole)
    # Platform's January charges (five token kinds, a billed line item), each to Web and ML.
    assert split == 6


def test_the_team_split_follows_the_mappings_and_the_shared_cost_rule(exported: Exported) -> None:
    rows = exported.datasets["CostAndUsage"]
    by_team: dict[str | None, Decimal] = defaultdict(Decimal)
    for row in rows:
        by_team[row["AllocatedResourceName"]] += _d(row["BilledCost"])
    # Each team's cost equals the chargeback's to the micro-dollar per charge it was split in.
    for team, amount in exported.team_totals.items():
        name = None if team == "Unassigned" else team
        assert abs(by_team[name] - amount) <= MICRO * len(rows), (team, by_team[name], amount)
    # Platform's spend went to Web 60 % and ML 40 % (a fixed rule); its credit stays its own.
    shared = [r for r in rows if r["AllocatedMethodId"] == "shared_fixed"]
    assert shared and {r["AllocatedResourceName"] for r in shared} == {"Web", "ML"}
    for row in shared:
        details = json.loads(row["AllocatedMethodDetails"] or "")
        ratio = details["Elements"][0]["AllocatedRatio"]
        assert (row["AllocatedResourceName"], ratio) in {("Web", 0.6), ("ML", 0.4)}
        assert details["x_SharedFrom"] == "Platform"
    credit = next(r for r in rows if r["ChargeCategory"] == "Credit")
    assert (credit["AllocatedResourceName"], credit["AllocatedMethodId"]) == ("Platform", "direct")
    # Team tags: cost center and GL account where the team has them.
    web = next(r for r in rows if r["AllocatedResourceName"] == "Web")
    assert json.loads(web["AllocatedTags"] or "") == {
        "x_cost_center": "CC-100",
        "x_gl_account": "6100",
        "x_team": "Web",
    }
    # GitHub's seats belong to no team: not allocated.
    seat = next(r for r in rows if r["SkuMeter"] == "Seats")
    assert seat["AllocatedMethodId"] is None and seat["AllocatedTags"] is None


# --- totals, invoices, billing periods -------------------------------------------------------


def test_the_cost_adds_up_to_the_usage_and_restatements_are_not_counted_twice(
    exported: Exported,
) -> None:
    rows = exported.datasets["CostAndUsage"]
    books = exported.books
    total = sum((_d(r["BilledCost"]) for r in rows), Decimal(0))
    assert total == exported.stats_total == books.january_cost + books.february_cost
    january = sum(
        (_d(r["BilledCost"]) for r in rows if r["BillingPeriodStart"] == "2025-01-01T00:00:00Z"),
        Decimal(0),
    )
    assert january == books.january_cost  # the restated figures, once


def test_invoices_join_their_charges_and_say_how_they_match(exported: Exported) -> None:
    details = {r["InvoiceId"]: r for r in exported.datasets["InvoiceDetail"]}
    assert set(details) == {OPENAI_INVOICE, "'" + ANTHROPIC_INVOICE}  # formula-safe
    rows = exported.datasets["CostAndUsage"]
    openai = details[OPENAI_INVOICE]
    assert (openai["PaymentTerms"], openai["PurchaseOrderNumber"]) == ("Net 30", "PO-7")
    assert openai["PaymentDueDate"] == "2025-03-04T00:00:00Z"
    assert openai["InvoiceIssueDate"] == "2025-02-02T00:00:00Z"
    assert openai["ReferenceInvoiceId"] == OPENAI_INVOICE  # ID-RII1.5: adjusts no other
    assert json.loads(openai["InvoiceDetailGrain"] or "") == {"ServiceName": "OpenAI API"}
    # The dataset relationship: Invoice Issuer Name, Invoice ID and Invoice Detail ID.
    charged = [r for r in rows if r["InvoiceId"] == OPENAI_INVOICE]
    assert charged and {r["InvoiceDetailId"] for r in charged} == {openai["InvoiceDetailId"]}
    assert {r["InvoiceIssuerName"] for r in charged} == {openai["InvoiceIssuerName"]}
    # ID-BPS1.5 / ID-BPE1.5: the same billing period as the charges of the invoice.
    assert {r["BillingPeriodStart"] for r in charged} == {openai["BillingPeriodStart"]}
    assert {r["BillingPeriodEnd"] for r in charged} == {openai["BillingPeriodEnd"]}
    assert {r["BillingAccountId"] for r in charged} == {openai["BillingAccountId"]}
    # ID-BC1.9.1 (invoice reconciliation): the invoice equals the billed part of its charges
    # (estimates, for days the provider has not billed, are not on an invoice).
    billed = sum(
        (
            _d(r["BilledCost"])
            for r in charged
            if json.loads(r["Tags"] or "{}")["x_cost_source"] in ("billed", "covered")
        ),
        Decimal(0),
    )
    assert billed == _d(openai["x_SyncedBilledCost"]) == _d(openai["BilledCost"])
    assert (openai["x_MatchStatus"], _d(openai["x_Variance"])) == ("matched", Decimal(0))
    anthropic = details["'" + ANTHROPIC_INVOICE]
    assert (anthropic["BillingCurrency"], anthropic["PaymentTerms"]) == ("EUR", "Due on receipt")
    assert anthropic["PaymentDueDate"] is None and anthropic["x_Variance"] is None
    assert anthropic["x_MatchStatus"] == "not comparable"
    # February has no recorded invoice: its charges carry none (CU-II1.3.1).
    assert all(
        r["InvoiceId"] is None for r in rows if r["BillingPeriodStart"].startswith("2025-02")
    )  # type: ignore[union-attr]
    # ID-IDLU1.5: last updated on or after created.
    for detail in details.values():
        assert (detail["InvoiceDetailLastUpdated"] or "") >= (detail["InvoiceDetailCreated"] or "")


def test_billing_periods_cover_every_charge_and_invoice_with_the_close(exported: Exported) -> None:
    periods = {
        (r["BillingPeriodStart"], r["InvoiceIssuerName"]): r
        for r in exported.datasets["BillingPeriod"]
    }
    for dataset in ("CostAndUsage", "InvoiceDetail"):
        keys = {
            (r["BillingPeriodStart"], r["InvoiceIssuerName"]) for r in exported.datasets[dataset]
        }
        assert keys <= set(periods), dataset  # joined on BillingPeriodStart, InvoiceIssuerName
    for period in periods.values():
        # BP-BPLU1.5 last updated >= created; BP-BPC1.4 created when the period begins.
        assert (period["BillingPeriodLastUpdated"] or "") >= (period["BillingPeriodCreated"] or "")
        assert period["BillingPeriodCreated"] == period["BillingPeriodStart"]
        start = dt.datetime.fromisoformat(period["BillingPeriodStart"] or "")
        end = dt.datetime.fromisoformat(period["BillingPeriodEnd"] or "")
        assert start.day == end.day == 1 and 28 <= (end - start).days <= 31
    openai_january = periods[("2025-01-01T00:00:00Z", "OpenAI")]
    assert openai_january["BillingPeriodStatus"] == "Closed"
    restated = exported.books.restated
    # What the close booked, and the restatement since: together the usage as it is now.
    booked, moved = _d(openai_january["x_BookedCost"]), _d(openai_january["x_RestatedCost"])
    assert moved == restated
    rows = exported.datasets["CostAndUsage"]
    now = sum(
        (
            _d(r["BilledCost"])
            for r in rows
            if r["InvoiceIssuerName"] == "OpenAI"
            and (r["BillingPeriodStart"] or "").startswith("2025-01")
        ),
        Decimal(0),
    )
    assert booked + moved == now
    february = periods[("2025-02-01T00:00:00Z", "OpenAI")]
    assert february["BillingPeriodStatus"] == "Open"
    assert february["x_BookedCost"] is None and february["x_RestatedCost"] is None


def test_the_ai_fields_name_the_model_the_user_and_the_key_never_its_secret(
    exported: Exported,
) -> None:
    rows = exported.datasets["CostAndUsage"]
    payload = json.dumps(exported.datasets)
    assert SECRET not in payload and LAST4 not in payload
    ann = [r for r in rows if r["x_PrincipalId"] == "user-ann"]
    assert ann and {(r["x_CredentialId"], r["x_ModelId"]) for r in ann} == {
        ("key-1", "gpt-4o-mini")
    }
    assert all(r["x_ModelId"] is None for r in rows if r["SkuMeter"] == "Seats")
    meters = {r["SkuMeter"] for r in rows}
    assert {"Input Tokens", "Cached Input Tokens", "Cache Write Tokens", "Output Tokens"} <= meters


def test_without_teams_closes_or_invoices_nothing_is_allocated_or_invoiced(
    session: Session,
) -> None:
    seed(session)
    payload, stats = export.export_bytes(
        session=session,
        fmt="focus-1.4",
        start=JAN[0],
        end=JAN[1],
        filters=Dimensions(providers=("openai",)),
    )
    datasets, header, manifest = _read(payload)
    rows = datasets["CostAndUsage"]
    assert rows and stats.rows == len(rows)
    allocated = [c for c in header["CostAndUsage"] if c.startswith("Allocated")]
    assert all(r[c] is None for r in rows for c in allocated)  # CU-AMI1.3.1 and the others
    assert all(r["InvoiceId"] is None and r["InvoiceDetailId"] is None for r in rows)
    assert [
        (p["InvoiceIssuerName"], p["BillingPeriodStatus"]) for p in datasets["BillingPeriod"]
    ] == [("OpenAI", "Open")]
    assert datasets["BillingPeriod"][0]["BillingPeriodLastUpdated"] == "2025-01-01T00:00:00Z"
    assert datasets["InvoiceDetail"] == [] and "InvoiceId" in header["InvoiceDetail"]
    assert manifest["x_Filters"] == {"providers": ["openai"]}


def test_filters_narrow_the_invoices_to_their_providers_and_accounts(session: Session) -> None:
    seed_books(session)
    for filters, expected in (
        (Dimensions(providers=("anthropic",)), {"'" + ANTHROPIC_INVOICE}),
        (Dimensions(accounts=("Acme OpenAI",)), {OPENAI_INVOICE}),
        (Dimensions(providers=("github_copilot",)), set()),
    ):
        payload, _ = export.export_bytes(
            session=session, fmt="focus-1.4", start=JAN[0], end=JAN[1], filters=filters
        )
        datasets, _header, _manifest = _read(payload)
        assert {r["InvoiceId"] for r in datasets["InvoiceDetail"]} == expected, filters
        issuers = {r["InvoiceIssuerName"] for r in datasets["CostAndUsage"]}
        assert {r["InvoiceIssuerName"] for r in datasets["BillingPeriod"]} == issuers
