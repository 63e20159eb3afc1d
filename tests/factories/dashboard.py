"""A seeded database for query, UI and browser tests: accounts, usage, sync runs, users.

Rows are placed relative to `today` so the month-to-date and 30-day windows always hold
data; tests compute the expected totals from `USAGE` in Python, independently of SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from tests.factories import add_account
from tracker.core.crypto import CredentialCipher
from tracker.costs.spend import assign_cost_sources
from tracker.identity.users import hash_password
from tracker.models import Account, SyncRun, UsageRecord, User

PASSWORD = "correct horse battery"
USERS = {"alice": "admin", "fin": "finance", "vic": "viewer"}


@dataclass(frozen=True)
class Seed:
    account: str
    days_ago: int
    model: str
    billed: Decimal | None
    estimated: Decimal | None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    requests: int = 0
    project: str = ""
    api_key: str = ""
    user: str = ""


# The people behind the OpenAI keys, as the organisation's user listing names them.
USER_NAMES = {"user_ada": "Ada Park", "user_tom": "Tom Reyes"}
ACCOUNTS = [
    # name, provider, monthly budget, token quota, key
    ("OpenAI Prod", "openai", Decimal("100.00"), 2_000_000, "sk-test-openai-AAAA1234"),
    ("Anthropic Team", "anthropic", Decimal("20.00"), None, "sk-ant-test-BBBB5678"),
    ("Groq CSV", "groq", None, None, "gsk_test_CCCC9012"),
]

USAGE = [
    Seed(
        "OpenAI Prod",
        0,
        "gpt-4o",
        Decimal("12.345678"),
        Decimal("12.000000"),
        100_000,
        20_000,
        5_000,
        40,
        "proj_a",
        "key_1",
        "user_ada",
    ),
    Seed(
        "OpenAI Prod",
        0,
        "gpt-4o-mini",
        None,
        Decimal("0.101010"),
        50_000,
        5_000,
        0,
        10,
        "proj_b",
        "key_2",
        "user_tom",
    ),
    Seed(
        "OpenAI Prod",
        1,
        "gpt-4o",
        Decimal("7.000001"),
        None,
        60_000,
        9_000,
        0,
        20,
        "proj_a",
        "key_1",
    ),
    Seed(
        "OpenAI Prod",
        3,
        "gpt-4o",
        Decimal("0.333333"),
        Decimal("0.3"),
        1_000,
        100,
        0,
        2,
        "proj_a",
        "key_1",
    ),
    Seed(
        "OpenAI Prod",
        12,
        "gpt-4o",
        Decimal("4.444444"),
        None,
        30_000,
        3_000,
        0,
        9,
        "proj_a",
        "key_1",
    ),
    Seed(
        "Anthropic Team",
        0,
        "claude-sonnet-4",
        None,
        Decimal("16.666667"),
        200_000,
        30_000,
        10_000,
        0,  # Anthropic's usage report counts no requests
    ),
    Seed("Anthropic Team", 2, "claude-sonnet-4", None, Decimal("0.010001"), 700, 70, 0, 0),
    Seed("Anthropic Team", 25, "claude-haiku", None, Decimal("1.250000"), 9_000, 900, 0, 0),
    Seed("Anthropic Team", 33, "claude-haiku", None, Decimal("2.500000"), 9_000, 900, 0, 0),
    Seed("Groq CSV", 0, "llama-3.3-70b", None, None, 1_234, 567, 0, 3),
    Seed("Groq CSV", 45, "llama-3.3-70b", Decimal("0.020000"), None, 1_000, 100, 0, 1),
]


def seed_accounts(session: Session, cipher: CredentialCipher) -> dict[str, Account]:
    """Add the seeded accounts (keys encrypted like the product does)."""
    out = {}
    now = dt.datetime.now(dt.UTC)
    for name, provider, budget, quota, key in ACCOUNTS:
        out[name] = add_account(
            session,
            name,
            provider,
            budget=budget,
            token_quota=quota,
            credential=(cipher.encrypt(key), key[-4:]),
            status="active",
            last_sync_at=now - dt.timedelta(hours=2),
        )
    out["Anthropic Team"].status = "error"
    out["Anthropic Team"].last_error = "anthropic rejected the key (401); check or replace it"
    out["OpenAI Prod"].rate_limit_snapshot = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
    }
    session.flush()
    return out


def seed_usage(session: Session, accounts: dict[str, Account], today: dt.date) -> None:
    for s in USAGE:
        session.add(
            UsageRecord(
                account_id=accounts[s.account].id,
                day=today - dt.timedelta(days=s.days_ago),
                model=s.model,
                project_id=s.project,
                api_key_id=s.api_key,
                user_id=s.user,
                user_name=USER_NAMES.get(s.user),
                input_tokens=s.input_tokens,
                output_tokens=s.output_tokens,
                cached_input_tokens=s.cached_input_tokens,
                requests=s.requests,
                billed_cost=s.billed,
                estimated_cost=s.estimated,
                pricing_status="priced" if s.estimated is not None else "unpriced",
            )
        )
    session.flush()
    # Which amount counts is the product's rule, not the seed's.
    assign_cost_sources(session=session, start=dt.date(2000, 1, 1), end=dt.date(2100, 1, 1))


def seed_sync_runs(session: Session, accounts: dict[str, Account], today: dt.date) -> None:
    now = dt.datetime.now(dt.UTC)
    for i, (name, status, error) in enumerate(
        [
            ("OpenAI Prod", "success", None),
            ("Anthropic Team", "failed", "anthropic rejected the key (401); check or replace it"),
        ]
    ):
        session.add(
            SyncRun(
                account_id=accounts[name].id,
                trigger="worker",
                range_start=today - dt.timedelta(days=3),
                range_end=today,
                started_at=now - dt.timedelta(hours=2, minutes=i),
                finished_at=now - dt.timedelta(hours=2, minutes=i) + dt.timedelta(seconds=3),
                duration_ms=3000,
                rows_written=5 if status == "success" else 0,
                status=status,
                error=error,
            )
        )
    session.flush()


def seed_users(session: Session) -> None:
    hashed = hash_password(PASSWORD)  # one bcrypt hash for all: keeps seeding fast
    for username, role in USERS.items():
        session.add(
            User(
                username=username,
                email=f"{username}@example.org",
                name=username.title(),
                password_hash=hashed,
                role=role,
                is_active=True,
                failed_login_count=0,
            )
        )
    session.flush()


def seed_all(session: Session, cipher: CredentialCipher, today: dt.date) -> dict[str, Account]:
    accounts = seed_accounts(session, cipher)
    seed_usage(session, accounts, today)
    seed_sync_runs(session, accounts, today)
    seed_users(session)
    return accounts


# --- expected values, computed in Python from USAGE -----------------------------------------


def row_cost(s: Seed) -> Decimal:
    """What a seeded row counts toward spend (tracker.spend's rule, restated independently)."""
    if s.billed is not None:
        return s.billed
    day_is_billed = any(
        o.billed is not None and (o.account, o.days_ago) == (s.account, s.days_ago) for o in USAGE
    )
    if day_is_billed:  # 'covered': the day's billed amounts already include this usage
        return Decimal(0)
    return s.estimated if s.estimated is not None else Decimal(0)


def expected_cost(
    start: dt.date, end: dt.date, today: dt.date, account: str | None = None
) -> Decimal:
    return sum(
        (
            row_cost(s)
            for s in USAGE
            if start <= today - dt.timedelta(days=s.days_ago) <= end
            and (account is None or s.account == account)
        ),
        Decimal(0),
    )
