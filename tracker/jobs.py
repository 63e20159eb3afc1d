"""The worker's jobs: what `worker.py` runs on its schedule, in this order.

Each job takes the runtime, opens its own transactions and raises on failure; the worker
catches and logs (a raising job would otherwise re-run every tick and starve the others).
Jobs that read fresh usage (projections, anomalies, alerts) run after the sync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import requests

from tracker.alerts.delivery import run_check
from tracker.alerts.rules import reseal_channels
from tracker.closing.corrections import detect_corrections
from tracker.core import partitions, units
from tracker.core.errors import TrackerError
from tracker.core.runtime import Runtime
from tracker.identity import links, sessions
from tracker.ingest.sync import run_sync
from tracker.planning.anomalies import detect_anomalies
from tracker.planning.projections import write_projections

log = logging.getLogger("worker")


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Runtime], None]
    every_minutes: int


def sync_job(runtime: Runtime) -> None:
    """Sync every account once; raise if any failed (the others still synced). The jobs that
    read fresh usage follow on the schedule, in `build_jobs`' order."""
    summary = run_sync(runtime, trigger="worker")
    log.info(
        "synced %d account(s), %d row(s) in the re-synced ranges",
        len(summary.results),
        summary.rows_written,
    )
    if not summary.ok:
        raise TrackerError(
            "sync failed for " + "; ".join(f"{r.name}: {r.message}" for r in summary.failed)
        )


def corrections_job(runtime: Runtime) -> None:
    """Record what changed in closed months since their close, posted to the next open one."""
    with runtime.session_factory.begin() as session:
        found = detect_corrections(session=session)
    if found:
        months = sorted({f"{c.month:%Y-%m}" for c in found})
        log.info("close: %d correction(s) to closed month(s) %s", len(found), ", ".join(months))


def projections_job(runtime: Runtime) -> None:
    """Write this month's projections for every scope in one transaction."""
    with runtime.session_factory.begin() as session:
        write_projections(session=session)


def anomalies_job(runtime: Runtime) -> None:
    """Score the last week of complete days and store the anomalies found."""
    with runtime.session_factory.begin() as session:
        detect_anomalies(session=session)


def alerts_job(runtime: Runtime) -> None:
    """Evaluate the rules and deliver; a failed send is kept for the next run."""
    with runtime.session_factory.begin() as session:
        # Rules saved before webhook URLs were encrypted get theirs sealed here, once.
        resealed = reseal_channels(session=session, cipher=runtime.cipher)
    if resealed:
        log.info("alerts: encrypted the webhook URLs of %d older rule(s)", resealed)
    report = run_check(
        session_factory=runtime.session_factory,
        settings=runtime.settings,
        http=requests.Session(),
        cipher=runtime.cipher,
    )
    if report.failed:
        log.warning("alerts: %s", report.summary())
    else:
        log.info("alerts: %s", report.summary())


# What new usage changes: run right after a sync or import wrote rows, wherever it came from
# (the worker's schedule, "Sync now", an upload, the command line), so the Overview's forecast
# never shows the projection of an empty month for an hour after the first sync, and a change
# to a closed month is a correction at once.
AFTER_NEW_USAGE = (corrections_job, projections_job, anomalies_job, alerts_job)


def after_new_usage(runtime: Runtime) -> list[str]:
    """Run the jobs that read fresh usage; returns the failures (each logged), never raises:
    the usage is stored whatever happens here, and the worker's next run retries."""
    failed = []
    for job in AFTER_NEW_USAGE:
        try:
            job(runtime)
        except Exception as exc:  # reported; the worker's schedule runs it again
            log.exception("%s after new usage failed", job.__name__)
            failed.append(f"{job.__name__.removesuffix('_job')}: {exc}")
    return failed


def housekeeping_job(runtime: Runtime) -> None:
    """Delete sign-in sessions and single-use links that ended more than 30 days ago."""
    with runtime.session_factory.begin() as session:
        ended = sessions.prune(session=session)
        used = links.prune(session=session)
    if ended or used:
        log.info("housekeeping: removed %d old session(s) and %d old link(s)", ended, used)


def partitions_job(runtime: Runtime) -> None:
    """On PostgreSQL: create the coming months' partitions of usage_records and move rows
    from its default partition to their month's (`tracker.core.partitions`)."""
    with runtime.engine.begin() as connection:
        done = partitions.maintain(connection, units.today_utc())
    if done.skipped:
        log.debug("partitions: %s", done.skipped)


def build_jobs(runtime: Runtime) -> list[Job]:
    """Every job the worker runs, in the order `--once` runs them."""
    every = runtime.settings.sync_interval_minutes
    return [
        Job("sync", sync_job, every),
        # Also on its own schedule: a team mapping or shared-cost rule may change a closed
        # month without new usage.
        Job("corrections", corrections_job, every),
        Job("projections", projections_job, every),
        Job("anomalies", anomalies_job, every),
        Job("alerts", alerts_job, every),
        Job("housekeeping", housekeeping_job, 24 * 60),
        # Hourly though months are made three ahead: a back-fill's old months leave the
        # default partition within the hour.
        Job("partitions", partitions_job, 60),
    ]
