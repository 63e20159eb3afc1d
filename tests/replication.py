"""A real PostgreSQL streaming pair for tests: a primary made with `initdb` and a standby made
from it with `pg_basebackup -R`, each on a free loopback port, in a temporary folder that is
removed at the end. The test suite's `streaming_pair` fixture (tests/conftest.py) and
bench/concurrency.py use it; it needs no pytest.

A cluster of its own, not the shared server on 5432: replication needs a `replication` line
in pg_hba.conf, and a test may pause, stop and restart the standby. PostgreSQL refuses to
run as root, so as root the clusters run as the `postgres` user. Without the server binaries
(`unavailable` says why) the tests that need a pair are skipped, except under CI=true, where
they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

SERVER_USER = "postgres"  # the OS user the clusters run as when the tests run as root
DATABASE = "tracker"
WAIT_S = 30
COPY_WAIT_S = 1800  # pg_basebackup of a benchmark's primary (gigabytes) takes minutes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (`PG_BINDIR` wins), or None."""
    if from_env := os.environ.get("PG_BINDIR"):
        return Path(from_env)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class StreamingPair:
    """A primary and its standby, both up; the URLs name database `tracker` on each."""

    bindir: Path
    folder: Path
    primary_port: int
    standby_port: int
    as_root: bool
    settings: str = ""  # more `-c name=value` server options, for both servers

    def url(self, port: int) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{DATABASE}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def standby_url(self) -> str:
        return self.url(self.standby_port)

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        user: dict[str, Any] = {"user": SERVER_USER, "group": SERVER_USER} if self.as_root else {}
        subprocess.run(
            [str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.folder,
            timeout=timeout,
            **user,
        )

    def _start(self, name: str, port: int) -> None:
        options = (
            f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c shared_buffers=32MB {self.settings}"
        )
        self._run(
            "pg_ctl", "-D", str(self.folder / name), "-l", str(self.folder / f"{name}.log"),
            "-o", options, "-w", "-t", str(WAIT_S), "start",
        )  # fmt: skip

    def _stop(self, name: str, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.folder / name), "-m", mode, "-w", "stop")

    def query(self, port: int, sql: str, dbname: str = DATABASE) -> Any:
        """One statement on one server (autocommit); its first row, or None."""
        conn = psycopg2.connect(
            host="127.0.0.1", port=port, user="postgres", dbname=dbname, connect_timeout=5
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone() if cur.description else None
        finally:
            conn.close()

    def stop_standby(self) -> None:
        self._stop("standby")

    def start_standby(self) -> None:
        self._start("standby", self.standby_port)
        self.wait_caught_up()

    def pause_replay(self) -> None:
        self.query(self.standby_port, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.query(self.standby_port, "SELECT pg_wal_replay_resume()")

    def wait_until(self, sql: str, what: str) -> None:
        """Poll the standby until `sql` is true."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                if self.query(self.standby_port, sql)[0]:
                    return
            except psycopg2.OperationalError:
                pass  # still starting
            time.sleep(0.1)
        raise AssertionError(f"the standby did not get there in {WAIT_S}s: {what}")

    def wait_caught_up(self) -> None:
        """Until the standby streams and has applied everything the primary holds now."""
        (position,) = self.query(self.primary_port, "SELECT pg_current_wal_lsn()")
        self.wait_until(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver) "
            f"AND pg_last_wal_replay_lsn() >= '{position}'",
            f"applied up to {position}",
        )

    def wait_received_not_applied(self) -> None:
        """Until the (paused) standby holds WAL it has not applied."""
        self.wait_until(
            "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()",
            "received WAL it has not applied",
        )


def unavailable() -> str | None:
    """Why no pair can be made on this machine, or None when one can."""
    bindir = server_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        return "PostgreSQL's server binaries (initdb, pg_basebackup, pg_ctl) are not installed"
    if os.geteuid() == 0 and SERVER_USER not in {entry.pw_name for entry in pwd.getpwall()}:
        return f"no {SERVER_USER!r} user to run PostgreSQL as (it refuses to run as root)"
    return None


@contextmanager
def streaming_pair(
    *, settings: str = "", before_standby: Callable[[StreamingPair], None] | None = None
) -> Iterator[StreamingPair]:
    """Create a primary (with an empty database `tracker`) and a streaming standby of it;
    stop both and remove their folder at the end. `settings`: more `-c name=value` server
    options; `before_standby(pair)` fills the primary before the standby is copied from it (a
    large load is copied as files then, not replayed). Check `unavailable()` first."""
    if missing := unavailable():
        raise RuntimeError(missing)
    bindir = server_bindir()
    assert bindir is not None
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="tracker-replica-"))
    if as_root:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
    pair = StreamingPair(bindir, folder, free_port(), free_port(), as_root, settings)
    started: list[str] = []
    try:
        # initdb's pg_hba.conf trusts local and loopback connections, replication included.
        pair._run("initdb", "-D", str(folder / "primary"), "-U", "postgres", "--auth=trust",
                  "-N", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        pair._start("primary", pair.primary_port)
        started.append("primary")
        pair.query(pair.primary_port, f"CREATE DATABASE {DATABASE}", dbname="postgres")
        if before_standby is not None:
            before_standby(pair)
        pair._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(pair.primary_port),
                  "-U", "postgres", "-D", str(folder / "standby"), "-R", "-X", "stream",
                  "-c", "fast", timeout=COPY_WAIT_S)  # fmt: skip
        pair._start("standby", pair.standby_port)
        started.append("standby")
        pair.wait_caught_up()
        yield pair
    finally:
        for name in reversed(started):
            try:
                pair._stop(name, "immediate")
            except subprocess.CalledProcessError:
                pass  # a test stopped it already
        shutil.rmtree(folder, ignore_errors=True)
