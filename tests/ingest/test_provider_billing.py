"""Sync of the providers whose billing APIs give more than daily usage: xAI's spend, balance
and invoices land once however often the sync runs, and an unreadable answer stores nothing;
Mistral's months are rewritten whole; OpenAI's caps and spend alerts and Anthropic's members'
effective limits are stored as each sync reads them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.factories import add_user
from tests.fakes.mistral_server import DEFAULT, MISTRAL_KEY, MistralServer
from tests.fakes.provider_server import ANTHROPIC_KEY, OPENAI_KEY, Reply
from tests.fakes.xai_server import PREFIX, XAI_KEY, XAI_TEAM, XAIServer
from tracker.core.runtime import Runtime
from tracker.costs.invoices import MatchStatus, add_invoice, list_invoices
from tracker.ingest import sync
from tracker.models import Account, AuditLog, Invoice, ProviderSpendLimit, UsageRecord
from tracker.planning.spend_limits import AlertCheck, Drift, compare_caps, member_limits
from tracker.providers import accounts
from tracker.providers.base import make_http_session

JUL30, JUL31, AUG1, AUG2, AUG3 = (
    dt.date(2026, 7, 30),
    dt.date(2026, 7, 31),
    dt.date(2026, 8, 1),
    dt.date(2026, 8, 2),
    dt.date(2026, 8, 3),
)
TOLERANCE = Decimal("0.5")
MICRO = Decimal("0.000001")


@pytest.fixture
def xai_server() -> Iterator[XAIServer]:
    with XAIServer() as fake:
        yield fake


@pytest.fixture
def http():
    session = make_http_session(max_retries=2, backoff_factor=0.01, backoff_max=1)
    yield session
    session.close()


def add_xai(runtime: Runtime, server: XAIServer) -> int:
    with runtime.session_factory.begin() as session:
        return accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            provider="xai",
            name="grok-team",
            api_key=XAI_KEY,
            organization=XAI_TEAM,
            base_url=server.url,
        ).id


def billed_by_day(runtime: Runtime, account_id: int) -> dict[dt.date, Decimal]:
    with runtime.session_factory() as session:
        rows = session.execute(
            select(UsageRecord.day, func.sum(UsageRecord.billed_cost))
            .where(UsageRecord.account_id == account_id)
            .group_by(UsageRecord.day)
        ).all()
    return {day: Decimal(str(total)).quantize(Decimal("0.0001")) for day, total in rows}


def imports(runtime: Runtime) -> int:
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).where(AuditLog.action == "invoice.import")) or 0


def limits(runtime: Runtime, account_id: int) -> list[tuple[str, Decimal | None, bool]]:
    with runtime.session_factory() as session:
        return [
            (lim.scope, None if lim.amount is None else Decimal(lim.amount), lim.account_wide)
            for lim in session.scalars(
                select(ProviderSpendLimit)
                .where(ProviderSpendLimit.account_id == account_id)
                .order_by(ProviderSpendLimit.scope)
            )
        ]


def invoices(runtime: Runtime):
    with runtime.session_factory() as session:
        return list_invoices(session=session, tolerance_pct=TOLERANCE)


def test_xai_spend_balance_and_invoices_land_once(runtime, xai_server, http):
    account_id = add_xai(runtime, xai_server)
    first = sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http)
    assert first.status == "ok", first.message
    expected = {
        JUL30: Decimal("13.5000"),
        JUL31: Decimal("14.7225"),
        AUG1: Decimal("9.7500"),
        AUG2: Decimal("1.2000"),
        AUG3: Decimal("11.0125"),
    }
    assert billed_by_day(runtime, account_id) == expected
    with runtime.session_factory() as session:
        account = session.get(Account, account_id)
        assert account is not None
        assert (account.balance_remaining, account.balance_currency) == (Decimal("37.66"), "USD")
        assert account.organization_key == f"xai:{XAI_TEAM}"
    (july,) = invoices(runtime)
    assert (july.invoice_number, july.source, july.created_by) == (
        "XAI-2026-07-0001",
        "provider",
        "sync",
    )
    # Matched like a recorded invoice: $28.2225 billed in July rounds to the invoice's $28.22.
    assert (july.amount, july.billed, july.status) == (
        Decimal("28.22"),
        Decimal("28.2225"),
        MatchStatus.MATCHED,
    )
    assert imports(runtime) == 1
    assert limits(runtime, account_id) == [("", Decimal(500), True), ("hard", Decimal(1000), False)]

    again = sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http)
    assert again.status == "ok", again.message
    assert billed_by_day(runtime, account_id) == expected
    assert [i.invoice_number for i in invoices(runtime)] == ["XAI-2026-07-0001"]
    assert imports(runtime) == 1  # nothing new: nothing recorded, nothing audited
    xai_server.limits = {"spendingLimits": {"effectiveSl": {"val": "25000"}}}
    assert sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http).ok
    assert limits(runtime, account_id) == [("", Decimal(250), True)]  # replaced, not added

    # xAI restates the invoice: the stored one follows, and no longer matches.
    xai_server.invoices["invoices"][0]["total"] = {"val": "2900"}
    sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http)
    (july,) = invoices(runtime)
    assert (july.amount, july.status) == (Decimal("29.00"), MatchStatus.UNMATCHED)
    assert imports(runtime) == 2


def test_an_invoice_finance_recorded_is_left_as_written(runtime, xai_server, http):
    account_id = add_xai(runtime, xai_server)
    with runtime.session_factory.begin() as session:
        add_invoice(
            session=session,
            actor="fin",
            provider="xai",
            account="grok-team",
            invoice_number="XAI-2026-07-0001",
            period="2026-07",
            issued_on="2026-08-02",
            amount="30.00",
        )
    assert sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http).ok
    (july,) = invoices(runtime)
    assert (july.amount, july.source, july.created_by) == (Decimal("30.00"), "recorded", "fin")
    assert imports(runtime) == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{PREFIX}/usage", {"timeSeries": [{"groupLabels": ["Chat grok-4"], "dataPoints": 7}]}),
        (f"{PREFIX}/invoices", {"invoices": "none"}),
        (f"{PREFIX}/prepaid/balance", {"total": {"val": "lots"}}),
        (f"{PREFIX}/postpaid/spending-limits", {"spendingLimits": ["500"]}),
    ],
)
def test_an_unreadable_answer_stores_nothing(runtime, xai_server, http, path, body):
    account_id = add_xai(runtime, xai_server)
    xai_server.script(path, Reply(200, body))
    result = sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http)
    assert result.status == "failed", result.message
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageRecord)) == 0
        assert session.scalar(select(func.count()).select_from(Invoice)) == 0
        assert session.get(Account, account_id).balance_remaining is None
        assert session.scalar(select(func.count()).select_from(ProviderSpendLimit)) == 0


# --- Mistral: months, spread over their days ---------------------------------------------


@pytest.fixture
def mistral_server() -> Iterator[MistralServer]:
    with MistralServer() as fake:
        yield fake


def by_month(runtime: Runtime, account_id: int) -> dict[str, Decimal]:
    """Billed dollars per month, each day's stored (micro-dollar) figure added exactly."""
    totals: dict[str, Decimal] = {}
    with runtime.session_factory() as session:
        rows = session.execute(
            select(UsageRecord.day, UsageRecord.billed_cost).where(
                UsageRecord.account_id == account_id
            )
        ).all()
    for day, cost in rows:
        month = f"{day:%Y-%m}"
        totals[month] = totals.get(month, Decimal(0)) + Decimal(str(cost)).quantize(MICRO)
    return totals


def test_mistral_months_are_rewritten_whole_and_once(runtime, mistral_server, http):
    with runtime.session_factory.begin() as session:
        account_id = accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            provider="mistral",
            name="mistral-org",
            api_key=MISTRAL_KEY,
            base_url=mistral_server.admin_url,
        ).id
    first = sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http)
    assert first.status == "ok", first.message
    # Whole months, up to today (the 4th): July's figure over its 31 days, August's over 4.
    assert (first.start, first.end) == (dt.date(2026, 7, 1), dt.date(2026, 8, 4))
    assert by_month(runtime, account_id) == {
        "2026-07": Decimal("68.51"),
        "2026-08": Decimal("9.30"),
    }
    assert len(billed_by_day(runtime, account_id)) == 35

    # A slice inside July still rewrites the whole month: nothing counted twice.
    again = sync.sync_account(
        runtime, account_id, start=dt.date(2026, 7, 5), end=dt.date(2026, 7, 9), http=http
    )
    assert (again.start, again.end) == (dt.date(2026, 7, 1), dt.date(2026, 7, 31))
    assert by_month(runtime, account_id) == {
        "2026-07": Decimal("68.51"),
        "2026-08": Decimal("9.30"),
    }

    # Mistral revises July's OCR down: the month follows, to the cent.
    mistral_server.usage[(2026, 7, None)]["ocr"] = {"cost": "5.00"}
    mistral_server.usage[(2026, 7, DEFAULT)]["ocr"] = {"cost": "5.00"}
    assert sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http).ok
    assert by_month(runtime, account_id) == {
        "2026-07": Decimal("67.31"),
        "2026-08": Decimal("9.30"),
    }


def test_openai_sync_records_the_organisation_and_project_limits(runtime, server, http):
    with runtime.session_factory.begin() as session:
        account_id = accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            provider="openai",
            name="openai-prod",
            api_key=OPENAI_KEY,
            base_url=server.url + "/v1",
        ).id
    assert sync.sync_account(runtime, account_id, start=AUG1, end=AUG3, http=http).ok
    assert limits(runtime, account_id) == [
        ("", Decimal(1500), True),
        ("alert:alert_abc123", Decimal(1000), True),  # alerts: stored, never caps
        ("alert:alert_def456", Decimal(1750), True),
        ("alert:alert_ghi789", Decimal(500), True),
        ("project:proj_3bW8cRt5Yp2Nd6", Decimal(200), False),
    ]
    server.openai_spend_limit = None  # removed at OpenAI: the sync records that none is set
    assert sync.sync_account(runtime, account_id, start=AUG1, end=AUG3, http=http).ok
    assert limits(runtime, account_id)[0] == ("", None, True)
    with runtime.session_factory.begin() as session:
        session.get(Account, account_id).monthly_budget = Decimal(800)
    with runtime.session_factory() as session:
        (found,) = compare_caps(session=session)
    assert (found.status, found.cap, found.alert) == (Drift.NO_CAP, None, Decimal(500))
    assert found.alert_status is AlertCheck.WITHIN
    assert "its spend alert at $500.00 only notifies" in found.note


def test_anthropic_sync_records_its_members_effective_limits(runtime, server, http):
    with runtime.session_factory.begin() as session:
        account_id = accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            provider="anthropic",
            name="claude-enterprise",
            api_key=ANTHROPIC_KEY,
            base_url=server.url,
        ).id
        add_user(session, "alice", "viewer").email = "Alice@Example.com"
    assert sync.sync_account(runtime, account_id, start=AUG1, end=AUG3, http=http).ok
    with runtime.session_factory() as session:
        found = member_limits(session=session, today=AUG3)
    assert [(m.member, m.user, m.amount, m.period) for m in found] == [
        ("Alice Example", "alice", Decimal(500), "month"),
        ("Alice Example", "alice", Decimal(50), "day"),
        ("Bob Example", None, Decimal(200), "month"),
        ("user_01Gone0000000000000000008 (deleted)", None, None, "month"),
    ]
    server.anthropic_effective_limits = None  # no longer readable: said so, not "no limit"
    assert sync.sync_account(runtime, account_id, start=AUG1, end=AUG3, http=http).ok
    with runtime.session_factory() as session:
        (unread,) = member_limits(session=session, today=AUG3)
    assert (unread.readable, unread.amount) == (False, None)
    assert "400" in unread.source
