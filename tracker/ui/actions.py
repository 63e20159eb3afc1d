"""The one way pages change data (or build a file): named actions, each in `acting_as`.

Each action opens its own transaction, checks there, against the database, that the
signed-in user's role has the action's capability (`tracker.ui.roles`; the page list hides
the forms from other roles, this is the check behind it), then calls the tracker function,
which validates the input and writes the audit entry. Errors are raised as `TrackerError` for
the page to show (pages run actions through `components.attempt`); nothing is written
on error.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker import jobs
from tracker.alerts import delivery, notify
from tracker.alerts import rules as alert_rules
from tracker.attribution import teams
from tracker.core import audit
from tracker.core.errors import InvalidInput, TrackerError
from tracker.core.runtime import Runtime
from tracker.costs import overrides
from tracker.exports import export, rows
from tracker.exports.tabular import ExportStats
from tracker.identity import links, saved_views, sessions, sso, users
from tracker.ingest import csv_import, focus_import, sync
from tracker.planning import anomalies, budgets
from tracker.providers import accounts
from tracker.providers.base import make_http_session
from tracker.reporting import sources
from tracker.ui import data, web
from tracker.ui.auth import require_role
from tracker.ui.roles import Capability, roles_with


@contextmanager
def acting_as(runtime: Runtime, capability: Capability) -> Iterator[tuple[Session, str]]:
    """The transaction of one change: the signed-in user's role is checked against the
    database in it (the server-side check behind the page list); yields (session, actor)."""
    with runtime.session_factory.begin() as session:
        yield session, require_role(session, *roles_with(capability, runtime.settings))


def set_budget(runtime: Runtime, *, scope: str, monthly: str | None) -> budgets.Scope:
    """Set a scope's monthly USD budget, or clear it with `monthly=None`."""
    with acting_as(runtime, Capability.EDIT_BUDGETS) as (session, actor):
        return budgets.set_budget(session=session, scope=scope, monthly=monthly, actor=actor)


def add_rule(
    runtime: Runtime,
    *,
    kind: str,
    scope: str,
    threshold: str,
    channels: list[str],
    name: str | None = None,
) -> int:
    """Add an alert rule; return its id."""
    with acting_as(runtime, Capability.EDIT_BUDGETS) as (session, actor):
        rule = alert_rules.add_rule(
            session=session,
            kind=kind,
            scope=scope,
            threshold=threshold or None,
            channels=channels,
            name=name or None,
            actor=actor,
            cipher=runtime.cipher,
        )
        return rule.id


def set_rule_enabled(runtime: Runtime, *, rule_id: int, enabled: bool) -> None:
    """Pause or resume a rule."""
    with acting_as(runtime, Capability.EDIT_BUDGETS) as (session, actor):
        alert_rules.set_rule_enabled(session=session, rule_id=rule_id, enabled=enabled, actor=actor)


def remove_rule(runtime: Runtime, *, rule_id: int) -> None:
    """Delete a rule and its event history."""
    with acting_as(runtime, Capability.EDIT_BUDGETS) as (session, actor):
        alert_rules.remove_rule(session=session, rule_id=rule_id, actor=actor)


def check_alerts(runtime: Runtime) -> delivery.CheckReport:
    """Evaluate every rule now and deliver what is due, as the worker does after a sync."""
    with acting_as(runtime, Capability.EDIT_BUDGETS) as (session, actor):
        # run_check commits in steps of its own; the request itself is audited here.
        audit.record(session=session, actor=actor, action="alerts.check", target="app")
    return delivery.run_check(
        session_factory=runtime.session_factory,
        settings=runtime.settings,
        http=requests.Session(),
        cipher=runtime.cipher,
    )


def acknowledge_anomaly(runtime: Runtime, *, anomaly_id: int) -> None:
    """Mark an anomaly as seen; it stops alerting."""
    with acting_as(runtime, Capability.ACKNOWLEDGE_ANOMALIES) as (session, actor):
        anomalies.acknowledge(session=session, anomaly_id=anomaly_id, actor=actor)


# A download button keeps the file in the server's memory; beyond this, use the CLI.
MAX_DOWNLOAD_RECORDS = 200_000


def prepare_export(
    runtime: Runtime, *, fmt: str, start: dt.date, end: dt.date, filters: sources.Dimensions
) -> tuple[bytes, ExportStats]:
    """Build an export file for a download button; return it with its records and total.

    The role is checked on the primary; the file is read where the page's figures are (the
    read replica, when there is one), so it matches the Usage explorer."""
    with acting_as(runtime, Capability.EXPORT):
        pass  # the check is all this transaction does

    def build(session: Session) -> tuple[bytes, ExportStats]:
        count = rows.count_rows(session=session, start=start, end=end, filters=filters)
        if count > MAX_DOWNLOAD_RECORDS:
            raise TrackerError(
                f"{count:,} usage records is too many for a browser download; narrow the "
                "range or the filters, or run `python -m tracker export` on the server"
            )
        return export.export_bytes(
            session=session,
            fmt=fmt,
            start=start,
            end=end,
            filters=filters,
            invoice_tolerance_pct=runtime.settings.invoice_tolerance_pct,
        )

    return data.read(build)


# --- Accounts page ---------------------------------------------------------------------------


def add_account(runtime: Runtime, *, test_key: bool = False, **fields: Any) -> str:
    """Connect a provider account (key encrypted at rest); return its name.

    With `test_key`, the key first passes the connection check of "Test connection" (with
    the account's base URL and organisation); if the provider refuses it, or cannot be
    reached, nothing is saved.
    """
    with acting_as(runtime, Capability.MANAGE_ACCOUNTS) as (session, actor):
        account = accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            actor=actor,
            allow_custom_base_url=runtime.settings.allow_custom_base_urls,
            **fields,
        )
        if test_key and account.has_key:
            # The check runs on the account as it would be saved; raising rolls it back.
            outcome = accounts.check_account(
                session=session,
                cipher=runtime.cipher,
                name=account.name,
                http=_check_http(runtime),
                timeout=runtime.settings.http_timeout_seconds,
            )
            if not outcome.ok:
                raise InvalidInput(
                    f"the key test failed: {outcome.message}. Nothing was saved. Correct the "
                    'key, or untick "Test the key before saving" to save it untested (for '
                    "example while the provider is down)"
                )
        return account.name


def update_account(runtime: Runtime, *, name: str, **changes: Any) -> None:
    """Change what `changes` names on an account (None leaves a field as it is)."""
    with acting_as(runtime, Capability.MANAGE_ACCOUNTS) as (session, actor):
        accounts.update_account(
            session=session,
            cipher=runtime.cipher,
            name=name,
            actor=actor,
            allow_custom_base_url=runtime.settings.allow_custom_base_urls,
            **changes,
        )


def remove_account(runtime: Runtime, *, name: str) -> None:
    """Remove an account and its usage history (the audit log keeps a record)."""
    with acting_as(runtime, Capability.MANAGE_ACCOUNTS) as (session, actor):
        accounts.remove_account(session=session, name=name, actor=actor)


def _check_http(runtime: Runtime) -> requests.Session:
    """The HTTP session of a key check a person waits for: one retry at most."""
    settings = runtime.settings
    return make_http_session(
        max_retries=1,
        backoff_factor=settings.http_backoff_factor,
        backoff_max=settings.http_backoff_max_seconds,
    )


def check_connection(runtime: Runtime, *, name: str) -> accounts.CheckOutcome:
    """Check an account's key against its provider once (no retries: a person is waiting)."""
    with acting_as(runtime, Capability.MANAGE_ACCOUNTS) as (session, _actor):
        return accounts.check_account(
            session=session,
            cipher=runtime.cipher,
            name=name,
            http=_check_http(runtime),
            timeout=runtime.settings.http_timeout_seconds,
        )


@dataclass
class BackgroundSync:
    """A "Sync now" running in the app's worker thread; the page polls it."""

    name: str
    budget_seconds: float
    future: Future[sync.SyncSummary]
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


# Two at a time at most: one admin's clicks never tie up the app's threads.
_SYNCS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sync-now")


def start_sync(runtime: Runtime, *, name: str) -> BackgroundSync:
    """Start syncing one account now, in the background (the role is checked and the request
    audited first, in this run); the page polls the returned handle."""
    with acting_as(runtime, Capability.MANAGE_ACCOUNTS) as (session, actor):
        accounts.get_account(session=session, name=name)
        audit.record(session=session, actor=actor, action="sync.request", target=name)
    future = _SYNCS.submit(_sync_and_refresh, runtime, name)
    return BackgroundSync(name, runtime.settings.sync_account_budget_seconds, future)


def _sync_and_refresh(runtime: Runtime, name: str) -> sync.SyncSummary:
    """Sync one account; when it wrote usage, bring projections, anomalies and alerts up to
    date before the page says it is done."""
    summary = sync.run_sync(runtime, account_name=name, trigger="app")
    if summary.rows_written:
        jobs.after_new_usage(runtime)
    return summary


def import_usage(runtime: Runtime, *, account: str, upload: IO[bytes]) -> csv_import.ImportResult:
    """Import an uploaded usage CSV into an account, streaming; a bad line imports nothing."""
    # utf-8-sig: spreadsheet programs often start CSV files with a byte-order mark.
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        with acting_as(runtime, Capability.MANAGE_ACCOUNTS) as (session, actor):
            result = csv_import.import_csv(
                session=session, account_name=account, stream=text, actor=actor
            )
    finally:
        text.detach()  # the upload belongs to Streamlit
    if result.rows_written:
        jobs.after_new_usage(runtime)
    return result


def import_cloud_bill(
    runtime: Runtime, *, account: str, uploads: Sequence[Any]
) -> focus_import.FocusImportResult:
    """Import the uploaded files of a cloud bill's FOCUS export (its data files with their
    manifest, or a zip of its folder) into a cloud account; a bad row imports nothing."""
    if not uploads:
        raise InvalidInput("choose the export's files first")
    with tempfile.TemporaryDirectory(prefix="focus-upload-") as folder:
        for upload in uploads:
            # The file name only: a name from the browser never picks the folder.
            name = Path(str(upload.name).replace("\\", "/")).name
            target = Path(folder) / name
            if not name or name in (".", ".."):
                raise InvalidInput("an uploaded file has no name; upload it again")
            if target.exists():
                raise InvalidInput(f"two uploaded files are named {name!r}; upload each once")
            with target.open("wb") as out:
                shutil.copyfileobj(upload, out)
        source = Path(folder) if len(uploads) > 1 else target
        with acting_as(runtime, Capability.MANAGE_ACCOUNTS) as (session, actor):
            result = focus_import.import_focus(
                session=session, account_name=account, source=source, actor=actor
            )
    if result.rows_written:
        jobs.after_new_usage(runtime)
    return result


# --- Admin page ------------------------------------------------------------------------------


def add_user(runtime: Runtime, **fields: Any) -> None:
    """Add a dashboard user with an initial password."""
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        users.add_user(session=session, actor=actor, **fields)


def update_user(runtime: Runtime, *, username: str, **changes: Any) -> None:
    """Change a user's role or active flag, or lift a lockout (ends their sessions on a
    role change or deactivation)."""
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        users.update_user(session=session, username=username, actor=actor, **changes)


@dataclass(frozen=True)
class IssuedLink:
    url: str
    emailed_to: str | None  # None: not mailed (no SMTP configured, or mailing failed)
    mail_problem: str | None


def invite_user(runtime: Runtime, *, email: str, role: str) -> IssuedLink:
    """Invite an email with a role: a single-use link, mailed when SMTP is configured."""
    settings = runtime.settings
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        token = links.issue_invitation(
            session=session,
            email=email,
            role=role,
            actor=actor,
            valid=dt.timedelta(days=settings.invite_valid_days),
        )
    url = links.url(web.public_url(settings), links.Purpose.INVITE, token)
    address = users.normalise_email(email)
    if not settings.smtp_host:
        return IssuedLink(url, None, None)
    note = notify.Notification(
        subject="You are invited to the AI cost tracker",
        body=(
            f"{actor} invited you to the AI cost tracker as {role}.\n\n"
            f"Open this link to choose your username and password (valid "
            f"{settings.invite_valid_days} days, once):\n{url}\n"
        ),
        fields={},
    )
    try:
        notify.send_email(settings, address, note)
    except notify.DeliveryError as exc:
        return IssuedLink(url, None, str(exc))
    return IssuedLink(url, address, None)


def withdraw_invitation(runtime: Runtime, *, invitation_id: int) -> str:
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        return links.withdraw_invitation(session=session, invitation_id=invitation_id, actor=actor)


def reset_link(runtime: Runtime, *, username: str) -> str:
    """A one-time password-reset link for a user, for the admin to pass on."""
    settings = runtime.settings
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        token = links.issue_reset(
            session=session,
            username=username,
            actor=actor,
            valid=dt.timedelta(hours=settings.reset_valid_hours),
        )
    return links.url(web.public_url(settings), links.Purpose.RESET, token)


def add_sso_mapping(runtime: Runtime, *, claim: str, value: str, role: str) -> None:
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        sso.add_mapping(session=session, claim=claim, value=value, role=role, actor=actor)


def remove_sso_mapping(runtime: Runtime, *, mapping_id: int) -> None:
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        sso.remove_mapping(session=session, mapping_id=mapping_id, actor=actor)


# --- Your account page ---------------------------------------------------------------------


def change_password(runtime: Runtime, *, current: str, new: str, session_id: int) -> None:
    """The signed-in user's own password; their other sessions end."""
    with acting_as(runtime, Capability.OWN_ACCOUNT) as (session, actor):
        users.change_own_password(
            session=session, username=actor, current=current, new=new, session_id=session_id
        )


def end_other_sessions(runtime: Runtime, *, session_id: int) -> int:
    with acting_as(runtime, Capability.OWN_ACCOUNT) as (session, actor):
        user = users.get_user(session=session, username=actor)
        assert user is not None
        ended = sessions.revoke_user(
            session=session,
            user_id=user.id,
            reason="ended by the user",
            keep_session_id=session_id,
        )
        audit.record(
            session=session, actor=actor, action="user.sessions_ended", target=actor, count=ended
        )
        return ended


def add_override(runtime: Runtime, **fields: Any) -> None:
    """Add an organisation price or discount (history keeps its estimate until re-priced)."""
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        overrides.add_override(session=session, actor=actor, **fields)


def remove_override(runtime: Runtime, *, override_id: int) -> None:
    """Remove a price override."""
    with acting_as(runtime, Capability.ADMINISTER) as (session, actor):
        overrides.remove_override(session=session, override_id=override_id, actor=actor)


# --- Chargeback page -------------------------------------------------------------------------


def add_team(runtime: Runtime, *, name: str, cost_center: str, gl_account: str) -> str:
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        return teams.add_team(
            session=session, name=name, cost_center=cost_center, gl_account=gl_account, actor=actor
        ).name


def update_team(runtime: Runtime, *, name: str, cost_center: str, gl_account: str) -> None:
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        teams.update_team(
            session=session, name=name, cost_center=cost_center, gl_account=gl_account, actor=actor
        )


def remove_team(runtime: Runtime, *, name: str) -> None:
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        teams.remove_team(session=session, name=name, actor=actor)


def add_mapping(runtime: Runtime, **fields: Any) -> teams.MappingView:
    """Map an account, project, API key or user to a team from a day (until one, optionally)."""
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        return teams.add_mapping(session=session, actor=actor, **fields)


def end_mapping(runtime: Runtime, *, mapping_id: int, valid_to: dt.date) -> None:
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        teams.end_mapping(session=session, mapping_id=mapping_id, valid_to=valid_to, actor=actor)


def remove_mapping(runtime: Runtime, *, mapping_id: int) -> None:
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        teams.remove_mapping(session=session, mapping_id=mapping_id, actor=actor)


def import_mappings(runtime: Runtime, *, upload: IO[bytes]) -> int:
    """Add mappings from an uploaded CSV, all or nothing."""
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
            return teams.import_mappings(session=session, stream=text, actor=actor)
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text; save it as UTF-8 CSV") from None
    finally:
        text.detach()  # the upload belongs to Streamlit


def add_shared_rule(runtime: Runtime, **fields: Any) -> teams.RuleView:
    """Share a team's (or the unassigned) spend over other teams."""
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        return teams.add_rule(session=session, actor=actor, **fields)


def remove_shared_rule(runtime: Runtime, *, rule_id: int) -> None:
    with acting_as(runtime, Capability.CHARGE_BACK) as (session, actor):
        teams.remove_rule(session=session, rule_id=rule_id, actor=actor)


# --- Saved views (every signed-in user, for themselves) ---------------------------------------


def save_view(
    runtime: Runtime, *, name: str, page: str, query: Mapping[str, Any]
) -> saved_views.View:
    """Save the signed-in user's view of a page (its url path and query) under a name."""
    try:
        with acting_as(runtime, Capability.OWN_ACCOUNT) as (session, actor):
            return saved_views.save_view(
                session=session, username=actor, name=name, page=page, query=query
            )
    except IntegrityError:  # the same name, saved from another tab a moment ago
        raise InvalidInput(f"you already have a view named {name.strip()!r}") from None


def delete_view(runtime: Runtime, *, view_id: int) -> str:
    """Delete one of the signed-in user's saved views; return its name."""
    with acting_as(runtime, Capability.OWN_ACCOUNT) as (session, actor):
        return saved_views.delete_view(session=session, username=actor, view_id=view_id)
