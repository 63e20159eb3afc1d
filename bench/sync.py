"""Benchmark the sync's write path and the worker's memory on a large usage table.

Usage:
    .venv/bin/python bench/sync.py [--database tracker_bench_5000000] [--rows 1000000]
        [--admin-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

The database (made by bench/generate.py; about 5,000,000 rows) is used as the existing
history. Two measurements, both on synthetic accounts that are removed afterwards so the
database is left as it was:

1. Upsert throughput: `tracker.sync.upsert_rows` (the sync's write path) writes `--rows`
   new daily rows of one account in one transaction (first pass: inserts), then the same
   keys again with a new stamp (a re-sync: every row conflicts and is replaced). Rows/s of
   each; the transaction is rolled back.
2. Back-fill memory: a child process runs the real `tracker.sync.run_sync` (the worker's
   path: fetch pages, upsert, prune, price, commit) for an OpenAI-like account against a
   fake OpenAI usage API on 127.0.0.1 that pages one day per page, `--rows` rows in all
   over 365 days. Its peak RSS (getrusage of the child) and wall time are printed.

Targets: at least 20,000 rows/s; peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.core.db import make_engine  # noqa: E402
from tracker.ingest.writer import upsert_rows  # noqa: E402
from tracker.models import Account, UsageRecord, utcnow  # noqa: E402
from tracker.providers.base import UsageRow  # noqa: E402

BENCH_KEY = "sk-admin-synthetic-bench-key-0000"
ENCRYPTION_KEY = base64.urlsafe_b64encode(b"s" * 32).decode()
MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o3",
    "o3-mini",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
]
DAYS = 365


def combos_per_day(rows: int) -> int:
    return max(1, rows // DAYS)


def synthetic_rows(rows: int, first: dt.date, salt: int = 0) -> Iterator[UsageRow]:
    """`rows` distinct daily rows (DAYS days x combos), generated lazily."""
    per_day = combos_per_day(rows)
    made = 0
    for d in range(DAYS):
        day = first + dt.timedelta(days=d)
        for c in range(per_day):
            if made >= rows:
                return
            made += 1
            yield UsageRow(
                day=day,
                model=MODELS[c % len(MODELS)],
                project_id=f"proj_sync_{c // 40:03d}",
                api_key_id=f"key_sync_{c // 10:04d}",
                usage_type="completions",
                service_tier="default",
                input_tokens=1000 + c + salt,
                cached_input_tokens=c,
                output_tokens=200 + d,
                requests=3,
            )


def new_account(session: Session, name: str, base_url: str | None = None) -> int:
    from tracker.core.crypto import CredentialCipher
    from tracker.providers.accounts import add_account

    cipher = CredentialCipher(base64.urlsafe_b64decode(ENCRYPTION_KEY))
    account = add_account(
        session=session,
        cipher=cipher,
        provider="openai",
        name=name,
        api_key=BENCH_KEY,
        base_url=base_url,
        actor="bench",
    )
    return account.id


def remove_accounts(url: str) -> None:
    """Delete the benchmark's synthetic sync accounts (their usage rows cascade)."""
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        ids = list(session.scalars(select(Account.id).where(Account.name.like("synthetic-sync-%"))))
        if ids:
            session.execute(delete(UsageRecord).where(UsageRecord.account_id.in_(ids)))
            session.execute(delete(Account).where(Account.id.in_(ids)))
    engine.dispose()


def measure_upsert(url: str, rows: int) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        before = conn.scalar(select(func.count()).select_from(UsageRecord))
    print(f"usage_records holds {before:,} rows")
    first = dt.date.today() - dt.timedelta(days=DAYS + 1)
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection)
    try:
        account_id = new_account(session, "synthetic-sync-upsert")
        for label, salt in (("insert (new keys)", 0), ("re-sync (every key conflicts)", 1)):
            started = time.perf_counter()
            upsert_rows(
                session,
                account_id,
                synthetic_rows(rows, first, salt),
                stamp=utcnow(),
                days=(first, first + dt.timedelta(days=DAYS)),
            )
            session.flush()
            seconds = time.perf_counter() - started
            print(
                f"upsert_rows, {label}: {rows:,} rows in {seconds:.1f} s "
                f"= {rows / seconds:,.0f} rows/s",
                flush=True,
            )
    finally:
        session.close()
        transaction.rollback()
        connection.close()
        engine.dispose()


# --- a fake OpenAI usage API that streams one day per page -------------------------------------


class FakeOpenAI(BaseHTTPRequestHandler):
    rows = 1_000_000

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path.endswith("/organization/projects"):
            return self._send({"object": "list", "data": [], "has_more": False})
        if not parts.path.endswith("/organization/usage/completions"):
            return self._send({"object": "page", "data": [], "has_more": False})
        start = int(query["start_time"][0])
        end = int(query["end_time"][0])
        at = int(query.get("page", [str(start)])[0])
        day = dt.datetime.fromtimestamp(at, dt.UTC).date()
        per_day = combos_per_day(self.rows)
        results = [
            {
                "object": "organization.usage.completions.result",
                "input_tokens": 1500 + c,
                "input_cached_tokens": c,
                "output_tokens": 300,
                "num_model_requests": 3,
                "project_id": f"proj_sync_{c // 40:03d}",
                "api_key_id": f"key_sync_{c // 10:04d}",
                "user_id": None,
                "model": MODELS[c % len(MODELS)],
                "batch": False,
                "service_tier": "default",
            }
            for c in range(per_day)
        ]
        following = at + 86_400
        self._send(
            {
                "object": "page",
                "data": [
                    {
                        "object": "bucket",
                        "start_time": at,
                        "end_time": following,
                        "results": results,
                    }
                ],
                "has_more": following < end,
                "next_page": str(following) if following < end else None,
            }
        )
        del day


def child_backfill(url: str, base_url: str, first: str, last: str) -> None:
    """Run in the child process: the worker's sync path for the bench account. The worker
    module is imported first so that the process holds what the real worker holds."""
    import worker  # noqa: F401  (its imports: pandas, numpy, the price catalog, ...)
    from tracker.core.config import load_settings
    from tracker.core.runtime import build_runtime
    from tracker.ingest.sync import run_sync

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    os.environ.update(
        DATABASE_URL=url,
        ENCRYPTION_KEY=ENCRYPTION_KEY,
        TRACKER_ENV="development",
        SECRET_KEY="synthetic-bench-secret-key-long-enough-0123456789",
    )
    runtime = build_runtime(load_settings())
    with runtime.session_factory.begin() as session:
        new_account(session, "synthetic-sync-backfill", base_url)
    started = time.perf_counter()
    summary = run_sync(
        runtime,
        account_name="synthetic-sync-backfill",
        start=dt.date.fromisoformat(first),
        end=dt.date.fromisoformat(last),
        trigger="bench",
    )
    seconds = time.perf_counter() - started
    result = summary.results[0]
    print(
        json.dumps(
            {
                "status": result.status,
                "rows": result.rows_written,
                "baseline_kb": baseline,
                "seconds": seconds,
                "message": result.message,
            }
        )
    )


def measure_backfill(url: str, rows: int) -> None:
    FakeOpenAI.rows = rows
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    first = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS + 2)
    last = first + dt.timedelta(days=DAYS - 1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", url, base_url, first.isoformat(), last.isoformat()],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    server.shutdown()
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit("the back-fill child failed")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"run_sync back-fill: {out['status']}, {out['rows']:,} rows in {out['seconds']:.1f} s "
        f"= {out['rows'] / out['seconds']:,.0f} rows/s end to end (fetch, upsert, prune, "
        f"price, commit)"
    )
    print(
        f"worker peak RSS during the back-fill: {peak_kb / 1024:.0f} MB (target < 300 MB); "
        f"after importing the worker, before syncing: {out['baseline_kb'] / 1024:.0f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_backfill(*sys.argv[2:6])
        return 0
    from bench.generate import DEFAULT_ADMIN_URL, database_url

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="tracker_bench_5000000")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--skip-upsert", action="store_true")
    parser.add_argument("--skip-backfill", action="store_true")
    args = parser.parse_args(argv)
    url = database_url(args.admin_url, args.database)
    remove_accounts(url)
    try:
        if not args.skip_upsert:
            measure_upsert(url, args.rows)
        if not args.skip_backfill:
            measure_backfill(url, args.rows)
    finally:
        remove_accounts(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
