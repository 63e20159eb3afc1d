"""Benchmark that a failed sign-in takes the same time whatever the reason (no enumeration).

Usage:
    .venv/bin/python bench/sign_in.py [--repeat 15]
        [--admin-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

Makes a scratch PostgreSQL database (dropped afterwards), migrates it, adds a user who is
active, one who is locked out, and times `tracker.identity.users.check_login` in its own
transaction, as the sign-in form runs it, for four answers: an unknown username, a locked
account (right password), a wrong password, and a right one. Prints the median of each in
milliseconds and the ratio of the slowest failure to the fastest.

Target: the three failures within a factor of 2 of each other.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generate import DEFAULT_ADMIN_URL, scratch_database  # noqa: E402
from tracker.core.db import make_engine, make_session_factory  # noqa: E402
from tracker.identity import users  # noqa: E402
from tracker.models import User, utcnow  # noqa: E402

PASSWORD = "quarterly ledger tangerine"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    with scratch_database(args.admin_url, "signin") as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            for username in ("active", "locked"):
                users.add_user(
                    session=session,
                    username=username,
                    email=f"{username}@example.com",
                    role="viewer",
                    password=PASSWORD,
                )
        cases: dict[str, tuple[str, str]] = {
            "unknown user": ("nobody-here", PASSWORD),
            "locked account": ("locked", PASSWORD),
            "wrong password": ("active", "not the password"),
            "right password": ("active", PASSWORD),
        }

        def time_one(username: str, password: str) -> float:
            with Session(engine) as s, s.begin():
                # The locked account stays locked, the active one never locks: each case
                # measures its own answer, whatever the attempts before it did.
                s.query(User).filter(User.username == "locked").update(
                    {User.locked_until: utcnow() + dt.timedelta(hours=1)}
                )
                s.query(User).filter(User.username == "active").update(
                    {User.failed_login_count: 0, User.locked_until: None}
                )
            started = time.perf_counter()
            with factory.begin() as session:
                users.check_login(session=session, username=username, password=password)
            return (time.perf_counter() - started) * 1000

        timings: dict[str, list[float]] = {label: [] for label in cases}
        # Interleaved, so a slow moment of the machine hits every case alike.
        for _ in range(args.repeat):
            for label, (username, password) in cases.items():
                timings[label].append(time_one(username, password))
        medians = {label: statistics.median(values) for label, values in timings.items()}
        print(f"check_login on PostgreSQL, median of {args.repeat} runs each:")
        for label, value in medians.items():
            print(f"  {label:15} {value:8.1f} ms")
        failures = [medians[k] for k in ("unknown user", "locked account", "wrong password")]
        ratio = max(failures) / min(failures)
        print(f"slowest failure / fastest failure: {ratio:.2f} (target < 2)")
        engine.dispose()
        return 0 if ratio < 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
