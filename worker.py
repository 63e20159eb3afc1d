"""The scheduled worker: syncs providers and runs the jobs that follow a sync.

`python worker.py` runs until SIGTERM/SIGINT (stopping cleanly between jobs);
`python worker.py --once` runs every job once and exits (non-zero if one failed).
Never imports Streamlit.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from types import FrameType

import schedule

from tracker.core.config import load_settings
from tracker.core.db import require_schema
from tracker.core.errors import TrackerError
from tracker.core.runtime import Runtime, build_runtime
from tracker.jobs import Job, build_jobs

log = logging.getLogger("worker")


class Worker:
    def __init__(self, runtime: Runtime, jobs: list[Job]) -> None:
        self.runtime = runtime
        self.jobs = jobs
        self.scheduler = schedule.Scheduler()
        self.stopping = False
        for job in jobs:
            self.scheduler.every(job.every_minutes).minutes.do(self.guarded, job).tag(job.name)

    def guarded(self, job: Job) -> bool:
        """Run one job, log and swallow its failure: a raising job would re-run every tick."""
        started = time.monotonic()
        try:
            job.run(self.runtime)
        except TrackerError as exc:  # an expected failure: its message says it all
            log.error("job %s failed after %.1f s: %s", job.name, time.monotonic() - started, exc)
            return False
        except Exception:
            log.exception("job %s failed after %.1f s", job.name, time.monotonic() - started)
            return False
        log.info("job %s done in %.1f s", job.name, time.monotonic() - started)
        return True

    def run_once(self) -> bool:
        results = [self.guarded(job) for job in self.jobs if not self.stopping]
        return all(results)

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %s; stopping after the current job", signum)
        self.stopping = True

    def run_forever(self, tick_seconds: float = 1.0) -> None:
        self.run_once()
        while not self.stopping:
            self.scheduler.run_pending()
            time.sleep(tick_seconds)
        log.info("worker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AI cost tracker worker")
    parser.add_argument("--once", action="store_true", help="run every job once and exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        runtime = build_runtime(settings)
        require_schema(runtime.engine)
    except TrackerError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    worker = Worker(runtime, build_jobs(runtime))
    # In a container the worker is PID 1, which ignores SIGTERM unless it installs a handler.
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    if args.once:
        return 0 if worker.run_once() else 1
    log.info("worker started with jobs: %s", ", ".join(j.name for j in worker.jobs) or "none")
    worker.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
