"""How far behind a streaming standby runs, and what asking it costs.

    python bench/replica.py --primary-url URL --standby-url URL [--runs 50]

Against an existing primary and its standby (any database on them: the script makes a
table of its own, `bench_replica_marks`, and drops it at the end). Prints:
- what the app's check of the standby (`tracker.core.replica.check_replica`) takes;
- the delay from a commit on the primary to the standby having applied it
  (`pg_last_wal_replay_lsn()` polled every millisecond), for a one-row commit (a budget
  set) and for a 5,000-row one (a sync's batch, rows about the size of a usage row).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.core.db import make_engine  # noqa: E402
from tracker.core.replica import check_replica  # noqa: E402

BATCH_ROWS = 5_000
PAYLOAD = "x" * 400  # with the other columns, about the size of a usage row


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _summary(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    print(
        f"{name:<48} median {_ms(statistics.median(ordered)):>10}   p95 {_ms(p95):>10}   "
        f"max {_ms(ordered[-1]):>10}   ({len(ordered)} runs)"
    )


def _applied_delay(primary: Engine, standby: Engine, statement: str) -> float:
    """Seconds from the commit of `statement` on the primary until the standby applied it."""
    with primary.begin() as connection:
        connection.execute(text(statement))
    committed = time.perf_counter()
    with primary.connect() as connection:
        position = connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    with standby.connect() as connection:
        while not connection.execute(
            text("SELECT pg_last_wal_replay_lsn() >= CAST(:p AS pg_lsn)"), {"p": position}
        ).scalar_one():
            time.sleep(0.001)
    return time.perf_counter() - committed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primary-url", required=True)
    parser.add_argument("--standby-url", required=True)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    primary, standby = make_engine(args.primary_url), make_engine(args.standby_url)
    status = check_replica(standby)
    if not status.usable:
        raise SystemExit(f"the standby cannot be used: {status.problem}")
    with primary.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE bench_replica_marks (id bigserial PRIMARY KEY, n int, "
                "at timestamptz DEFAULT now(), payload text)"
            )
        )
    try:
        checks = []
        for _ in range(args.runs * 4):
            started = time.perf_counter()
            check_replica(standby)
            checks.append(time.perf_counter() - started)
        _summary("check_replica (pooled connection)", checks)
        one_row = [
            _applied_delay(primary, standby, "INSERT INTO bench_replica_marks (n) VALUES (1)")
            for _ in range(args.runs)
        ]
        _summary("commit -> applied, 1 row", one_row)
        batch = [
            _applied_delay(
                primary,
                standby,
                f"INSERT INTO bench_replica_marks (n, payload) SELECT g, '{PAYLOAD}' "
                f"FROM generate_series(1, {BATCH_ROWS}) g",
            )
            for _ in range(max(args.runs // 5, 3))
        ]
        _summary(f"commit -> applied, {BATCH_ROWS:,} rows", batch)
    finally:
        with primary.begin() as connection:
            connection.execute(text("DROP TABLE bench_replica_marks"))
        primary.dispose()
        standby.dispose()


if __name__ == "__main__":
    main()
