"""Sync: fetch each account's usage from its provider and store it as daily `usage_records`.

One pass over one account (`sync_account`):

1. Range: the days asked for, else incremental: from the account's last complete day minus
   `settings.resync_window_days` (providers revise recent days) up to today (UTC); a first
   sync back-fills `settings.backfill_days`. Both ends are inclusive UTC days.
2. A `sync_runs` row is committed as 'running' before anything else, and finished (status,
   rows, duration, error) in its own transaction afterwards, even when the sync fails.
3. Everything else happens in ONE transaction under a PostgreSQL advisory lock on the account
   (a second worker finds it taken and skips): the connector's rows are streamed and upserted
   in batches on the natural key (`uq_usage_records_natural_key`, dialect INSERT ... ON
   CONFLICT DO UPDATE), rows of the range the provider no longer reports are deleted, the
   estimated costs are filled in, and the account's status, sync day, balance and rate-limit
   snapshot are updated. A failure or crash anywhere rolls all of it back: the previous data
   stay as they were.

Rows with the same natural key inside one pass are added up (e.g. OpenRouter's several
endpoints of one model); a row from an earlier pass is replaced. Imported rows
(`usage_type = 'import'`, see `tracker.imports`) are never deleted by a sync.
401/403 and unreadable credentials mark the account 'error'; other accounts go on.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from sqlalchemy import and_, case, column, delete, func, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tracker.accounts import connector_for, record_rate_limits
from tracker.db import advisory_lock
from tracker.errors import CredentialError, InvalidInput, NotFound, TrackerError
from tracker.models import TOKEN_COLUMNS, Account, SyncRun, UsageRecord, utcnow
from tracker.pricing import estimate_range
from tracker.providers.base import (
    Connector,
    ProviderAuthError,
    ProviderError,
    ProviderNotSupported,
    ProviderPermissionError,
    UsageRow,
    make_http_session,
)
from tracker.runtime import Runtime

log = logging.getLogger(__name__)

BATCH_SIZE = 5000  # rows per COPY + INSERT ... ON CONFLICT (or executemany on SQLite)
LOCK_NAME = "tracker.sync"
IMPORT_USAGE_TYPE = "import"
NATURAL_KEY = (
    "account_id",
    "day",
    "model",
    "project_id",
    "api_key_id",
    "usage_type",
    "service_tier",
)
SUMMED = (*TOKEN_COLUMNS, "requests", "other_units")


def utc_today() -> dt.date:
    """Today's UTC date (a function so tests can pin the clock)."""
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class AccountSyncResult:
    """The outcome of one account's pass: status is 'ok', 'failed' or 'skipped'."""

    account_id: int
    name: str
    provider: str
    status: str
    rows_written: int = 0
    message: str = ""
    start: dt.date | None = None
    end: dt.date | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class SyncSummary:
    """Per-account results of one `run_sync` pass."""

    results: list[AccountSyncResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[AccountSyncResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def rows_written(self) -> int:
        return sum(r.rows_written for r in self.results)


def http_session_for(runtime: Runtime) -> requests.Session:
    """A retrying HTTP session configured from settings."""
    s = runtime.settings
    return make_http_session(
        max_retries=s.http_max_retries,
        backoff_factor=s.http_backoff_factor,
        backoff_max=s.http_backoff_max_seconds,
    )


def run_sync(
    runtime: Runtime,
    *,
    account_name: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    trigger: str = "cli",
    http: requests.Session | None = None,
) -> SyncSummary:
    """Sync one named account, or every account that is not disabled; one result each."""
    with runtime.session_factory() as session:
        query = select(Account.id, Account.name, Account.status).order_by(Account.name)
        if account_name is not None:
            query = query.where(Account.name == account_name)
        accounts = session.execute(query).all()
    if account_name is not None and not accounts:
        raise NotFound(f"no account named {account_name!r}; see `python -m tracker accounts list`")
    session_http = http or http_session_for(runtime)
    summary = SyncSummary()
    for account_id, _name, status in accounts:
        if status == "disabled" and account_name is None:
            continue
        summary.results.append(
            sync_account(
                runtime, account_id, start=start, end=end, trigger=trigger, http=session_http
            )
        )
    return summary


def sync_account(
    runtime: Runtime,
    account_id: int,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    trigger: str = "cli",
    http: requests.Session | None = None,
) -> AccountSyncResult:
    """Sync one account over a day range (inclusive; default incremental); never raises for
    provider or data errors: they are returned as a 'failed' result and stored."""
    settings = runtime.settings
    today = utc_today()
    with runtime.session_factory() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account with id {account_id}")
        name, provider = account.name, account.service.name
        if account.status == "disabled":
            return AccountSyncResult(
                account_id, name, provider, "skipped", message="account is disabled"
            )
        first, last = _sync_range(account, start, end, today, settings)
        previous_complete = account.last_complete_day

    started = time.monotonic()
    run_id = _open_run(runtime, account_id, first, last, trigger)
    stamp = utcnow()
    connector: Connector | None = None
    status, rows, message, error = "failed", 0, "", None
    try:
        connector = _connector(runtime, account_id, http)
        with runtime.session_factory.begin() as session:
            with advisory_lock(session, LOCK_NAME, account_id) as taken:
                if not taken:
                    status, message = "skipped", "another worker is syncing this account"
                else:
                    rows = _sync_in_transaction(
                        session, connector, account_id, first, last, today, stamp
                    )
                    account = session.get(Account, account_id)
                    assert account is not None
                    _mark_success(account, connector, first, last, today, previous_complete, stamp)
                    status = "ok"
                    message = f"{rows} row(s) for {first}..{last}"
                    if not connector.has_usage_api:
                        message = "key checked; no usage API: import usage from CSV"
    except (ProviderError, CredentialError) as exc:
        error = message = str(exc)
        _mark_failure(runtime, account_id, exc, connector)
    except BaseException as exc:
        interrupted = not isinstance(exc, Exception)
        if interrupted:
            error = message = f"interrupted ({type(exc).__name__}); nothing was committed"
        else:
            log.exception("sync of account %s failed", name)
            error = message = f"internal error ({type(exc).__name__}): {exc}"[:500]
            _mark_failure(runtime, account_id, exc, connector)
        _finish_run(runtime, run_id, "failed", 0, started, error)
        if interrupted:
            raise
        return AccountSyncResult(account_id, name, provider, "failed", 0, message, first, last)
    run_status = {"ok": "success", "skipped": "skipped"}.get(status, "failed")
    _finish_run(runtime, run_id, run_status, rows, started, error)
    log.info("sync %s (%s): %s: %s", name, provider, status, message)
    return AccountSyncResult(account_id, name, provider, status, rows, message, first, last)


def _sync_range(
    account: Account,
    start: dt.date | None,
    end: dt.date | None,
    today: dt.date,
    settings: Any,
) -> tuple[dt.date, dt.date]:
    last = end or today
    if start is not None:
        first = start
    elif account.last_complete_day is not None:
        first = account.last_complete_day - dt.timedelta(days=settings.resync_window_days)
    else:
        first = today - dt.timedelta(days=settings.backfill_days)
    if first > last:
        raise InvalidInput(f"the start day {first} is after the end day {last}")
    return first, last


def _connector(runtime: Runtime, account_id: int, http: requests.Session | None) -> Connector:
    with runtime.session_factory() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return connector_for(
            account,
            cipher=runtime.cipher,
            http=http or http_session_for(runtime),
            timeout=runtime.settings.http_timeout_seconds,
        )


def _sync_in_transaction(
    session: Session,
    connector: Connector,
    account_id: int,
    first: dt.date,
    last: dt.date,
    today: dt.date,
    stamp: dt.datetime,
) -> int:
    """Fetch, upsert, prune and price the range; return how many rows it now holds."""
    if not connector.has_usage_api:
        connector.test()  # checks the key and refreshes the rate-limit snapshot
        return 0
    if connector.max_history_days is not None:
        # Days the provider no longer keeps would come back empty: leave them alone.
        first = max(first, today - dt.timedelta(days=connector.max_history_days))
        if first > last:
            return 0
    try:
        rows = connector.fetch_usage(first, last + dt.timedelta(days=1))
        upsert_rows(session, account_id, rows, stamp=stamp, days=(first, last))
    except ProviderNotSupported:
        connector.test()
        return 0
    session.execute(
        delete(UsageRecord).where(
            UsageRecord.account_id == account_id,
            UsageRecord.day.between(first, last),
            UsageRecord.synced_at != stamp,
            UsageRecord.usage_type != IMPORT_USAGE_TYPE,
        )
    )
    estimate_costs(session, first, last, account_id)
    return (
        session.scalar(
            select(func.count()).where(
                UsageRecord.account_id == account_id,
                UsageRecord.day.between(first, last),
                UsageRecord.synced_at == stamp,
            )
        )
        or 0
    )


def upsert_rows(
    session: Session,
    account_id: int,
    rows: Iterable[UsageRow],
    *,
    stamp: dt.datetime,
    days: tuple[dt.date, dt.date] | None = None,
    batch_size: int = BATCH_SIZE,
) -> None:
    """Upsert rows on the natural key in batches, streaming; rows of this pass (same `stamp`)
    with one key are added up, rows of earlier passes are replaced.

    With `days`, rows outside that inclusive range are dropped: the pass could not replace
    them consistently (a provider that pads its answer with other days).
    """
    batch: dict[tuple[Any, ...], UsageRow] = {}
    for row in rows:
        if days is not None and not days[0] <= row.day <= days[1]:
            log.debug("dropping a row for %s outside %s..%s", row.day, days[0], days[1])
            continue
        key = row.natural_key
        batch[key] = merge_rows(batch[key], row) if key in batch else row
        if len(batch) >= batch_size:
            _write_batch(session, account_id, list(batch.values()), stamp)
            batch.clear()
    if batch:
        _write_batch(session, account_id, list(batch.values()), stamp)


def merge_rows(a: UsageRow, b: UsageRow) -> UsageRow:
    """Two rows with one natural key, added up (names and currency: the first one's)."""
    billed: Decimal | None = None
    if a.billed_cost is not None or b.billed_cost is not None:
        billed = (a.billed_cost or Decimal(0)) + (b.billed_cost or Decimal(0))
    return UsageRow(
        day=a.day,
        model=a.model,
        project_id=a.project_id,
        api_key_id=a.api_key_id,
        usage_type=a.usage_type,
        service_tier=a.service_tier,
        project_name=a.project_name or b.project_name,
        api_key_name=a.api_key_name or b.api_key_name,
        input_tokens=a.input_tokens + b.input_tokens,
        cached_input_tokens=a.cached_input_tokens + b.cached_input_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        cache_write_1h_tokens=a.cache_write_1h_tokens + b.cache_write_1h_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        requests=a.requests + b.requests,
        other_units=a.other_units + b.other_units,
        other_unit_name=a.other_unit_name or b.other_unit_name,
        billed_cost=billed,
        currency=a.currency,
    )


def _write_batch(
    session: Session, account_id: int, rows: Sequence[UsageRow], stamp: dt.datetime
) -> None:
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("postgresql", "sqlite"):
        raise TrackerError(f"unsupported database {dialect.name!r}")
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        # COPY into a staging table and one INSERT ... SELECT ... ON CONFLICT per batch: a
        # multi-row VALUES statement spends most of its time being built and compiled
        # (hundreds of rows/s at 500 rows a batch), COPY moves tens of thousands a second.
        _copy_to_stage(connection, account_id, rows, stamp)
        connection.execute(_pg_upsert_from_stage())
        return
    values = [
        (
            account_id,
            r.day,
            r.model,
            r.project_id,
            r.api_key_id,
            r.usage_type,
            r.service_tier,
            r.project_name,
            r.api_key_name,
            r.input_tokens,
            r.cached_input_tokens,
            r.cache_write_tokens,
            r.cache_write_1h_tokens,
            r.output_tokens,
            r.requests,
            r.other_units,
            r.other_unit_name,
            r.billed_cost,
            None,  # estimated_cost: priced after the upsert
            r.currency,
            "billed" if r.billed_cost is not None else "none",
            "pending",
            stamp,
        )
        for r in rows
    ]
    # One compiled single-row statement, run with executemany (cached by SQLAlchemy).
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(UsageRecord)
    connection.execute(
        stmt.on_conflict_do_update(index_elements=list(NATURAL_KEY), set_=_upsert_set(stmt)),
        [dict(zip(_WRITTEN, v, strict=True)) for v in values],
    )


# The columns a sync writes, in the staging table's (and the COPY's) order.
_WRITTEN = (
    *NATURAL_KEY,
    "project_name",
    "api_key_name",
    *SUMMED,
    "other_unit_name",
    "billed_cost",
    "estimated_cost",
    "currency",
    "cost_source",
    "pricing_status",
    "synced_at",
)
_STAGE = "tmp_usage_upsert"
COPY_NULL = "\\N"  # NULL in COPY text format
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """A value in COPY text format (NULL as \\N; backslash, tab and newlines escaped)."""
    if value is None:
        return COPY_NULL
    return str(value).translate(_COPY_ESCAPES)


def _copy_line(account_id: int, r: UsageRow, tail: str) -> str:
    """One row in COPY text format, in `_WRITTEN` order (`tail`: the columns every row of
    the batch shares)."""
    texts = (
        r.model,
        r.project_id,
        r.api_key_id,
        r.usage_type,
        r.service_tier,
        r.project_name,
        r.api_key_name,
        r.other_unit_name,
        r.currency,
    )
    if _NEEDS_ESCAPE.search("".join(t for t in texts if t)):
        (
            model,
            project_id,
            api_key_id,
            usage_type,
            tier,
            project_name,
            key_name,
            unit_name,
            currency,
        ) = map(_copy_field, texts)
    else:
        model, project_id, api_key_id, usage_type, tier, currency = (
            r.model,
            r.project_id,
            r.api_key_id,
            r.usage_type,
            r.service_tier,
            r.currency,
        )
        project_name = COPY_NULL if r.project_name is None else r.project_name
        key_name = COPY_NULL if r.api_key_name is None else r.api_key_name
        unit_name = COPY_NULL if r.other_unit_name is None else r.other_unit_name
    billed, source = (COPY_NULL, "none") if r.billed_cost is None else (r.billed_cost, "billed")
    return (
        f"{account_id}\t{r.day.isoformat()}\t{model}\t{project_id}\t{api_key_id}\t"
        f"{usage_type}\t{tier}\t{project_name}\t{key_name}\t{r.input_tokens}\t"
        f"{r.cached_input_tokens}\t{r.cache_write_tokens}\t{r.cache_write_1h_tokens}\t"
        f"{r.output_tokens}\t{r.requests}\t{r.other_units}\t{unit_name}\t{billed}\t"
        f"{COPY_NULL}\t{currency}\t{source}{tail}"
    )


def _copy_to_stage(
    connection: Any, account_id: int, rows: Sequence[UsageRow], stamp: dt.datetime
) -> None:
    # The stage has usage_records' column types and no constraints; it lives until the
    # transaction ends (one per sync pass), emptied before each batch.
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} ON COMMIT DROP AS "
        f"SELECT {', '.join(_WRITTEN)} FROM usage_records WITH NO DATA"
    )
    connection.exec_driver_sql(f"TRUNCATE {_STAGE}")
    tail = f"\tpending\t{stamp.isoformat()}\n"
    buffer = io.StringIO("".join([_copy_line(account_id, r, tail) for r in rows]))
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY {_STAGE} ({', '.join(_WRITTEN)}) FROM STDIN", buffer)
    finally:
        cursor.close()


@functools.cache
def _pg_upsert_from_stage() -> Any:
    stage = table(_STAGE, *[column(name) for name in _WRITTEN])
    stmt = postgresql.insert(UsageRecord).from_select(
        list(_WRITTEN), select(*[stage.c[name] for name in _WRITTEN])
    )
    return stmt.on_conflict_do_update(index_elements=list(NATURAL_KEY), set_=_upsert_set(stmt))


def _upsert_set(stmt: Any) -> dict[str, Any]:
    """The ON CONFLICT update: a row of this pass (same stamp) adds up, an older one is
    replaced; the estimate is cleared for re-pricing."""
    old, new = UsageRecord.__table__.c, stmt.excluded
    same_pass = old.synced_at == new.synced_at
    billed = case(
        (
            same_pass,
            case(
                (and_(old.billed_cost.is_(None), new.billed_cost.is_(None)), None),
                else_=func.coalesce(old.billed_cost, 0) + func.coalesce(new.billed_cost, 0),
            ),
        ),
        else_=new.billed_cost,
    )
    set_: dict[str, Any] = {
        name: case((same_pass, old[name] + new[name]), else_=new[name]) for name in SUMMED
    }
    set_.update(
        billed_cost=billed,
        cost_source=case((billed.is_(None), "none"), else_="billed"),
        estimated_cost=None,
        pricing_status="pending",
        project_name=func.coalesce(new.project_name, old.project_name),
        api_key_name=func.coalesce(new.api_key_name, old.api_key_name),
        other_unit_name=func.coalesce(new.other_unit_name, old.other_unit_name),
        currency=new.currency,
        synced_at=new.synced_at,
    )
    return set_


def estimate_costs(session: Session, start: dt.date, end: dt.date, account_id: int) -> None:
    """Price the account's rows on days [start, end] and decide which amount counts."""
    estimate_range(session=session, start=start, end=end, account_ids=[account_id])


def _mark_success(
    account: Account,
    connector: Connector,
    first: dt.date,
    last: dt.date,
    today: dt.date,
    previous_complete: dt.date | None,
    stamp: dt.datetime,
) -> None:
    balance = connector.fetch_balance()
    if balance is not None:
        account.balance_remaining = balance.remaining
        account.balance_currency = balance.currency
        account.balance_updated_at = stamp
    if account.status == "error":
        account.status = "active"
    account.last_error = None
    account.last_sync_at = stamp
    complete = min(last, today - dt.timedelta(days=1))
    # Advance only over a contiguous range: a sync of an old slice must not skip a gap.
    contiguous = previous_complete is None or first <= previous_complete + dt.timedelta(days=1)
    if contiguous and (previous_complete is None or complete > previous_complete):
        account.last_complete_day = complete
    record_rate_limits(account, connector)


def _mark_failure(
    runtime: Runtime, account_id: int, exc: BaseException, connector: Connector | None
) -> None:
    """Store the error on the account (401/403/bad credential: status 'error')."""
    try:
        with runtime.session_factory.begin() as session:
            account = session.get(Account, account_id)
            if account is None:
                return
            if isinstance(exc, ProviderAuthError | ProviderPermissionError | CredentialError):
                account.status = "error"
            account.last_error = str(exc)[:2000]
            account.last_error_at = utcnow()
            if connector is not None:
                record_rate_limits(account, connector)
    except Exception:
        log.exception("could not record the sync failure of account %s", account_id)


def _open_run(
    runtime: Runtime, account_id: int, first: dt.date, last: dt.date, trigger: str
) -> int:
    with runtime.session_factory.begin() as session:
        run = SyncRun(
            account_id=account_id,
            trigger=trigger[:16],
            range_start=first,
            range_end=last,
            status="running",
        )
        session.add(run)
        session.flush()
        return run.id


def _finish_run(
    runtime: Runtime,
    run_id: int,
    status: str,
    rows: int,
    started: float,
    error: str | None,
) -> None:
    try:
        with runtime.session_factory.begin() as session:
            run = session.get(SyncRun, run_id)
            if run is None:  # the account was removed meanwhile
                return
            run.status = status
            run.rows_written = rows
            run.finished_at = utcnow()
            run.duration_ms = int((time.monotonic() - started) * 1000)
            run.error = error
    except Exception:
        log.exception("could not record the end of sync run %s", run_id)
