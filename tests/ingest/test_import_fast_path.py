"""The PostgreSQL fast path of the CSV import (COPY) stores exactly what the row checker does.

Each file is imported twice into fresh accounts on PostgreSQL: once as a seekable stream (the
fast path, which hands anything not certainly fine to the row checker) and once as a stream
that cannot be rewound (the row checker only). The stored rows, estimates included, must be
the same, and the fast path must really be taken for plain files.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.ingest import csv_import
from tracker.ingest.csv_import import import_csv
from tracker.models import UsageRecord
from tracker.providers import accounts

_names = itertools.count()
HEADER = "day,model,input_tokens,output_tokens,requests,cached_input_tokens,cost,project,api_key_id"


class OneWay(io.StringIO):
    """A stream that cannot be rewound: the import must take the row checker."""

    def seekable(self) -> bool:
        return False


@pytest.fixture
def pg_session(postgresql_engine: Engine) -> Iterator[Session]:
    connection = postgresql_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


def stored(session: Session, account_id: int) -> list[tuple[object, ...]]:
    u = UsageRecord
    columns = [c for c in u.__table__.c if c.name not in ("id", "account_id", "synced_at")]
    return sorted(
        tuple(row) for row in session.execute(select(*columns).where(u.account_id == account_id))
    )


def both_ways(session: Session, cipher, text: str, caplog) -> tuple[list, list, bool]:  # type: ignore[no-untyped-def]
    """(rows stored by the fast path, by the row checker, whether the fast path wrote)."""
    results = []
    fast = False
    for n, stream in enumerate((io.StringIO(text), OneWay(text))):
        account = accounts.add_account(
            session=session,
            cipher=cipher,
            provider="groq",
            name=f"groq-{next(_names)}",
            api_key="gsk_0123456789abc",
        )
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=csv_import.__name__):
            import_csv(session=session, account_name=account.name, stream=stream)
        if n == 0:
            fast = "takes the row checker" not in caplog.text
        results.append(stored(session, account.id))
    return results[0], results[1], fast


PLAIN = (
    f"{HEADER}\n"
    "2026-08-01,llama-3.3-70b-versatile,1200000,300000,850,200000,0.945000,support-bot,\n"
    "2026-08-01,llama-3.1-8b-instant,400000,90000,1200,,,,\n"
    "2026-08-01,llama-3.1-8b-instant,100,10,1,,,,\n"  # repeats the row above: added up
    "2026-08-02,llama-3.3-70b-versatile,980000,250000,700,,1.25,support-bot,key-ci\n"
    "2026-08-02,some-model-nobody-prices,5000,100,3,,,,\n"  # unpriced, never $0
    "\n"  # blank lines are skipped
    "   \n"
    ",,,,,,,,\n"
    "2026-08-03,llama-3.1-8b-instant,0,0,0,,,,\n"
    "2026-08-03,llama-3.3-70b-versatile,7,7,7,7,0,,\n"
)


def test_a_plain_file_takes_the_fast_path_and_stores_what_the_row_checker_stores(
    pg_session, cipher, caplog
):
    fast_rows, checked_rows, fast = both_ways(pg_session, cipher, PLAIN, caplog)
    assert fast
    assert fast_rows == checked_rows
    assert len(fast_rows) == 6


def test_a_user_column_keeps_each_persons_rows_apart_both_ways(pg_session, cipher, caplog):
    text = (
        "day,model,input_tokens,output_tokens,requests,user_id\n"
        "2026-08-01,llama-3.1-8b-instant,400000,90000,1200,ada\n"
        "2026-08-01,llama-3.1-8b-instant,100,10,1,tom\n"
        "2026-08-01,llama-3.1-8b-instant,50,5,1,ada\n"  # Ada again: added up
    )
    fast_rows, checked_rows, fast = both_ways(pg_session, cipher, text, caplog)
    assert fast and fast_rows == checked_rows
    users = [c.name for c in UsageRecord.__table__.c if c.name not in ("id", "account_id",
             "synced_at")].index("user_id")  # fmt: skip
    assert sorted(row[users] for row in fast_rows) == ["ada", "tom"]


@pytest.mark.parametrize(
    "line",
    [
        "2026-08-01, llama-3.1-8b-instant,10,1,1,,,,",  # a space the row checker strips
        "2026-08-01,llama-3.1-8b-instant\u00a0,10,1,1,,,,",  # a no-break space too
        "2026-08-01,llama-3.1-8b-instant,10,1,1,,1e-3,,",  # exponent notation
        "2026-08-01,llama-3.1-8b-instant,10,1,1,,-0,,",  # minus zero
        "2026-08-01,llama-3.1-8b-instant,10,1,1,,+2.5,,",
        "2026-08-01,llama-3.1-8b-instant, 10 ,1,1,,,,",
        '2026-08-01,"llama\n\nmulti-line",10,1,1,,,,',  # a quoted field over lines
        "2026-08-01,llama-3.1-8b-instant,10,1,1,,,,\r",
    ],
)
def test_forms_only_the_row_checker_accepts_are_imported_the_same(pg_session, cipher, caplog, line):
    text = f"{HEADER}\n2026-08-02,llama-3.3-70b-versatile,10,1,1,,,,\n{line}\n"
    fast_rows, checked_rows, _ = both_ways(pg_session, cipher, text, caplog)
    assert fast_rows == checked_rows


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2026-02-30,m,1,1,1,,,,", "line 3: day '2026-02-30' is not a date"),
        ("0000-01-01,m,1,1,1,,,,", "line 3: day '0000-01-01' is not a date"),
        ("2026-08-01,m,1,1,1,,1e999999,,", "line 3: cost '1e999999' is implausibly large"),
        ("2026-08-01,m,1,1,1,,1e-999999,,", "line 3: cost '1e-999999' has more than 6 decimals"),
        ("2026-08-01,m,1,1,1,,12345678901,,", "implausibly large for one day"),
        ("2026-08-01,m,99999999999999999,1,1,,,,", "input_tokens 99999999999999999 is impl"),
        ("2026-08-01,m,1,1,1,,,,,,", "line 3: 11 fields, the header has 9"),
        ("2026-08-01,m\x00,1,1,1,,,,", "line 3: a field holds a NUL byte"),
        ('2026-08-01,"m,1,1,1,,,,', "line 3:"),
    ],
)
def test_bad_files_are_refused_with_the_row_checkers_words(pg_session, cipher, line, message):
    account = accounts.add_account(
        session=pg_session, cipher=cipher, provider="groq", name="g", api_key="gsk_0123456789abc"
    )
    text = f"{HEADER}\n2026-08-02,llama-3.3-70b-versatile,10,1,1,,,,\n{line}\n"
    with pytest.raises(InvalidInput) as caught:
        import_csv(session=pg_session, account_name="g", stream=io.StringIO(text))
    assert message in str(caught.value)
    assert stored(pg_session, account.id) == []


def test_a_file_that_is_not_utf8_is_refused_with_its_line(pg_session, cipher):
    accounts.add_account(
        session=pg_session, cipher=cipher, provider="groq", name="g", api_key="gsk_0123456789abc"
    )
    raw = (
        f"{HEADER}\n2026-08-02,llama-3.3-70b-versatile,10,1,1,,,,\n".encode()
        + b"2026-08-02,m\xff,1,1,1,,,,\n"
    )
    stream = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    with pytest.raises(InvalidInput, match="the file is not UTF-8 text"):
        import_csv(session=pg_session, account_name="g", stream=stream)
