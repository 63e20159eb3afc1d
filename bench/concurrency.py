"""Page times with N people using the app at once: each signs in, then walks Overview -> Usage
explorer -> Exports, against running `streamlit run app.py` processes, with and without a
read replica (issue: "Concurrency benchmark").

Usage:
    .venv/bin/python bench/concurrency.py [--url URL] [--replica-url URL]
        [--users 1 10 25] [--processes 2] [--think 3 12] [--repeat 3] [--seed 7] [--warm]
    .venv/bin/python bench/concurrency.py --pair-rows 5000000 [the same options]

The database: `--url` names an existing benchmark database (bench/generate.py makes them;
default `tracker_bench_5000000` on the local server). `--replica-url` names a streaming
standby of that database's server (the same database on it): the rounds then run once
without it and once with it (`DATABASE_REPLICA_URL`). `--pair-rows ROWS` instead builds a
primary and a standby on free ports (tests/replication.py: initdb; bench/generate.py fills
the primary with ROWS rows, about 4 minutes at 5M; pg_basebackup copies it, a minute or two),
runs both halves on that primary, and removes both servers at the end. With neither, only
the half without a replica runs. The script adds to the benchmark database (never another)
one synthetic finance user per simultaneous person, `bench-finance-NN` (the Exports page
needs finance or admin), and this month's projections as the worker would store them.

A round: `--processes` app processes are started fresh. On each, a warm-up person walks the
pages once (imports and page scripts loaded, as on a server that has been up a while) and
presses "Refresh data" on Your account page, so the round starts with the frames cache empty
as after its five-minute expiry (`--warm` keeps the frames the warm-up read). Then N people
start within the same second (each at a seeded random moment in it), spread over the
processes round-robin as a sticky load balancer would. Each one speaks Streamlit's own
websocket protocol (`/_stcore/stream`, the protobuf messages a browser exchanges; no browser,
so the client stays light and the cores measure the server):
1. sign-in: opens the app (the sign-in form), submits username and password, follows the
   `auth_redirect` to `/auth/session?code=...`, which sets the `tracker_session` cookie; timed
   from opening the app to holding the cookie;
2. once every person of the round has signed in, everyone walks at once: after a think time
   (seeded, uniform between the two `--think` values, 3-12 s by default: someone reading a
   page of figures before the next click) opens the app again with the cookie, landing on
   the Overview; thinks again and switches to the Usage explorer; thinks again and switches
   to Exports (opens the page; prepares no file). `--think 1 3` is a stress variant: people
   clicking through without reading.
A page's time runs from sending its rerun (for the Overview, from opening the websocket) to
the server's `script_finished`: every element of the page has been sent. Each page is checked
(its title shown, no exception); a page whose figures came from the primary because the
replica could not be used is counted. Each (N, replica) round runs `--repeat` times, each on
fresh processes, and pools its samples.

Prints, per round: sign-in p50/p95, page p50/p95 over the three pages, each page's p95, the
errors, the machine's CPU use during the round (every process, from /proc/stat: other work
on the machine shows there too), the load average at its end, the CPU seconds of the app
processes and of this client, and the rows the queries read on the primary and on the
standby (pg_stat_database, warm-up included). Then, per half, the largest N's page p95 over
the smallest N's: target within 3x (OK / MISSED).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import http.client
import math
import os
import random
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generate import DEFAULT_ADMIN_URL, database_url, store_projections  # noqa: E402
from tracker.core import migrate, units  # noqa: E402
from tracker.core.db import make_engine  # noqa: E402
from tracker.core.replica import check_replica  # noqa: E402
from tracker.identity import users  # noqa: E402
from tracker.models import User  # noqa: E402
from tracker.ui.web import COOKIE_NAME  # noqa: E402

DEFAULT_URL = database_url(DEFAULT_ADMIN_URL, "tracker_bench_5000000")
# The walk: (url path, the page's title); "" is the home page a sign-in lands on.
WALK = (("", "Overview"), ("usage", "Usage explorer"), ("exports", "Exports"))
USERNAME = "bench-finance-{:02d}"
PASSWORD = "synthetic bench finance walk 7Qx"  # only in benchmark databases
ENCRYPTION_KEY = base64.urlsafe_b64encode(b"c" * 32).decode()  # no real credential is there
SECRET_KEY = "synthetic-bench-secret-key-long-enough-0123456789"
STARTUP_S = 120
PAGE_TIMEOUT_S = 300
TARGET_RATIO = 3.0


# --- Streamlit's websocket protocol -------------------------------------------------------------


@dataclass
class ScriptRun:
    """What the server sent for one run of the app's script."""

    seconds: float
    headings: list[str] = field(default_factory=list)
    widgets: dict[str, str] = field(default_factory=dict)  # label -> widget id
    pages: dict[str, str] = field(default_factory=dict)  # url path -> page script hash
    page_hash: str = ""
    redirect: str | None = None
    exceptions: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # st.info/warning/error bodies


def rerun(
    base: str, *, page_hash: str = "", page: str = "", widgets: Sequence[WidgetState] = ()
) -> bytes:
    """The BackMsg a browser sends to run the script: at first, on a page switch, on a submit."""
    message = BackMsg()
    state = message.rerun_script
    state.page_script_hash = page_hash
    state.page_name = page
    state.context_info.timezone = "UTC"
    state.context_info.locale = "en-US"
    state.context_info.url = f"{base}/{page}"
    state.widget_states.widgets.extend(widgets)
    return message.SerializeToString()


def _read(run: ScriptRun, message: ForwardMsg) -> None:
    kind = message.WhichOneof("type")
    if kind == "navigation":
        run.pages = {p.url_pathname: p.page_script_hash for p in message.navigation.app_pages}
        run.page_hash = message.navigation.page_script_hash
    elif kind == "auth_redirect":
        run.redirect = message.auth_redirect.url
    elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
        element = message.delta.new_element
        which = element.WhichOneof("type")
        if which is None:
            return
        part = getattr(element, which)
        if which == "heading":
            run.headings.append(part.body)
        elif which == "exception":
            run.exceptions.append(f"{part.type}: {part.message}")
        elif which == "alert":
            run.notices.append(part.body)
        if getattr(part, "id", "") and getattr(part, "label", ""):
            run.widgets[part.label] = part.id


async def run_script(
    ws: ClientConnection, message: bytes, started: float | None = None
) -> ScriptRun:
    """Send `message`; read until the script finished (not one cut short by a rerun)."""
    started = time.perf_counter() if started is None else started
    await ws.send(message)
    run = ScriptRun(0.0)
    async with asyncio.timeout(PAGE_TIMEOUT_S):
        while True:
            received = await ws.recv()
            forward = ForwardMsg()
            forward.ParseFromString(received if isinstance(received, bytes) else received.encode())
            if forward.WhichOneof("type") == "script_finished":
                if forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    run.seconds = time.perf_counter() - started
                    return run
            else:
                _read(run, forward)


def open_session(base: str, cookie: str | None = None) -> Any:
    """A websocket to the app as a browser tab opens it (the same origin, the cookie if any)."""
    host = urlsplit(base).netloc
    return connect(
        f"ws://{host}/_stcore/stream",
        subprotocols=[Subprotocol("streamlit")],
        origin=Origin(base),
        additional_headers={"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else None,
        max_size=None,
        open_timeout=PAGE_TIMEOUT_S,
    )


def redeem(base: str, path: str) -> str:
    """Follow the sign-in's hand-off as the browser does; return the cookie the route set."""
    connection = http.client.HTTPConnection(urlsplit(base).netloc, timeout=PAGE_TIMEOUT_S)
    try:
        connection.request("GET", path, headers={"Sec-Fetch-Site": "same-origin"})
        response = connection.getresponse()
        response.read()
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
    finally:
        connection.close()
    if COOKIE_NAME not in cookies:
        raise RuntimeError(f"the sign-in route set no cookie (HTTP {response.status})")
    return cookies[COOKIE_NAME].value


# --- one person -------------------------------------------------------------------------------


@dataclass
class Person:
    username: str
    base: str  # the app process this person's balancer sends them to
    start_at: float  # seconds after the round's start
    thinks: tuple[float, ...]  # before each page


@dataclass
class Walked:
    sign_in: float | None = None
    pages: dict[str, float] = field(default_factory=dict)  # title -> seconds
    failed_over: int = 0  # pages whose figures came from the primary: the replica was unusable
    error: str | None = None


def _check(run: ScriptRun, title: str) -> None:
    if run.exceptions:
        raise RuntimeError(f"{title}: {run.exceptions[0]}")
    if title not in run.headings:
        raise RuntimeError(f"{title}: not shown (headings {run.headings[:3]})")


async def sign_in(base: str, username: str) -> str:
    """Open the app, submit the sign-in form, follow its hand-off; return the cookie."""
    async with open_session(base) as ws:
        form = await run_script(ws, rerun(base))
        fields = [form.widgets.get(label) for label in ("Username", "Password", "Sign in")]
        if None in fields:
            raise RuntimeError(f"no sign-in form (headings {form.headings[:3]})")
        user, password, submit = (str(f) for f in fields)
        typed = [
            WidgetState(id=user, string_value=username),
            WidgetState(id=password, string_value=PASSWORD),
            WidgetState(id=submit, trigger_value=True),
        ]
        submitted = await run_script(ws, rerun(base, page_hash=form.page_hash, widgets=typed))
    if submitted.redirect is None:
        raise RuntimeError(f"the sign-in was refused: {submitted.notices[:1]}")
    return await asyncio.to_thread(redeem, base, submitted.redirect)


async def arrive(person: Person, round_start: float) -> tuple[str | None, Walked]:
    """Sign in at the person's moment of the round's first second; return the cookie."""
    walked = Walked()
    await asyncio.sleep(max(round_start + person.start_at - time.perf_counter(), 0))
    try:
        started = time.perf_counter()
        cookie = await sign_in(person.base, person.username)
        walked.sign_in = time.perf_counter() - started
        return cookie, walked
    except Exception as exc:  # counted and shown, the round goes on
        walked.error = f"{person.username}: {type(exc).__name__}: {exc}"
        return None, walked


async def walk(person: Person, cookie: str, walked: Walked) -> Walked:
    """The pages of WALK, each after one of the person's think times."""
    try:
        await asyncio.sleep(person.thinks[0])
        landed = time.perf_counter()
        async with open_session(person.base, cookie) as ws:
            pages: dict[str, str] = {}
            for index, (path, title) in enumerate(WALK):
                if index == 0:
                    run = await run_script(ws, rerun(person.base), landed)
                else:
                    await asyncio.sleep(person.thinks[index])
                    message = rerun(person.base, page_hash=pages[path], page=path)
                    run = await run_script(ws, message)
                _check(run, title)
                pages = run.pages or pages
                walked.pages[title] = run.seconds
                walked.failed_over += any("read replica cannot be used" in n for n in run.notices)
    except Exception as exc:  # counted and shown, the round goes on
        walked.error = f"{person.username}: {type(exc).__name__}: {exc}"
    return walked


async def warm_up(base: str, *, keep_frames: bool) -> None:
    """Walk the pages once on a fresh process (its imports and page scripts loaded); then,
    unless `keep_frames`, press "Refresh data" on a page that reads no frame (Your account),
    which empties the process's frames cache as the five-minute expiry does."""
    cookie = await sign_in(base, USERNAME.format(1))
    async with open_session(base, cookie) as ws:
        run = await run_script(ws, rerun(base))
        _check(run, WALK[0][1])
        pages = run.pages
        for path, title in WALK[1:]:
            run = await run_script(ws, rerun(base, page_hash=pages[path], page=path))
            _check(run, title)
        if keep_frames:
            return
        account = await run_script(ws, rerun(base, page_hash=pages["account"], page="account"))
        _check(account, "Your account")
        refresh = [WidgetState(id=account.widgets["Refresh data"], trigger_value=True)]
        message = rerun(base, page_hash=pages["account"], page="account", widgets=refresh)
        _check(await run_script(ws, message), "Your account")


# --- app processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(base: str) -> bool:
    connection = http.client.HTTPConnection(urlsplit(base).netloc, timeout=2)
    try:
        connection.request("GET", "/_stcore/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@dataclass
class App:
    process: subprocess.Popen[bytes]
    base: str  # its URL
    log: Path


@contextmanager
def app_processes(count: int, url: str, replica_url: str | None) -> Iterator[list[App]]:
    """`count` fresh `streamlit run app.py` processes on one database, each on its own port
    with the same secrets (docs/operations.md, "Several app processes"). They run in a
    scratch folder (the project's .streamlit config, no .env of the checkout)."""
    folder = Path(tempfile.mkdtemp(prefix="tracker-bench-concurrency-"))
    shutil.copytree(ROOT / ".streamlit", folder / ".streamlit")
    shared = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "ENCRYPTION"))},
        "DATABASE_URL": url,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "SECRET_KEY": SECRET_KEY,
        "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_urlsafe(32),
        "TRACKER_ENV": "development",
        "DATA_DIR": str(folder / "data"),
        **({"DATABASE_REPLICA_URL": replica_url} if replica_url else {}),
    }
    apps: list[App] = []
    try:
        for index in range(count):
            port = free_port()
            log = folder / f"app{index}.log"
            with log.open("w") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                     "--server.port", str(port), "--server.address", "127.0.0.1",
                     "--server.headless", "true", "--browser.gatherUsageStats", "false",
                     "--server.fileWatcherType", "none"],
                    cwd=folder,
                    env={**shared, "PUBLIC_URL": f"http://127.0.0.1:{port}"},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            apps.append(App(process, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + STARTUP_S
        for app in apps:
            while not _healthy(app.base):
                if app.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"an app process did not start:\n{app.log.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
        yield apps
    finally:
        for app in apps:
            app.process.terminate()
        for app in apps:
            try:
                app.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                app.process.kill()
                app.process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far."""
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- rounds -----------------------------------------------------------------------------------


@dataclass
class Round:
    reads: str  # "primary" or "replica"
    users: int
    sign_ins: list[float] = field(default_factory=list)
    pages: dict[str, list[float]] = field(default_factory=dict)  # title -> seconds
    errors: list[str] = field(default_factory=list)
    failed_over: int = 0
    busy_pct: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    app_cpu: float = 0.0
    client_cpu: float = 0.0
    rows_read: dict[str, int] = field(default_factory=dict)  # server -> rows its queries read

    @property
    def all_pages(self) -> list[float]:
        return [s for samples in self.pages.values() for s in samples]


def people(
    n: int, bases: list[str], think: tuple[float, float], rng: random.Random
) -> list[Person]:
    return [
        Person(
            username=USERNAME.format(i + 1),
            base=bases[i % len(bases)],
            start_at=rng.uniform(0, 1),
            thinks=tuple(rng.uniform(*think) for _ in WALK),
        )
        for i in range(n)
    ]


async def _walk_all(group: list[Person]) -> list[Walked]:
    """Everyone signs in within the same second; once all are in, everyone walks at once."""
    start = time.perf_counter() + 0.2  # every task scheduled before the first starts
    arrived = await asyncio.gather(*(arrive(p, start) for p in group))
    return list(
        await asyncio.gather(
            *(
                walk(person, cookie, walked) if cookie else asyncio.sleep(0, walked)
                for person, (cookie, walked) in zip(group, arrived, strict=True)
            )
        )
    )


def run_round(
    result: Round, args: argparse.Namespace, url: str, replica: str | None, rng: random.Random
) -> None:
    servers = {"primary": url, **({"standby": replica} if replica else {})}
    read_before = {name: rows_read(at) for name, at in servers.items()}
    with app_processes(args.processes, url, replica) as apps:
        bases = [app.base for app in apps]
        for base in bases:
            asyncio.run(warm_up(base, keep_frames=args.warm))
        group = people(result.users, bases, args.think, rng)
        app_before = sum(_cpu_seconds(app.process.pid) for app in apps)
        client_before, (busy_before, total_before) = _client_cpu(), _machine_ticks()
        walked = asyncio.run(_walk_all(group))
        busy, total = _machine_ticks()
        result.busy_pct.append(100 * (busy - busy_before) / max(total - total_before, 1))
        result.load.append(os.getloadavg()[0])
        result.app_cpu += sum(_cpu_seconds(app.process.pid) for app in apps) - app_before
        result.client_cpu += _client_cpu() - client_before
    # Read once the processes have ended: their connections flushed their statistics.
    for name, at in servers.items():
        result.rows_read[name] = result.rows_read.get(name, 0) + rows_read(at) - read_before[name]
    for one in walked:
        if one.error:
            result.errors.append(one.error)
            continue
        assert one.sign_in is not None
        result.sign_ins.append(one.sign_in)
        for title, seconds in one.pages.items():
            result.pages.setdefault(title, []).append(seconds)
        result.failed_over += one.failed_over


def p95(samples: list[float]) -> float:
    """The nearest-rank 95th percentile (of 3 samples, their largest)."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)] if ordered else math.nan


def p50(samples: list[float]) -> float:
    return statistics.median(samples) if samples else math.nan


def ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.0f}"


# --- the database -------------------------------------------------------------------------------


def prepare(url: str, count: int) -> None:
    """Migrate to head, store this month's projections as the worker does, and give the
    synthetic finance users `bench-finance-01..count` PASSWORD (made when missing; an earlier
    run's sessions ended, any lockout lifted)."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        store_projections(engine, units.today_utc())
        with Session(engine) as session, session.begin():
            for i in range(1, count + 1):
                name = USERNAME.format(i)
                user = session.scalar(select(User).where(User.username == name))
                if user is None:
                    users.add_user(
                        session=session,
                        username=name,
                        email=f"{name}@example.org",
                        role="finance",
                        password=PASSWORD,
                        name=f"Bench finance {i} (synthetic)",
                        actor="bench",
                    )
                else:
                    user.is_active = True
                    users.set_password(
                        session=session, user=user, password=PASSWORD, actor="bench",
                        keep_session_id=None,
                    )  # fmt: skip
    finally:
        engine.dispose()


def rows_read(url: str) -> int:
    """Rows the queries on this server have read from the database so far (its statistics)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT tup_returned + tup_fetched FROM pg_stat_database "
                        "WHERE datname = current_database()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def check_standby(url: str, replica_url: str) -> None:
    engine = make_engine(replica_url)
    try:
        status = check_replica(engine)
    finally:
        engine.dispose()
    if not status.usable:
        raise SystemExit(f"--replica-url cannot be used as a read replica: {status.problem}")
    if make_url(url).database != make_url(replica_url).database:
        raise SystemExit("--url and --replica-url must name the same database")


@contextmanager
def built_pair(rows: int) -> Iterator[tuple[str, str]]:
    """A primary filled by bench/generate.py with `rows` rows and a streaming standby copied
    from it (tests/replication.py); yields the benchmark database's URL on each."""
    from tests.replication import StreamingPair, streaming_pair, unavailable

    if missing := unavailable():
        raise SystemExit(f"--pair-rows: {missing}")
    name = f"tracker_bench_{rows}"

    def fill(pair: StreamingPair) -> None:
        admin = make_url(pair.primary_url).set(database="postgres")
        print(f"generating {name} on the new primary ...", flush=True)
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "generate.py"), "--rows", str(rows),
             "--database", name, "--admin-url", admin.render_as_string(hide_password=False)],
            check=True,
        )  # fmt: skip
        print("copying the primary to the standby (pg_basebackup) ...", flush=True)

    # The shared server's defaults (the pair's own are sized for tests).
    with streaming_pair(settings="-c shared_buffers=128MB", before_standby=fill) as pair:
        primary = make_url(pair.primary_url).set(database=name)
        standby = make_url(pair.standby_url).set(database=name)
        yield (
            primary.render_as_string(hide_password=False),
            standby.render_as_string(hide_password=False),
        )


# --- main ---------------------------------------------------------------------------------------


def report(rounds: list[Round], args: argparse.Namespace) -> None:
    print()
    print(
        f"page times in ms; {args.processes} app process(es), people spread round-robin; think "
        f"{args.think[0]:g}-{args.think[1]:g} s; {args.repeat} round(s) of each on fresh "
        f"processes (frames cache {'warm' if args.warm else 'empty'}); {os.cpu_count()} CPU(s)"
    )
    head = (
        f"{'reads':<8} {'users':>5} {'sign-in p50':>11} {'p95':>6} {'page p50':>9} {'p95':>6} "
        + " ".join(f"{title + ' p95':>{max(len(title) + 4, 8)}}" for _, title in WALK)
        + f" {'errors':>6} {'CPU busy':>8} {'load1':>5} {'app CPU s':>9} {'client CPU s':>12}"
        + f" {'rows read: primary':>18} {'standby':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rounds:
        print(
            f"{r.reads:<8} {r.users:>5} {ms(p50(r.sign_ins)):>11} {ms(p95(r.sign_ins)):>6} "
            f"{ms(p50(r.all_pages)):>9} {ms(p95(r.all_pages)):>6} "
            + " ".join(
                f"{ms(p95(r.pages.get(title, []))):>{max(len(title) + 4, 8)}}" for _, title in WALK
            )
            + f" {len(r.errors):>6} {statistics.mean(r.busy_pct):>7.0f}% "
            f"{max(r.load):>5.1f} {r.app_cpu:>9.1f} {r.client_cpu:>12.1f}"
            f" {r.rows_read.get('primary', 0):>18,} "
            + (f"{r.rows_read['standby']:>9,}" if "standby" in r.rows_read else f"{'—':>9}")
        )
    for r in rounds:
        if r.failed_over:
            print(f"{r.reads}, {r.users} users: {r.failed_over} page(s) read the primary instead")
        for error in r.errors[:3]:
            print(f"error ({r.reads}, {r.users} users): {error}")
    print()
    for reads in dict.fromkeys(r.reads for r in rounds):
        half = [r for r in rounds if r.reads == reads]
        fewest, most = min(half, key=lambda r: r.users), max(half, key=lambda r: r.users)
        if fewest is most:
            continue
        ratio = p95(most.all_pages) / p95(fewest.all_pages)
        errors = sum(len(r.errors) for r in half)
        verdict = "OK" if ratio <= TARGET_RATIO and not errors else "MISSED"
        print(
            f"page p95 at {most.users} users / at {fewest.users} (reads from the {reads}): "
            f"{ratio:.2f}x (target <= {TARGET_RATIO:g}x{', no errors' if errors else ''}): "
            f"{verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help=f"the benchmark database (default {DEFAULT_URL})")
    where.add_argument("--pair-rows", type=int, help="build a primary and standby of this size")
    parser.add_argument("--replica-url", help="a streaming standby of --url's server")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 25])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--think", type=float, nargs=2, default=[3.0, 12.0], metavar=("MIN", "MAX"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warm", action="store_true", help="keep the warm-up's frames cached")
    args = parser.parse_args(argv)
    if args.pair_rows and args.replica_url:
        parser.error("--replica-url names the standby of --url; --pair-rows builds its own")
    args.think = (min(args.think), max(args.think))
    rng = random.Random(args.seed)
    with ExitStack() as stack:
        url, replica = args.url or DEFAULT_URL, args.replica_url
        if args.pair_rows:
            url, replica = stack.enter_context(built_pair(args.pair_rows))
        prepare(url, max(args.users))
        halves: list[tuple[str, str | None]] = [("primary", None)]
        if replica:
            check_standby(url, replica)
            halves.append(("replica", replica))
        started = dt.datetime.now(dt.UTC)
        print(f"started {started:%Y-%m-%d %H:%M} UTC on {make_url(url).database}", flush=True)
        rounds: list[Round] = []
        for users_count in sorted(args.users):
            for reads, replica_url in halves:
                result = Round(reads, users_count)
                for _ in range(args.repeat):
                    run_round(result, args, url, replica_url, rng)
                print(
                    f"  {reads}, {users_count} users: page p95 {ms(p95(result.all_pages))} ms, "
                    f"{len(result.errors)} error(s)",
                    flush=True,
                )
                rounds.append(result)
        report(rounds, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
