"""Benchmark the CSV usage import against PostgreSQL's own COPY of the same file.

Usage:
    .venv/bin/python bench/imports.py [--rows 1840000]
        [--admin-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

Writes a synthetic usage CSV in the import template (docs/csv-import.md; 1,840,000 rows is
about 100 MB), makes a scratch PostgreSQL database (dropped afterwards), and in one run:

1. `python -m tracker import` of the file into a Groq account, in a child process: wall
   time, rows/s and the child's peak RSS (getrusage);
2. PostgreSQL's own `COPY ... FROM STDIN (FORMAT csv, HEADER)` of the same file into a
   plain table with the template's columns (no index, no trigger): wall time and rows/s;
3. PostgreSQL's own `COPY` of the same rows, already in their stored form, straight into
   `usage_records` for a second account: the same four indexes, foreign key and rollup
   triggers every write to that table pays, without our check, grouping or pricing.

Prints all three and the ratios. Targets: the import within 5x of COPY; peak RSS under
300 MB.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generate import DEFAULT_ADMIN_URL, scratch_database  # noqa: E402
from tracker.core.db import make_engine  # noqa: E402

MODELS = [f"llama-bench-{i:02d}" for i in range(20)]
PROJECTS = [f"proj-{i:02d}" for i in range(18)]
KEYS = [f"key-{i}" for i in range(7)]
HEADER = "day,model,input_tokens,output_tokens,requests,cached_input_tokens,cost,project,api_key_id"


def write_csv(path: Path, rows: int) -> None:
    """Distinct (day, model, project, key) rows, newest day yesterday, in the template."""
    per_day = len(MODELS) * len(PROJECTS) * len(KEYS)
    days = -(-rows // per_day)
    first = dt.date.today() - dt.timedelta(days=days)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER.split(","))
        n = 0
        for d in range(days):
            day = (first + dt.timedelta(days=d)).isoformat()
            for m, model in enumerate(MODELS):
                for p, project in enumerate(PROJECTS):
                    for k, key in enumerate(KEYS):
                        if n == rows:
                            return
                        tokens = 1000 + (d * 7 + m * 13 + p * 17 + k) % 50_000
                        out.writerow(
                            [day, model, tokens, tokens // 4, 1 + tokens % 9, tokens // 10,
                             f"{tokens / 1_000_000:.6f}", project, key]
                        )  # fmt: skip
                        n += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_840_000)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    with scratch_database(args.admin_url, "import") as url:
        engine = make_engine(url)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "usage.csv"
            write_csv(path, args.rows)
            size_mb = path.stat().st_size / 1e6
            print(f"{args.rows:,} rows, {size_mb:.0f} MB of CSV")
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "ENCRYPTION_KEY": base64.urlsafe_b64encode(b"i" * 32).decode(),
                "SECRET_KEY": secrets.token_urlsafe(48),
                "DATA_DIR": folder,
            }
            cli = [sys.executable, "-m", "tracker"]
            added = subprocess.run(
                [*cli, "accounts", "add", "--provider", "groq", "--name", "bench-groq",
                 "--api-key-stdin"],
                input="gsk-bench-key-0000", text=True, env=env, cwd=ROOT, capture_output=True,
            )  # fmt: skip
            if added.returncode != 0:
                print(added.stderr, file=sys.stderr)
                return 1
            started = time.perf_counter()
            done = subprocess.run(
                [*cli, "import", "--account", "bench-groq", str(path)],
                env=env, cwd=ROOT, capture_output=True, text=True,
            )  # fmt: skip
            import_s = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"import:  {import_s:7.1f} s  {args.rows / import_s:9,.0f} rows/s  "
                  f"peak RSS {peak_mb:.0f} MB  ({done.stdout.strip()})")  # fmt: skip

            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute(
                    "CREATE TABLE copy_baseline (day date, model text, input_tokens bigint, "
                    "output_tokens bigint, requests bigint, cached_input_tokens bigint, "
                    "cost numeric(18, 6), project text, api_key_id text)"
                )
                started = time.perf_counter()
                with path.open() as handle:
                    cursor.copy_expert(
                        "COPY copy_baseline FROM STDIN WITH (FORMAT csv, HEADER)", handle
                    )
                raw.commit()
                copy_s = time.perf_counter() - started
            finally:
                raw.close()
            print(
                f"COPY into a plain table:     {copy_s:7.1f} s  {args.rows / copy_s:9,.0f} rows/s"
            )
            table_s = copy_into_usage_records(engine, env, cli, Path(folder) / "stored.tsv")
            print(
                f"COPY into usage_records:     {table_s:7.1f} s  {args.rows / table_s:9,.0f} rows/s"
            )
            ratio = import_s / copy_s
            print(f"import / COPY into a plain table:  {ratio:.1f}x (target within 5x)")
            print(f"import / COPY into usage_records:  {import_s / table_s:.1f}x")
            print(f"peak RSS {peak_mb:.0f} MB (target under 300 MB)")
        engine.dispose()
        return 0 if ratio <= 5 and peak_mb < 300 else 1


STORED = (
    "account_id, day, model, project_id, api_key_id, usage_type, service_tier, input_tokens, "
    "cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, requests, "
    "other_units, billed_cost, estimated_cost, currency, cost_source, pricing_status, synced_at"
)


def copy_into_usage_records(engine, env, cli, path: Path) -> float:  # type: ignore[no-untyped-def]
    """Seconds PostgreSQL's COPY takes to write the imported rows again, for a second
    account, straight into usage_records."""
    subprocess.run(
        [*cli, "accounts", "add", "--provider", "groq", "--name", "bench-copy", "--api-key-stdin"],
        input="gsk-bench-key-0001", text=True, env=env, cwd=ROOT, capture_output=True, check=True,
    )  # fmt: skip
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT id FROM accounts WHERE name = 'bench-copy'")
        second = cursor.fetchone()[0]
        columns = STORED.replace("account_id", f"{second}", 1)
        with path.open("w") as handle:
            cursor.copy_expert(f"COPY (SELECT {columns} FROM usage_records) TO STDOUT", handle)
        started = time.perf_counter()
        with path.open() as handle:
            cursor.copy_expert(f"COPY usage_records ({STORED}) FROM STDIN", handle)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


if __name__ == "__main__":
    raise SystemExit(main())
