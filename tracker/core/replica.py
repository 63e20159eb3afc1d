"""A read replica: a PostgreSQL streaming standby of the primary, and how far behind it is.

The app reads its cached figures from the standby when `DATABASE_REPLICA_URL` is set
(`tracker.ui.data`); writes, sign-in and anything that must read its own write stay on the
primary. This module only asks the servers; nothing here caches or decides for a page.

How far behind, by PostgreSQL's own counters on the standby:
- all the WAL it has received is applied (`pg_last_wal_replay_lsn()` at or past
  `pg_last_wal_receive_lsn()`) while its WAL receiver is streaming: it is current, 0 s
  behind. A primary that writes nothing sends nothing, so the time of the last applied
  transaction (`pg_last_xact_replay_timestamp()`) says nothing about what is missing then;
- otherwise (WAL waits to be applied, or the standby is not receiving from the primary):
  the time since the last transaction it applied. That is an upper bound: what waits may be
  younger. `None` when it has applied none since it started.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tracker.core.config import safe_url

log = logging.getLogger(__name__)

# A standby that does not answer within this hands the reads to the primary.
CONNECT_TIMEOUT_SECONDS = 3

_STANDBY_POSITION = text(
    """
    SELECT pg_is_in_recovery() AS standby,
           pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint AS received,
           pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS applied,
           EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float
               AS since_last_applied,
           -- any role sees the receiver's row (other columns need pg_read_all_stats)
           EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS streaming
    """
)


@dataclass(frozen=True)
class ReplicaStatus:
    """What the standby said (or that it did not answer)."""

    usable: bool  # reads may go to it
    applied: int | None = None  # WAL bytes applied (pg_last_wal_replay_lsn), for read-your-writes
    behind_seconds: float | None = None  # 0 when current; an upper bound otherwise
    streaming: bool = False  # its WAL receiver is connected to the primary
    problem: str | None = None  # why it is not usable (for the server log)

    def lagging(self, max_lag_seconds: float) -> bool:
        """Whether its figures may be more than `max_lag_seconds` behind the primary's."""
        behind = self.behind_seconds
        return self.usable and (behind is None or behind > max_lag_seconds)


def check_replica(engine: Engine) -> ReplicaStatus:
    """Ask the standby where it is; a standby that is down or is not a standby is unusable."""
    try:
        with engine.connect() as connection:
            row = connection.execute(_STANDBY_POSITION).one()
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        problem = f"the read replica at {safe_url(str(engine.url))} does not answer: {reason}"
        log.warning("%s; reading from the primary", problem)
        return ReplicaStatus(usable=False, problem=problem)
    if not row.standby:
        problem = (
            f"DATABASE_REPLICA_URL ({safe_url(str(engine.url))}) is not a standby "
            "(pg_is_in_recovery() is false): a promoted or separate server no longer follows "
            "the primary"
        )
        log.warning("%s; reading from the primary", problem)
        return ReplicaStatus(usable=False, problem=problem)
    current = (
        row.streaming
        and row.received is not None
        and row.applied is not None
        and row.applied >= row.received
    )
    return ReplicaStatus(
        usable=True,
        applied=row.applied,
        behind_seconds=0.0 if current else row.since_last_applied,
        streaming=bool(row.streaming),
    )


def primary_position(engine: Engine) -> int:
    """The primary's WAL position now (bytes): a standby that has applied this much has every
    transaction committed before this call."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            ).scalar_one()
        )
