"""The command line (`python -m tracker ...`): exit 0 on success, else one line on stderr.

Secrets are read only from standard input or the environment, never from argv (it shows in
`ps`). Every command that changes data runs in one transaction: an error changes nothing.
Each command group lives in its own module with a `register(commands)`; this module builds
the parser from them and turns every error into one line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tracker.cli import (
    accounts,
    alerts,
    budgets,
    credits,
    db,
    exports,
    invoices,
    periods,
    pricing,
    sync,
    teams,
    users,
)
from tracker.cli.common import Context, Handler, OneLineParser
from tracker.core.errors import TrackerError

log = logging.getLogger("tracker")

# In the order `--help` lists them.
COMMAND_GROUPS = (
    db,
    users,
    accounts,
    pricing,
    exports,
    sync,
    budgets,
    alerts,
    teams,
    periods,
    invoices,
    credits,
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tracker", description="AI cost tracker")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, stdin: Any = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # urllib3 logs each retry as a warning; the command ends with one line of its own.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    ctx = Context(stdin=stdin)
    try:
        handler: Handler = args.handler
        return handler(args, ctx)
    except TrackerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        log.debug("database error", exc_info=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: database error: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was committed", file=sys.stderr)
        return 130
