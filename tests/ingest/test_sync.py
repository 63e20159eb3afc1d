"""Sync against the fake provider server on SQLite and PostgreSQL: exact totals, idempotence,
interrupted passes, overlapping ranges, storms, bad keys, locks, balances and seats."""

from __future__ import annotations

import datetime as dt
import io
import zlib
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.fakes import provider_server
from tests.fakes.provider_server import (
    ANTHROPIC_KEY,
    DEEPSEEK_KEY,
    GITHUB_ORG,
    GITHUB_TOKEN,
    GROQ_KEY,
    OPENAI_KEY,
    OPENROUTER_KEY,
    PERPLEXITY_KEY,
    Reply,
    load,
)
from tests.ingest.conftest import MAX_RETRIES, TODAY  # noqa: E402 (shared with the fixtures)
from tracker.core.errors import InvalidInput, NotFound
from tracker.core.runtime import Runtime
from tracker.ingest import sync
from tracker.ingest.csv_import import import_csv
from tracker.models import Account, SyncRun, UsageLabel, UsageRecord, utcnow
from tracker.providers import accounts
from tracker.reporting import sync_health

AUG1, AUG2, AUG3 = (dt.date(2026, 8, d) for d in (1, 2, 3))
OPENAI_USAGE = "/v1/organization/usage/completions"
OPENAI_COSTS = "/v1/organization/costs"
# Billed totals per day: the providers' own ungrouped cost reports.
OPENAI_BILLED = {AUG1: Decimal("2.82"), AUG2: Decimal("2.487"), AUG3: Decimal("3.381")}
ANTHROPIC_BILLED = {AUG1: Decimal("12.895"), AUG2: Decimal("11.6375"), AUG3: Decimal("9.44")}


def add(runtime: Runtime, provider: str, name: str, key: str, base_url: str, org=None) -> int:
    with runtime.session_factory.begin() as session:
        account = accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            provider=provider,
            name=name,
            api_key=key,
            base_url=base_url,
            organization=org,
        )
        return account.id


def add_openai(runtime, server, key=OPENAI_KEY, name="openai-prod") -> int:
    return add(runtime, "openai", name, key, server.url + "/v1")


def add_anthropic(runtime, server, key=ANTHROPIC_KEY, name="anthropic-prod") -> int:
    return add(runtime, "anthropic", name, key, server.url)


def billed_by_day(runtime: Runtime, account_id: int) -> dict[dt.date, Decimal]:
    with runtime.session_factory() as session:
        rows = session.execute(
            select(UsageRecord.day, func.sum(UsageRecord.billed_cost))
            .where(UsageRecord.account_id == account_id, UsageRecord.billed_cost.is_not(None))
            .group_by(UsageRecord.day)
        ).all()
    return {day: Decimal(total).quantize(Decimal("0.000001")).normalize() for day, total in rows}


def tokens(runtime: Runtime, account_id: int) -> tuple[int, ...]:
    r = UsageRecord
    with runtime.session_factory() as session:
        return tuple(
            session.execute(
                select(
                    func.sum(r.input_tokens),
                    func.sum(r.cached_input_tokens),
                    func.sum(r.cache_write_tokens),
                    func.sum(r.cache_write_1h_tokens),
                    func.sum(r.output_tokens),
                    func.sum(r.requests),
                    func.count(),
                ).where(r.account_id == account_id)
            ).one()
        )


def snapshot(runtime: Runtime) -> list[tuple]:
    """Every stored usage row with its id and values (not its sync time)."""
    r = UsageRecord
    columns = [
        r.id, r.account_id, r.day, r.model, r.project_id, r.api_key_id, r.user_id,
        r.usage_type, r.service_tier, r.project_name, r.input_tokens, r.cached_input_tokens,
        r.cache_write_tokens, r.cache_write_1h_tokens, r.output_tokens, r.requests,
        r.other_units, r.billed_cost, r.estimated_cost, r.cost_source, r.pricing_status,
    ]  # fmt: skip
    with runtime.session_factory() as session:
        return [tuple(row) for row in session.execute(select(*columns).order_by(r.id))]


def runs(runtime: Runtime, account_id: int) -> list[SyncRun]:
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(SyncRun).where(SyncRun.account_id == account_id).order_by(SyncRun.id)
            )
        )


def account(runtime: Runtime, account_id: int) -> Account:
    with runtime.session_factory() as session:
        found = session.get(Account, account_id)
        assert found is not None
        return found


def test_an_unknown_account_name_lists_the_accounts(runtime, server):
    add_openai(runtime, server)
    with pytest.raises(NotFound, match=r"^no account named 'openai' \(accounts: openai-prod\)$"):
        sync.run_sync(runtime, account_name="openai", start=AUG1, end=AUG3)


def test_openai_and_anthropic_billed_totals_match_to_the_cent(runtime, server):
    openai_id, anthropic_id = add_openai(runtime, server), add_anthropic(runtime, server)
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    assert summary.ok, summary
    assert [r.status for r in summary.results] == ["ok", "ok"]

    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED
    assert billed_by_day(runtime, anthropic_id) == ANTHROPIC_BILLED
    # OpenAI: uncached input = input - cached; Anthropic's input is uncached already.
    assert tokens(runtime, openai_id)[:2] == (6_700_000 + 5_400_000 + 310_000, 3_300_000)
    assert tokens(runtime, anthropic_id)[:5] == (
        8_550_000,
        10_500_000,
        750_000,
        50_000,
        1_530_000,
    )
    [run] = runs(runtime, openai_id)
    assert run.status == "success" and run.error is None and run.trigger == "cli"
    assert (run.range_start, run.range_end) == (AUG1, AUG3)
    assert run.rows_written == tokens(runtime, openai_id)[6] > 0
    assert run.duration_ms is not None and run.finished_at is not None
    acc = account(runtime, openai_id)
    assert acc.status == "active" and acc.last_error is None and acc.last_sync_at is not None
    assert acc.last_complete_day == AUG3
    assert acc.rate_limit_snapshot["x-ratelimit-remaining-requests"] == "14399"
    anthropic = account(runtime, anthropic_id)
    assert anthropic.rate_limit_snapshot["anthropic-ratelimit-requests-limit"] == "50"
    with runtime.session_factory() as session:
        sources = set(
            session.scalars(
                select(UsageRecord.cost_source).where(UsageRecord.billed_cost.is_not(None))
            )
        )
    # A line item is billed, or covered once its amount is allocated to its usage rows.
    assert sources <= {"billed", "covered"}


def test_repeated_sync_changes_nothing(runtime, server):
    add_openai(runtime, server)
    add_anthropic(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert snapshot(runtime) == before


def test_overlapping_ranges_leave_the_same_rows(runtime, server):
    openai_id, anthropic_id = add_openai(runtime, server), add_anthropic(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG2).ok
    assert sync.run_sync(runtime, start=AUG2, end=AUG3).ok
    assert sync.run_sync(runtime, start=AUG3, end=AUG3).ok
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED
    assert billed_by_day(runtime, anthropic_id) == ANTHROPIC_BILLED
    pieces = [row[1:] for row in snapshot(runtime)]
    assert len(pieces) == len(set(row[:8] for row in pieces))  # no natural key twice
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert sorted(row[1:] for row in snapshot(runtime)) == sorted(pieces)


def test_failed_pass_leaves_previous_data_intact(runtime, server):
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    # The provider revises its numbers, but the costs endpoint fails after the usage pages
    # were already streamed and upserted: nothing of the pass may stay.
    server.openai_costs[0]["results"][0]["amount"]["value"] = 99
    server.storm(OPENAI_COSTS, Reply(500, {"error": {"message": "boom"}}))
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    assert not summary.ok and summary.results[0].status == "failed"
    assert "server error" in summary.results[0].message
    assert server.count(OPENAI_USAGE) >= 4  # the usage pages were fetched both times
    assert snapshot(runtime) == before
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED
    last = runs(runtime, openai_id)[-1]
    assert last.status == "failed" and "server error" in last.error and last.rows_written == 0
    acc = account(runtime, openai_id)
    assert acc.status == "active" and "server error" in acc.last_error  # transient: no 'error'


def test_crash_mid_pass_leaves_previous_data_intact(runtime, server, monkeypatch):
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    server.openai_usage["completions"].pop()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sync, "estimate_costs", crash)
    with pytest.raises(KeyboardInterrupt):
        sync.run_sync(runtime, start=AUG1, end=AUG3)
    assert snapshot(runtime) == before
    last = runs(runtime, openai_id)[-1]
    assert last.status == "interrupted" and "interrupted" in last.error


def test_a_run_left_running_by_a_killed_sync_is_closed_by_the_next(runtime, server):
    account_id = add_openai(runtime, server)
    with runtime.session_factory.begin() as session:
        # What `kill -9` mid-sync leaves behind: the run row, committed first, never finished.
        dead = SyncRun(
            account_id=account_id,
            trigger="worker",
            range_start=AUG1,
            range_end=AUG3,
            status="running",
            started_at=utcnow() - dt.timedelta(hours=2),
        )
        session.add(dead)
        session.flush()
        dead_id = dead.id
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    with runtime.session_factory() as session:
        closed = session.get(SyncRun, dead_id)
        assert closed is not None and closed.status == "interrupted"
        assert closed.finished_at is not None and "interrupted" in (closed.error or "")
        statuses = session.scalars(select(SyncRun.status).where(SyncRun.id != dead_id)).all()
        assert list(statuses) == ["success"]


def test_rows_that_vanished_upstream_are_removed(runtime, server):
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    count = tokens(runtime, openai_id)[6]
    # Upstream drops gpt-4.1 on Aug 3, in usage and costs alike.
    aug3 = server.openai_usage["completions"][2]
    aug3["results"] = [r for r in aug3["results"] if not r["model"].startswith("gpt-4.1")]
    costs3 = server.openai_costs[2]
    costs3["results"] = [r for r in costs3["results"] if "gpt-4.1" not in r["line_item"]]
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert tokens(runtime, openai_id)[6] == count - 4  # one usage row, three cost rows
    assert billed_by_day(runtime, openai_id) == {**OPENAI_BILLED, AUG3: Decimal("0.381")}


def test_429_storm_is_survived_within_bounds(runtime, server):
    openai_id, anthropic_id = add_openai(runtime, server), add_anthropic(runtime, server)
    server.storm(OPENAI_USAGE)
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    by_name = {r.name: r for r in summary.results}
    assert by_name["openai-prod"].status == "failed"
    assert "429" in by_name["openai-prod"].message or "retries" in by_name["openai-prod"].message
    assert by_name["anthropic-prod"].status == "ok"
    assert server.count(OPENAI_USAGE) == MAX_RETRIES + 1
    assert tokens(runtime, openai_id)[6] == 0
    assert billed_by_day(runtime, anthropic_id) == ANTHROPIC_BILLED
    # The storm passes: the next pass gets everything.
    server.calm(OPENAI_USAGE)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED


def test_429_with_retry_after_then_500_then_success(runtime, server):
    openai_id = add_openai(runtime, server)
    server.script(
        OPENAI_COSTS,
        Reply(429, load("openai/error_429_rate_limit.json"), {"Retry-After": "1"}),
        Reply(500, {"error": {"message": "boom"}}),
    )
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert server.count(OPENAI_COSTS) == 4  # two refusals, then two pages
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED


def test_bad_key_marks_that_account_and_the_others_sync(runtime, server):
    bad_id = add_openai(runtime, server, key="sk-admin-revoked-key-0000zzzz", name="a-bad")
    good_id = add_anthropic(runtime, server)
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    assert not summary.ok
    assert [(r.name, r.status) for r in summary.results] == [
        ("a-bad", "failed"),
        ("anthropic-prod", "ok"),
    ]
    bad = account(runtime, bad_id)
    assert bad.status == "error" and "401" in bad.last_error and bad.last_error_at is not None
    assert "revoked-key" not in bad.last_error
    assert runs(runtime, bad_id)[-1].status == "failed"
    assert billed_by_day(runtime, good_id) == ANTHROPIC_BILLED
    assert server.count(OPENAI_COSTS) == 0  # no retry of a 401: it stopped at the first call


def test_incremental_window_backfills_then_resyncs_recent_days(runtime, server):
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime).ok
    first = runs(runtime, openai_id)[-1]
    assert (first.range_start, first.range_end) == (TODAY - dt.timedelta(days=90), TODAY)
    assert account(runtime, openai_id).last_complete_day == AUG3
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED
    assert sync.run_sync(runtime, trigger="worker").ok
    second = runs(runtime, openai_id)[-1]
    assert (second.range_start, second.range_end) == (AUG3 - dt.timedelta(days=3), TODAY)
    assert second.trigger == "worker"
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED


def test_start_after_end_is_refused(runtime, server):
    add_openai(runtime, server)
    with pytest.raises(Exception, match="after the end"):
        sync.run_sync(runtime, start=AUG3, end=AUG1)


def test_balances_seats_and_key_checks_appear(runtime, server):
    copilot_id = add(runtime, "github_copilot", "copilot", GITHUB_TOKEN, server.url, GITHUB_ORG)
    router_id = add(runtime, "openrouter", "router", OPENROUTER_KEY, server.url + "/api/v1")
    deepseek_id = add(runtime, "deepseek", "deepseek", DEEPSEEK_KEY, server.url)
    groq_id = add(runtime, "groq", "groq", GROQ_KEY, server.url + "/openai/v1")
    pplx_id = add(runtime, "perplexity", "pplx", PERPLEXITY_KEY, server.url)
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    assert summary.ok, summary

    with runtime.session_factory() as session:
        seats = session.execute(
            select(UsageRecord.day, UsageRecord.other_units)
            .where(UsageRecord.account_id == copilot_id, UsageRecord.usage_type == "seats")
            .order_by(UsageRecord.day)
        ).all()
    assert [(d, int(n)) for d, n in seats] == [(AUG1, 2), (AUG2, 3), (AUG3, 3)]
    assert billed_by_day(runtime, copilot_id) == {
        AUG1: Decimal("1.225806"),
        AUG2: Decimal("1.83871") + Decimal(12),  # seats + premium requests
        AUG3: Decimal("1.83871") + Decimal(5),  # seats + AI credits
    }
    router = account(runtime, router_id)
    assert (router.balance_remaining, router.balance_currency) == (Decimal("107.6825"), "USD")
    assert billed_by_day(runtime, router_id) == {AUG2: Decimal("5.282")}
    deepseek = account(runtime, deepseek_id)
    assert (deepseek.balance_remaining, deepseek.balance_currency) == (Decimal("24.87"), "USD")
    for key_only in (groq_id, pplx_id):
        acc = account(runtime, key_only)
        assert acc.status == "active" and acc.last_sync_at is not None
        assert acc.rate_limit_snapshot["x-ratelimit-limit-requests"] == "14400"
        assert tokens(runtime, key_only)[6] == 0
    messages = {r.name: r.message for r in summary.results}
    assert "CSV" in messages["groq"]


def test_copilot_billed_seats_and_credits_per_user_resync_to_the_same_rows(runtime, server):
    server.github_usage[(2026, 8)] = load("github/billing_usage_copilot_seats.json")
    copilot_id = add(runtime, "github_copilot", "copilot", GITHUB_TOKEN, server.url, GITHUB_ORG)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert snapshot(runtime) == before
    assert billed_by_day(runtime, copilot_id) == {
        AUG1: Decimal("1.1"),
        AUG2: Decimal("1.65") + Decimal(12),  # billed seats + premium requests
        AUG3: Decimal("1.65") + Decimal(5),  # billed seats + AI credits (three rows)
    }
    with runtime.session_factory() as session:
        users = session.scalars(
            select(UsageRecord.user_id).where(UsageRecord.usage_type == "ai_credits")
        ).all()
    assert sorted(users) == ["", "dlee-acme", "rsingh-acme"]


def test_anthropic_analytics_keeps_billed_and_list_amounts_and_resyncs_the_same(runtime, server):
    server.anthropic_analytics = provider_server._buckets(
        "anthropic/analytics/cost_page1.json", "anthropic/analytics/cost_page2.json"
    )
    anthropic_id = add_anthropic(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert snapshot(runtime) == before
    with runtime.session_factory() as session:
        listed = session.scalar(
            select(func.sum(UsageRecord.list_cost)).where(UsageRecord.account_id == anthropic_id)
        )
        users = set(session.scalars(select(UsageRecord.user_name).distinct()))
    assert billed_by_day(runtime, anthropic_id) == ANTHROPIC_BILLED
    assert listed == Decimal("37.2317")
    assert "alice@acme.example" in users


def test_disabled_accounts_are_left_out(runtime, server):
    openai_id = add_openai(runtime, server)
    with runtime.session_factory.begin() as session:
        session.get(Account, openai_id).status = "disabled"
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    assert summary.results == [] and summary.ok
    assert server.count() == 0


def test_a_second_worker_skips_a_locked_account(runtime, server):
    openai_id = add_openai(runtime, server)
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite serialises writers itself")
    with runtime.engine.connect() as other:
        other.begin()
        namespace = zlib.crc32(sync.LOCK_NAME.encode()) & 0x7FFFFFFF
        other.execute(
            text("SELECT pg_advisory_xact_lock(:n, :k)"), {"n": namespace, "k": openai_id}
        )
        summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
        other.rollback()
    assert [r.status for r in summary.results] == ["skipped"] and summary.ok
    assert runs(runtime, openai_id)[-1].status == "skipped"
    assert tokens(runtime, openai_id)[6] == 0
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).results[0].status == "ok"


def test_cli_accounts_add_then_sync(cli, committed_db, monkeypatch, server):
    monkeypatch.setattr(sync, "utc_today", lambda: TODAY)
    for name, value in (("HTTP_MAX_RETRIES", "3"), ("HTTP_BACKOFF_FACTOR", "0.01")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HTTP_BACKOFF_MAX_SECONDS", "1")
    accounts_to_add = [
        ("openai", "openai-prod", OPENAI_KEY, server.url + "/v1"),
        ("anthropic", "anthropic-prod", ANTHROPIC_KEY, server.url),
        ("openai", "openai-old", "sk-admin-revoked-0000zzzz", server.url + "/v1"),
    ]
    for provider, name, key, url in accounts_to_add:
        args = ("--provider", provider, "--name", name, "--base-url", url, "--api-key-stdin")
        assert cli("accounts", "add", *args, stdin=key + "\n").code == 0

    result = cli("sync", "--start", "2026-08-01", "--end", "2026-08-03")
    assert result.code == 1
    assert result.err.strip() == "error: 1 account(s) failed to sync: openai-old"
    lines = {line.split()[0]: line for line in result.out.strip().splitlines()}
    assert " ok " in lines["openai-prod"] and " ok " in lines["anthropic-prod"]
    assert "failed" in lines["openai-old"] and "401" in lines["openai-old"]
    assert "revoked" not in result.out + result.err
    with committed_db.connect() as conn:
        billed = conn.execute(
            select(Account.name, UsageRecord.day, func.sum(UsageRecord.billed_cost))
            .join(Account, Account.id == UsageRecord.account_id)
            .group_by(Account.name, UsageRecord.day)
        ).all()
    by_account: dict[str, dict[dt.date, Decimal]] = {}
    for name, day, total in billed:
        by_account.setdefault(name, {})[day] = Decimal(total).quantize(Decimal("0.000001"))
    assert by_account["openai-prod"] == {
        d: v.quantize(Decimal("0.000001")) for d, v in OPENAI_BILLED.items()
    }
    assert by_account["anthropic-prod"] == {
        d: v.quantize(Decimal("0.000001")) for d, v in ANTHROPIC_BILLED.items()
    }
    again = cli("sync", "--account", "openai-prod", "--start", "2026-08-01", "--end", "2026-08-03")
    assert again.code == 0 and again.err == ""
    listed = cli("accounts", "list")
    assert "error" in [line for line in listed.out.splitlines() if "openai-old" in line][0]
    assert cli("sync", "--account", "nobody").code == 1
    assert cli("sync", "--start", "yesterday").code == 2


def test_sync_keeps_imported_rows(runtime, server):
    openai_id = add_openai(runtime, server)
    with runtime.session_factory.begin() as session:
        import_csv(
            session=session,
            account_name="openai-prod",
            stream=io.StringIO(
                "day,model,input_tokens,output_tokens,requests,cost\n"
                "2026-08-02,gpt-legacy,100,10,1,1.5\n"
            ),
        )
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert billed_by_day(runtime, openai_id) == {
        **OPENAI_BILLED,
        AUG2: OPENAI_BILLED[AUG2] + Decimal("1.5"),
    }


def test_a_csv_only_account_takes_no_key_and_is_never_synced(runtime, server):
    with runtime.session_factory.begin() as session:
        groq = accounts.add_account(
            session=session, cipher=runtime.cipher, provider="groq", name="groq-csv", api_key=""
        )
        groq_id = groq.id
        assert groq.masked_key == "no key"
    with pytest.raises(InvalidInput, match="API key is empty"):
        with runtime.session_factory.begin() as session:
            accounts.add_account(
                session=session, cipher=runtime.cipher, provider="openai", name="o", api_key=""
            )
    [result] = sync.run_sync(runtime).results
    assert result.status == "skipped" and "imported by CSV" in result.message
    assert server.count() == 0 and runs(runtime, groq_id) == []
    with runtime.session_factory.begin() as session:
        import_csv(
            session=session,
            account_name="groq-csv",
            stream=io.StringIO(
                "day,model,input_tokens,output_tokens,requests\n2026-08-01,llama,10,5,1\n"
            ),
        )
    with runtime.session_factory() as session:
        fresh = sync_health.sync_freshness(session=session, now=utcnow()).set_index("account")
    assert fresh.at["groq-csv", "source"] == "CSV import"
    assert fresh.at["groq-csv", "last_import_at"] is not None
    assert not fresh.at["groq-csv", "failing"]


def test_a_renamed_project_reads_the_new_name_on_every_day(runtime, server, monkeypatch):
    """A sync of one day brings the provider's new project name to the days before it too,
    in the rows and in the explorer's labels."""
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    original = provider_server.load

    def renamed(name: str) -> Any:
        body = original(name)
        if name == "openai/organization_projects.json":
            for project in body["data"]:
                if project["name"] == "support-bot":
                    project["name"] = "support-bot (customer care)"
        return body

    monkeypatch.setattr(provider_server, "load", renamed)
    assert sync.run_sync(runtime, start=AUG3, end=AUG3).ok
    with runtime.session_factory() as session:
        names = set(
            session.execute(
                select(UsageRecord.day, UsageRecord.project_name).where(
                    UsageRecord.account_id == openai_id,
                    UsageRecord.project_id == "proj_9fK2aLx0Qm7Tz1",
                )
            ).all()
        )
        labels = set(
            session.scalars(
                select(UsageLabel.label).where(
                    UsageLabel.kind == "project", UsageLabel.ident == "proj_9fK2aLx0Qm7Tz1"
                )
            )
        )
    assert {day for day, _ in names} >= {AUG1, AUG2, AUG3}
    assert {name for _, name in names} == {"support-bot (customer care)"}
    assert labels == {"support-bot (customer care)"}
