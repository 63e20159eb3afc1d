"""Cached loaders: the only place the app caches anything.

`st.cache_resource` holds the settings and the runtime (engines, session factories, cipher),
keyed by the database URL; nothing mutates them. `st.cache_data` holds the aggregated frames
for `FRAME_TTL_SECONDS`, keyed by their arguments; `clear_frames()` (the sidebar's refresh
button, and every data-changing action) drops them. Each loader opens its own read-only
session and returns plain frames or frozen dataclasses (pickled by Streamlit's cache). Both
caches are per process: with several app processes, a change clears the frames of its own
process only, the others' expire or are refreshed (docs/operations.md).

With a read replica (`DATABASE_REPLICA_URL`), the cached frames and the exports read from it
(`read`), and everything else here reads the primary: the sign-in, the Admin, chargeback and
close pages' fresh reads, saved views. The router decides once per run (`choose_reads`): the
replica serves a session unless it cannot be used (down, or not a standby: the primary then,
and the page says so) or it has not yet applied what this session last changed or refreshed
(`clear_frames` notes the primary's WAL position): a change shows on the rerun that follows
it, as without a replica.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tracker.alerts import delivery
from tracker.closing import periods
from tracker.core import replica
from tracker.core.config import Settings, load_settings
from tracker.core.db import require_schema
from tracker.core.replica import ReplicaStatus
from tracker.core.runtime import Runtime, build_runtime
from tracker.costs.invoices import InvoiceMatch
from tracker.identity import saved_views as saved_view_store
from tracker.planning.credits import AccountCredits
from tracker.planning.projections import Projection
from tracker.providers.accounts import AccountView, list_accounts
from tracker.reporting import accounts as accounts_report
from tracker.reporting import admin as admin_report
from tracker.reporting import anomalies as anomaly_report
from tracker.reporting import budgets as budget_report
from tracker.reporting import chargeback as chargeback_report
from tracker.reporting import close as close_report
from tracker.reporting import credits as credits_report
from tracker.reporting import forecast, overview, sources, usage
from tracker.reporting import invoices as invoices_report
from tracker.reporting import reconciliation as reconciliation_report
from tracker.reporting import savings as savings_report
from tracker.reporting import sync_health as sync_health_report

log = logging.getLogger(__name__)

FRAME_TTL_SECONDS = 300
MAX_ENTRIES = 64
# How often a process asks the replica where it is (and retries one that was down).
REPLICA_CHECK_SECONDS = 10
T = TypeVar("T")


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """The validated settings (raises ConfigError with a message that says what to fix)."""
    return load_settings()


@st.cache_resource(show_spinner=False)
def _runtime_for(database_url: str, _settings: Settings) -> Runtime:
    runtime = build_runtime(_settings)
    require_schema(runtime.engine)
    return runtime


def get_runtime() -> Runtime:
    """The process-wide runtime for the configured database (checked for a schema once)."""
    settings = get_settings()
    return _runtime_for(settings.database_url, settings)


def _factory() -> sessionmaker[Session]:
    """The primary's sessions: for what must be read fresh (another user's change, one's own)."""
    return get_runtime().session_factory


# --- where the cached figures are read: the replica or the primary ----------------------------

READS_KEY = "figures_read_from"  # this run: one of the four below
READ_AFTER_KEY = "figures_after_wal"  # the primary's WAL position this session must see
NO_REPLICA = "no replica"  # the primary, as always without DATABASE_REPLICA_URL
REPLICA = "replica"
PRIMARY = "primary"  # the replica has not applied this session's last change yet
FAILED_OVER = "failed over"  # the primary: the replica cannot be used


@st.cache_data(ttl=REPLICA_CHECK_SECONDS, max_entries=1, show_spinner=False)
def replica_status() -> ReplicaStatus | None:
    """Where the read replica is, asked at most every REPLICA_CHECK_SECONDS by this process;
    None without one."""
    runtime = get_runtime()
    if runtime.replica_engine is None:
        return None
    return replica.check_replica(runtime.replica_engine)


def choose_reads() -> ReplicaStatus | None:
    """Once per run, before the page (the router): whether this session's figures come from
    the replica; return the replica's status for the page's notice (None without one)."""
    status = replica_status()
    wanted = st.session_state.get(READ_AFTER_KEY)
    if status is None:
        source = NO_REPLICA
    elif not status.usable:
        source = FAILED_OVER
    elif wanted is not None and (status.applied is None or status.applied < wanted):
        source = PRIMARY  # it has not applied this session's last change or refresh yet
    else:
        st.session_state.pop(READ_AFTER_KEY, None)
        source = REPLICA
    st.session_state[READS_KEY] = source
    return status


def reads_from() -> str:
    """Where this run's figures come from (NO_REPLICA before `choose_reads` has run)."""
    return str(st.session_state.get(READS_KEY, NO_REPLICA))


def read(query: Callable[[Session], T]) -> T:
    """Run a read-only query where `choose_reads` sent this run's figures; a replica that fails
    during it (down since its last check, a query cancelled by recovery) hands the query to
    the primary. For the cached frames and the exports only: they may lag by the replica's lag."""
    runtime = get_runtime()
    replica_factory = runtime.replica_session_factory
    if replica_factory is not None and reads_from() == REPLICA:
        try:
            with replica_factory() as session:
                return query(session)
        except (OperationalError, InterfaceError) as exc:
            log.warning("the read replica failed a query (%s); reading from the primary", _why(exc))
            st.session_state[READS_KEY] = FAILED_OVER
            replica_status.clear()
    with runtime.session_factory() as session:
        return query(session)


def _why(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__


def _read_after_primary_now() -> None:
    """Keep this session on the primary until the replica has applied what the primary holds
    now: a change just made, or a refresh just asked for, shows at the next run."""
    if reads_from() == NO_REPLICA:
        return
    try:
        st.session_state[READ_AFTER_KEY] = replica.primary_position(get_runtime().engine)
    except DBAPIError as exc:  # the primary is down: nothing newer to wait for
        log.warning("cannot read the primary's WAL position: %s", _why(exc))
        return
    if reads_from() == REPLICA:
        st.session_state[READS_KEY] = PRIMARY  # the rest of this run too


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def spend_summary(today: dt.date) -> overview.SpendSummary:
    """Month-to-date spend vs the same days last month (see tracker.reporting.overview)."""
    return read(lambda session: overview.spend_summary(session=session, today=today))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def account_cards(
    today: dt.date, warning_pct: Decimal, critical_pct: Decimal
) -> list[overview.AccountCard]:
    """One card per account for the overview."""
    return read(
        lambda session: overview.account_cards(
            session=session, today=today, warning_pct=warning_pct, critical_pct=critical_pct
        )
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def daily_cost_by_provider(end: dt.date, days: int = 30) -> pd.DataFrame:
    return read(
        lambda session: overview.daily_cost_by_provider(session=session, end=end, days=days)
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def top_models(start: dt.date, end: dt.date, limit: int = 10) -> pd.DataFrame:
    return read(
        lambda session: overview.top_models(session=session, start=start, end=end, limit=limit)
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def filter_options(start: dt.date, end: dt.date) -> usage.FilterOptions:
    return read(lambda session: usage.filter_options(session=session, start=start, end=end))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def usage_table(flt: sources.UsageFilter, group_by: Sequence[str]) -> pd.DataFrame:
    return read(
        lambda session: usage.usage_table(session=session, flt=flt, group_by=list(group_by))
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def tokens_by_kind(flt: sources.UsageFilter) -> pd.DataFrame:
    return read(lambda session: usage.tokens_by_kind(session=session, flt=flt))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def sync_health(now: dt.datetime, end: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Freshness per account, the latest runs, and gaps in the last 30 days."""
    return read(
        lambda session: (
            sync_health_report.sync_freshness(session=session, now=now),
            sync_health_report.recent_sync_runs(session=session),
            sync_health_report.daily_gaps(session=session, end=end),
        )
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def accounts() -> list[AccountView]:
    """Accounts as the UI may show them (masked keys only)."""
    return read(lambda session: list_accounts(session=session))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def accounts_table() -> pd.DataFrame:
    """The Accounts page's list (masked keys, status, rate-limit headroom)."""
    return read(lambda session: accounts_report.accounts_table(session=session))


@st.cache_data(ttl=60, max_entries=MAX_ENTRIES, show_spinner=False)
def unpriced_models(start: dt.date, end: dt.date) -> pd.DataFrame:
    """Models without a price in start..end (their usage counts $0 until priced)."""
    return read(lambda session: overview.unpriced_frame(session=session, start=start, end=end))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def rate_limits() -> pd.DataFrame:
    """Remaining vs limit per account and resource (the last snapshot each sync kept)."""
    return read(lambda session: accounts_report.rate_limit_table(session=session))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def projections(today: dt.date) -> forecast.ProjectionSet:
    """This month's projections (the worker's, or computed now when it has not written any),
    never below the spend so far."""
    return read(lambda session: forecast.shown_projections(session=session, today=today))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def org_projection(today: dt.date) -> tuple[Projection, bool]:
    """The organisation's month-end projection and whether the worker stored it."""
    return read(lambda session: forecast.org_projection(session=session, today=today))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def budgets(today: dt.date) -> pd.DataFrame:
    """Every budget with month-to-date spend, % used and projected month-end."""
    return read(
        lambda session: budget_report.budget_frame(
            session=session,
            today=today,
            projected=forecast.current_projections(session=session, today=today),
        )
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def provider_caps(today: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Each account's cap (and spend alert) at its provider beside our budget, the caps on
    its parts, and its members' effective limits."""
    return read(
        lambda session: (
            budget_report.provider_cap_frame(session=session),
            budget_report.partial_cap_frame(session=session),
            budget_report.member_limit_frame(session=session, today=today),
        )
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def budget_scopes() -> list[str]:
    return read(lambda session: budget_report.budget_scopes(session=session))


@st.cache_data(ttl=60, max_entries=MAX_ENTRIES, show_spinner=False)
def alert_rules() -> pd.DataFrame:
    """Alert rules, channels masked."""
    return read(lambda session: budget_report.rules_frame(session=session))


@st.cache_data(ttl=60, max_entries=MAX_ENTRIES, show_spinner=False)
def alert_events(limit: int = 200) -> tuple[pd.DataFrame, int]:
    """The latest alert events and how many deliveries still wait for a retry."""
    return read(
        lambda session: (
            budget_report.events_frame(session=session, limit=limit),
            delivery.undelivered_count(session=session),
        )
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def anomalies(since: dt.date, include_acknowledged: bool) -> pd.DataFrame:
    return read(
        lambda session: anomaly_report.anomaly_frame(
            session=session, since=since, include_acknowledged=include_acknowledged
        )
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def reconciliation(start: dt.date, end: dt.date) -> reconciliation_report.Reconciliation:
    """Billed vs estimated over start..end by provider, model and day, with the causes."""
    return read(
        lambda session: reconciliation_report.reconciliation(session=session, start=start, end=end)
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def invoice_matches() -> list[InvoiceMatch]:
    """Every recorded invoice, matched against its month's synced billed total."""
    return read(
        lambda session: invoices_report.invoice_matches(session=session, settings=get_settings())
    )


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def credit_ledger(today: dt.date) -> list[AccountCredits]:
    """Each account's credit grants burned down to today, with the projected exhaustion."""
    return read(lambda session: credits_report.credit_ledger(session=session, today=today))


@st.cache_data(ttl=FRAME_TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def savings(start: dt.date, end: dt.date) -> pd.DataFrame:
    """The savings ledger over start..end: per month and provider, by kind of saving."""
    return read(lambda session: savings_report.savings_frame(session=session, start=start, end=end))


_FRAME_LOADERS = (
    spend_summary,
    account_cards,
    daily_cost_by_provider,
    top_models,
    filter_options,
    usage_table,
    tokens_by_kind,
    sync_health,
    accounts,
    accounts_table,
    unpriced_models,
    rate_limits,
    projections,
    org_projection,
    budgets,
    budget_scopes,
    alert_rules,
    alert_events,
    anomalies,
    reconciliation,
    invoice_matches,
    credit_ledger,
    savings,
)


# The Admin page reads users, invitations, overrides and the audit log fresh on every run:
# another admin's change must show at once, and these tables are small.


def users_frame() -> pd.DataFrame:
    with _factory()() as session:
        return admin_report.users_frame(session=session)


def invitations_frame() -> pd.DataFrame:
    with _factory()() as session:
        return admin_report.invitations_frame(session=session)


def sso_mappings_frame() -> pd.DataFrame:
    with _factory()() as session:
        return admin_report.sso_mappings_frame(session=session)


def overrides_frame() -> pd.DataFrame:
    with _factory()() as session:
        return admin_report.overrides_frame(session=session)


def chargeback(month: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(team x provider, pieces) for a month: read fresh, as a mapping just changed must show."""
    with _factory()() as session:
        result = chargeback_report.month_chargeback(session=session, month=month)
    return chargeback_report.team_provider_frame(result), chargeback_report.pieces_frame(result)


def team_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(teams, mappings, shared-cost rules), fresh on every run."""
    with _factory()() as session:
        return (
            chargeback_report.teams_frame(session=session),
            chargeback_report.mappings_frame(session=session),
            chargeback_report.rules_frame(session=session),
        )


# The Month-end close page reads fresh on every run: a sign-off by another user must show at
# once (and a closed month's figures come from its snapshot, which is small).


def close_periods(today: dt.date) -> tuple[list[periods.PeriodView], pd.DataFrame]:
    """Every month with its status and signers, as views and as the page's table."""
    with _factory()() as session:
        found = periods.list_periods(session=session, today=today)
    return found, close_report.periods_frame(found)


def month_close(month: dt.date) -> close_report.MonthClose:
    with _factory()() as session:
        return close_report.month_close(session=session, month=month)


def restatements() -> pd.DataFrame:
    with _factory()() as session:
        return close_report.restatements(session=session)


def gl_settings() -> close_report.GlSettings:
    with _factory()() as session:
        return close_report.gl_settings(session=session)


def audit_frame() -> pd.DataFrame:
    with _factory()() as session:
        return admin_report.recent_audit(session=session)


def clear_frames() -> None:
    """Drop every cached frame (the refresh button; after any change to the data); this
    session's next figures show at least what the primary holds now."""
    for loader in _FRAME_LOADERS:
        loader.clear()
    replica_status.clear()
    _read_after_primary_now()


def saved_views(username: str, pages: tuple[str, ...]) -> list[saved_view_store.View]:
    """`username`'s saved views of `pages`, read fresh at every run (a handful of rows): the
    sidebar lists them, and a view saved or deleted in another tab shows at the next click."""
    with _factory()() as session:
        return saved_view_store.list_views(session=session, username=username, pages=pages)
