"""bench/concurrency.py at its smallest: one app process, one then two people, on a small
generated database on the test suite's streaming pair, without and with the standby as the
read replica. It must sign them in, walk the three pages and print its table; the figures
themselves are the benchmark's business, not a test's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import concurrency, generate
from tests.replication import StreamingPair
from tracker.core import migrate
from tracker.core.db import make_engine

pytestmark = pytest.mark.postgres

DATABASE = "tracker_bench_concurrency_test"


@pytest.fixture
def bench_database(streaming_pair: StreamingPair) -> Iterator[tuple[str, str]]:
    """A small generated database on the pair; its URLs on the primary and on the standby."""
    pair = streaming_pair
    pair.query(pair.primary_port, f"CREATE DATABASE {DATABASE}", dbname="postgres")
    primary = pair.primary_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    standby = pair.standby_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    try:
        engine = make_engine(primary)
        migrate.upgrade(engine, generate.BEFORE_ROLLUPS)
        engine.dispose()
        generate.generate(primary, 2_000, seed=7)
        pair.wait_caught_up()
        yield primary, standby
    finally:
        pair.query(
            pair.primary_port, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", dbname="postgres"
        )


def test_prints_page_times_without_and_with_the_replica(
    bench_database: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    primary, standby = bench_database
    code = concurrency.main(
        ["--url", primary, "--replica-url", standby, "--users", "1", "2", "--processes", "1",
         "--repeat", "1", "--think", "0", "0.2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    table = out[out.index("reads ") :].splitlines()
    assert "sign-in p50" in table[0] and "Exports p95" in table[0]
    rows = [line.split() for line in table[2:6]]
    assert [row[:2] for row in rows] == [
        ["primary", "1"], ["replica", "1"], ["primary", "2"], ["replica", "2"]
    ]  # fmt: skip
    assert all(row[9] == "0" for row in rows), out  # no errors
    assert [row[-1] == "—" for row in rows] == [True, False, True, False]  # the standby read
    assert all(int(row[-1].replace(",", "")) > 0 for row in rows if row[0] == "replica"), out
    for reads in ("primary", "replica"):
        assert f"page p95 at 2 users / at 1 (reads from the {reads}):" in out
