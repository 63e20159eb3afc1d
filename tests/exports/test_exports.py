"""Exports round-trip the seeded data to the cent, on SQLite and PostgreSQL.

Also: Decimal money written exactly, formula-injection cells neutralised, no credential in
any format, the filters, the FOCUS cost columns, and the CLI's files and one-line errors.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import CliResult
from tests.factories.exports import (
    INJECTION_KEY,
    INJECTION_MODEL,
    INJECTION_PROJECT,
    JAN,
    LAST4,
    SECRET,
    seed,
)
from tracker.core.errors import InvalidInput
from tracker.exports import export, focus, rows, tabular
from tracker.exports.focus import allocate
from tracker.exports.rows import decimal_str, safe_text
from tracker.models import CostProjection, Setting
from tracker.reporting.sources import Dimensions

CENT = Decimal("0.01")


def _text(session: Session, fmt: str, filters: Dimensions | None = None) -> str:
    out = io.StringIO()
    export.export(session=session, fmt=fmt, start=JAN[0], end=JAN[1], filters=filters, out=out)
    return out.getvalue()


def _csv(session: Session, fmt: str = "csv", **filters: tuple[str, ...]) -> list[dict[str, str]]:
    text = _text(session, fmt, Dimensions(**filters))
    return list(csv.DictReader(io.StringIO(text)))


def _xlsx(session: Session) -> bytes:
    return export.export_bytes(session=session, fmt="xlsx", start=JAN[0], end=JAN[1])[0]


# --- round trips ------------------------------------------------------------------------


def test_csv_round_trips_to_the_cent_and_exactly(session: Session) -> None:
    seeded = seed(session)
    rows = _csv(session)
    assert list(rows[0]) == list(tabular.CSV_COLUMNS)
    assert len(rows) == seeded.january_rows
    assert sum(Decimal(r["cost"] or 0) for r in rows) == seeded.january_cost
    billed = [r["billed_cost"] for r in rows if r["usage_type"].startswith("cost:gpt-4o")]
    assert sorted(billed) == ["0.100000", "0.200000"]  # six places, no float noise
    assert all(r["day"].startswith("2025-01-") for r in rows)
    unpriced = [r for r in rows if r["pricing_status"] == "unpriced"]
    assert len(unpriced) == 1 and unpriced[0]["cost"] == ""
    seat = next(r for r in rows if r["usage_type"] == "seats")
    assert seat["provider"] == "github_copilot" and seat["billed_cost"] == "1.838710"


def test_json_round_trips_with_exact_decimal_strings(session: Session) -> None:
    seeded = seed(session)
    doc = json.loads(_text(session, "json"))
    assert doc["start"] == "2025-01-01" and doc["end"] == "2025-01-31"
    assert doc["row_count"] == seeded.january_rows == len(doc["rows"])
    assert Decimal(doc["total_cost"]) == seeded.january_cost
    assert sum(Decimal(r["cost"] or 0) for r in doc["rows"]) == seeded.january_cost
    first = doc["rows"][0]
    assert isinstance(first["input_tokens"], int) and isinstance(first["cost"], str)
    # JSON is not a spreadsheet: names stay as they are.
    assert any(r["model"] == INJECTION_MODEL for r in doc["rows"])


def test_empty_json_is_valid(session: Session) -> None:
    doc = json.loads(_text(session, "json", Dimensions(accounts=("nobody",))))
    assert doc["rows"] == [] and doc["total_cost"] == "0"


def test_xlsx_month_pack_sheets_totals_and_formats(session: Session) -> None:
    seeded = seed(session)
    session.add(Setting(key="org_monthly_budget", value="50.00"))
    session.flush()
    book = openpyxl.load_workbook(io.BytesIO(_xlsx(session)))
    assert book.sheetnames == [
        "Summary",
        "By provider",
        "By model",
        "By project",
        "Daily",
        "Unpriced",
        "Chargeback",
        "Savings",
    ]
    summary = {row[0].value: row[1] for row in book["Summary"].iter_rows(min_row=2) if row[0].value}
    total = summary["Total cost"]
    assert Decimal(str(total.value)).quantize(CENT) == seeded.january_cost.quantize(CENT)
    assert "$" in total.number_format
    assert Decimal(str(summary["Organisation (organisation budget)"].value)) == Decimal(50)
    assert "Account: Acme OpenAI" in summary
    assert "no projection yet" in summary
    for name in book.sheetnames:
        assert book[name].freeze_panes == "A2", name
    for name in ("By provider", "By model", "By project", "Daily"):
        sheet = book[name]
        headers = [c.value for c in sheet[1]]
        col = headers.index("Cost (USD)")
        last = sheet.max_row
        assert sheet.cell(last, 1).value == "Total"
        body = sum(
            Decimal(str(sheet.cell(r, col + 1).value or 0)) for r in range(2, last)
        ).quantize(CENT)
        assert body == seeded.january_cost.quantize(CENT), name
        assert "$" in sheet.cell(2, col + 1).number_format
    providers = {r[0].value: r[1].value for r in book["By provider"].iter_rows(min_row=2)}
    assert Decimal(str(providers["OpenAI"])).quantize(CENT) == seeded.openai_cost.quantize(CENT)
    unpriced = [c.value for c in book["Unpriced"][2]]
    assert unpriced[0] == "Acme OpenAI" and unpriced[1] == "'" + INJECTION_MODEL
    days = [c.value for c in book["Daily"]["A"][1:-1]]
    assert days == [dt.datetime(2025, 1, 15), dt.datetime(2025, 1, 16)]
    # No team is set up: the whole month is Unassigned, and adds up to the month's spend.
    charged = [[c.value for c in r] for r in book["Chargeback"].iter_rows(min_row=2) if r[0].value]
    assert {r[1] for r in charged} == {"Unassigned", "Total"}
    month_total = next(r[5] for r in charged if r[1] == "Total")
    body = sum(Decimal(str(r[5])) for r in charged if r[1] != "Total")
    assert body.quantize(CENT) == Decimal(str(month_total)).quantize(CENT)


def test_month_pack_meets_each_month_with_its_own_budget(session: Session) -> None:
    """Two months exported: two budget lines per scope, each month's actual against one
    monthly budget (a 59-day actual over one month's budget read 130 %)."""
    seeded = seed(session)
    session.add(Setting(key="org_monthly_budget", value="50.00"))
    session.flush()
    data = export.export_bytes(session=session, fmt="xlsx", start=JAN[0], end=dt.date(2025, 2, 10))[
        0
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Summary"]
    org = [
        [c.value for c in row]
        for row in sheet.iter_rows(min_row=2)
        if row[0].value == "Organisation (organisation budget)"
    ]
    assert [(line[4], line[5]) for line in org] == [
        ("January 2025", "1–31 Jan"),
        ("February 2025", "1–10 Feb (10 of 28 days)"),
    ]
    jan, feb = org
    assert Decimal(str(jan[1])) == Decimal(str(feb[1])) == Decimal(50)
    assert Decimal(str(jan[2])).quantize(CENT) == seeded.january_cost.quantize(CENT)
    assert Decimal(str(feb[2])) == Decimal(9)  # the one February row
    assert Decimal(str(feb[3])) == Decimal(9) / Decimal(50)


def test_xlsx_summary_shows_the_projection(session: Session) -> None:
    seed(session)
    session.add(
        CostProjection(
            scope="org",
            month=dt.date(2025, 1, 1),
            actual_to_date=Decimal("6"),
            projected_total=Decimal("12.345678"),
            lower_bound=Decimal("10"),
            upper_bound=Decimal("15"),
            method="linear",
        )
    )
    session.flush()
    book = openpyxl.load_workbook(io.BytesIO(_xlsx(session)))
    rows = [[c.value for c in r] for r in book["Summary"].iter_rows()]
    line = next(r for r in rows if r[0] and str(r[0]).startswith("organisation, 2025-01"))
    assert line[1] == pytest.approx(12.345678) and line[2] == 10 and line[3] == 15


def test_xlsx_refuses_a_text_stream(session: Session) -> None:
    with pytest.raises(InvalidInput, match="binary"):
        export.export(session=session, fmt="xlsx", start=JAN[0], end=JAN[1], out=io.StringIO())


# --- FOCUS cost columns -----------------------------------------------------------------


def test_focus_costs_quantities_and_seats(session: Session) -> None:
    seeded = seed(session)
    rows = _csv(session, "focus")
    assert list(rows[0]) == list(focus.FOCUS_COLUMNS)
    assert sum(Decimal(r["BilledCost"]) for r in rows) == seeded.january_cost
    assert sum(Decimal(r["EffectiveCost"]) for r in rows) == seeded.january_cost
    for r in rows:
        for column in ("BilledCost", "ListCost", "PricingQuantity", "ConsumedQuantity"):
            assert "." in r[column] and "E" not in r[column].upper(), (column, r[column])
        assert r["ChargePeriodStart"].endswith("T00:00:00Z") and r["BillingCurrency"] == "USD"
    # The discounted model: list price above what is paid; the four columns are not copies.
    gpt4o = [r for r in rows if r["SkuId"] == "gpt-4o-output"]
    assert len(gpt4o) == 1
    out = gpt4o[0]
    assert (out["ConsumedUnit"], out["PricingUnit"], out["ConsumedQuantity"]) == (
        "Tokens",
        "Tokens",
        "50000.0",
    )
    assert Decimal(out["ListCost"]) > Decimal(out["ContractedCost"]) == Decimal(out["BilledCost"])
    assert Decimal(out["ListUnitPrice"]) * Decimal(out["PricingQuantity"]) == Decimal(
        out["ListCost"]
    )
    assert Decimal(out["ContractedUnitPrice"]) == Decimal(out["ListUnitPrice"]) * Decimal("0.8")
    # Token kinds are separate charges.
    kinds = {r["SkuId"].rsplit("-", 1)[-1] for r in rows if "claude" in r["SkuId"]}
    assert {"input", "cached_input", "cache_write", "cache_write_1h", "output"} <= kinds
    seat = next(r for r in rows if r["ConsumedUnit"] == "Seats")
    assert seat["ChargeFrequency"] == "Recurring" and seat["ChargeCategory"] == "Usage"
    assert seat["PricingQuantity"] == "3.0" and seat["BilledCost"] == "1.83871"
    assert seat["ServiceCategory"] == "Developer Tools"
    assert {r["ChargeFrequency"] for r in rows if r is not seat} == {"Usage-Based"}
    assert all(r["InvoiceId"] for r in rows)


def test_focus_billed_rows_keep_the_billed_cost(session: Session) -> None:
    seed(session)
    rows = _csv(session, "focus", providers=("anthropic",))
    billed = [r for r in rows if '"x_cost_source": "billed"' in r["Tags"]]
    assert [r["BilledCost"] for r in billed] == ["1.234567"]
    assert billed[0]["ListCost"] == billed[0]["ContractedCost"] == "1.234567"


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (Decimal("1.000000"), [Decimal(1), Decimal(1), Decimal(1)], ["0.333334", "0.333333"]),
        (Decimal("0.000001"), [Decimal(1), Decimal(3)], ["0", "0.000001"]),
        (Decimal("5"), [Decimal(0), Decimal(0)], ["2.5", "2.5"]),
        (Decimal("-0.3"), [Decimal(1), Decimal(2)], ["-0.1", "-0.2"]),
    ],
)
def test_allocate_sums_exactly(total: Decimal, weights: list[Decimal], expected: list[str]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total and len(parts) == len(weights)
    assert all(p.as_tuple().exponent >= -6 for p in parts)  # type: ignore[operator]
    assert {Decimal(e) for e in expected} <= set(parts)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1"), "1.0"),
        (Decimal("100000.000000"), "100000.0"),
        (Decimal("0.0000025"), "0.0000025"),
        (Decimal("2.5E-7"), "0.00000025"),
        (Decimal("19.000000"), "19.0"),
        (3, "3.0"),
    ],
)
def test_focus_decimals_always_have_a_point(value: Decimal | int, text: str) -> None:
    assert decimal_str(value) == text


# --- safety ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("gpt-4o", "gpt-4o"),
        ("", ""),
        (None, ""),
    ],
)
def test_safe_text(value: str | None, safe: str) -> None:
    assert safe_text(value) == safe


def test_formula_injection_is_neutralised_in_csv_and_focus(session: Session) -> None:
    seed(session)
    evil = next(r for r in _csv(session) if r["pricing_status"] == "unpriced")
    assert evil["model"] == "'" + INJECTION_MODEL
    assert evil["project_name"] == "'" + INJECTION_PROJECT
    assert evil["api_key_name"] == "'" + INJECTION_KEY
    assert evil["project_id"] == "'-proj-evil"
    for r in _csv(session, "focus"):
        for column in focus.FOCUS_COLUMNS:
            if column not in ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost"):
                assert not r[column].startswith(rows.FORMULA_PREFIXES), (column, r[column])


def test_no_credential_in_any_export(session: Session) -> None:
    seed(session)
    for fmt in ("csv", "json", "focus"):
        text = _text(session, fmt)
        assert SECRET not in text and LAST4 not in text, fmt
    with zipfile.ZipFile(io.BytesIO(_xlsx(session))) as archive:
        for name in archive.namelist():
            content = archive.read(name).decode("utf-8", errors="replace")
            assert SECRET not in content and LAST4 not in content, name


# --- filters --------------------------------------------------------------------------


def test_filters(session: Session) -> None:
    seeded = seed(session)
    openai = _csv(session, providers=("openai",))
    assert {r["provider"] for r in openai} == {"openai"}
    assert sum(Decimal(r["cost"] or 0) for r in openai) == seeded.openai_cost
    assert {r["account"] for r in _csv(session, accounts=("Acme GitHub",))} == {"Acme GitHub"}
    assert {r["model"] for r in _csv(session, models=("gpt-4o",))} == {"gpt-4o"}
    by_id = _csv(session, projects=("proj-1",))
    by_name = _csv(session, projects=("Default project",))
    assert by_id == by_name and len(by_id) == 3
    assert [r["api_key_id"] for r in _csv(session, api_keys=("ci key",))] == ["key-1"]
    assert _csv(session, providers=("openai",), accounts=("Acme Anthropic",)) == []
    focus = _csv(session, "focus", providers=("github_copilot",))
    assert [r["ProviderName"] for r in focus] == ["GitHub Copilot"]


def test_date_range_is_inclusive_and_checked(session: Session) -> None:
    seed(session)
    one_day = list(
        rows.usage_rows(session=session, start=dt.date(2025, 1, 16), end=dt.date(2025, 1, 16))
    )
    assert [r.day for r in one_day] == [dt.date(2025, 1, 16)]
    assert rows.count_rows(session=session, start=JAN[0], end=dt.date(2025, 2, 1)) == 9
    with pytest.raises(InvalidInput, match="before the start"):
        export.export(
            session=session,
            fmt="csv",
            start=JAN[1],
            end=JAN[0],
            out=io.StringIO(),
        )
    with pytest.raises(InvalidInput, match="unknown export format"):
        export.export(session=session, fmt="pdf", start=JAN[0], end=JAN[1], out=io.StringIO())


def test_text_formats_accept_a_binary_stream(session: Session) -> None:
    seeded = seed(session)
    data, _stats = export.export_bytes(session=session, fmt="csv", start=JAN[0], end=JAN[1])
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert sum(Decimal(r["cost"] or 0) for r in rows) == seeded.january_cost
    assert export.file_name("focus", *JAN) == "ai-costs-focus-2025-01-01-to-2025-01-31.csv"


# --- CLI ------------------------------------------------------------------------------


def _seed_committed(engine: Engine) -> Decimal:
    with Session(engine) as session:
        seeded = seed(session)
        session.commit()
    return seeded.january_cost


ARGS = ("--start", "2025-01-01", "--end", "2025-01-31")


def test_cli_writes_every_format(
    committed_db: Engine, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    total = _seed_committed(committed_db)
    for fmt, name in (("csv", "u.csv"), ("json", "u.json"), ("focus", "f.csv"), ("xlsx", "p.xlsx")):
        result = cli("export", "--format", fmt, *ARGS, "--output", str(tmp_path / name))
        assert result.code == 0, result.err
        assert f"total ${total:,.2f}" in result.out
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob(".*.part"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "u.csv").read_text(encoding="utf-8"))))
    assert sum(Decimal(r["cost"] or 0) for r in rows) == total
    filtered = cli("export", "--format", "csv", *ARGS, "--provider", "anthropic", "--output", "-")
    assert filtered.code == 0
    lines = list(csv.DictReader(io.StringIO(filtered.out)))
    assert lines and {r["provider"] for r in lines} == {"anthropic"}


def test_cli_writes_focus_1_2_by_default_and_1_4_as_a_zip_of_its_datasets(
    committed_db: Engine, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    total = _seed_committed(committed_db)
    default = cli("export", "--format", "focus", *ARGS, "--output", "-")
    explicit = cli("export", "--format", "focus", "--focus-version", "1.2", *ARGS, "--output", "-")
    assert default.code == explicit.code == 0 and default.out == explicit.out
    assert list(csv.DictReader(io.StringIO(default.out)))[0].keys() == set(focus.FOCUS_COLUMNS)
    target = tmp_path / "focus.zip"
    result = cli(
        "export", "--format", "focus", "--focus-version", "1.4", *ARGS, "--output", str(target)
    )
    assert result.code == 0, result.err
    assert f"total ${total:,.2f}" in result.out and str(target) in result.out
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == [
            "BillingPeriod.csv",
            "CostAndUsage.csv",
            "InvoiceDetail.csv",
            "manifest.json",
        ]
        rows = list(csv.DictReader(io.StringIO(archive.read("CostAndUsage.csv").decode())))
    assert sum(Decimal(r["BilledCost"]) for r in rows) == total
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--format", "xlsx", *ARGS, "--output", "-"), "binary file"),
        (
            ("--format", "focus", "--focus-version", "1.4", *ARGS, "--output", "-"),
            "FOCUS 1.4 is a zip of three datasets; give --output FILE",
        ),
        (
            ("--format", "csv", "--focus-version", "1.4", *ARGS, "--output", "x.csv"),
            "--focus-version is for --format focus",
        ),
        (
            ("--format", "focus", "--focus-version", "1.3", *ARGS, "--output", "x.csv"),
            "invalid choice",
        ),
        (("--format", "focus-1.4", *ARGS, "--output", "x.zip"), "invalid choice"),
        (
            (
                "--format",
                "csv",
                "--start",
                "2025-02-01",
                "--end",
                "2025-01-01",
                "--output",
                "x.csv",
            ),
            "before the start",
        ),
        (
            (
                "--format",
                "csv",
                "--start",
                "2025-13-01",
                "--end",
                "2025-01-01",
                "--output",
                "x.csv",
            ),
            "not a date",
        ),
        (("--format", "pdf", *ARGS, "--output", "x.csv"), "invalid choice"),
        (("--format", "csv", *ARGS, "--output", "no/such/folder/x.csv"), "does not exist"),
    ],
)
def test_cli_errors_are_one_line_and_leave_no_file(
    committed_db: Engine,
    cli: Callable[..., CliResult],
    tmp_path: Path,
    argv: tuple[str, ...],
    message: str,
) -> None:
    result = cli("export", *argv)
    assert result.code != 0
    assert result.err.count("\n") == 1 and message in result.err, result.err
    assert not list(tmp_path.glob("*.csv")) and not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("kind", ["symlink", "folder", "fifo"])
def test_cli_export_replaces_only_a_regular_file(
    committed_db: Engine, cli: Callable[..., CliResult], tmp_path: Path, kind: str
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    target = tmp_path / "out.csv"
    if kind == "symlink":
        target.symlink_to(precious)
    elif kind == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    result = cli("export", "--format", "csv", *ARGS, "--output", str(target))
    assert result.code == 1 and "not a regular file" in result.err, result.err
    assert precious.read_text() == "keep me"
    assert target.is_symlink() if kind == "symlink" else target.exists()
    assert not list(tmp_path.glob(".*.part"))
    # An ordinary file is replaced, as before.
    ordinary = tmp_path / "ordinary.csv"
    ordinary.write_text("old")
    assert cli("export", "--format", "csv", *ARGS, "--output", str(ordinary)).code == 0
    assert ordinary.read_text().startswith("day,")


def test_cli_failed_export_leaves_no_half_file(
    committed_db: Engine,
    cli: Callable[..., CliResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed_committed(committed_db)
    target = tmp_path / "out.csv"
    target.write_text("previous export\n", encoding="utf-8")
    real = tabular.write_csv

    def failing(rows, out, **kwargs):  # type: ignore[no-untyped-def]
        real(rows, out, **kwargs)
        raise InvalidInput("disk full (simulated); free some space and export again")

    monkeypatch.setattr(export, "write_csv", failing)
    result = cli("export", "--format", "csv", *ARGS, "--output", str(target))
    assert result.code == 1 and result.err.count("\n") == 1 and "disk full" in result.err
    assert target.read_text(encoding="utf-8") == "previous export\n"
    assert not list(tmp_path.glob(".*.part"))
