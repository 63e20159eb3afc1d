"""The worker: schedule wiring, the guarded sync job, failure isolation, SIGTERM, --once."""

from __future__ import annotations

import base64
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

import worker
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.fakes.provider_server import ANTHROPIC_KEY, ProviderServer
from tracker.core.config import load_settings
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_session_factory
from tracker.core.runtime import Runtime
from tracker.ingest import sync
from tracker.models import Account, SyncRun, UsageRecord
from tracker.providers import accounts

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def runtime(committed_db, tmp_path) -> Runtime:
    settings = load_settings(
        {
            "DATABASE_URL": committed_db.url.render_as_string(hide_password=False),
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SECRET_KEY": TEST_SECRET_KEY,
            "DATA_DIR": str(tmp_path / "data"),
            "SYNC_INTERVAL_MINUTES": "15",
            "HTTP_MAX_RETRIES": "2",
            "HTTP_BACKOFF_FACTOR": "0.01",
            "HTTP_BACKOFF_MAX_SECONDS": "1",
        },
        dotenv_path=None,
    )
    return Runtime(
        settings=settings,
        engine=committed_db,
        session_factory=make_session_factory(committed_db),
        cipher=CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY)),
    )


def test_sync_is_scheduled_every_interval(runtime):
    w = worker.Worker(runtime, worker.build_jobs(runtime))
    [job] = [j for j in w.scheduler.get_jobs() if "sync" in j.tags]
    assert job.interval == 15 and job.unit == "minutes"
    assert [j.name for j in w.jobs][0] == "sync"


def test_partition_job_runs_hourly_on_either_backend(runtime):
    w = worker.Worker(runtime, worker.build_jobs(runtime))
    [job] = [j for j in w.scheduler.get_jobs() if "partitions" in j.tags]
    assert job.interval == 60 and job.unit == "minutes"
    assert w.guarded(next(j for j in w.jobs if j.name == "partitions"))


def test_guarded_sync_job_syncs_and_reports_failures(runtime, monkeypatch):
    monkeypatch.setattr(sync, "utc_today", lambda: dt.date(2026, 8, 4))
    with ProviderServer() as server:
        with runtime.session_factory.begin() as session:
            for name, key in (("good", ANTHROPIC_KEY), ("bad", "sk-ant-admin01-wrong-0000")):
                accounts.add_account(
                    session=session,
                    cipher=runtime.cipher,
                    provider="anthropic",
                    name=name,
                    api_key=key,
                    base_url=server.url,
                )
        w = worker.Worker(runtime, worker.build_jobs(runtime))
        sync_job = next(j for j in w.jobs if j.name == "sync")
        assert w.guarded(sync_job) is False  # "bad" failed; the job did not raise
    with runtime.session_factory() as session:
        statuses = dict(session.execute(select(Account.name, Account.status)).all())
        rows = session.scalar(select(func.count()).select_from(UsageRecord))
        triggers = set(session.scalars(select(SyncRun.trigger)))
    assert statuses == {"good": "active", "bad": "error"}
    assert rows > 0 and triggers == {"worker"}


def test_a_raising_job_does_not_stop_the_others(runtime):
    ran: list[str] = []

    def boom(_runtime):
        ran.append("boom")
        raise RuntimeError("kaput")

    def fine(_runtime):
        ran.append("fine")

    w = worker.Worker(runtime, [worker.Job("boom", boom, 1), worker.Job("fine", fine, 1)])
    assert w.run_once() is False
    assert ran == ["boom", "fine"]
    w.scheduler.run_all()  # through schedule itself: the raise is contained there too
    assert ran == ["boom", "fine", "boom", "fine"]
    assert len(w.scheduler.get_jobs()) == 2


def test_sigterm_stops_between_jobs(runtime):
    ran: list[str] = []

    def terminate(_runtime):
        ran.append("terminate")
        os.kill(os.getpid(), signal.SIGTERM)

    def later(_runtime):
        ran.append("later")

    w = worker.Worker(runtime, [worker.Job("t", terminate, 1), worker.Job("l", later, 1)])
    previous = signal.signal(signal.SIGTERM, w.stop)
    try:
        w.run_forever(tick_seconds=0.01)  # returns: the signal stopped it
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert w.stopping and ran == ["terminate"]


def test_worker_once_runs_the_jobs_and_never_imports_streamlit(app_env):
    env = {**os.environ, **app_env}
    probe = "import sys, worker; assert 'streamlit' not in sys.modules, 'streamlit imported'"
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True, timeout=120)
    done = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "job sync done" in done.stderr


def test_new_usage_brings_a_stale_forecast_up_to_date(runtime, cli, tmp_path):
    """The worker stored this month's projections before any usage existed ($0); an import
    (the command line here; the app's upload and "Sync now" call the same) recomputes them
    at once instead of leaving $0 on the Overview until the worker's next run."""
    from tracker import jobs
    from tracker.models import CostProjection

    assert cli("accounts", "add", "--provider", "groq", "--name", "g", "--api-key-stdin",
               stdin="gsk_0123456789abcdef").code == 0  # fmt: skip
    jobs.projections_job(runtime)

    def org_total() -> float:
        with runtime.session_factory() as session:
            row = session.scalar(select(CostProjection).where(CostProjection.scope == "org"))
            return float(row.projected_total)

    assert org_total() == 0
    today = dt.datetime.now(dt.UTC).date()
    lines = ["day,model,input_tokens,output_tokens,requests,cost"]
    for back in range(1, 15):
        day = today - dt.timedelta(days=back)
        lines.append(f"{day},llama-3.3-70b-versatile,1000000,200000,100,2.50")
    usage = tmp_path / "usage.csv"
    usage.write_text("\n".join(lines) + "\n")
    result = cli("import", "--account", "g", str(usage))
    assert result.code == 0, result.err
    assert "projections, anomalies and alerts brought up to date" in result.out
    assert org_total() > 0
