"""Closing a month on SQLite and PostgreSQL: two people sign, the snapshot adds up to the
chargeback by every scope, reopening needs an admin and a reason, accruals need GL accounts,
and the journal entry balances to the cent and reverses the next month."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.factories import add_account, add_chart_of_accounts, add_usage, add_user
from tracker.attribution import teams
from tracker.attribution.chargeback import chargeback
from tracker.closing import corrections, journal, ledger, periods
from tracker.core.errors import InvalidInput, NotFound, PermissionDenied
from tracker.costs import reprice
from tracker.models import AuditLog
from tracker.models.closing import PeriodStatus

OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)
AFTER = dt.date(2026, 11, 3)  # "today": October has ended
D = Decimal
USERS = (("fin", "finance"), ("fay", "finance"), ("alice", "admin"), ("vic", "viewer"))


@pytest.fixture
def books(session):  # type: ignore[no-untyped-def]
    """October: OpenAI billed $30.000001 (Web, CC-100, GL 6100) and estimated $1.000001 and
    $0.333333 three times (not billed yet: ML without a GL account, and Unassigned); Anthropic
    estimated $2.5 (Unassigned). Finance users fin and fay, admin alice, viewer vic; a chart of
    accounts with its defaults."""
    oa = add_account(session, "oa")
    web = add_account(session, "web")
    an = add_account(session, "an", "anthropic")
    add_usage(session, web, OCT + dt.timedelta(days=2), "30.000001")
    add_usage(session, oa, OCT + dt.timedelta(days=3), "1.000001", billed=False)
    for day in (4, 5, 6):
        add_usage(session, oa, OCT + dt.timedelta(days=day), "0.333333", billed=False, model="m")
    add_usage(session, an, OCT + dt.timedelta(days=9), "2.5", billed=False, model="claude")
    add_usage(session, web, NOV + dt.timedelta(days=1), "9")  # November: not in October
    teams.add_team(session=session, name="Web", cost_center="CC-100", gl_account="6100", actor="t")
    teams.add_team(session=session, name="ML", cost_center="CC-200", actor="t")
    for kind, value, team in (("account", "web", "Web"), ("account", "oa", "ML")):
        teams.add_mapping(
            session=session, kind=kind, value=value, team=team, valid_from=OCT, actor="t"
        )
    for name, role in USERS:
        add_user(session, name, role)
    ledger.save_gl_account(session=session, code="6100", name="AI", kind="expense", actor="t")
    add_chart_of_accounts(session, expense="6190")
    return session


def close(session, month=OCT, preparer="fin", approver="alice"):  # type: ignore[no-untyped-def]
    periods.prepare(session=session, month=month, actor=preparer, today=AFTER)
    return periods.approve(session=session, month=month, actor=approver)


def test_two_people_close_a_month_and_its_snapshot_adds_up_by_every_scope(books) -> None:
    session = books
    prepared = periods.prepare(session=session, month=OCT, actor="fin", today=AFTER)
    assert (
        prepared.state == "prepared" and periods.status_of(session=session, month=OCT) == "prepared"
    )
    with pytest.raises(PermissionDenied, match="fin prepared 2026-10; two people close a month"):
        periods.approve(session=session, month=OCT, actor="FIN")
    assert periods.status_of(session=session, month=OCT) == PeriodStatus.PREPARED
    closed = periods.approve(session=session, month=OCT, actor="fay")  # another finance user
    assert (closed.state, closed.prepared_by, closed.approved_by) == ("closed", "fin", "fay")

    month = chargeback(session=session, month=OCT)
    assert closed.total == month.total == D("34.500001")
    assert closed.accrued == D("4.500000")  # 1.000001 + 3 x 0.333333 + 2.5
    assert closed.totals("team") == month.by_team()
    assert closed.totals("provider") == {"Anthropic": D("2.5"), "OpenAI": D("32.000001")}
    assert closed.totals("account") == {"an": D("2.5"), "oa": D("2.000000"), "web": D("30.000001")}
    assert closed.totals("cost_center") == {
        "": D("2.5"),
        "CC-100": D("30.000001"),
        "CC-200": D("2"),
    }
    # A team without a GL account (and unassigned spend) books to the default expense account.
    assert closed.totals("gl_account") == {"6100": D("30.000001"), "6190": D("4.500000")}
    for scope in periods.SCOPES:
        assert sum(closed.totals(scope).values()) == closed.total
    signed = session.execute(
        select(AuditLog.actor, AuditLog.action).where(AuditLog.action.like("period.%"))
    ).all()
    assert signed == [("fin", "period.prepare"), ("fay", "period.approve")]


@pytest.mark.parametrize(
    ("actor", "step", "message"),
    [
        ("vic", "prepare", "vic is viewer; preparing a close needs a finance user or an admin"),
        ("nobody", "prepare", "no active user named 'nobody'"),
        ("vic", "approve", "vic is viewer; approving a close needs a finance user or an admin"),
    ],
)
def test_only_finance_users_and_admins_sign(books, actor, step, message) -> None:
    session = books
    if step == "approve":
        periods.prepare(session=session, month=OCT, actor="fin", today=AFTER)
        with pytest.raises(PermissionDenied, match=message):
            periods.approve(session=session, month=OCT, actor=actor)
    else:
        with pytest.raises(PermissionDenied, match=message):
            periods.prepare(session=session, month=OCT, actor=actor, today=AFTER)


def test_a_month_closes_once_it_has_ended_and_once_only(books) -> None:
    session = books
    with pytest.raises(
        InvalidInput, match="2026-10 has not ended yet; it can be closed from 2026-11-01"
    ):
        periods.prepare(session=session, month=OCT, actor="fin", today=dt.date(2026, 10, 31))
    with pytest.raises(InvalidInput, match="not prepared yet"):
        periods.approve(session=session, month=OCT, actor="alice")
    close(session)
    with pytest.raises(InvalidInput, match="closed already .approved by alice.; an admin reopens"):
        periods.prepare(session=session, month=OCT, actor="fay", today=AFTER)


def test_reopening_needs_an_admin_and_a_reason_and_keeps_the_snapshot(books) -> None:
    session = books
    first = close(session)
    with pytest.raises(PermissionDenied, match="fin is finance; reopening a month needs an admin"):
        periods.reopen(session=session, month=OCT, actor="fin", reason="restated")
    with pytest.raises(InvalidInput, match="give the reason"):
        periods.reopen(session=session, month=OCT, actor="alice", reason="   ")
    assert periods.status_of(session=session, month=OCT) == "closed"
    periods.reopen(session=session, month=OCT, actor="alice", reason="Invoice came in higher")
    assert periods.status_of(session=session, month=OCT) == "open"
    assert periods.snapshot(session=session, month=OCT) is None
    [kept] = periods.history(session=session, month=OCT)
    assert (kept.id, kept.state, kept.reopened_by) == (first.id, "reopened", "alice")
    assert kept.reopen_reason == "Invoice came in higher" and kept.total == first.total
    # Closed again: a new snapshot of the figures as they are now; the old one is history.
    add_usage(session, add_account(session, "late"), OCT + dt.timedelta(days=20), "5")
    second = close(session, preparer="fay", approver="fin")
    assert second.total == first.total + 5
    assert [s.state for s in periods.history(session=session, month=OCT)] == ["closed", "reopened"]
    reasons = session.scalars(
        select(AuditLog.details).where(AuditLog.action == "period.reopen")
    ).all()
    assert reasons == [{"was": "closed", "reason": "Invoice came in higher"}]


def test_approval_is_refused_when_the_figures_moved_since_they_were_prepared(books) -> None:
    session = books
    periods.prepare(session=session, month=OCT, actor="fin", today=AFTER)
    add_usage(session, add_account(session, "late"), OCT + dt.timedelta(days=20), "5")
    with pytest.raises(
        InvalidInput, match=r"changed since fin prepared them \(\$34.50 then, \$39.50 now"
    ):
        periods.approve(session=session, month=OCT, actor="alice")
    # Prepared again (by anyone who may), it is approved.
    periods.prepare(session=session, month=OCT, actor="fin", today=AFTER)
    assert periods.approve(session=session, month=OCT, actor="alice").total == D("39.500001")
    assert len(periods.history(session=session, month=OCT)) == 1  # the stale one never closed


def test_accruals_need_a_liabilities_account_and_a_gl_account_for_every_team(books) -> None:
    session = books
    ledger.set_gl_defaults(session=session, expense="6190", accrued_liabilities="", actor="t")
    with pytest.raises(InvalidInput, match="no accrued-liabilities GL account is set"):
        periods.prepare(session=session, month=OCT, actor="fin", today=AFTER)
    ledger.set_gl_defaults(session=session, expense=None, accrued_liabilities="2150", actor="t")
    with pytest.raises(InvalidInput, match="the accruals of ML, Unassigned have no GL account"):
        periods.prepare(session=session, month=OCT, actor="fin", today=AFTER)
    assert periods.status_of(session=session, month=OCT) == "open"


def test_gl_defaults_name_accounts_of_the_chart_of_their_kind(books) -> None:
    session = books
    with pytest.raises(InvalidInput, match="'9999' is not in the chart of accounts"):
        ledger.set_gl_defaults(
            session=session, expense="9999", accrued_liabilities="2150", actor="t"
        )
    with pytest.raises(InvalidInput, match="2150 is a liability account"):
        ledger.set_gl_defaults(
            session=session, expense="2150", accrued_liabilities="2150", actor="t"
        )
    with pytest.raises(InvalidInput, match="default account of the close"):
        ledger.remove_gl_account(session=session, code="2150", actor="t")
    with pytest.raises(NotFound):
        ledger.remove_gl_account(session=session, code="1", actor="t")
    with pytest.raises(InvalidInput, match="expense or liability"):
        ledger.save_gl_account(session=session, code="7000", name="x", kind="asset", actor="t")
    ledger.remove_gl_account(session=session, code="6100", actor="t")
    assert [a.code for a in ledger.list_gl_accounts(session=session)] == ["2150", "6190"]
    assert ledger.gl_defaults(session=session) == ledger.GlDefaults("6190", "2150")


def test_the_journal_balances_to_the_cent_and_its_reversal_mirrors_it_next_month(books) -> None:
    session = books
    with pytest.raises(InvalidInput, match="2026-10 is not closed"):
        journal.journal(session=session, month=OCT)
    snap = close(session)
    assert {(a.provider, a.team, a.gl_account): a.amount for a in journal.accruals(snap)} == {
        ("Anthropic", "Unassigned", "6190"): D("2.5"),
        ("OpenAI", "ML", "6190"): D("2.000000"),
    }
    entry, reversal = journal.journal(session=session, month=OCT)
    assert entry.date == dt.date(2026, 10, 31) and reversal.date == NOV
    assert entry.debits == entry.credits == D("4.50")
    rows = [(line.gl_account, line.cost_center, line.debit, line.credit) for line in entry.lines]
    assert rows == [
        ("6190", "", D("2.50"), D("0.00")),  # unassigned: no cost center
        ("6190", "CC-200", D("2.00"), D("0.00")),
        ("2150", "", D("0.00"), D("4.50")),
    ]
    assert entry.lines[-1].gl_name == "Accrued liabilities"
    assert [(line.gl_account, line.debit, line.credit) for line in reversal.lines] == [
        (gl, credit, debit) for gl, _center, debit, credit in rows
    ]
    assert reversal.reference == entry.reference + "-REV"


def test_rounding_to_cents_never_unbalances_the_journal(session) -> None:
    # Three cost centers of $0.333333 each: each rounds to $0.33, the total to $1.00.
    acct = add_account(session, "a")
    for i, center in enumerate(("C1", "C2", "C3")):
        teams.add_team(
            session=session, name=f"T{i}", cost_center=center, gl_account="6100", actor="t"
        )
        teams.add_mapping(
            session=session, kind="project", value=f"p{i}", team=f"T{i}", valid_from=OCT, actor="t"
        )
        row = add_usage(session, acct, OCT + dt.timedelta(days=i), "0.333334", billed=False)
        row.project_id = f"p{i}"
    session.flush()
    for user, role in USERS:
        add_user(session, user, role)
    add_chart_of_accounts(session)
    close(session)
    entry, reversal = journal.journal(session=session, month=OCT)
    debits = sorted(line.debit for line in entry.lines if line.debit)
    assert debits == [D("0.33"), D("0.33"), D("0.34")]
    assert entry.debits == entry.credits == reversal.debits == reversal.credits == D("1.00")


def test_corrections_of_a_mapping_change_move_spend_between_teams(books) -> None:
    session = books
    snap = close(session)
    teams.add_mapping(
        session=session, kind="account", value="an", team="Web", valid_from=OCT, actor="t"
    )
    found = corrections.detect_corrections(session=session)
    assert {(c.team, c.original, c.new, c.difference) for c in found} == {
        ("Unassigned", D("2.5"), D("0"), D("-2.5")),
        ("Web", D("0"), D("2.5"), D("2.5")),
    }
    assert {c.cause for c in found} == {corrections.MAPPING_CHANGE}
    assert {c.posted_month for c in found} == {NOV}
    assert corrections.detect_corrections(session=session) == []  # nothing new
    assert periods.snapshot(session=session, month=OCT) == snap  # the closed figures stay


def test_a_correction_goes_to_the_next_open_month_and_never_twice(books) -> None:
    session = books
    sep = dt.date(2026, 9, 1)
    add_usage(session, add_account(session, "sep"), sep, "1")
    close(session, month=sep)
    close(session)  # October closed too: September's corrections go to November
    row = add_usage(session, add_account(session, "sep2"), sep + dt.timedelta(days=3), "2")
    [first] = corrections.detect_corrections(session=session)
    assert (first.month, first.posted_month, first.account) == (sep, NOV, "sep2")
    assert (first.original, first.new, first.difference) == (D("0"), D("2"), D("2"))
    assert corrections.detect_corrections(session=session) == []
    row.billed_cost = D("2.25")  # restated again: the next difference, from the last one
    session.flush()
    [second] = corrections.detect_corrections(session=session)
    assert (second.original, second.new, second.difference) == (D("2"), D("2.25"), D("0.25"))
    listed = corrections.list_corrections(session=session, month=sep)
    assert [c.difference for c in listed] == [D("0.25"), D("2")]
    assert periods.snapshot(session=session, month=sep).total == D("1")  # type: ignore[union-attr]


def test_the_periods_list_runs_from_the_first_usage_to_this_month(books) -> None:
    session = books
    close(session)
    listed = periods.list_periods(session=session, today=dt.date(2026, 12, 5))
    assert [p.month for p in listed] == [dt.date(2026, 12, 1), NOV, OCT]
    october = listed[-1]
    assert (october.status, october.prepared_by, october.approved_by) == ("closed", "fin", "alice")
    assert october.closed_total == october.current_total == D("34.500001")
    assert (listed[1].status, listed[1].closed_total, listed[1].current_total) == (
        "open",
        None,
        D("9"),
    )


def test_a_re_price_of_a_closed_month_is_a_correction_with_its_cause(books) -> None:
    session = books
    close(session)
    report = reprice.reprice(session=session, start=OCT, end=NOV, dry_run=False, actor="fin")
    assert report.rows_changed  # the estimates of October's unbilled usage moved
    found = corrections.detect_corrections(session=session)
    assert found and {c.cause for c in found} == {"re-price"}
    assert {c.month for c in found} == {OCT}
