"""Write a synthetic usage history into a PostgreSQL database made for the benchmark.

Usage:
    .venv/bin/python bench/generate.py --rows 5000000 [--database tracker_bench]
        [--admin-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres] [--seed 7]

The database named by --database is DROPPED and created again, migrated with the project's
migrations, then filled: synthetic accounts (named `synthetic-*`), a viewer user `bench`
(for the AppTest render in bench/dashboard.py) and about N `usage_records` rows written with
COPY (triggers off), then migrated to head, which builds the rollup tables from the detail as
an upgraded install's migrations do. Everything is clearly synthetic and lives only in that
database; never point it at a real install's database.

The history: two years of UTC days ending yesterday, seven providers, ten accounts, hundreds
of projects and API keys, dozens of models, a weekly pattern (weekends quieter), slow growth,
new series starting over time. Costs follow `tracker.spend`:

- OpenAI- and Anthropic-like accounts bill per line item: `cost:*` rows carry `billed_cost`,
  their per-model token rows are `covered` (an estimate is stored but counts $0);
- OpenRouter and GitHub Copilot rows are `billed` themselves;
- DeepSeek rows and Groq CSV imports are `estimated`;
- a few models no price book knows are `none` / `unpriced`;
- OpenAI token rows name one of 400 synthetic users (a few per key);
- twelve teams own the OpenAI and Anthropic projects and one user in ten; the unassigned
  rest is shared in proportion to the teams' spend.

Prints the rows written, the time taken and rows/s (target: 5,000,000 rows in under 5 min).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import io
import queue
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.core import migrate  # noqa: E402
from tracker.core.db import make_engine  # noqa: E402
from tracker.models import USAGE_NATURAL_KEY, CostProjection  # noqa: E402
from tracker.planning import projections  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DAYS = 730
# The last revision without rollup tables: the bulk load runs with triggers off, so the rollups
# are built afterwards by their own migrations (tracker/migrations/versions/0003 onwards).
BEFORE_ROLLUPS = "0002"
SYNTHETIC_CREDENTIAL = "synthetic-not-a-credential"
# bcrypt hash of "synthetic-bench-password" (the bench user never signs in through the form).
BENCH_PASSWORD_HASH = "$2b$04$NLkKdk/dH4J6MKXWJ.nJlODuCsi9chQAie5qaWUkcdFoqreJ7ybwu"

# provider -> models (USD per million input / output tokens, synthetic but plausible)
MODELS: dict[str, dict[str, tuple[float, float]]] = {
    "openai": {
        "gpt-4o": (2.5, 10),
        "gpt-4o-mini": (0.15, 0.6),
        "gpt-4.1": (2, 8),
        "gpt-4.1-mini": (0.4, 1.6),
        "gpt-4.1-nano": (0.1, 0.4),
        "o3": (2, 8),
        "o3-mini": (1.1, 4.4),
        "o4-mini": (1.1, 4.4),
        "gpt-5": (1.25, 10),
        "gpt-5-mini": (0.25, 2),
        "text-embedding-3-small": (0.02, 0),
        "text-embedding-3-large": (0.13, 0),
    },
    "anthropic": {
        "claude-sonnet-4-5": (3, 15),
        "claude-opus-4-1": (15, 75),
        "claude-haiku-4-5": (1, 5),
        "claude-3-5-haiku": (0.8, 4),
        "claude-sonnet-4": (3, 15),
    },
    "openrouter": {
        "meta-llama/llama-3.3-70b-instruct": (0.13, 0.4),
        "mistralai/mistral-large": (2, 6),
        "google/gemini-2.5-pro": (1.25, 10),
        "google/gemini-2.5-flash": (0.3, 2.5),
        "qwen/qwen3-235b-a22b": (0.2, 0.6),
        "x-ai/grok-4": (3, 15),
        "synthetic/in-house-ft-7b": (0, 0),  # unknown to any price book: unpriced
    },
    "deepseek": {"deepseek-chat": (0.27, 1.1), "deepseek-reasoner": (0.55, 2.19)},
    "groq": {
        "llama-3.3-70b-versatile": (0.59, 0.79),
        "llama-3.1-8b-instant": (0.05, 0.08),
        "openai/gpt-oss-120b": (0.15, 0.75),
        "synthetic/groq-custom": (0, 0),  # unpriced
    },
    "github_copilot": {"": (0, 0), "claude-sonnet-4": (0, 0), "gpt-5": (0, 0)},
}
UNPRICED = {"synthetic/in-house-ft-7b", "synthetic/groq-custom"}
# (account name, provider, weight of its share of the rows, projects, keys per project)
ACCOUNTS = [
    ("synthetic-openai-prod", "openai", 30, 120, 3),
    ("synthetic-openai-research", "openai", 12, 60, 2),
    ("synthetic-openai-sandbox", "openai", 4, 20, 2),
    ("synthetic-anthropic-prod", "anthropic", 20, 60, 3),
    ("synthetic-anthropic-labs", "anthropic", 8, 25, 2),
    ("synthetic-openrouter", "openrouter", 10, 1, 400),
    ("synthetic-deepseek", "deepseek", 4, 1, 600),
    ("synthetic-groq", "groq", 6, 1, 800),
    ("synthetic-copilot-eng", "github_copilot", 0.05, 1, 1),
    ("synthetic-copilot-data", "github_copilot", 0.05, 1, 1),
]
COST_LINES = {
    "openai": ["completions", "embeddings", "web search", "file search", "code interpreter"],
    "anthropic": ["tokens", "web_search", "code_execution"],
}
COLUMNS = [
    *[c for c in USAGE_NATURAL_KEY if c != "user_id"],  # loaded at a revision without users
    "project_name",
    "api_key_name",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "requests",
    "other_units",
    "billed_cost",
    "estimated_cost",
    "currency",
    "cost_source",
    "pricing_status",
    "synced_at",
]
NOT_NULL_TEXT = ["model", "project_id", "api_key_id", "usage_type", "service_tier"]


@dataclass
class Series:
    """One natural key without its day: a row appears on the days this series is active."""

    account_id: int
    provider: str
    model: str
    project_id: str
    project_name: str | None
    api_key_id: str
    api_key_name: str | None
    usage_type: str
    service_tier: str
    kind: str  # tokens | cost | seats | requests
    cost_source: str  # billed | estimated | covered | none
    scale: float
    start_day: int
    p_in: float
    p_out: float


def admin_connection(admin_url: str):  # type: ignore[no-untyped-def]
    url = make_url(admin_url)
    conn = psycopg2.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
    )
    conn.autocommit = True
    return conn


def database_url(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def recreate_database(admin_url: str, database: str) -> str:
    """Drop and create the benchmark database, migrate it; return its URL."""
    if not database.replace("_", "").isalnum() or not database.startswith("tracker_bench"):
        raise SystemExit("the benchmark database name must start with tracker_bench")
    conn = admin_connection(admin_url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{database}"')
    conn.close()
    url = database_url(admin_url, database)
    engine = make_engine(url)
    migrate.upgrade(engine, BEFORE_ROLLUPS)
    engine.dispose()
    return url


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, migrated database for one benchmark run; dropped afterwards whatever happens."""
    name = f"tracker_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    conn = admin_connection(admin_url)
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = database_url(admin_url, name)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def finish_migrations(url: str) -> None:
    """Migrate the filled database to head: the rollup migrations build their tables from the
    detail, as they do on an upgraded install (the bulk load ran with triggers off)."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


def store_projections(engine: Engine, today: dt.date) -> None:
    """Store this month's projections as the worker does after a sync (the Overview reads
    them), unless they are there already."""
    with Session(engine) as session, session.begin():
        stored = session.scalar(
            select(func.count())
            .select_from(CostProjection)
            .where(CostProjection.month == today.replace(day=1))
        )
        if not stored:
            started = time.perf_counter()
            projections.write_projections(session=session, today=today)
            print(f"  stored projections in {time.perf_counter() - started:.1f} s")


# OpenAI reports who used each key: a synthetic user per (key, model), a few per key, out of
# USERS. Loaded at a revision without users, they are set afterwards with triggers off, and
# the rollups that hold users are built again by migration 0016's own statements.
USERS = 400
USERS_MIGRATION = ROOT / "tracker" / "migrations" / "versions" / "0016_usage_users.py"


def give_users(conn) -> int:  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_users_0016", USERS_MIGRATION)
    assert spec is not None and spec.loader is not None
    users = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(users)
    user = f"abs(hashtext(u.api_key_id || u.model)) % {USERS}"
    with conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute(
            f"UPDATE usage_records AS u SET user_id = 'user_' || ({user}), "
            f"user_name = 'synthetic user ' || ({user}) FROM accounts AS a "
            "JOIN services AS s ON s.id = a.service_id "
            "WHERE a.id = u.account_id AND s.name = 'openai' AND u.api_key_id <> ''"
        )
        changed = cur.rowcount
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("DELETE FROM usage_attribution_monthly")
        cur.execute("DELETE FROM usage_labels WHERE kind = 'user'")
        cur.execute("DELETE FROM usage_labels_monthly WHERE kind = 'user'")
        for statement in users.fill_statements(True):
            cur.execute(statement)
    conn.commit()
    return int(changed)


TEAMS = 12


def add_teams(conn, first_day: dt.date) -> int:  # type: ignore[no-untyped-def]
    """Teams as a finance team would set them up: every OpenAI and Anthropic project mapped
    to one of TEAMS teams, one user in ten to a team of their own choosing (a user mapping
    beats the project's), and the unassigned rest shared in proportion to the teams' spend.
    Returns the number of mappings."""
    with conn.cursor() as cur:
        for t in range(TEAMS):
            cur.execute(
                "INSERT INTO teams (name, cost_center, gl_account, created_at) "
                "VALUES (%s, %s, '6100', now())",
                (f"Synthetic team {t}", f"CC-{100 + t}"),
            )
        cur.execute("SELECT id FROM teams ORDER BY id")
        team_ids = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT DISTINCT ident FROM usage_labels_monthly WHERE kind = 'project' "
            "AND ident <> '' ORDER BY ident"
        )
        values = [("project", ident) for (ident,) in cur.fetchall()]
        values += [("user", f"user_{n}") for n in range(0, USERS, 10)]
        for n, (kind, value) in enumerate(values):
            cur.execute(
                "INSERT INTO team_mappings (kind, value, team_id, valid_from, created_by, "
                "created_at) VALUES (%s, %s, %s, %s, 'bench', now())",
                (kind, value, team_ids[n % TEAMS], first_day),
            )
        cur.execute(
            "INSERT INTO shared_cost_rules (team_id, method, targets, valid_from, created_by, "
            "created_at) VALUES (NULL, 'proportional', '[]', %s, 'bench', now())",
            (first_day,),
        )
    conn.commit()
    return len(values)


def make_series(
    rng: np.random.Generator, n_series: int, account_ids: dict[str, int], breadth: float = 1.0
) -> list[Series]:
    """`breadth` widens every account's projects (or keys, for one-project accounts) so that a
    larger history is more series, not longer ones: 1 up to 5,000,000 rows."""
    weights = np.array([a[2] for a in ACCOUNTS], dtype=float)
    per_account = np.maximum(1, np.round(weights / weights.sum() * n_series)).astype(int)
    out: list[Series] = []
    seen: set[tuple[int, str, str, str, str, str]] = set()
    for (name, provider, _w, n_projects, keys_per_project), count in zip(
        ACCOUNTS, per_account, strict=True
    ):
        account_id = account_ids[name]
        models = list(MODELS[provider])
        if n_projects > 1:
            n_projects = round(n_projects * breadth)
        else:
            keys_per_project = round(keys_per_project * breadth)
        tries = 0
        made = 0
        while made < count and tries < count * 20:
            tries += 1
            p = int(rng.integers(n_projects))
            k = int(rng.integers(keys_per_project))
            project_id = f"proj_{name[10:]}_{p:03d}" if n_projects > 1 else ""
            project_name = f"Synthetic project {p}" if project_id else None
            api_key_id = f"key_{name[10:]}_{p:03d}_{k}"
            api_key_name = f"synthetic key {p}.{k}"
            tier = ""
            cost_source = "covered"
            kind = "tokens"
            usage_type = ""
            model = models[int(rng.zipf(1.6) - 1) % len(models)]
            if provider in COST_LINES and rng.random() < 0.15:
                # A billed line item per project (no model, no key), as the cost APIs report.
                kind, cost_source, model, api_key_id, api_key_name = "cost", "billed", "", "", None
                usage_type = "cost:" + str(rng.choice(COST_LINES[provider]))
            elif provider == "openai":
                tier = str(rng.choice(["", "", "", "batch", "flex", "priority"]))
            elif provider == "anthropic":
                usage_type = "messages"
                tier = str(rng.choice(["standard", "standard", "batch"]))
            elif provider == "openrouter":
                kind, cost_source, usage_type = "tokens", "billed", "activity"
            elif provider == "deepseek":
                cost_source = "estimated"
            elif provider == "groq":
                cost_source, usage_type = "estimated", "import"
            elif provider == "github_copilot":
                if model == "":
                    kind, cost_source, usage_type = "seats", "billed", "seats"
                    api_key_id, api_key_name = "", None
                else:
                    kind, cost_source, usage_type = "requests", "billed", "premium_requests"
            if model in UNPRICED:
                cost_source = "billed" if provider == "openrouter" else "none"
            key = (account_id, model, project_id, api_key_id, usage_type, tier)
            if key in seen:
                continue
            seen.add(key)
            p_in, p_out = MODELS[provider].get(model, (0.0, 0.0))
            out.append(
                Series(
                    account_id=account_id,
                    provider=provider,
                    model=model,
                    project_id=project_id,
                    project_name=project_name,
                    api_key_id=api_key_id,
                    api_key_name=api_key_name,
                    usage_type=usage_type,
                    service_tier=tier,
                    kind=kind,
                    cost_source=cost_source,
                    scale=float(rng.lognormal(0, 1.2)),
                    # Most series exist from the start; the rest begin over the two years.
                    start_day=0 if rng.random() < 0.6 else int(rng.integers(DAYS)),
                    p_in=p_in,
                    p_out=p_out,
                )
            )
            made += 1
    return out


def frames(rng: np.random.Generator, series: list[Series], first_day: dt.date, target_rows: int):  # type: ignore[no-untyped-def]
    """Yield DataFrames of rows, a chunk of days at a time, in day order (as a daily sync
    would have written them)."""
    n = len(series)
    s_account = np.array([s.account_id for s in series])
    s_start = np.array([s.start_day for s in series])
    s_scale = np.array([s.scale for s in series])
    s_kind = np.array([s.kind for s in series])
    s_source = np.array([s.cost_source for s in series])
    s_pin = np.array([s.p_in for s in series])
    s_pout = np.array([s.p_out for s in series])
    text = {
        name: np.array([getattr(s, name) for s in series], dtype=object)
        for name in (
            "model",
            "project_id",
            "api_key_id",
            "usage_type",
            "service_tier",
            "project_name",
            "api_key_name",
        )
    }
    unpriced = np.isin(text["model"], list(UNPRICED))
    # Activity: weekdays busier than weekends; scaled so that the total comes near the target.
    weekday_p, weekend_p = 0.92, 0.55
    days_active = np.maximum(DAYS - s_start, 0).sum()
    base = target_rows / max(days_active * (5 * weekday_p + 2 * weekend_p) / 7, 1)
    if base * weekday_p > 1:
        print(f"warning: too few distinct series for {target_rows:,} rows; writing fewer")
    chunk: list[pd.DataFrame] = []
    chunk_rows = 0
    for d in range(DAYS):
        day = first_day + dt.timedelta(days=d)
        weekend = day.weekday() >= 5
        p = min(1.0, base * (weekend_p if weekend else weekday_p))
        idx = np.nonzero((s_start <= d) & (rng.random(n) < p))[0]
        if not len(idx):
            continue
        m = len(idx)
        growth = 0.5 + d / DAYS  # spend doubles over the two years
        volume = s_scale[idx] * growth * (0.45 if weekend else 1.0) * rng.lognormal(0, 0.35, m)
        kind = s_kind[idx]
        tokens = kind == "tokens"
        inp = np.where(tokens, (volume * 2_000_000).astype(np.int64), 0)
        cached = np.where(tokens, (inp * rng.uniform(0, 0.6, m)).astype(np.int64), 0)
        cwrite = np.where(tokens & (text["usage_type"][idx] == "messages"), inp // 10, 0)
        out = np.where(tokens, (volume * 400_000).astype(np.int64), 0)
        req = np.where(kind == "seats", (volume * 10).astype(np.int64) + 1, 0)
        req = np.where(tokens | (kind == "requests"), (volume * 900).astype(np.int64) + 1, req)
        price = (inp + 0.1 * cached + 1.25 * cwrite) / 1e6 * s_pin[idx] + out / 1e6 * s_pout[idx]
        price = np.round(price, 6)
        source = s_source[idx]
        line_cost = np.round(volume * 40, 6)  # a billed line item's amount
        billed = np.where(
            kind == "cost",
            line_cost,
            np.where(
                kind == "seats",
                np.round(req * 19 / 30, 6),
                np.where(kind == "requests", np.round(req * 0.04, 6), price),
            ),
        )
        billed = np.where(source == "billed", billed, np.nan)
        estimated = np.where((source == "covered") | (source == "estimated"), price, np.nan).astype(
            float
        )
        estimated[unpriced[idx]] = np.nan
        status = np.where(
            unpriced[idx],
            "unpriced",
            np.where((kind == "cost") | (kind == "seats"), "not_applicable", "priced"),
        )
        frame = pd.DataFrame(
            {
                "account_id": s_account[idx],
                "day": day.isoformat(),
                **{name: values[idx] for name, values in text.items()},
                "input_tokens": inp,
                "cached_input_tokens": cached,
                "cache_write_tokens": cwrite,
                "cache_write_1h_tokens": 0,
                "output_tokens": out,
                "requests": req,
                "other_units": 0,
                "billed_cost": billed,
                "estimated_cost": estimated,
                "currency": "USD",
                "cost_source": source,
                "pricing_status": status,
                "synced_at": f"{day + dt.timedelta(days=1)} 02:00:00+00",
            }
        )
        chunk.append(frame[COLUMNS])
        chunk_rows += m
        if chunk_rows >= 400_000:
            yield pd.concat(chunk, ignore_index=True)
            chunk, chunk_rows = [], 0
    if chunk:
        yield pd.concat(chunk, ignore_index=True)


def seed_accounts_and_user(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    ids: dict[str, int] = {}
    with conn.cursor() as cur:
        for name, provider, *_ in ACCOUNTS:
            cur.execute(
                "INSERT INTO accounts (service_id, name, credential_encrypted, credential_last4,"
                " status, monthly_budget, created_at, updated_at, last_sync_at)"
                " SELECT id, %s, %s, 'synt', 'active', %s, now(), now(), now()"
                " FROM services WHERE name = %s RETURNING id",
                (name, SYNTHETIC_CREDENTIAL, 50_000 if "prod" in name else None, provider),
            )
            ids[name] = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO users (username, email, name, password_hash, role, is_active,"
            " failed_login_count, created_at) VALUES ('bench', 'bench@example.org',"
            " 'Bench (synthetic)', %s, 'viewer', true, 0, now())",
            (BENCH_PASSWORD_HASH,),
        )
    return ids


def drop_usage_indexes(cur) -> list[str]:  # type: ignore[no-untyped-def]
    """Drop usage_records' secondary indexes and unique constraints (not the primary key);
    return the statements that create them again exactly as the migrations made them."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'usage_records'::regclass AND contype = 'u'"
    )
    constraints = cur.fetchall()
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_records'"
        " AND indexname <> 'pk_usage_records'"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint"
        "  WHERE conrelid = 'usage_records'::regclass)"
    )
    indexes = cur.fetchall()
    for name, _ in constraints:
        cur.execute(f'ALTER TABLE usage_records DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in indexes] + [
        f'ALTER TABLE usage_records ADD CONSTRAINT "{name}" {definition}'
        for name, definition in constraints
    ]


def generate(url: str, rows: int, seed: int) -> tuple[int, float]:
    """Fill the migrated database at `url`; return (rows written, seconds)."""
    rng = np.random.default_rng(seed)
    parsed = make_url(url)
    conn = psycopg2.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    )
    started = time.perf_counter()
    ids = seed_accounts_and_user(conn)
    n_series = max(len(ACCOUNTS), int(rows / (DAYS * 0.5)))
    series = make_series(rng, n_series, ids, breadth=max(1.0, rows / 5_000_000))
    first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS)
    written = 0
    copy_sql = (
        f"COPY usage_records ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv, "
        f"FORCE_NOT_NULL ({', '.join(NOT_NULL_TEXT)}))"
    )
    with conn.cursor() as cur:
        # A bulk load: build the indexes once at the end instead of row by row, and skip the
        # per-row foreign-key trigger (the accounts were just inserted above).
        rebuild = drop_usage_indexes(cur)
        cur.execute("SET session_replication_role = replica")
        # The server parses one chunk while this process generates the next.
        chunks: queue.Queue[io.StringIO | None] = queue.Queue(maxsize=2)
        failed: list[BaseException] = []

        def copier() -> None:
            try:
                while (buffer := chunks.get()) is not None:
                    cur.copy_expert(copy_sql, buffer)
            except BaseException as exc:  # re-raised in the main thread
                failed.append(exc)
                while chunks.get() is not None:
                    pass

        thread = threading.Thread(target=copier)
        thread.start()
        try:
            for frame in frames(rng, series, first_day, rows):
                buffer = io.StringIO()
                frame.to_csv(buffer, header=False, index=False, float_format="%.6f")
                buffer.seek(0)
                chunks.put(buffer)
                written += len(frame)
        finally:
            chunks.put(None)
            thread.join()
        if failed:
            raise failed[0]
        conn.commit()
        copied = time.perf_counter() - started
        print(
            f"copied {written:,} rows in {copied:.1f} s ({written / copied:,.0f} rows/s)",
            flush=True,
        )
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("SET maintenance_work_mem = '512MB'")
        for statement in rebuild:
            cur.execute(statement)
        conn.commit()
        print(f"indexes built after {time.perf_counter() - started:.1f} s", flush=True)
    finish_migrations(url)
    print(f"rollups built after {time.perf_counter() - started:.1f} s", flush=True)
    named = give_users(conn)
    print(f"{named:,} rows given users after {time.perf_counter() - started:.1f} s", flush=True)
    mapped = add_teams(conn, first_day)
    print(f"{TEAMS} teams, {mapped} mappings and a shared-cost rule", flush=True)
    with conn.cursor() as cur:
        # A live install's label rollup is written day by day (each sync adds its days), so its
        # pages hold days together; the migrations that built it here wrote it label by label,
        # which makes a window of days read most of its pages. Lay it out as a live one is.
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("CLUSTER usage_labels USING ix_usage_labels_kind_day")
        cur.execute("ANALYZE")
    conn.commit()
    conn.close()
    return written, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--database", default="tracker_bench")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    url = recreate_database(args.admin_url, args.database)
    migrated = time.perf_counter() - started
    written, seconds = generate(url, args.rows, args.seed)
    total = time.perf_counter() - started
    print(f"database {args.database}: created and migrated in {migrated:.1f} s")
    print(
        f"generated {written:,} usage rows in {seconds:.1f} s including ANALYZE "
        f"({written / seconds:,.0f} rows/s); total {total:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
