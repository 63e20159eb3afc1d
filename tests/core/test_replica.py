"""How far behind a read replica is, asked of a real streaming standby (`tests.replication`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.replication import StreamingPair
from tracker.core.db import make_engine
from tracker.core.replica import check_replica, primary_position


@pytest.fixture
def engines(streaming_pair: StreamingPair) -> Iterator[tuple[Engine, Engine]]:
    """(primary, standby) engines; the standby is streaming and caught up before and after."""
    streaming_pair.wait_caught_up()
    primary = make_engine(streaming_pair.primary_url)
    standby = make_engine(streaming_pair.standby_url)
    yield primary, standby
    streaming_pair.resume_replay()
    streaming_pair.wait_caught_up()
    primary.dispose()
    standby.dispose()


def test_a_standby_of_an_idle_primary_is_current_though_its_last_replay_is_old(
    streaming_pair: StreamingPair, engines: tuple[Engine, Engine]
) -> None:
    primary, standby = engines
    streaming_pair.query(streaming_pair.primary_port, "CREATE TABLE IF NOT EXISTS marks (n int)")
    streaming_pair.wait_caught_up()
    time.sleep(1.2)  # nothing is written meanwhile
    (age,) = streaming_pair.query(
        streaming_pair.standby_port,
        "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())",
    )
    assert age > 1  # what a rule on the replay timestamp alone would report as lag
    status = check_replica(standby)
    assert status.usable and status.streaming and status.problem is None
    assert status.behind_seconds == 0 and not status.lagging(1)
    assert status.applied is not None and status.applied >= primary_position(primary)


def test_a_paused_standby_is_behind_by_the_age_of_its_last_applied_change(
    streaming_pair: StreamingPair, engines: tuple[Engine, Engine]
) -> None:
    primary, standby = engines
    streaming_pair.pause_replay()
    before = primary_position(primary)
    streaming_pair.query(streaming_pair.primary_port, "CREATE TABLE IF NOT EXISTS marks (n int)")
    streaming_pair.query(streaming_pair.primary_port, "INSERT INTO marks VALUES (1)")
    streaming_pair.wait_received_not_applied()
    time.sleep(1.2)
    status = check_replica(standby)
    assert status.usable and status.streaming
    assert status.behind_seconds is not None and status.behind_seconds > 1
    assert status.lagging(1) and not status.lagging(3600)
    assert status.applied is not None and status.applied < primary_position(primary)
    assert primary_position(primary) > before

    streaming_pair.resume_replay()
    streaming_pair.wait_caught_up()
    assert check_replica(standby).behind_seconds == 0


def test_a_server_that_is_not_a_standby_or_does_not_answer_is_not_used(
    streaming_pair: StreamingPair, engines: tuple[Engine, Engine]
) -> None:
    primary, _standby = engines
    not_a_standby = check_replica(primary)
    assert not not_a_standby.usable
    assert "is not a standby" in (not_a_standby.problem or "")

    from tests.replication import free_port

    nobody = make_engine(streaming_pair.url(free_port()))
    down = check_replica(nobody)
    nobody.dispose()
    assert not down.usable and "does not answer" in (down.problem or "")
