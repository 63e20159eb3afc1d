"""Time the dashboard's queries and the Overview render at several table sizes, against naive.

Usage:
    .venv/bin/python bench/dashboard.py --rows 10000 5000000 [--runs 20] [--naive-runs 3]
        [--admin-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

For each N the database `tracker_bench_<N>` is used; when it is missing or does not hold
about N usage rows, bench/generate.py (re)creates it (a few minutes at 5,000,000 rows). The
databases are left in place for the next run; drop them with `DROP DATABASE ... WITH (FORCE)`.

Figures (medians, milliseconds):

- "ours": each `tracker.queries` function (and the other functions the Overview and Usage
  explorer pages call) for the last 30 days and for a whole year, `--runs` times, each in a
  new session like the app's cached loaders; month-to-date where the page fixes the window;
- "naive": the approach of dashboards that stall at a million rows: read the window's rows
  (only the needed columns) into pandas and group there. The read is the same for every
  query of a window, so it is timed once per run and added to each query's own pandas
  grouping; `--naive-runs` times (it takes seconds at 5M rows; 0 leaves it out, as at 20M
  rows, where a year of the detail read into pandas does not fit in memory);
- the Overview page rendered through streamlit's AppTest as a signed-in viewer, Streamlit's
  caches cleared before every run (so queries are measured, not the cache); the smallest and
  the largest database take turns, run by run.

Then the ratios: ours at the largest N vs ours at the smallest N, naive vs ours at the
largest N. Targets: every query under 200 ms at 5M rows, at least 20x faster than naive,
and the Overview render at 5M within 1.5x of its render at 10k.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generate import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    admin_connection,
    database_url,
    store_projections,
)
from tracker.attribution import chargeback  # noqa: E402
from tracker.core import migrate, units  # noqa: E402
from tracker.core.db import make_engine  # noqa: E402
from tracker.costs import reconcile  # noqa: E402
from tracker.models import UsageRecord  # noqa: E402
from tracker.planning import projections  # noqa: E402
from tracker.reporting import overview, sources, usage  # noqa: E402
from tracker.ui.auth import TOKEN_KEY  # noqa: E402

Query = Callable[[Session, dt.date, dt.date], Any]
NaiveGroup = Callable[[pd.DataFrame, dt.date, dt.date], Any]

NAIVE_SQL = """
SELECT u.day, u.account_id, a.name AS account, s.name AS provider,
       s.display_name, u.model, u.project_id, u.project_name, u.api_key_id, u.api_key_name,
       u.user_id, u.usage_type, u.service_tier, u.input_tokens, u.cached_input_tokens,
       u.cache_write_tokens, u.cache_write_1h_tokens, u.output_tokens, u.requests,
       u.billed_cost, u.estimated_cost, u.cost_source, u.pricing_status
FROM usage_records u JOIN accounts a ON a.id = u.account_id JOIN services s ON s.id = a.service_id
WHERE u.day BETWEEN :start AND :end
"""
TOKENS = list(usage.TOKEN_KINDS)


def naive_read(engine: Any, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Read the window's rows into pandas and derive each row's spend there."""
    with engine.connect() as conn:
        frame = pd.read_sql_query(text(NAIVE_SQL), conn, params={"start": start, "end": end})
    billed = pd.to_numeric(frame["billed_cost"], errors="coerce").fillna(0)
    estimated = pd.to_numeric(frame["estimated_cost"], errors="coerce").fillna(0)
    source = frame["cost_source"]
    frame["cost"] = billed.where(source == "billed", 0) + estimated.where(source == "estimated", 0)
    frame["tokens"] = frame[TOKENS].sum(axis=1)
    return frame


def _naive_filter_options(f: pd.DataFrame, start: dt.date, end: dt.date) -> Any:
    project = f["project_name"].where(f["project_name"].fillna("") != "", f["project_id"])
    key = f["api_key_name"].where(f["api_key_name"].fillna("") != "", f["api_key_id"])
    return [
        sorted(set(c) - {"", None}) for c in (f["provider"], f["account"], f["model"], project, key)
    ]


NAIVE: dict[str, NaiveGroup] = {
    "cost_totals": lambda f, s, e: (f["cost"].sum(), (f["cost_source"] == "none").sum()),
    "account_cards": lambda f, s, e: (
        f[f["day"] >= units.month_start(e)].groupby("account_id")[["cost", "tokens"]].sum()
    ),
    "daily_cost_by_provider": lambda f, s, e: f.groupby(["day", "display_name"])["cost"].sum(),
    "top_models": lambda f, s, e: (
        f.groupby(["model", "display_name"])[["cost", "tokens", "requests"]]
        .sum()
        .nlargest(10, "cost")
    ),
    "unpriced_models": lambda f, s, e: (
        f[f["pricing_status"] == "unpriced"].groupby(["provider", "model"])[TOKENS].sum()
    ),
    "filter_options": _naive_filter_options,
    "usage_table(day, provider)": lambda f, s, e: f.groupby(["day", "provider"])[
        [*TOKENS, "requests", "cost"]
    ].sum(),
    "usage_table(project)": lambda f, s, e: f.groupby(["project_id"])[[*TOKENS, "cost"]].sum(),
    "usage_table(api_key)": lambda f, s, e: f.groupby(["api_key_id"])[[*TOKENS, "cost"]].sum(),
    "usage_table(user)": lambda f, s, e: f.groupby(["user_id"])[[*TOKENS, "cost"]].sum(),
    "tokens_by_kind": lambda f, s, e: f[TOKENS].sum(),
    # No naive twin for the projection: it reads its own months of history, not the window.
}


def _flt(start: dt.date, end: dt.date) -> sources.UsageFilter:
    return sources.UsageFilter(start=start, end=end)


OURS: dict[str, Query] = {
    "cost_totals": lambda s, a, b: overview.cost_totals(session=s, start=a, end=b),
    "account_cards": lambda s, a, b: overview.account_cards(
        session=s, today=b, warning_pct=Decimal(80), critical_pct=Decimal(100)
    ),
    "daily_cost_by_provider": lambda s, a, b: overview.daily_cost_by_provider(
        session=s, end=b, days=(b - a).days + 1
    ),
    "top_models": lambda s, a, b: overview.top_models(session=s, start=a, end=b),
    "unpriced_models": lambda s, a, b: reconcile.unpriced_models(session=s, start=a, end=b),
    "filter_options": lambda s, a, b: usage.filter_options(session=s, start=a, end=b),
    "usage_table(day, provider)": lambda s, a, b: usage.usage_table(
        session=s, flt=_flt(a, b), group_by=["day", "provider"]
    ),
    "usage_table(project)": lambda s, a, b: usage.usage_table(
        session=s, flt=_flt(a, b), group_by=["project"]
    ),
    "usage_table(api_key)": lambda s, a, b: usage.usage_table(
        session=s, flt=_flt(a, b), group_by=["api_key"]
    ),
    "usage_table(user)": lambda s, a, b: usage.usage_table(
        session=s, flt=_flt(a, b), group_by=["user"]
    ),
    "tokens_by_kind": lambda s, a, b: usage.tokens_by_kind(session=s, flt=_flt(a, b)),
    # Who spent it: the Chargeback page's month by team (generate.py's twelve teams, project
    # and user mappings, and a proportional rule for the unassigned rest).
    "chargeback (last whole month by team)": lambda s, a, b: chargeback.chargeback(
        session=s, month=units.month_start(b) - dt.timedelta(days=1)
    ),
    # What the Budgets page and team budget alerts ask: every team's month to date.
    "team_spend (month to date by team)": lambda s, a, b: chargeback.team_spend(
        session=s, start=units.month_start(b), end=b
    ),
    # The Overview falls back to this when the worker has not stored this month's projection.
    "org_projection (computed)": lambda s, a, b: projections.project_scope(
        session=s, scope="org", today=b
    ),
}
# Queries whose window the page fixes (month to date, or the projection's own history).
FIXED_WINDOW = {
    "account_cards",
    "org_projection (computed)",
    "chargeback (last whole month by team)",
    "team_spend (month to date by team)",
}


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def ensure_database(admin_url: str, rows: int) -> str:
    """The URL of `tracker_bench_<rows>`, generated first when missing or of another size."""
    name = f"tracker_bench_{rows}"
    conn = admin_connection(admin_url)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        exists = cur.fetchone() is not None
    conn.close()
    url = database_url(admin_url, name)
    if exists:
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                have = session.scalar(select(func.count()).select_from(UsageRecord)) or 0
        except Exception:
            have = -1
        engine.dispose()
        if abs(have - rows) <= max(rows * 0.02, 100):
            print(f"reusing {name} ({have:,} usage rows), migrated to head", flush=True)
            engine = make_engine(url)
            migrate.upgrade(engine)  # a database made by an older checkout
            engine.dispose()
            return url
    print(f"generating {name} ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "generate.py"),
            "--rows",
            str(rows),
            "--database",
            name,
            "--admin-url",
            admin_url,
        ],
        check=True,
    )
    return url


def session_token(url: str) -> str:
    """A server-side session of the viewer `bench` in that database (made before the timed
    runs; its idle limit is refreshed by each run)."""
    from tracker.identity import sessions
    from tracker.models import User

    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            user = session.scalar(select(User).where(User.username == "bench"))
            if user is None:
                raise SystemExit(f"no bench user in {url}; regenerate it with bench/generate.py")
            policy = sessions.Policy(dt.timedelta(hours=2), dt.timedelta(hours=12))
            return sessions.start(
                session=session, user=user, method="password", policy=policy
            ).token
    finally:
        engine.dispose()


def render_overview_ms(urls: list[str], runs: int) -> list[float]:
    """Median wall time of the Overview rendered by AppTest on each database, caches cleared
    before each run. The databases take turns run by run, so a busy moment of the machine
    weighs on every size alike instead of on whichever was being measured."""
    import streamlit as st
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    streamlit.logger.set_log_level("error")  # bare-mode warnings on every run, not figures

    os.environ.update(
        ENCRYPTION_KEY=base64.urlsafe_b64encode(b"b" * 32).decode(),
        SECRET_KEY="synthetic-bench-secret-key-long-enough-0123456789",
        DATA_DIR=tempfile.mkdtemp(prefix="tracker-bench-"),
        TRACKER_ENV="development",
    )

    def once(url: str) -> float:
        os.environ["DATABASE_URL"] = url
        st.cache_data.clear()
        st.cache_resource.clear()
        started = time.perf_counter()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        # Signed in as the viewer `bench` through a real server-side session, as a sign-in
        # leaves the tab; the session itself is made before the timed runs.
        at.session_state[TOKEN_KEY] = tokens[url]
        at.run()
        elapsed = (time.perf_counter() - started) * 1000
        if at.exception or not at.metric:
            raise SystemExit(f"the Overview did not render: {at.exception}")
        return elapsed

    tokens = {url: session_token(url) for url in urls}
    for url in urls:
        once(url)  # imports and first-use costs are not what is measured
    times: list[list[float]] = [[] for _ in urls]
    for _ in range(runs):
        for i, url in enumerate(urls):
            times[i].append(once(url))
    return [statistics.median(t) for t in times]


def bench_size(admin_url: str, rows: int, runs: int, naive_runs: int) -> dict[str, Any]:
    url = ensure_database(admin_url, rows)
    engine = make_engine(url)
    today = units.today_utc()
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM usage_records")).scalar_one()
    store_projections(engine, today)
    windows = {
        "30 days": (today - dt.timedelta(days=29), today),
        "1 year": (today - dt.timedelta(days=364), today),
    }
    results: dict[str, Any] = {"rows": count, "url": url, "ours": {}, "naive": {}}
    for label, (start, end) in windows.items():
        for name, query in OURS.items():
            if name in FIXED_WINDOW and label != "30 days":
                continue
            key = f"{name} [{'fixed' if name in FIXED_WINDOW else label}]"

            def call(q: Query = query, a: dt.date = start, b: dt.date = end) -> Any:
                with Session(engine) as session:
                    return q(session, a, b)

            call()  # warm the plan cache and the buffers like a page that was opened before
            results["ours"][key] = median_ms(call, runs)
            print(f"  ours  {key:<45} {results['ours'][key]:9.1f} ms", flush=True)
        read_times, group_times = [], {name: [] for name in NAIVE}
        for _ in range(naive_runs):
            started = time.perf_counter()
            frame = naive_read(engine, start, end)
            read_times.append((time.perf_counter() - started) * 1000)
            for name, group in NAIVE.items():
                started = time.perf_counter()
                group(frame, start, end)
                group_times[name].append((time.perf_counter() - started) * 1000)
            del frame
        if not naive_runs:
            continue
        read = statistics.median(read_times)
        for name in NAIVE:
            if name in FIXED_WINDOW and label != "30 days":
                continue
            key = f"{name} [{'fixed' if name in FIXED_WINDOW else label}]"
            results["naive"][key] = read + statistics.median(group_times[name])
        print(f"  naive read of the {label} window: {read:,.0f} ms", flush=True)
    engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 5_000_000])
    parser.add_argument("--runs", type=int, default=20)
    # 0: no naive figures (at 20M rows a year of the detail does not fit in memory as pandas).
    parser.add_argument("--naive-runs", type=int, default=3)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    sizes = sorted(args.rows)
    by_size = {}
    for rows in sizes:
        print(f"N = {rows:,}", flush=True)
        by_size[rows] = bench_size(args.admin_url, rows, args.runs, args.naive_runs)
    small, large = by_size[sizes[0]], by_size[sizes[-1]]
    print("Overview render (AppTest), the sizes taking turns", flush=True)
    small["render"], large["render"] = render_overview_ms([small["url"], large["url"]], args.runs)
    head = (
        f"{'query [window]':<45} {'ours@small':>11} {'ours@large':>11} {'naive@large':>12} "
        f"{'large/small':>11} {'naive/ours':>10}"
    )
    print()
    print(
        f"medians in ms; small = {small['rows']:,} rows, large = {large['rows']:,} rows; "
        f"ours {args.runs} runs, naive {args.naive_runs} runs"
    )
    print(head)
    print("-" * len(head))
    worst = 0.0
    slowest = min_speedup = None
    for key, ours_large in large["ours"].items():
        ours_small = small["ours"][key]
        naive = large["naive"].get(key)
        speedup = naive / ours_large if naive else None
        worst = max(worst, ours_large)
        slowest = key if ours_large == worst else slowest
        if speedup is not None and (min_speedup is None or speedup < min_speedup[1]):
            min_speedup = (key, speedup)
        print(
            f"{key:<45} {ours_small:11.1f} {ours_large:11.1f} "
            f"{naive if naive else float('nan'):12.0f} {ours_large / ours_small:11.2f} "
            f"{speedup if speedup else float('nan'):10.1f}"
        )
    ratio = large["render"] / small["render"]
    print(
        f"{'Overview render (AppTest) [month to date]':<45} {small['render']:11.0f} "
        f"{large['render']:11.0f} {'':>12} {ratio:11.2f}"
    )
    print()
    print(
        f"slowest query at {large['rows']:,} rows: {slowest} {worst:.1f} ms "
        f"(target < 200 ms): {'OK' if worst < 200 else 'MISSED'}"
    )
    if min_speedup:
        print(
            f"smallest naive/ours ratio: {min_speedup[0]} {min_speedup[1]:.1f}x "
            f"(target >= 20x): {'OK' if min_speedup[1] >= 20 else 'MISSED'}"
        )
    print(
        f"Overview render large/small: {ratio:.2f}x (target <= 1.5x): "
        f"{'OK' if ratio <= 1.5 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
