"""The `export` command: CSV, JSON, Excel month pack or FOCUS (1.2, or 1.4 with
`--focus-version 1.4`) for a date range, or the journal entry of a closed month
(`--format journal --period YYYY-MM`).

Registered by `tracker.cli.main.build_parser`. The export is written to a temporary file beside
the target and renamed into place only when it is complete, so a failed export never leaves
a half-written file. `--output -` writes the text formats to standard output.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy.orm import Session

from tracker.cli.common import Context, parse_date, parse_month
from tracker.core.errors import InvalidInput
from tracker.exports import export, journal, rows, tabular
from tracker.providers.registry import PROVIDERS
from tracker.reporting import sources

JOURNAL = "journal"  # the journal entry of a closed month (tracker.exports.journal)
# --format: the FOCUS version is its own option (--focus-version), not a format of its own.
FORMATS = tuple(f for f in rows.FORMATS if f not in rows.FOCUS_VERSIONS.values()) + ("focus",)


def register(commands: Any) -> None:
    """Add the `export` command to the CLI's subcommands."""
    p = commands.add_parser(
        "export",
        help="export usage and cost (csv, json, xlsx month pack, FOCUS 1.2 or 1.4), or the "
        "journal entry of a closed month",
    )
    p.add_argument("--format", required=True, choices=(*FORMATS, JOURNAL), dest="fmt")
    p.add_argument(
        "--focus-version",
        choices=tuple(rows.FOCUS_VERSIONS),
        help="with --format focus: 1.2 (one CSV, the default) or 1.4 (a zip of the cost and "
        "usage, billing period and invoice detail datasets)",
    )
    p.add_argument("--start", type=parse_date, metavar="YYYY-MM-DD", help="UTC day")
    p.add_argument("--end", type=parse_date, metavar="YYYY-MM-DD", help="UTC day, inclusive")
    p.add_argument(
        "--period", type=parse_month, metavar="YYYY-MM", help="the closed month (journal only)"
    )
    p.add_argument("--provider", action="append", default=[], choices=list(PROVIDERS))
    p.add_argument("--account", action="append", default=[], metavar="NAME")
    p.add_argument("--model", action="append", default=[], metavar="M")
    p.add_argument("--project", action="append", default=[], metavar="ID", help="id or name")
    p.add_argument("--api-key", action="append", default=[], metavar="ID", help="id or name")
    p.add_argument("--user", action="append", default=[], metavar="ID", help="id or name")
    p.add_argument("--output", required=True, metavar="FILE", help="file, or - for stdout")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    """Run one export into --output (atomically for files)."""
    if args.focus_version is not None and args.fmt != "focus":
        raise InvalidInput(
            f"--focus-version is for --format focus; --format {args.fmt} has no version"
        )
    if args.fmt == JOURNAL:
        return _journal(args, ctx)
    if args.start is None or args.end is None or args.period is not None:
        raise InvalidInput(
            f"--format {args.fmt} exports a date range: give --start and --end (--period is "
            "for --format journal)"
        )
    rows.check_range(args.start, args.end)
    if args.fmt == "focus":
        args.fmt = rows.FOCUS_VERSIONS[args.focus_version or "1.2"]
    if args.output == "-" and args.fmt not in rows.TEXT_FORMATS:
        what = (
            "FOCUS 1.4 is a zip of three datasets"
            if args.fmt == "focus-1.4"
            else (f"{args.fmt} is a binary file")
        )
        raise InvalidInput(f"{what}; give --output FILE, not -")
    filters = sources.Dimensions(
        providers=tuple(args.provider),
        accounts=tuple(args.account),
        models=tuple(args.model),
        projects=tuple(args.project),
        api_keys=tuple(args.api_key),
        users=tuple(args.user),
    )
    target = None if args.output == "-" else Path(args.output)
    if target is not None:
        _check_target(target)
    args.invoice_tolerance_pct = ctx.settings.invoice_tolerance_pct
    with ctx.reading() as session:
        if target is None:
            stats = _export(session, args, filters, sys.stdout)
            sys.stdout.flush()
        else:
            stats = _export_to_file(session, args, filters, target)
    if target is not None:
        sys.stdout.write(
            f"wrote {stats.rows} row(s) from {stats.records} usage record(s), "
            f"total ${stats.total_cost:,.2f}, to {target}\n"
        )
    return 0


def _check_target(target: Path) -> None:
    """Refuse a path the export must not replace: it replaces only a regular file."""
    if not target.parent.is_dir():
        raise InvalidInput(f"the folder {str(target.parent)!r} does not exist; create it first")
    # lstat: a symbolic link is judged itself, never the file it points to.
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise InvalidInput(
            f"{str(target)!r} exists and is not a regular file (a link, a folder or a device); "
            "give the path of a new or ordinary file"
        )


def _export(
    session: Session, args: argparse.Namespace, filters: sources.Dimensions, out: IO[Any]
) -> tabular.ExportStats:
    return export.export(
        session=session,
        fmt=args.fmt,
        start=args.start,
        end=args.end,
        filters=filters,
        out=out,
        invoice_tolerance_pct=args.invoice_tolerance_pct,
    )


def _export_to_file(
    session: Session, args: argparse.Namespace, filters: sources.Dimensions, target: Path
) -> tabular.ExportStats:
    # Binary for every format: the export wraps it as UTF-8 text where the format is text.
    return _atomically(target, lambda out: _export(session, args, filters, out))


def _journal(args: argparse.Namespace, ctx: Context) -> int:
    """The journal entry of a closed month and its reversal, as CSV."""
    if args.period is None or args.start is not None or args.end is not None:
        raise InvalidInput("--format journal exports one closed month: give --period YYYY-MM")
    target = None if args.output == "-" else Path(args.output)
    if target is not None:
        _check_target(target)
    with ctx.reading() as session:
        if target is None:
            journal.export_journal(session=session, month=args.period, out=sys.stdout)
            sys.stdout.flush()
            return 0

        def write(out: IO[Any]) -> journal.JournalStats:
            text = io.TextIOWrapper(out, encoding="utf-8", newline="")
            try:
                return journal.export_journal(session=session, month=args.period, out=text)
            finally:
                text.flush()
                text.detach()

        stats = _atomically(target, write)
    sys.stdout.write(
        f"wrote the journal entry of {args.period:%Y-%m} and its reversal ({stats.lines} "
        f"line(s); debits ${stats.debits:,.2f} = credits ${stats.credits:,.2f}) to {target}\n"
    )
    return 0


T = TypeVar("T")


def _atomically(target: Path, write: Callable[[IO[Any]], T]) -> T:
    """Write `target` (binary) through a temporary file beside it, renamed into place when
    whole: a failed export never leaves a half-written file."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            stats = write(out)
        # mkstemp creates the file private (0600); give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return stats
