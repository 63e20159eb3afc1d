"""The `export` command: CSV, JSON, Excel month pack or FOCUS 1.2 for a date range.

Registered by `tracker.cli.main.build_parser`. The export is written to a temporary file beside
the target and renamed into place only when it is complete, so a failed export never leaves
a half-written file. `--output -` writes the text formats to standard output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from tracker.cli.common import Context, parse_date
from tracker.core.errors import InvalidInput
from tracker.exports import export, rows, tabular
from tracker.providers.registry import PROVIDERS
from tracker.reporting import sources


def register(commands: Any) -> None:
    """Add the `export` command to the CLI's subcommands."""
    p = commands.add_parser(
        "export", help="export usage and cost (csv, json, xlsx month pack, FOCUS 1.2)"
    )
    p.add_argument("--format", required=True, choices=rows.FORMATS, dest="fmt")
    p.add_argument("--start", required=True, type=parse_date, metavar="YYYY-MM-DD", help="UTC day")
    p.add_argument(
        "--end", required=True, type=parse_date, metavar="YYYY-MM-DD", help="UTC day, inclusive"
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
    rows.check_range(args.start, args.end)
    if args.output == "-" and args.fmt not in rows.TEXT_FORMATS:
        raise InvalidInput(f"{args.fmt} is a binary file; give --output FILE, not -")
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
        session=session, fmt=args.fmt, start=args.start, end=args.end, filters=filters, out=out
    )


def _export_to_file(
    session: Session, args: argparse.Namespace, filters: sources.Dimensions, target: Path
) -> tabular.ExportStats:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        # Binary for every format: the export wraps it as UTF-8 text where the format is text.
        with os.fdopen(fd, "wb") as out:
            stats = _export(session, args, filters, out)
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
