"""Sync: fetch each account's usage from its provider and store it as daily `usage_records`.

One pass over one account (`sync_account`):

1. Range: the days asked for, else incremental: from the account's last complete day minus
   `settings.resync_window_days` (providers revise recent days) up to today (UTC); a first
   sync back-fills `settings.backfill_days`. Both ends are inclusive UTC days. For a provider
   that reports months (`Connector.month_grain`), the range is widened to whole months, up
   to today.
2. A `sync_runs` row is committed as 'running' before anything else, and finished (status,
   rows, duration, error) in its own transaction afterwards, even when the sync fails.
3. Everything else happens in ONE transaction under a PostgreSQL advisory lock on the account
   (a second worker finds it taken and skips): the connector's rows are streamed and upserted
   in batches on the natural key (`uq_usage_records_natural_key`, dialect INSERT ... ON
   CONFLICT DO UPDATE), rows the provider no longer reports are deleted on the days its
   answer covered (every report had a bucket for the day; `Connector.covered_days`), the
   estimated costs are filled in, the account's status, sync day, balance and rate-limit
   snapshot are updated, and what a provider's billing API says besides usage is recorded:
   its spend limits and invoices (`tracker.providers.billing`,
   `tracker.costs.provider_invoices`). A failure or crash anywhere rolls all of it back:
   the previous data stay as they were.

Rows with the same natural key inside one pass are added up (e.g. OpenRouter's several
endpoints of one model); a row from an earlier pass is replaced. Imported rows
(`usage_type = 'import'`, see `tracker.ingest.csv_import`) are never deleted by a sync.
401/403 and unreadable credentials mark the account 'error'; other accounts go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tracker.core.db import advisory_lock
from tracker.core.errors import CredentialError, InvalidInput, NotFound
from tracker.core.runtime import Runtime
from tracker.core.units import month_bounds, today_utc
from tracker.costs.estimate import estimate_range
from tracker.costs.provider_invoices import record_provider_invoices
from tracker.ingest.writer import rename_earlier, reported_names, upsert_rows
from tracker.models import (
    IMPORT_USAGE_TYPE,
    Account,
    AccountStatus,
    SyncRun,
    SyncStatus,
    UsageRecord,
    utcnow,
)
from tracker.providers.accounts import (
    claim_organization,
    connector_for,
    get_account,
    record_rate_limits,
)
from tracker.providers.base import (
    Connector,
    Deadline,
    ProviderAuthError,
    ProviderError,
    ProviderNotSupported,
    ProviderPermissionError,
    ProviderResponseError,
    UsageRow,
    check_row,
    make_http_session,
)
from tracker.providers.billing import record_spend_limits
from tracker.providers.registry import connector_class

log = logging.getLogger(__name__)


LOCK_NAME = "tracker.sync"
IMPORTED_BY_CSV = "imported by CSV: this account has no key, so there is nothing to sync"


# What a run left 'running' by a dead sync says once found; nothing of it was committed,
# because a sync writes in one transaction.
ABANDONED = (
    "interrupted: the sync stopped before it finished (the process was killed or lost the "
    "database); nothing of it was committed, and the next sync covers its days"
)
ABANDONED_AFTER = dt.timedelta(hours=1)


def utc_today() -> dt.date:
    """Today's UTC date (the sync's own name for it, so tests can pin the sync's clock)."""
    return today_utc()


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
            get_account(session=session, name=account_name)  # NotFound, naming the accounts
    session_http = http or http_session_for(runtime)
    summary = SyncSummary()
    for account_id, _name, status in accounts:
        if status == AccountStatus.DISABLED and account_name is None:
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
        if account.status == AccountStatus.DISABLED:
            return AccountSyncResult(
                account_id, name, provider, "skipped", message="account is disabled"
            )
        if not account.has_key:
            return AccountSyncResult(account_id, name, provider, "skipped", message=IMPORTED_BY_CSV)
        first, last = _sync_range(account, start, end, today, settings)
        previous_complete = account.last_complete_day

    started = time.monotonic()
    run_id = _open_run(runtime, account_id, first, last, trigger)
    _close_abandoned_runs(runtime, account_id, run_id)
    stamp = utcnow()
    connector: Connector | None = None
    status, rows, message, error = "failed", 0, "", None
    deadline: Deadline | None = None
    try:
        connector = _connector(runtime, account_id, http)
        deadline = getattr(connector.http, "deadline", None)
        if deadline is not None:
            deadline.start(settings.sync_account_budget_seconds)
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
                    _record_billing(session, account, connector, stamp)
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
        run_status = SyncStatus.INTERRUPTED if interrupted else SyncStatus.FAILED
        _finish_run(runtime, run_id, run_status, 0, started, error)
        if interrupted:
            raise
        return AccountSyncResult(account_id, name, provider, "failed", 0, message, first, last)
    finally:
        if deadline is not None:
            deadline.start(None)  # the next account gets its own budget
    run_status = {"ok": SyncStatus.SUCCESS, "skipped": SyncStatus.SKIPPED}.get(
        status, SyncStatus.FAILED
    )
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
    if connector_class(account.service.name).month_grain:
        # A provider that reports months (Mistral) rewrites whole months, up to today: a
        # month's figure is spread over its days, which must all be replaced together.
        first = first.replace(day=1)
        last = max(last, min(month_bounds(last)[1], today))
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
    account = session.get(Account, account_id)
    assert account is not None
    claim_organization(session=session, account=account, connector=connector)
    if not connector.has_usage_api:
        connector.test()  # checks the key and refreshes the rate-limit snapshot
        return 0
    if connector.max_history_days is not None:
        # Days the provider no longer keeps would come back empty: leave them alone.
        first = max(first, today - dt.timedelta(days=connector.max_history_days))
        if first > last:
            return 0
    connector.coverage.clear()
    try:
        rows = checked(
            connector.fetch_usage(first, last + dt.timedelta(days=1)), connector, first, last
        )
        names: dict[str, dict[str, str]] = {}
        upsert_rows(
            session, account_id, reported_names(rows, names), stamp=stamp, days=(first, last)
        )
        rename_earlier(session, account_id, names)
    except ProviderNotSupported:
        connector.test()
        return 0
    # Rows the provider no longer reports go, but only on days its answer covered: a day
    # missing from the answer (a short page, a lagging report) keeps what it had.
    covered = connector.covered_days(first, last)
    if covered is None or covered:
        session.execute(
            delete(UsageRecord).where(
                UsageRecord.account_id == account_id,
                UsageRecord.day.between(first, last)
                if covered is None
                else UsageRecord.day.in_(sorted(covered)),
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


# A provider may pad its answer with the day just outside the range (bucket alignment); the
# writer drops those. Anything further out means the provider answered another question.
PADDING = dt.timedelta(days=1)


def checked(
    rows: Iterable[UsageRow], connector: Connector, first: dt.date, last: dt.date
) -> Iterator[UsageRow]:
    """The connector's rows, each checked before it reaches the database (`check_row`, and
    the day inside the range asked for). The first bad row fails the account's pass, and as
    the pass is one transaction, nothing is written and nothing is pruned."""
    for row in rows:
        check_row(row, connector.provider)
        if not first - PADDING <= row.day <= last + PADDING:
            raise ProviderResponseError(
                f"{connector.provider} sent usage for {row.day}, outside the days asked for "
                f"({first}..{last}); nothing was stored or removed"
            )
        yield row


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
    if account.status == AccountStatus.ERROR:
        account.status = AccountStatus.ACTIVE
    account.last_error = None
    account.last_sync_at = stamp
    complete = min(last, today - dt.timedelta(days=1))
    # Advance only over a contiguous range: a sync of an old slice must not skip a gap.
    contiguous = previous_complete is None or first <= previous_complete + dt.timedelta(days=1)
    if contiguous and (previous_complete is None or complete > previous_complete):
        account.last_complete_day = complete
    record_rate_limits(account, connector)


def _record_billing(
    session: Session, account: Account, connector: Connector, stamp: dt.datetime
) -> None:
    """What the provider's billing API says besides usage: its spend limits (replacing the
    stored ones) and its invoices (matched like the recorded ones). In the pass's
    transaction: an unreadable answer stores nothing."""
    limits = connector.fetch_spend_limits()
    if limits is not None:
        record_spend_limits(session, account.id, limits, stamp)
    invoices = connector.fetch_invoices()
    if invoices is not None:
        record_provider_invoices(session=session, account=account, invoices=invoices)


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
                account.status = AccountStatus.ERROR
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
            status=SyncStatus.RUNNING,
        )
        session.add(run)
        session.flush()
        return run.id


def _close_abandoned_runs(runtime: Runtime, account_id: int, run_id: int) -> None:
    """Mark the account's runs left 'running' by a sync that died (kill -9, a lost database)
    'interrupted', so Sync health never shows a sync running forever.

    On PostgreSQL, holding the account's advisory lock proves no other sync of it is alive.
    SQLite has no such lock: there only runs started `ABANDONED_AFTER` ago count as dead.
    """
    try:
        with runtime.session_factory.begin() as session:
            with advisory_lock(session, LOCK_NAME, account_id) as taken:
                if not taken:
                    return
                stmt = (
                    update(SyncRun)
                    .where(
                        SyncRun.account_id == account_id,
                        SyncRun.status == SyncStatus.RUNNING,
                        SyncRun.id != run_id,
                    )
                    .values(status=SyncStatus.INTERRUPTED, finished_at=utcnow(), error=ABANDONED)
                )
                if session.get_bind().dialect.name != "postgresql":
                    stmt = stmt.where(SyncRun.started_at < utcnow() - ABANDONED_AFTER)
                result = session.execute(stmt)
                closed = int(getattr(result, "rowcount", 0) or 0)
        if closed:
            log.warning("account %s: %d abandoned sync run(s) marked failed", account_id, closed)
    except Exception:
        log.exception("could not close the abandoned sync runs of account %s", account_id)


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
