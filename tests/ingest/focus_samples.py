"""The FOCUS sample exports (tests/fakes/payloads/focus/) and the shapes the clouds deliver
them in: CSV, gzip, Parquet, AWS and Azure folders with their manifests, zips, FOCUS 1.3 names."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PAYLOADS = Path(__file__).resolve().parents[1] / "fakes" / "payloads" / "focus"
AWS, AZURE, GOOGLE = "aws-focus-1.2.csv", "azure-focuscost-1.0r2.csv", "google-focus.csv"
AI_CATEGORY = "AI and Machine Learning"
Rows = list[dict[str, str]]


def sample(name: str) -> tuple[list[str], Rows]:
    """A sample's header and rows."""
    with (PAYLOADS / name).open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def ai_total(rows: Rows, names: tuple[str, ...] = ("Bedrock", "OpenAI", "Claude")) -> Decimal:
    """The BilledCost of the AI rows, worked out here on its own (not by the importer)."""
    return sum(
        (
            Decimal(r["BilledCost"])
            for r in rows
            if r["ServiceCategory"] == AI_CATEGORY or any(n in r["ServiceName"] for n in names)
        ),
        Decimal(0),
    )


def csv_bytes(header: list[str], rows: Rows) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def write_csv(path: Path, header: list[str], rows: Rows, *, gzipped: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = csv_bytes(header, rows)
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


NUMBERS = (
    "BilledCost",
    "EffectiveCost",
    "ConsumedQuantity",
    "PricingQuantity",
    "x_BilledCostInUsd",
)
TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")


def write_parquet(path: Path, header: list[str], rows: Rows) -> Path:
    """As the clouds type them: money and quantities as doubles, times as UTC timestamps."""
    import datetime as dt

    def when(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text.removesuffix(" UTC")).replace(tzinfo=dt.UTC)

    columns: dict[str, pa.Array] = {}
    for name in header:
        values = [r[name] for r in rows]
        if name in NUMBERS:
            columns[name] = pa.array([float(v) if v else None for v in values], pa.float64())
        elif name in TIMES:
            columns[name] = pa.array([when(v) for v in values], pa.timestamp("ms", tz="UTC"))
        else:
            columns[name] = pa.array([v or None for v in values], pa.string())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression="snappy")
    return path


def renamed(header: list[str], rows: Rows, names: dict[str, str]) -> tuple[list[str], Rows]:
    """The same export with columns renamed (FOCUS 1.3's ServiceProviderName, Azure 1.2's
    SkuMeter)."""
    return [names.get(h, h) for h in header], [
        {names.get(k, k): v for k, v in r.items()} for r in rows
    ]


def focus_1_3(header: list[str], rows: Rows) -> tuple[list[str], Rows]:
    """FOCUS 1.3 names: ServiceProviderName for ProviderName, HostProviderName beside it."""
    header, rows = renamed(header, rows, {"ProviderName": "ServiceProviderName"})
    for row in rows:
        row["HostProviderName"] = row["ServiceProviderName"]
    return [*header, "HostProviderName"], rows


def aws_export_folder(
    root: Path, header: list[str], rows: Rows, *, period: str = "2026-08"
) -> Path:
    """An AWS Data Exports delivery: data parts under data/BILLING_PERIOD=..., the manifest
    under metadata/BILLING_PERIOD=... listing them as S3 URIs, and a stale part of an older
    run beside them that the manifest does not list."""
    export = root / "focus-export"
    data = export / "data" / f"BILLING_PERIOD={period}"
    half = len(rows) // 2
    parts = [
        write_csv(data / "focus-export-00001.csv.gz", header, rows[:half], gzipped=True),
        write_csv(data / "focus-export-00002.csv.gz", header, rows[half:], gzipped=True),
    ]
    write_csv(data / "focus-export-00003.csv.gz", header, rows, gzipped=True)  # stale, unlisted
    manifest = {
        "executionId": "a1b2c3",
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:999988887777:export/focus-export-1",
        "columns": [{"name": h, "type": "string"} for h in header],
        "dataFiles": [
            f"s3://billing-bucket/exports/focus-export/data/BILLING_PERIOD={period}/{p.name}"
            for p in parts
        ],
    }
    meta = export / "metadata" / f"BILLING_PERIOD={period}"
    meta.mkdir(parents=True)
    (meta / "focus-export-Manifest.json").write_text(json.dumps(manifest))
    return export


def azure_export_folder(
    root: Path, header: list[str], rows: Rows, *, version: str = "1.0r2", period: str = "2026-08"
) -> Path:
    """An Azure Cost Management FocusCost run: Parquet parts and manifest.json listing them."""
    run = root / "focus-cost" / f"{period.replace('-', '')}01-{period.replace('-', '')}31" / "run-1"
    half = len(rows) // 2
    names = ["part_0_0001.snappy.parquet", "part_1_0001.snappy.parquet"]
    write_parquet(run / names[0], header, rows[:half])
    write_parquet(run / names[1], header, rows[half:])
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": 0,
        "blobCount": 2,
        "dataRowCount": len(rows),
        "exportConfig": {"exportName": "focus-cost", "type": "FocusCost", "dataVersion": version},
        "deliveryConfig": {"partitionData": True, "fileFormat": "Parquet"},
        "runInfo": {"startDate": f"{period}-01T00:00:00", "endDate": f"{period}-31T00:00:00"},
        "blobs": [
            {"blobName": f"costs/focus-cost/{run.parent.name}/run-1/{n}", "dataRowCount": 1}
            for n in names
        ],
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    return root / "focus-cost"


def zipped(folder: Path, into: Path) -> Path:
    with zipfile.ZipFile(into, "w") as archive:
        for path in folder.rglob("*"):
            if path.is_file():
                archive.write(path, path.relative_to(folder.parent))
    return into


def changed(rows: Rows, where: Callable[[dict[str, str]], bool], **values: str) -> Rows:
    return [{**r, **values} if where(r) else dict(r) for r in rows]
