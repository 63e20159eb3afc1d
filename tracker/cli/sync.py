"""The sync commands: `sync [--account NAME] [--start D] [--end D]`, `import` and
`import-focus`.

Registered by `tracker.cli.main.build_parser`. `sync` prints one line per account and exits
non-zero (with one line on stderr) when any account failed; `import` (a usage CSV) and
`import-focus` (a cloud bill's FOCUS export) check everything first and write nothing if a
row is bad.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tracker import jobs
from tracker.cli.common import Context, out, parse_date
from tracker.core.errors import InvalidInput, TrackerError
from tracker.ingest import csv_import as imports
from tracker.ingest import focus_import, sync


def cmd_sync(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    summary = sync.run_sync(
        runtime,
        account_name=args.account,
        start=args.start,
        end=args.end,
        trigger="cli",
        http=ctx.http(),
    )
    if not summary.results:
        out("no accounts to sync; add one with `python -m tracker accounts add --help`")
        return 0
    width = max(len(r.name) for r in summary.results)
    for r in summary.results:
        days = f"{r.start}..{r.end}" if r.start else "-"
        out(f"{r.name.ljust(width)}  {r.status:<7}  {r.rows_written:>6} rows  {days}  {r.message}")
    _refresh(runtime, summary.rows_written)
    if not summary.ok:
        names = ", ".join(r.name for r in summary.failed)
        raise TrackerError(f"{len(summary.failed)} account(s) failed to sync: {names}")
    return 0


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    try:
        # utf-8-sig: spreadsheet programs often start CSV files with a byte-order mark.
        stream = open(args.file, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc.strerror or exc}") from None
    with stream, runtime.session_factory.begin() as session:
        try:
            result = imports.import_csv(session=session, account_name=args.account, stream=stream)
        except UnicodeDecodeError:
            raise InvalidInput(f"{args.file} is not UTF-8 text; save it as UTF-8 CSV") from None
    out(
        f"imported {result.rows_written} row(s) into {args.account} covering {result.days} "
        f"day(s) ({result.first_day}..{result.last_day})"
    )
    _refresh(runtime, result.rows_written)
    return 0


def cmd_import_focus(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        result = focus_import.import_focus(
            session=session,
            account_name=args.account,
            source=Path(args.source),
            user_tag=args.user_tag,
            project_tag=args.project_tag,
        )
    out(result.summary())
    _refresh(runtime, result.rows_written)
    return 0


def _refresh(runtime: Any, rows_written: int) -> None:
    """Projections, anomalies and alerts after new usage (as the worker would next)."""
    if not rows_written:
        return
    failed = jobs.after_new_usage(runtime)
    if failed:
        out("usage stored; the worker will retry: " + "; ".join(failed))
    else:
        out("projections, anomalies and alerts brought up to date")


def register(commands: Any) -> None:
    """Add `sync` and `import` to the top-level subparsers."""
    run = commands.add_parser("sync", help="fetch usage and cost from the providers now")
    run.add_argument("--account", metavar="NAME", help="only this account (default: all)")
    run.add_argument("--start", type=parse_date, metavar="YYYY-MM-DD", help="first UTC day")
    run.add_argument(
        "--end", type=parse_date, metavar="YYYY-MM-DD", help="last UTC day (inclusive)"
    )
    run.set_defaults(handler=cmd_sync)

    imp = commands.add_parser("import", help="import daily usage from a CSV file")
    imp.add_argument("--account", required=True, metavar="NAME")
    imp.add_argument("file", metavar="FILE.csv")
    imp.set_defaults(handler=cmd_import)

    focus = commands.add_parser(
        "import-focus",
        help="import the AI charges of a cloud bill's FOCUS export (AWS, Azure, Google Cloud)",
    )
    focus.add_argument(
        "source",
        metavar="FILE_OR_FOLDER",
        help="a FOCUS file (CSV, CSV.GZ, Parquet), the export's folder with its manifest, or a zip",
    )
    focus.add_argument(
        "--account",
        required=True,
        metavar="NAME",
        help="an aws_bedrock, azure_openai or google_vertex account",
    )
    focus.add_argument("--user-tag", metavar="KEY", help="the tag that names the user")
    focus.add_argument(
        "--project-tag", metavar="KEY", help="the tag that names the project or team"
    )
    focus.set_defaults(handler=cmd_import_focus)
