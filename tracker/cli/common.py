"""What every command module shares: the lazily built context, one-line errors, output helpers.

Secrets are read only from standard input (`Context.read_secret`), never from argv (it shows
in `ps`). Output goes to standard output through `out` and `table`; errors are raised as
`TrackerError` and printed as one line by `tracker.cli.main`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cached_property
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from tracker.core.config import Settings, load_settings
from tracker.core.db import require_schema
from tracker.core.errors import InvalidInput
from tracker.core.runtime import Runtime, build_runtime
from tracker.providers.base import make_http_session

# The actor the audit log records for a change made from the command line.
CLI_ACTOR = "cli"


class Context:
    """Settings and runtime, built only when a command needs them."""

    def __init__(self, stdin: Any = None) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def runtime(self) -> Runtime:
        return build_runtime(self.settings)

    def migrated_runtime(self) -> Runtime:
        """The runtime, after checking the database is reachable and migrated."""
        require_schema(self.runtime.engine)
        return self.runtime

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction on the migrated database: all of a command's change, or none."""
        with self.migrated_runtime().session_factory.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session on the migrated database."""
        with self.migrated_runtime().session_factory() as session:
            yield session

    def read_secret(self, what: str) -> str:
        """Read one secret from standard input (prompting without echo on a terminal)."""
        if self.stdin.isatty():
            return getpass.getpass(f"{what}: ")
        line = self.stdin.readline()
        if not line.strip():
            raise InvalidInput(f"no {what} on standard input; pipe it in, e.g. from a file")
        return line.rstrip("\r\n")

    def http(self) -> Any:
        s = self.settings
        return make_http_session(
            max_retries=s.http_max_retries,
            backoff_factor=s.http_backoff_factor,
            backoff_max=s.http_backoff_max_seconds,
        )


Handler = Callable[[argparse.Namespace, Context], int]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def out(line: str = "") -> None:
    """Write one line of the command's output."""
    sys.stdout.write(line + "\n")


def table(header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    """Write rows as left-aligned columns under a header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def parse_date(raw: str) -> dt.date:
    """An argparse type: a UTC day as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date (YYYY-MM-DD)") from None


def parse_month(raw: str) -> dt.date:
    """An argparse type: a calendar month as YYYY-MM (its first day)."""
    try:
        return dt.date.fromisoformat(f"{raw}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a month (YYYY-MM)") from None


def whole_number(raw: str) -> int:
    """An argparse type: a whole number, zero or more."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def usd(value: Any) -> str:
    """A USD amount to the cent, e.g. $1,500.00 (empty for None)."""
    return "" if value is None else f"${value:,.2f}"


def amount(value: Decimal, currency: str) -> str:
    """An amount in its currency: $1,234.56, or 1,234.56 EUR."""
    return usd(value) if currency == "USD" else f"{value:,.2f} {currency}"


def signed(value: Decimal) -> str:
    """A USD difference with its sign in front: +$3.06, -$0.25."""
    sign = "+" if value > 0 else "-" if value < 0 else ""
    return sign + usd(abs(value))
