"""The named actions of the books' pages (reconciliation and re-pricing, the month-end
close, invoices and credits), in `actions.acting_as` like every other action: the capability
checked against the database in the action's own transaction, nothing written on error.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import IO, Any

from tracker import jobs
from tracker.closing import ledger, periods
from tracker.core.errors import InvalidInput
from tracker.core.runtime import Runtime
from tracker.costs import invoice_csv, invoices, reprice
from tracker.exports import journal
from tracker.planning import credits
from tracker.ui.actions import acting_as
from tracker.ui.roles import Capability

# --- Reconciliation page ---------------------------------------------------------------------

# Re-pricing reads every usage row of the range while a person waits; beyond a year, the CLI.
MAX_REPRICE_DAYS = 366


def _check_reprice_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise InvalidInput("the end date is before the start date; pick the range again")
    if (end - start).days + 1 > MAX_REPRICE_DAYS:
        raise InvalidInput(
            f"re-price at most {MAX_REPRICE_DAYS} days at a time here; for a longer range run "
            "`python -m tracker reprice` on the server"
        )


def preview_reprice(runtime: Runtime, *, start: dt.date, end: dt.date) -> reprice.RepriceReport:
    """What re-pricing start..end with today's price book would change (nothing is written)."""
    _check_reprice_range(start, end)
    with acting_as(runtime, Capability.RECONCILE) as (session, actor):
        return reprice.reprice(session=session, start=start, end=end, dry_run=True, actor=actor)


def apply_reprice(runtime: Runtime, *, start: dt.date, end: dt.date) -> reprice.RepriceReport:
    """Re-price start..end in one transaction (audited; billed cost is never changed), then
    bring projections, anomalies and alerts up to date with the new estimates."""
    _check_reprice_range(start, end)
    with acting_as(runtime, Capability.RECONCILE) as (session, actor):
        report = reprice.reprice(session=session, start=start, end=end, dry_run=False, actor=actor)
    if report.rows_changed:
        jobs.after_new_usage(runtime)
    return report


# --- Month-end close page --------------------------------------------------------------------
# Who may sign is checked twice: the capability here, and in `tracker.closing.periods` the
# signer's own role (an admin to reopen) and that the approver is not the preparer.


def prepare_period(runtime: Runtime, *, month: dt.date) -> periods.SnapshotView:
    """Take the snapshot of an ended month for another person's approval."""
    with acting_as(runtime, Capability.CLOSE_BOOKS) as (session, actor):
        return periods.prepare(session=session, month=month, actor=actor)


def approve_period(runtime: Runtime, *, month: dt.date) -> periods.SnapshotView:
    """Approve a month another user prepared: it is closed."""
    with acting_as(runtime, Capability.CLOSE_BOOKS) as (session, actor):
        return periods.approve(session=session, month=month, actor=actor)


def reopen_period(runtime: Runtime, *, month: dt.date, reason: str) -> None:
    """Open a prepared or closed month again (an admin, with a reason)."""
    with acting_as(runtime, Capability.CLOSE_BOOKS) as (session, actor):
        periods.reopen(session=session, month=month, actor=actor, reason=reason)


def journal_csv(runtime: Runtime, *, month: dt.date) -> bytes:
    """The journal entry of a closed month and its reversal, as CSV."""
    with acting_as(runtime, Capability.CLOSE_BOOKS) as (session, _actor):
        return journal.journal_bytes(session=session, month=month)


def save_gl_account(runtime: Runtime, *, code: str, name: str, kind: str) -> str:
    """Add an account to the chart of accounts, or rename one; return its code."""
    with acting_as(runtime, Capability.CLOSE_BOOKS) as (session, actor):
        return ledger.save_gl_account(
            session=session, code=code, name=name, kind=kind, actor=actor
        ).code


def remove_gl_account(runtime: Runtime, *, code: str) -> None:
    with acting_as(runtime, Capability.CLOSE_BOOKS) as (session, actor):
        ledger.remove_gl_account(session=session, code=code, actor=actor)


def set_gl_defaults(
    runtime: Runtime, *, expense: str | None, accrued_liabilities: str | None
) -> ledger.GlDefaults:
    """Name the default expense and accrued-liabilities accounts."""
    with acting_as(runtime, Capability.CLOSE_BOOKS) as (session, actor):
        return ledger.set_gl_defaults(
            session=session, expense=expense, accrued_liabilities=accrued_liabilities, actor=actor
        )


# --- Invoices and Credits pages --------------------------------------------------------------


def add_invoice(runtime: Runtime, **fields: Any) -> invoices.InvoiceMatch:
    """Record a provider invoice; return it matched against the synced billed total."""
    with acting_as(runtime, Capability.MANAGE_INVOICES) as (session, actor):
        invoice_id = invoices.add_invoice(session=session, actor=actor, **fields)
        tolerance = runtime.settings.invoice_tolerance_pct
        return invoices.list_invoices(session=session, tolerance_pct=tolerance, ids=[invoice_id])[0]


def import_invoices(runtime: Runtime, *, upload: IO[bytes]) -> int:
    """Record every invoice of an uploaded CSV, or none."""
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        with acting_as(runtime, Capability.MANAGE_INVOICES) as (session, actor):
            return invoice_csv.import_invoices(session=session, stream=text, actor=actor)
    finally:
        text.detach()  # the upload belongs to Streamlit


def remove_invoice(runtime: Runtime, *, invoice_id: int) -> str:
    with acting_as(runtime, Capability.MANAGE_INVOICES) as (session, actor):
        return invoices.remove_invoice(session=session, invoice_id=invoice_id, actor=actor)


def add_grant(runtime: Runtime, **fields: Any) -> str:
    """Record a credit grant on an account; say what was recorded."""
    with acting_as(runtime, Capability.MANAGE_INVOICES) as (session, actor):
        return credits.add_grant(session=session, actor=actor, **fields)


def remove_grant(runtime: Runtime, *, grant_id: int) -> str:
    with acting_as(runtime, Capability.MANAGE_INVOICES) as (session, actor):
        return credits.remove_grant(session=session, grant_id=grant_id, actor=actor)
