"""Where a FOCUS import's rows come from: one file, a folder (with its manifests), or a zip.

The clouds deliver a FOCUS export as one or more data files per billing period:

- AWS Data Exports: `<export>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.csv.gz` (or
  `.snappy.parquet`) and `<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`,
  whose `dataFiles` lists the S3 URIs of the period's parts
  (docs.aws.amazon.com/cur/latest/userguide/dataexports-manifest.html).
- Azure Cost Management exports: a run folder with `manifest.json`, whose `blobs[].blobName`
  lists the parts and `exportConfig.dataVersion` the FOCUS version (`1.0r2`, `1.2-preview`,
  `1.2`); `runInfo.startDate` says which month the run covers.
- Google Cloud: the FOCUS BigQuery export, saved from BigQuery as CSV or Parquet (no manifest).

A folder with manifests imports exactly the files they list (one that is missing is an error;
older runs lying beside them are ignored); a folder without one imports every data file in it
and its subfolders. Two manifests for one billing period are refused: which run is the bill is
the user's call. A zip is read as the folder it holds.

Rows are read streaming (`open_rows`) as (position, {column: value}): CSV (UTF-8,
gzip-compressed or not, told apart by the file's first bytes) line by line, Parquet (pyarrow)
in batches.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tracker.core.errors import InvalidInput

DATA_SUFFIXES = (".csv", ".gz", ".parquet")
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_BATCH = 10_000
# A zip may not unpack to more than this (a zip bomb is refused, not unpacked).
MAX_UNZIPPED_BYTES = 20 * 1024**3
_AWS_PERIOD = re.compile(r"BILLING_PERIOD=(\d{4}-\d{2})")


@dataclass(frozen=True)
class DataFile:
    """One data file of the export; `label` is how messages name it."""

    path: Path
    label: str


@dataclass
class Export:
    """The data files to import, and what the manifests said about them."""

    files: list[DataFile]
    focus_version: str | None = None  # from a manifest, where it says
    manifests: list[str] = field(default_factory=list)


@contextmanager
def open_export(source: Path) -> Iterator[Export]:
    """The export at `source` (a data file, a folder or a zip), its zip unpacked meanwhile."""
    if not source.exists():
        raise InvalidInput(f"cannot read {source}: there is no such file or folder")
    if source.is_file() and zipfile.is_zipfile(source):
        with tempfile.TemporaryDirectory(prefix="focus-zip-") as folder:
            _unzip(source, Path(folder))
            yield _folder_export(Path(folder), shown_as=source.name)
        return
    if source.is_dir():
        yield _folder_export(source, shown_as=source.name)
        return
    if source.name.lower().endswith("manifest.json"):
        raise InvalidInput(
            f"{source.name} is the export's manifest: import the folder that holds it and the "
            "data files it lists"
        )
    yield Export([DataFile(source, source.name)])


def _unzip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
                raise InvalidInput(
                    f"{archive.name} unpacks to more than {MAX_UNZIPPED_BYTES // 1024**3} GB; "
                    "import its folder instead"
                )
            for member in members:
                parts = PurePosixPath(member.filename.replace("\\", "/")).parts
                if not parts or parts[0] == "/" or ".." in parts:
                    raise InvalidInput(
                        f"{archive.name} holds a file outside its folder ({member.filename!r})"
                    )
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as packed, target.open("wb") as out:
                    while chunk := packed.read(1 << 20):
                        out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InvalidInput(f"{archive.name} is not a readable zip file ({exc})") from None


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(DATA_SUFFIXES)


def _folder_export(folder: Path, *, shown_as: str) -> Export:
    def label(path: Path) -> str:
        return str(PurePosixPath(shown_as, *path.relative_to(folder).parts))

    manifests = sorted(
        p for p in folder.rglob("*.json") if p.name.lower().endswith("manifest.json")
    )
    data = sorted(p for p in folder.rglob("*") if _is_data_file(p))
    if not manifests:
        if not data:
            raise InvalidInput(
                f"{shown_as} holds no FOCUS data file (.csv, .csv.gz or .parquet); import the "
                "folder the cloud delivered its export to"
            )
        return Export([DataFile(p, label(p)) for p in data])
    export = Export([])
    periods: dict[str, str] = {}
    for manifest in manifests:
        listed, version, period = _read_manifest(manifest, label(manifest))
        if period is not None:
            if period in periods:
                raise InvalidInput(
                    f"{periods[period]} and {label(manifest)} both describe billing period "
                    f"{period}: import the folder of one export run only"
                )
            periods[period] = label(manifest)
        export.manifests.append(label(manifest))
        export.focus_version = export.focus_version or version
        for name in listed:
            path = _find_listed(folder, data, name)
            if path is None:
                raise InvalidInput(
                    f"{label(manifest)} lists {name}, which is not in {shown_as}: download the "
                    "whole export (every file its manifest lists) and import it again"
                )
            if all(f.path != path for f in export.files):
                export.files.append(DataFile(path, label(path)))
    if not export.files:
        raise InvalidInput(f"the manifests in {shown_as} list no data file: nothing to import")
    return export


def _read_manifest(path: Path, shown: str) -> tuple[list[str], str | None, str | None]:
    """(data files listed, FOCUS version, billing period) of an AWS or Azure manifest."""
    try:
        body = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{shown} is not a readable JSON manifest ({exc})") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"{shown} is not an export manifest (not a JSON object)")
    if isinstance(body.get("dataFiles"), list):  # AWS Data Exports
        names = [str(n) for n in body["dataFiles"]]
        match = _AWS_PERIOD.search(str(path)) or next(
            (m for n in names if (m := _AWS_PERIOD.search(n))), None
        )
        return names, None, match.group(1) if match else None
    if isinstance(body.get("blobs"), list):  # Azure Cost Management exports
        names = [
            str(b.get("blobName"))
            for b in body["blobs"]
            if isinstance(b, dict) and b.get("blobName")
        ]
        config = body.get("exportConfig") if isinstance(body.get("exportConfig"), dict) else {}
        run = body.get("runInfo") if isinstance(body.get("runInfo"), dict) else {}
        version = config.get("dataVersion") if isinstance(config, dict) else None
        start = run.get("startDate") if isinstance(run, dict) else None
        period = str(start)[:7] if start else None
        return names, (str(version) if version else None), period
    raise InvalidInput(
        f"{shown} is neither an AWS Data Exports manifest (dataFiles) nor an Azure export "
        "manifest (blobs)"
    )


def _find_listed(folder: Path, data: list[Path], name: str) -> Path | None:
    """The local file a manifest entry (an S3 URI, a blob path) names: the one whose path ends
    like the entry's in the most parts (the file name at least)."""
    wanted = PurePosixPath(name.split("://", 1)[-1]).parts

    def depth(path: Path) -> int:
        have = path.relative_to(folder).parts
        n = 0
        while n < min(len(have), len(wanted)) and have[-1 - n] == wanted[-1 - n]:
            n += 1
        return n

    scored = sorted(((depth(p), p) for p in data), key=lambda pair: pair[0], reverse=True)
    if not scored or scored[0][0] == 0:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        raise InvalidInput(
            f"the manifest lists {name}, and {scored[0][1].name} is in more than one place: "
            "import the export's folder as the cloud delivered it"
        )
    return scored[0][1]


# --- reading rows ------------------------------------------------------------------------


@contextmanager
def open_rows(file: DataFile) -> Iterator[tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]]:
    """The file's column names and its rows as (position, {column: value}), streaming; the
    file is closed when the block ends, read to the end or not.

    Positions are `line N` for CSV (the header is line 1) and `row N` for Parquet."""
    with file.path.open("rb") as head:
        magic = head.read(4)
    if magic == PARQUET_MAGIC:
        with _parquet_rows(file) as opened:
            yield opened
    else:
        with _csv_rows(file, gzipped=magic[:2] == GZIP_MAGIC) as opened:
            yield opened


_BROKEN = (UnicodeDecodeError, csv.Error, OSError, EOFError, zlib.error)


@contextmanager
def _csv_rows(
    file: DataFile, *, gzipped: bool
) -> Iterator[tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]]:
    raw: Any = gzip.open(file.path, "rb") if gzipped else file.path.open("rb")
    with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise InvalidInput(f"{file.label} is empty; it needs a header row") from None
        except _BROKEN as exc:
            raise InvalidInput(_unreadable(file, exc)) from None
        columns = [c.strip() for c in header]

        def rows() -> Iterator[tuple[str, dict[str, Any]]]:
            try:
                for values in reader:
                    if not any(v.strip() for v in values):
                        continue
                    line = f"line {reader.line_num}"
                    if len(values) != len(columns):
                        raise InvalidInput(
                            f"{file.label}, {line}: {len(values)} fields, the header has "
                            f"{len(columns)}; the file is damaged or cut short"
                        )
                    yield line, dict(zip(columns, values, strict=True))
            except _BROKEN as exc:
                where = f"line {reader.line_num + 1}"
                raise InvalidInput(_unreadable(file, exc, where)) from None

        yield columns, rows()


def _unreadable(file: DataFile, exc: BaseException, where: str = "") -> str:
    at = f", {where}" if where else ""
    if isinstance(exc, UnicodeDecodeError):
        return f"{file.label}{at}: not UTF-8 text; export it again as UTF-8 CSV"
    if isinstance(exc, OSError | EOFError | zlib.error):
        return f"{file.label}{at}: the gzip data is damaged or cut short ({exc})"
    return f"{file.label}{at}: not a readable CSV ({exc})"


@contextmanager
def _parquet_rows(file: DataFile) -> Iterator[tuple[list[str], Iterator[tuple[str, Any]]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file.path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{file.label}: not a readable Parquet file ({exc})") from None

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH):
                for record in batch.to_pylist():
                    number += 1
                    yield f"row {number}", record
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(
                f"{file.label}, after row {number}: the Parquet data is damaged ({exc})"
            ) from None

    try:
        yield list(parquet.schema_arrow.names), rows()
    finally:
        parquet.close()
