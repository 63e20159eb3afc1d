"""Benchmark the price book: price N daily usage rows (default 1,000,000) and print rows/s.

Usage:
    .venv/bin/python bench/pricing.py                      # a throwaway SQLite file
    .venv/bin/python bench/pricing.py --url postgresql+psycopg2://USER@HOST/EMPTY_DB
    .venv/bin/python bench/pricing.py --rows 200000

The database given with --url must be empty or migrated; the script migrates it and adds
accounts named `bench-*` with their usage (it never deletes anything else). The target is
1,000,000 rows priced in under 60 s on one core. Figures printed:

1. in memory: the book's per-row path alone (cached lookups + Decimal arithmetic);
2. estimate_range, first pass: every row gets an estimate (read, price, write);
3. estimate_range, second pass: nothing changes (read and price only);
4. reprice --dry-run over the whole range.

Wall time includes the database's own work (on SQLite, in this process; on PostgreSQL, in
the server); CPU time is this process only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from tracker.core import migrate  # noqa: E402
from tracker.core.db import make_engine  # noqa: E402
from tracker.costs.estimate import estimate_range  # noqa: E402
from tracker.costs.pricebook import PriceBook  # noqa: E402
from tracker.costs.reprice import reprice  # noqa: E402
from tracker.models import Account, Service, UsageRecord  # noqa: E402

START = dt.date(2025, 12, 1)
DAYS = 365
# (provider, model, tier): a realistic mix, with long-context tiers, batch, time-of-day
# prices, per-request prices and one model the book cannot price.
MIX = [
    ("openai", "gpt-4o-mini-2024-07-18", ""),
    ("openai", "gpt-4o-2024-08-06", ""),
    ("openai", "gpt-4.1", "batch"),
    ("openai", "gpt-5", "priority"),
    ("openai", "text-embedding-3-small", ""),
    ("openai", "ft:gpt-4o-mini:acme::bench", ""),
    ("anthropic", "claude-sonnet-4-5-20250929", ""),
    ("anthropic", "claude-haiku-4-5", "batch"),
    ("anthropic", "claude-opus-4-1", ""),
    ("groq", "llama-3.3-70b-versatile", ""),
    ("deepseek", "deepseek-chat", ""),
    ("perplexity", "sonar", ""),
    ("openrouter", "openai/gpt-4o", ""),
]


def seed(engine: object, rows: int) -> int:
    """Insert `rows` usage rows across the mix; return how many were inserted."""
    rng = random.Random(42)
    with Session(engine) as session, session.begin():  # type: ignore[call-overload]
        accounts: dict[str, int] = {}
        for provider in sorted({p for p, _, _ in MIX}):
            service = session.scalar(select(Service).where(Service.name == provider))
            name = f"bench-{provider}-{time.time_ns()}"
            account = Account(
                service_id=service.id,
                name=name,
                credential_encrypted="v1.bench.none",
                credential_last4="none",
            )
            session.add(account)
            session.flush()
            accounts[provider] = account.id
    per_combo = rows // (DAYS * len(MIX)) + 1
    table = UsageRecord.__table__
    batch: list[dict[str, object]] = []
    inserted = 0
    with engine.begin() as conn:  # type: ignore[attr-defined]
        for project in range(per_combo):
            for offset in range(DAYS):
                day = START + dt.timedelta(days=offset)
                for provider, model, tier in MIX:
                    if inserted >= rows:
                        break
                    embed = model.startswith("text-embedding")
                    batch.append(
                        {
                            "account_id": accounts[provider],
                            "day": day,
                            "model": model,
                            "project_id": f"proj-{project}",
                            "api_key_id": "",
                            "usage_type": "embeddings" if embed else "completions",
                            "service_tier": tier,
                            "input_tokens": rng.randrange(0, 5_000_000),
                            "cached_input_tokens": 0 if embed else rng.randrange(0, 2_000_000),
                            "cache_write_tokens": 0 if embed else rng.randrange(0, 300_000),
                            "cache_write_1h_tokens": 0 if embed else rng.randrange(0, 100_000),
                            "output_tokens": 0 if embed else rng.randrange(0, 1_000_000),
                            "requests": rng.randrange(1, 5_000),
                        }
                    )
                    inserted += 1
                    if len(batch) >= 20_000:
                        conn.execute(insert(table), batch)
                        batch = []
        if batch:
            conn.execute(insert(table), batch)
    return inserted


def bench_memory(rows: int) -> float:
    """Price `rows` synthetic rows with the book's per-row path, no database."""
    rng = random.Random(7)
    book = PriceBook()
    samples = [
        (rng.randrange(0, 5_000_000), rng.randrange(0, 2_000_000), rng.randrange(0, 1_000_000))
        for _ in range(1000)
    ]
    started = time.perf_counter()
    for i in range(rows):
        provider, model, tier = MIX[i % len(MIX)]
        inp, cached, out = samples[i % 1000]
        book.outcome(
            provider,
            model,
            START + dt.timedelta(days=i % DAYS),
            "completions",
            tier,
            inp,
            cached,
            0,
            0,
            out,
            10,
            None,
            None,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", help="database URL (default: a throwaway SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        print(f"backend: {engine.dialect.name}; rows: {args.rows:,}")

        seconds = bench_memory(args.rows)
        print(f"in memory (book only): {seconds:6.1f} s  {args.rows / seconds:>10,.0f} rows/s")

        started = time.perf_counter()
        inserted = seed(engine, args.rows)
        print(f"seeded {inserted:,} rows in {time.perf_counter() - started:.1f} s (not timed)")
        end = START + dt.timedelta(days=DAYS - 1)

        for label in ("estimate_range, first pass", "estimate_range, no change"):
            cpu = time.process_time()
            wall = time.perf_counter()
            with Session(engine) as session, session.begin():
                summary = estimate_range(session=session, start=START, end=end)
            wall = time.perf_counter() - wall  # includes the commit
            cpu = time.process_time() - cpu
            print(
                f"{label}: {wall:6.1f} s wall ({cpu:.1f} s CPU in this process)  "
                f"{summary.rows / wall:>10,.0f} rows/s  ({summary.rows:,} rows, "
                f"{summary.updated:,} written; {dict(summary.by_status)})"
            )
        with Session(engine) as session:
            started = time.perf_counter()
            report = reprice(session=session, start=START, end=end, dry_run=True, actor="bench")
            seconds = time.perf_counter() - started
            print(
                f"reprice --dry-run: {seconds:6.1f} s  {report.rows / seconds:>10,.0f} rows/s "
                f"({len(report.days)} days)"
            )
            total = session.scalar(select(func.sum(UsageRecord.estimated_cost)))
            print(f"estimated total: ${total:,.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()
