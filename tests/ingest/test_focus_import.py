"""Cloud bills' FOCUS exports: AWS, Azure and Google shapes, every format they come in,
restated periods, the AI rows only, totals to the cent, and nothing written on bad input."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.ingest.focus_samples import (
    AWS,
    AZURE,
    GOOGLE,
    ai_total,
    aws_export_folder,
    azure_export_folder,
    changed,
    focus_1_3,
    renamed,
    sample,
    write_csv,
    write_parquet,
    zipped,
)
from tracker.core.crypto import CredentialCipher
from tracker.core.errors import InvalidInput
from tracker.ingest.focus_import import import_focus
from tracker.models import AuditLog, UsageRecord
from tracker.providers import accounts

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
AUGUST = (dt.date(2026, 8, 1), dt.date(2026, 9, 1))


def cloud_account(session: Session, cipher: CredentialCipher, provider: str, name: str) -> int:
    return accounts.add_account(
        session=session, cipher=cipher, provider=provider, name=name, api_key=""
    ).id


def stored_total(session: Session, account_id: int) -> Decimal:
    total = session.scalar(
        select(func.sum(UsageRecord.billed_cost)).where(UsageRecord.account_id == account_id)
    )
    return Decimal(str(total or 0)).quantize(MICRO)


def rows_of(session: Session, account_id: int) -> dict[tuple[object, ...], UsageRecord]:
    found = session.scalars(select(UsageRecord).where(UsageRecord.account_id == account_id))
    return {(r.day, r.model, r.usage_type, r.project_id, r.user_id): r for r in found}


def shape(session: Session, account_id: int) -> set[tuple[object, ...]]:
    """What an import stored, comparable between accounts."""
    return {
        (*key, r.input_tokens, r.cached_input_tokens, r.output_tokens, Decimal(str(r.billed_cost)))
        for key, r in rows_of(session, account_id).items()
    }


# --- AWS ---------------------------------------------------------------------------------


def test_aws_export_keeps_the_ai_rows_at_their_billed_cost(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    header, rows = sample(AWS)
    result = import_focus(
        session=session,
        account_name="aws-bill",
        source=Path(write_csv(tmp_path / "f.csv", header, rows)),
    )

    assert (result.rows_read, result.ai_rows, result.left_out) == (11, 9, 2)  # EC2 and S3 out
    assert result.periods == (AUGUST,) and result.period_names == "2026-08"
    exact = ai_total(rows)
    assert exact == Decimal("486.6515008")
    # Stored to the micro-dollar: the exact total rounded once, whatever each row's rounding.
    assert stored_total(session, account) == exact.quantize(MICRO) == result.billed.quantize(MICRO)
    assert stored_total(session, account).quantize(CENT) == exact.quantize(CENT)

    stored = rows_of(session, account)
    sonnet = stored[(dt.date(2026, 8, 1), "Claude3Sonnet", "focus", "chatbot", "alice")]
    # Input, output and cache reads of one model, project and user on one day: one row.
    assert (sonnet.input_tokens, sonnet.output_tokens, sonnet.cached_input_tokens) == (
        1_200_500,
        300_000,
        500_000,
    )
    assert Decimal(str(sonnet.billed_cost)) == Decimal("8.2515")
    assert sonnet.cost_source == "billed"
    # IAM principal tags give the user and the project; an hourly charge lands on its day.
    bob = stored[(dt.date(2026, 8, 2), "Claude3Sonnet", "focus", "search", "bob")]
    assert bob.input_tokens == 100_000
    # Without tags, the sub-account (the AWS account) is the project, with its name.
    nova = stored[(dt.date(2026, 8, 2), "NovaLite", "focus", "444455556666", "")]
    assert (nova.input_tokens, nova.project_name) == (2_000_000, "ml-sandbox")
    # What is not tokens keeps its money under its own usage type.
    throughput = stored[
        (
            dt.date(2026, 8, 3),
            "",
            "focus:USE1-Claude3Haiku-ProvisionedThroughput-ModelUnits",
            "111122223333",
            "",
        )
    ]
    assert (throughput.other_units, throughput.other_unit_name) == (24, "Hours")
    credit = stored[(dt.date(2026, 8, 5), "Claude3Sonnet", "focus:credit", "111122223333", "")]
    assert Decimal(str(credit.billed_cost)) == Decimal("-5")
    assert (dt.date(2026, 8, 1), "", "focus:tax", "111122223333", "") in stored
    # A Bedrock marketplace model outside the AI category is kept by its service name.
    assert any(r.usage_type.startswith("focus:USE1-MP:") for r in stored.values())

    entry = session.scalar(select(AuditLog).where(AuditLog.action == "usage.import_focus"))
    assert entry is not None and entry.target == "aws-bill"


def test_gzip_and_parquet_store_what_the_csv_stores(session, cipher, tmp_path):
    header, rows = sample(AWS)
    sources = {
        "csv": write_csv(tmp_path / "a.csv", header, rows),
        "gzip": write_csv(tmp_path / "a.csv.gz", header, rows, gzipped=True),
        "parquet": write_parquet(tmp_path / "a.snappy.parquet", header, rows),
    }
    shapes = {}
    for kind, source in sources.items():
        account = cloud_account(session, cipher, "aws_bedrock", f"aws-{kind}")
        import_focus(session=session, account_name=f"aws-{kind}", source=source)
        shapes[kind] = shape(session, account)
        assert stored_total(session, account) == ai_total(rows).quantize(MICRO)
    assert shapes["csv"] == shapes["gzip"] == shapes["parquet"]


def test_focus_1_3_column_names(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "aws_bedrock", "aws-13")
    header, rows = focus_1_3(*sample(AWS))
    assert "ProviderName" not in header and "ServiceProviderName" in header
    result = import_focus(
        session=session, account_name="aws-13", source=write_csv(tmp_path / "f.csv", header, rows)
    )
    assert result.focus_versions == ("1.3+",)
    assert result.ai_rows == 9
    assert stored_total(session, account) == ai_total(rows).quantize(MICRO)


def test_a_restated_period_replaces_the_earlier_import(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    header, rows = sample(AWS)
    import_focus(
        session=session,
        account_name="aws-bill",
        source=write_csv(tmp_path / "v1.csv", header, rows),
    )
    july = changed(
        rows,
        lambda r: True,
        BillingPeriodStart="2026-07-01T00:00:00.000Z",
        BillingPeriodEnd="2026-08-01T00:00:00.000Z",
        ChargePeriodStart="2026-07-15T00:00:00.000Z",
        ChargePeriodEnd="2026-07-16T00:00:00.000Z",
    )
    import_focus(
        session=session,
        account_name="aws-bill",
        source=write_csv(tmp_path / "july.csv", header, july),
    )
    assert stored_total(session, account) == (2 * ai_total(rows)).quantize(MICRO)

    # AWS restates August: the Nova Lite charge is gone, the Sonnet output cost changed.
    restated = [r for r in rows if "NovaLite" not in r["x_UsageType"]]
    restated = changed(
        restated, lambda r: r["x_UsageType"].endswith("output-tokens"), BilledCost="4.75"
    )
    result = import_focus(
        session=session,
        account_name="aws-bill",
        source=write_csv(tmp_path / "v2.csv", header, restated),
    )
    assert result.periods == (AUGUST,)

    august = [r for r in rows_of(session, account).values() if r.day >= AUGUST[0]]
    assert not any(r.model == "NovaLite" for r in august)
    total = sum((Decimal(str(r.billed_cost)) for r in august), Decimal(0))
    assert total == ai_total(restated).quantize(MICRO)
    # July was not in the file: it stays as it was.
    assert stored_total(session, account) == (ai_total(restated) + ai_total(rows)).quantize(MICRO)
    # Importing the same file again changes nothing.
    before = shape(session, account)
    import_focus(
        session=session,
        account_name="aws-bill",
        source=write_csv(tmp_path / "v2b.csv", header, restated),
    )
    assert shape(session, account) == before


def test_an_aws_folder_imports_the_files_its_manifest_lists(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    header, rows = sample(AWS)
    folder = aws_export_folder(tmp_path, header, rows)
    result = import_focus(session=session, account_name="aws-bill", source=folder)
    # The stale third part (every row again) is not listed, so not counted twice.
    assert result.ai_rows == 9
    assert stored_total(session, account) == ai_total(rows).quantize(MICRO)


def test_a_manifest_that_lists_a_missing_file_is_refused(session, cipher, tmp_path):
    cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    header, rows = sample(AWS)
    folder = aws_export_folder(tmp_path, header, rows)
    next(folder.rglob("focus-export-00002.csv.gz")).unlink()
    with pytest.raises(InvalidInput, match=r"lists .*focus-export-00002\.csv\.gz, which is not in"):
        import_focus(session=session, account_name="aws-bill", source=folder)


# --- Azure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "names"),
    [("1.0r2", {}), ("1.2", {"x_SkuMeterName": "SkuMeter"})],
    ids=["FocusCost 1.0r2", "FocusCost 1.2"],
)
def test_azure_focus_cost_export(session, cipher, tmp_path, version, names):
    account = cloud_account(session, cipher, "azure_openai", "azure-bill")
    header, rows = renamed(*sample(AZURE), names)
    result = import_focus(
        session=session,
        account_name="azure-bill",
        source=azure_export_folder(tmp_path, header, rows, version=version),
    )
    assert version in result.focus_versions
    assert (result.ai_rows, result.left_out) == (5, 1)  # the virtual machine is left out
    assert stored_total(session, account) == ai_total(rows) == Decimal("60.46")
    stored = rows_of(session, account)
    gpt = stored[(dt.date(2026, 8, 1), "gpt-4o-0513", "focus", "support", "dave@contoso.com")]
    assert (gpt.input_tokens, gpt.output_tokens) == (1_500_000, 200_000)
    cached = stored[(dt.date(2026, 8, 2), "gpt-4o-0806", "focus", "support", "dave@contoso.com")]
    assert cached.cached_input_tokens == 1_000_000
    llama = next(r for r in stored.values() if r.model == "llama-3.3-70b-instruct")
    assert (llama.project_name, llama.input_tokens) == ("ai-lab", 1_000_000)
    ptu = next(r for r in stored.values() if r.usage_type.startswith("focus:Provisioned"))
    assert (ptu.other_units, Decimal(str(ptu.billed_cost))) == (24, Decimal("48"))


def test_a_zip_of_the_export_folder_imports_like_the_folder(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "azure_openai", "azure-bill")
    header, rows = sample(AZURE)
    archive = zipped(azure_export_folder(tmp_path / "x", header, rows), tmp_path / "export.zip")
    import_focus(session=session, account_name="azure-bill", source=archive)
    assert stored_total(session, account) == Decimal("60.46")


def test_another_billing_currency_takes_azures_usd_column(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "azure_openai", "azure-bill")
    header, rows = sample(AZURE)
    euros = changed(rows, lambda r: True, BillingCurrency="EUR")
    for row in euros:
        row["BilledCost"] = str(Decimal(row["BilledCost"]) * Decimal("0.9"))
    import_focus(
        session=session,
        account_name="azure-bill",
        source=write_csv(tmp_path / "eur.csv", header, euros),
    )
    assert stored_total(session, account) == Decimal("60.46")


# --- Google ------------------------------------------------------------------------------


def test_google_bigquery_export(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "google_vertex", "gcp-bill")
    header, rows = sample(GOOGLE)
    result = import_focus(
        session=session, account_name="gcp-bill", source=write_csv(tmp_path / "g.csv", header, rows)
    )
    assert (result.ai_rows, result.left_out) == (6, 1)  # BigQuery is left out
    assert stored_total(session, account) == ai_total(rows) == Decimal("6.25")
    stored = rows_of(session, account)
    pro = stored[(dt.date(2026, 8, 1), "gemini-2.5-pro", "focus", "research", "carol@example.com")]
    assert (pro.input_tokens, pro.output_tokens) == (2_000_000, 100_000)
    # 03:00 UTC on 1 September is still August in Google's (Pacific) billing month.
    flash = stored[(dt.date(2026, 8, 31), "gemini-2.5-flash", "focus", "research-ai-4711", "")]
    assert flash.input_tokens == 8_000_000
    storage = next(r for r in stored.values() if "Storage" in r.usage_type)
    assert (storage.model, storage.input_tokens, storage.other_unit_name) == (
        "gemini-2.5-pro",
        0,
        "gibibyte hour",
    )


# --- refused, and nothing written --------------------------------------------------------


def broken(rows, index, **values):
    return [{**r, **values} if i == index else dict(r) for i, r in enumerate(rows)]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"BilledCost": "12,5"}, r"f\.csv, line 3: BilledCost '12,5' is not a number"),
        ({"BilledCost": ""}, r"line 3: BilledCost is empty"),
        (
            {"ChargePeriodStart": "yesterday"},
            r"line 3: ChargePeriodStart 'yesterday' is not a date",
        ),
        ({"ChargeCategory": "Refund"}, r"line 3: ChargeCategory 'Refund' is not one of Usage"),
        ({"Tags": "{team: x"}, r"line 3: Tags .* is not a JSON object"),
        ({"ConsumedQuantity": "lots"}, r"line 3: ConsumedQuantity 'lots' is not a number"),
        ({"BillingCurrency": "EUR"}, r"line 3: BillingCurrency is EUR: .*no x_BilledCostInUsd"),
        (
            {"BillingPeriodEnd": "2026-08-01T00:00:00.000Z"},
            r"line 3: the billing period .* is not a period of 1 to 366 days",
        ),
    ],
)
def test_a_bad_row_imports_nothing_and_says_where(session, cipher, tmp_path, values, message):
    account = cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    header, rows = sample(AWS)
    import_focus(
        session=session,
        account_name="aws-bill",
        source=write_csv(tmp_path / "ok.csv", header, rows),
    )
    before = shape(session, account)
    with pytest.raises(InvalidInput, match="nothing was imported") as refused:
        import_focus(
            session=session,
            account_name="aws-bill",
            source=write_csv(tmp_path / "f.csv", header, broken(rows, 1, **values)),
        )
    assert re.search(message, str(refused.value)), str(refused.value)
    assert shape(session, account) == before  # the earlier import is untouched


def test_a_file_without_focus_columns_is_refused(session, cipher, tmp_path):
    cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    header, rows = sample(AWS)
    header = [h for h in header if h not in ("BilledCost", "ProviderName")]
    with pytest.raises(
        InvalidInput,
        match=r"f\.csv: no column BilledCost, ProviderName .* not look like a FOCUS export",
    ):
        import_focus(
            session=session,
            account_name="aws-bill",
            source=write_csv(tmp_path / "f.csv", header, rows),
        )


@pytest.mark.parametrize(
    "content",
    [b"\x1f\x8b\x08\x00broken gzip", b"PAR1 not really parquet", b"BilledCost\n\xff\xfe\n"],
    ids=["damaged gzip", "damaged parquet", "not UTF-8"],
)
def test_an_unreadable_file_is_refused(session, cipher, tmp_path, content):
    cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    path = tmp_path / "export.csv.gz"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match="export.csv.gz"):
        import_focus(session=session, account_name="aws-bill", source=path)


def test_another_clouds_export_is_refused(session, cipher, tmp_path):
    account = cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    header, rows = sample(AZURE)
    with pytest.raises(
        InvalidInput, match=r"no row .* Amazon Bedrock's cloud \(its providers: Microsoft\)"
    ):
        import_focus(
            session=session,
            account_name="aws-bill",
            source=write_csv(tmp_path / "a.csv", header, rows),
        )
    assert stored_total(session, account) == 0


def test_only_cloud_accounts_take_a_focus_export_and_they_take_no_key(session, cipher, tmp_path):
    accounts.add_account(
        session=session, cipher=cipher, provider="openai", name="oa", api_key="sk-admin-1234567"
    )
    header, rows = sample(AWS)
    with pytest.raises(InvalidInput, match="oa is a OpenAI account; .*aws_bedrock"):
        import_focus(
            session=session, account_name="oa", source=write_csv(tmp_path / "f.csv", header, rows)
        )
    with pytest.raises(InvalidInput, match="Amazon Bedrock accounts take no key"):
        accounts.add_account(
            session=session, cipher=cipher, provider="aws_bedrock", name="b", api_key="AKIA123"
        )


def test_a_missing_source_says_so(session, cipher, tmp_path):
    cloud_account(session, cipher, "aws_bedrock", "aws-bill")
    with pytest.raises(InvalidInput, match="no such file or folder"):
        import_focus(session=session, account_name="aws-bill", source=tmp_path / "nope")


# --- the command line --------------------------------------------------------------------


def test_cli_import_focus(cli, tmp_path):
    assert cli("accounts", "add", "--provider", "aws_bedrock", "--name", "aws-bill").code == 0
    header, rows = sample(AWS)
    folder = aws_export_folder(tmp_path, header, rows)
    done = cli("import-focus", str(folder), "--account", "aws-bill")
    assert done.code == 0, done.err
    assert "imported 9 AI charge(s) of billing period(s) 2026-08 into aws-bill" in done.out
    assert "$486.65 billed" in done.out

    bad = write_csv(tmp_path / "bad.csv", header, broken(rows, 0, BilledCost="n/a"))
    refused = cli("import-focus", str(bad), "--account", "aws-bill")
    assert refused.code == 1
    assert refused.err.count("\n") == 1 and "bad.csv, line 2: BilledCost 'n/a'" in refused.err
