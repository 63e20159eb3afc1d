"""Benchmark: CSV and FOCUS exports of N synthetic usage rows, rows/s and peak memory.

Creates a throwaway PostgreSQL database (`bench_exports_<random>`), migrates it, loads N
clearly synthetic usage rows with COPY, then runs each export in a child process under
`/usr/bin/time -v` (Debian package `time`) and prints rows/s and the peak resident set size.
The database is dropped at the end, also on failure.

    .venv/bin/python bench/exports.py [--rows 1000000] [--formats csv,focus,focus-1.4]

BENCH_DATABASE_URL (default: the local server, user postgres) is only used to create and
drop the throwaway database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import admin_connection, database_url  # noqa: E402

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
START = dt.date(2025, 1, 1)
DAYS = 31
# (provider, account, model, billed?) : a mix of estimated token rows and billed rows.
MIX = [
    ("openai", "synthetic-openai", "gpt-4o", False),
    ("openai", "synthetic-openai", "gpt-4o-mini", False),
    ("anthropic", "synthetic-anthropic", "claude-sonnet-4-5", False),
    ("anthropic", "synthetic-anthropic", "claude-haiku-4-5", True),
    ("github_copilot", "synthetic-github", "business", True),
]
COLUMNS = (
    "account_id, day, model, project_id, api_key_id, usage_type, service_tier, project_name, "
    "input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, "
    "output_tokens, requests, other_units, other_unit_name, billed_cost, estimated_cost, "
    "currency, cost_source, pricing_status, synced_at"
)


class _Stream:
    """A file-like object that COPY reads; lines are generated as they are read."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._buffer = ""

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self._buffer) < size:
            more = "".join(itertools.islice(self._lines, 1000))
            if not more:
                break
            self._buffer += more
        if size < 0:
            size = len(self._buffer)
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        return chunk

    readline = read


def _lines(n: int, account_ids: dict[str, int]) -> Iterator[str]:
    for i in range(n):
        provider, account, model, billed = MIX[i % len(MIX)]
        day = START + dt.timedelta(days=i % DAYS)
        project = f"synthetic-project-{i % 50}"
        key = f"synthetic-key-{i}"  # unique: keeps the natural key unique
        if provider == "github_copilot":
            values = (
                day, model, project, key, "seats", "", "Synthetic",
                0, 0, 0, 0, 0, 0, "3", "seats", "1.838710", r"\N", "billed", "not_applicable",
            )  # fmt: skip
        elif billed:
            values = (
                day, model, project, key, "cost:output_tokens", "", "Synthetic",
                0, 0, 0, 0, 0, 0, "0", r"\N", f"{(i % 997) / 1000:.6f}", r"\N", "billed",
                "not_applicable",
            )  # fmt: skip
        else:
            values = (
                day, model, project, key, "completions", "batch" if i % 7 == 0 else "",
                "Synthetic", 1000 + i % 5000, i % 300, i % 50, 0, 200 + i % 900, 1 + i % 9, "0",
                r"\N", r"\N", f"{(i % 1931) / 100000:.6f}", "estimated", "priced",
            )  # fmt: skip
        fields = [str(account_ids[account]), *map(str, values), "2025-02-01 00:00:00+00"]
        fields.insert(-3, "USD")  # currency, before cost_source
        yield "\t".join(fields) + "\n"


def load(url: str, rows: int) -> None:
    """Migrate the throwaway database and COPY `rows` synthetic usage rows into it."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tracker.core import migrate
    from tracker.core.db import make_engine
    from tracker.models import Account, Service

    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session:
        ids: dict[str, int] = {}
        for provider, account, _, _ in MIX:
            if account in ids:
                continue
            service = session.scalars(select(Service).where(Service.name == provider)).one()
            acc = Account(
                service_id=service.id,
                name=account,
                credential_encrypted="synthetic-not-a-credential",
                credential_last4="none",
                organization_id=f"{account}-org",
            )
            session.add(acc)
            session.flush()
            ids[account] = acc.id
        session.commit()
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            cur.copy_expert(
                f"COPY usage_records ({COLUMNS}) FROM STDIN", _Stream(_lines(rows, ids))
            )
        raw.commit()
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("ANALYZE usage_records")
        raw.commit()
    finally:
        raw.close()
    engine.dispose()


def run_export(url: str, fmt: str, out_path: str) -> None:
    """(child process) Export January to `out_path` and print the record count."""
    from sqlalchemy.orm import Session

    from tracker.core.db import make_engine
    from tracker.exports import export
    from tracker.exports.rows import TEXT_FORMATS

    engine = make_engine(url)
    # The zip formats (xlsx, FOCUS 1.4) are written as bytes.
    target = (
        open(out_path, "w", encoding="utf-8", newline="")
        if fmt in TEXT_FORMATS
        else open(out_path, "wb")
    )
    with Session(engine) as session, target as out:
        stats = export.export(
            session=session,
            fmt=fmt,
            start=START,
            end=START + dt.timedelta(days=DAYS - 1),
            out=out,
        )
    print(f"records={stats.records} rows={stats.rows} total={stats.total_cost}")


def _measure(url: str, fmt: str, tmp: Path) -> dict[str, float]:
    out_path = tmp / f"export-{fmt}.csv"
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, __file__, "--child", fmt, url, str(out_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{fmt} export failed:\n{proc.stderr[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])  # type: ignore[index]
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", proc.stderr)[1]  # type: ignore[index]
    seconds = sum(float(p) * 60**i for i, p in enumerate(reversed(wall.split(":"))))
    counts = dict(kv.split("=") for kv in proc.stdout.split())
    return {
        "records": float(counts["records"]),
        "rows": float(counts["rows"]),
        "seconds": seconds,
        "rss_mb": rss_kb / 1024,
        "file_mb": out_path.stat().st_size / 1024 / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,focus")
    parser.add_argument("--child", nargs=3, metavar=("FMT", "URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_export(args.child[1], args.child[0], args.child[2])
        return
    if not Path("/usr/bin/time").exists():
        raise SystemExit("/usr/bin/time is missing: apt-get install -y time")

    name = f"bench_exports_{uuid.uuid4().hex[:10]}"
    conn = admin_connection(ADMIN_URL)
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = database_url(ADMIN_URL, name)
    try:
        began = time.perf_counter()
        load(url, args.rows)
        print(
            f"loaded {args.rows:,} synthetic rows with COPY in {time.perf_counter() - began:.1f} s"
        )
        with tempfile.TemporaryDirectory() as tmp:
            for fmt in args.formats.split(","):
                m = _measure(url, fmt, Path(tmp))
                print(
                    f"{fmt:6} {int(m['records']):>9,} records -> {int(m['rows']):>9,} rows  "
                    f"{m['seconds']:7.1f} s  {m['records'] / m['seconds']:>9,.0f} records/s  "
                    f"peak RSS {m['rss_mb']:6.1f} MB  file {m['file_mb']:7.1f} MB"
                )
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


if __name__ == "__main__":
    main()
