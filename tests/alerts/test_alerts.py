"""Alert rules fire exactly once per threshold and period, by email and webhook, with retries.

Real SMTP (aiosmtpd) and HTTP servers on 127.0.0.1 receive the alerts; the database is real
(SQLite and PostgreSQL) and committed to, as the worker and CLI do.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.factories import add_account, add_usage
from tests.fakes.smtp_server import smtp_server
from tests.fakes.webhook_server import WebhookServer
from tracker.alerts import delivery, evaluate, rules
from tracker.core.config import Settings, load_settings
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_engine, make_session_factory
from tracker.core.errors import InvalidInput, NotFound
from tracker.models import Account, AlertEvent, Anomaly, SyncRun
from tracker.planning import budgets
from tracker.providers import ratelimits
from tracker.providers.billing import SpendLimit, record_spend_limits

CIPHER = CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))

NOW = dt.datetime(2026, 5, 20, 12, 0, tzinfo=dt.UTC)
MAY = dt.date(2026, 5, 1)


def settings_for(tmp_path: Path, inbox) -> Settings:  # type: ignore[no-untyped-def]
    base = load_settings(
        {
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SECRET_KEY": TEST_SECRET_KEY,
            "DATA_DIR": str(tmp_path / "data"),
        },
        dotenv_path=None,
    )
    return dataclasses.replace(
        base,
        smtp_host=inbox.host,
        smtp_port=inbox.port,
        smtp_security="none",
        smtp_from="tracker@example.org",
        smtp_timeout_seconds=5.0,
    )


@pytest.fixture
def hook():
    server = WebhookServer().start()
    yield server
    server.stop()


def events(factory) -> list[AlertEvent]:  # type: ignore[no-untyped-def]
    with factory() as session:
        return list(session.scalars(select(AlertEvent).order_by(AlertEvent.id)))


def test_budget_thresholds_fire_exactly_once_by_email_and_webhook(committed_db, tmp_path, hook):
    factory = make_session_factory(committed_db)
    with factory.begin() as session:
        acc = add_account(session, "prod", budget="100")
        add_usage(session, acc, MAY, "60")
        add_usage(session, acc, MAY + dt.timedelta(days=1), "16")  # 76 %
        rule = rules.add_rule(
            cipher=CIPHER,
            session=session,
            kind="budget",
            scope="account:prod",
            channels=["email:finance@example.org", "webhook:" + hook.url("/hook")],
        )
        rule_id = rule.id
    with smtp_server() as inbox:
        settings = settings_for(tmp_path, inbox)

        def check(now: dt.datetime = NOW) -> delivery.CheckReport:
            return delivery.run_check(
                cipher=CIPHER,
                session_factory=factory,
                settings=settings,
                http=requests.Session(),
                now=now,
            )

        first = check()
        # 50 % and 75 % were crossed together: the 75 % alert goes out, 50 % is history.
        assert first.delivered == 1 and first.failed == 0
        assert [e.dedupe_key for e in events(factory)] == ["pct:50", "pct:75"]
        assert [e.delivery_status for e in events(factory)] == ["superseded", "delivered"]
        assert len(inbox.messages) == 1 and len(hook.posts) == 1
        assert "75 %" in inbox.messages[0].message["Subject"]
        assert hook.posts[0].body["threshold_pct"] == "75"
        assert hook.posts[0].body["alert_id"] == rule_id

        # Running again (and again) sends nothing new.
        assert check().fired == [] and check().delivered == 0
        assert len(inbox.messages) == 1 and len(hook.posts) == 1

        # A restart: a brand-new engine and session factory see the stored events.
        engine2 = make_engine(committed_db.url.render_as_string(hide_password=False))
        try:
            restarted = make_session_factory(engine2)
            report = delivery.run_check(
                cipher=CIPHER,
                session_factory=restarted,
                settings=settings,
                http=requests.Session(),
                now=NOW,
            )
        finally:
            engine2.dispose()
        assert report.fired == [] and len(inbox.messages) == 1 and len(hook.posts) == 1

        # 92 %, then 101 %: each threshold fires once.
        with factory.begin() as session:
            add_usage(session, session.get(Account, acc.id), MAY + dt.timedelta(days=2), "16")
        assert len(check().fired) == 1
        with factory.begin() as session:
            add_usage(session, session.get(Account, acc.id), MAY + dt.timedelta(days=3), "9")
        assert len(check().fired) == 1
        check()
        subjects = [m.message["Subject"] for m in inbox.messages]
        assert len(subjects) == 3 and "90 %" in subjects[1] and "100 %" in subjects[2]
        assert [p.body["threshold_pct"] for p in hook.posts] == ["75", "90", "100"]

        # A new month is a new budget period: 50 % fires again there (once).
        with factory.begin() as session:
            add_usage(session, session.get(Account, acc.id), dt.date(2026, 6, 1), "55")
        june = dt.datetime(2026, 6, 2, 9, tzinfo=dt.UTC)
        assert len(check(june).fired) == 1 and check(june).fired == []
    stored = events(factory)
    assert [(e.period, e.dedupe_key) for e in stored][-1] == ("2026-06", "pct:50")
    assert all(e.delivery_status in ("delivered", "superseded") for e in stored)
    assert all(e.delivered_at for e in stored if e.delivery_status == "delivered")


def test_failed_delivery_is_retried_next_run_without_resending_the_rest(
    committed_db, tmp_path, hook
):
    factory = make_session_factory(committed_db)
    with factory.begin() as session:
        acc = add_account(session, "prod", budget="100")
        add_usage(session, acc, MAY, "55")
        rules.add_rule(
            cipher=CIPHER,
            session=session,
            kind="budget",
            scope="org",
            channels=["email:finance@example.org", "slack:" + hook.url("/slack")],
        )
    with smtp_server() as inbox:
        settings = settings_for(tmp_path, inbox)

        def check() -> delivery.CheckReport:
            return delivery.run_check(
                cipher=CIPHER,
                session_factory=factory,
                settings=settings,
                http=requests.Session(),
                now=NOW,
            )

        # The Slack endpoint refuses the connection (server down), then answers 503.
        hook.stop()
        first = check()
        assert first.failed == 1 and len(inbox.messages) == 1
        [event] = events(factory)
        assert event.delivery_status == "failed" and event.delivery_attempts == 1
        assert "could not be reached" in (event.last_delivery_error or "")
        assert hook.url("/slack") not in (event.last_delivery_error or "")

        hook.fail_next = 1
        hook.start()
        assert check().failed == 1
        [event] = events(factory)
        assert event.delivery_status == "failed" and "HTTP 503" in event.last_delivery_error

        third = check()
        assert third.delivered == 1 and third.fired == []
        [event] = events(factory)
        assert event.delivery_status == "delivered" and event.delivery_attempts == 3
        assert event.last_delivery_error is None and event.delivered_at is not None
        # The email went out once, on the first attempt; Slack once, on the third.
        assert len(inbox.messages) == 1 and len(hook.posts) == 1
        assert hook.posts[0].body["text"].startswith("*[AI cost tracker]")
        assert check().delivered == 0 and len(hook.posts) == 1


def test_the_unique_constraint_decides_between_concurrent_checkers(session):
    acc = add_account(session, "prod", budget="10")
    add_usage(session, acc, MAY, "9")
    rule = rules.add_rule(
        cipher=CIPHER,
        session=session,
        kind="budget",
        scope="org",
        threshold="50",
        channels=["email:a@b.co"],
    )
    firings = evaluate.evaluate(session=session, now=NOW)
    assert [f.dedupe_key for f in firings] == ["pct:50"]
    # Another checker stored the same key first (between our check and our insert).
    session.add(
        AlertEvent(alert_id=rule.id, period="2026-05", dedupe_key="pct:50", message="other")
    )
    session.flush()
    original = evaluate.already_fired
    try:
        evaluate.already_fired = lambda _s, _f: False  # type: ignore[assignment]
        assert evaluate.record_firings(session=session, firings=firings, now=NOW) == []
    finally:
        evaluate.already_fired = original  # type: ignore[assignment]
    assert session.scalar(select(func.count()).select_from(AlertEvent)) == 1


def test_dry_run_sends_and_stores_nothing(committed_db, tmp_path, hook):
    factory = make_session_factory(committed_db)
    with factory.begin() as session:
        acc = add_account(session, "prod", budget="100")
        add_usage(session, acc, MAY, "95")
        rules.add_rule(
            cipher=CIPHER, session=session, kind="budget", channels=["webhook:" + hook.url()]
        )
    with smtp_server() as inbox:
        report = delivery.run_check(
            cipher=CIPHER,
            session_factory=factory,
            settings=settings_for(tmp_path, inbox),
            http=requests.Session(),
            now=NOW,
            dry_run=True,
        )
    assert len(report.fired) == 3 and "would fire" in report.summary()
    assert events(factory) == [] and hook.attempts == 0


@pytest.mark.parametrize(
    ("kind", "threshold", "message"),
    [
        ("budget", "0", "percentage"),
        ("budget", "abc", "not a number"),
        ("ratelimit", "100", "remaining"),
        ("unpriced", "5", "no --threshold"),
        ("sync", "0", "hours"),
        ("spendlimit", "1001", "percentage"),
        ("nope", None, "unknown alert kind"),
    ],
)
def test_bad_rules_are_refused(session, kind, threshold, message):
    with pytest.raises(InvalidInput, match=message):
        rules.add_rule(
            cipher=CIPHER,
            session=session,
            kind=kind,
            threshold=threshold,
            channels=["email:a@b.co"],
        )


def test_rules_need_a_channel_and_a_known_scope(session):
    with pytest.raises(InvalidInput, match="at least one"):
        rules.add_rule(cipher=CIPHER, session=session, kind="budget", channels=[])
    with pytest.raises(InvalidInput, match="scope"):
        rules.add_rule(
            cipher=CIPHER, session=session, kind="budget", scope="x:y", channels=["email:a@b.co"]
        )
    add_account(session, "prod")
    # The app shows the message too: it names the accounts there are, not a command.
    with pytest.raises(NotFound, match=r"^no account named 'prd' \(accounts: prod\)$"):
        rules.add_rule(
            session=session, kind="budget", scope="account:prd", channels=["email:a@b.co"]
        )


def firing_keys(session) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.dedupe_key for f in evaluate.evaluate(session=session, now=NOW)]


def test_quota_unpriced_variance_sync_anomaly_and_ratelimit_rules(session):
    a = add_account(session, "prod", token_quota=1_000_000)
    b = add_account(session, "claude", provider="anthropic")
    add_usage(session, a, MAY, "1", input_tokens=800_000, output_tokens=10_000)
    add_usage(session, a, MAY, None, model="new-model", billed=False, pricing_status="unpriced")
    add_usage(session, a, MAY + dt.timedelta(days=1), "12.00", estimated="10.00", model="o3")
    add_usage(session, a, MAY + dt.timedelta(days=2), "0.30", estimated="0.20", model="o3")
    add_usage(session, b, MAY, "5.05", estimated="5.00")
    channels = ["email:a@b.co"]
    for kind, scope, threshold in [
        ("quota", "org", None),
        ("unpriced", "org", None),
        ("variance", "org", None),
        ("sync", "org", "6"),
        ("anomaly", "org", "10"),
        ("ratelimit", "account:claude", "20"),
    ]:
        rules.add_rule(
            cipher=CIPHER,
            session=session,
            kind=kind,
            scope=scope,
            threshold=threshold,
            channels=channels,
        )
    # sync: "prod" failing for 7 hours after a success; "claude" failing for only 2 hours.
    for account, hours_ago, status in [
        (a, 30, "success"),
        (a, 7, "failed"),
        (a, 1, "failed"),
        (b, 2, "failed"),
    ]:
        session.add(
            SyncRun(
                account_id=account.id,
                range_start=MAY,
                range_end=MAY,
                started_at=NOW - dt.timedelta(hours=hours_ago),
                status=status,
            )
        )
    # anomaly: one big enough ($40 over), one too small for the $10 threshold.
    for model, actual in (("o3", "50"), ("gpt-4o", "15")):
        session.add(
            Anomaly(
                account_id=a.id,
                model=model,
                day=dt.date(2026, 5, 18),
                actual_cost=Decimal(actual),
                baseline_cost=Decimal("10"),
                score=Decimal("9.5"),
            )
        )
    b.rate_limit_snapshot = {
        "anthropic-ratelimit-requests-limit": "1000",
        "anthropic-ratelimit-requests-remaining": "100",
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-tokens-remaining": "79000",
        "anthropic-ratelimit-tokens-reset": "2026-05-20T12:00:30Z",
    }
    b.rate_limit_updated_at = NOW - dt.timedelta(minutes=5)
    session.flush()
    first_failure = (NOW - dt.timedelta(hours=7)).isoformat()
    assert firing_keys(session) == [
        "prod:pct:50",
        "prod:pct:75",
        "openai/new-model",
        "prod:2026-05-02",  # $12 billed vs $10 estimated: 20 % and $2 apart
        # 2026-05-03 is 50 % apart but only $0.10: rounding, not news; claude is 1 % apart
        f"prod:{first_failure}",
        "prod:o3:2026-05-18",
        "claude:requests",  # 10 % left of requests; tokens have 98.75 % left
    ]
    # A stale rate-limit snapshot alerts nobody.
    b.rate_limit_updated_at = NOW - dt.timedelta(days=2)
    assert "claude:requests" not in firing_keys(session)


def test_rate_limit_readings_pair_both_header_styles():
    readings = ratelimits.rate_limit_readings(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "1500",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert [(r.resource, r.limit, r.remaining) for r in readings] == [
        ("requests", 500, 499),
        ("tokens", 30000, 1500),
    ]
    assert readings[1].remaining_pct == Decimal(5)
    anthropic = {
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-tokens-remaining": "79000",
        "anthropic-ratelimit-requests-reset": "2026-05-01T00:00:00Z",
    }
    assert [
        (r.resource, r.limit, r.remaining) for r in ratelimits.rate_limit_readings(anthropic)
    ] == [("tokens", 80000, 79000)]
    # The Accounts page's text is the same readings, formatted.
    assert ratelimits.rate_limit_headroom(anthropic) == "tokens 79,000/80,000"
    assert ratelimits.rate_limit_headroom({"x-ratelimit-limit": "n/a"}) == ""


def test_projected_rule_uses_the_forecast(session):
    acc = add_account(session, "prod", budget="300")
    for i in range(60):
        day = dt.date(2026, 3, 21) + dt.timedelta(days=i)
        add_usage(session, acc, day, "10")  # $10/day: May projects to about $310
    rules.add_rule(
        cipher=CIPHER,
        session=session,
        kind="projected",
        scope="account:prod",
        channels=["email:a@b.co"],
    )
    [firing] = evaluate.evaluate(session=session, now=NOW)
    assert firing.dedupe_key == "projected:100"
    assert Decimal(firing.fields["projected_total"]) == Decimal("310.00")
    assert firing.fields["budget_exhausted_on"] == "2026-05-30"


def test_a_rule_whose_account_is_gone_is_skipped(session):
    acc = add_account(session, "prod", budget="10")
    add_usage(session, acc, MAY, "9")
    rules.add_rule(
        cipher=CIPHER,
        session=session,
        kind="budget",
        scope="account:prod",
        channels=["email:a@b.co"],
    )
    rules.add_rule(
        cipher=CIPHER, session=session, kind="budget", scope="org", channels=["email:a@b.co"]
    )
    acc.name = "renamed"
    session.flush()
    keys = [f.dedupe_key for f in evaluate.evaluate(session=session, now=NOW)]
    assert keys == ["pct:50", "pct:75", "pct:90"]  # the org rule only


def test_cli_alerts(cli, hook, monkeypatch):
    secret = hook.url("/services/T0/B0/TopSecretPath9876")
    assert cli("budgets", "set", "--scope", "org", "--monthly", "100").code == 0
    added = cli(
        "alerts",
        "add",
        "--kind",
        "budget",
        "--channel",
        "webhook:" + secret,
        "--channel",
        "email:fin@example.org",
    )
    assert added.code == 0, added.err
    assert "50, 75, 90, 100 % of budget" in added.out and "TopSecretPath" not in added.out
    listed = cli("alerts", "list", "--json")
    [rule] = json.loads(listed.out)
    assert rule["thresholds"] == ["50", "75", "90", "100"]
    assert rule["channels"][0].endswith("/…9876")
    assert "TopSecretPath" not in cli("alerts", "list").out

    bad = cli("alerts", "add", "--kind", "budget", "--channel", "sms:123")
    assert bad.code == 1 and bad.err.startswith("error:") and bad.err.count("\n") == 1

    from tracker.core.config import load_settings
    from tracker.core.runtime import build_runtime

    runtime = build_runtime(load_settings())
    with runtime.session_factory.begin() as session:
        acc = add_account(session, "prod")
        add_usage(session, acc, dt.datetime.now(dt.UTC).date(), "60")
    dry = cli("alerts", "check", "--dry-run")
    assert dry.code == 0 and "would fire 1 alert(s)" in dry.out and hook.attempts == 0
    # No SMTP configured: the webhook goes out, the email fails and is kept for a retry.
    checked = cli("alerts", "check")
    assert checked.code == 1 and "failed 1" in checked.out
    assert len(hook.posts) == 1
    shown = json.loads(cli("alerts", "events", "--json").out)
    assert [e["delivery_status"] for e in shown] == ["failed"]
    assert "SMTP_HOST" in shown[0]["last_delivery_error"]
    assert "TopSecretPath" not in cli("alerts", "events").out
    again = cli("alerts", "check")
    assert again.code == 1 and len(hook.posts) == 1  # the webhook is not sent twice
    assert cli("alerts", "remove", str(rule["id"])).code == 0
    assert json.loads(cli("alerts", "events", "--json").out) == []
    runtime.engine.dispose()


def test_worker_runs_the_jobs_after_sync(app_env):
    import worker
    from tracker.core.config import load_settings
    from tracker.core.runtime import build_runtime

    runtime = build_runtime(load_settings())
    try:
        names = [j.name for j in worker.build_jobs(runtime)]
        assert names[:1] == ["sync"]
        assert names.index("alerts") > names.index("projections")
        assert names.index("alerts") > names.index("anomalies")
        w = worker.Worker(runtime, worker.build_jobs(runtime))
        with runtime.session_factory.begin() as session:
            acc = add_account(session, "prod")
            budgets.set_budget(session=session, scope="org", monthly=Decimal(100))
            add_usage(session, acc, dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1), "1")
        for name in ("projections", "anomalies", "alerts"):
            assert w.guarded(next(j for j in w.jobs if j.name == name)) is True
        with runtime.session_factory() as session:
            from tracker.models import CostProjection

            scopes = set(session.scalars(select(CostProjection.scope)))
        assert {"org", "service:openai", "account:prod"} <= scopes
    finally:
        runtime.engine.dispose()


# --- team scopes ------------------------------------------------------------------------------


def test_a_team_budget_alert_fires_at_its_threshold(session):
    from tracker.attribution import teams
    from tracker.attribution.chargeback import chargeback

    web = add_account(session, "web-acct")
    shared = add_account(session, "shared-acct", "groq")
    add_usage(session, web, MAY, "30")
    add_usage(session, shared, MAY + dt.timedelta(days=1), "20")
    for name in ("Web", "Ops"):
        teams.add_team(session=session, name=name, actor="t")
    teams.add_mapping(
        session=session, kind="account", value="web-acct", team="Web", valid_from=MAY, actor="t"
    )
    teams.add_rule(
        session=session,
        source="Unassigned",
        method="even",
        targets=[("Web", None), ("Ops", None)],
        valid_from=MAY,
        actor="t",
    )
    budgets.set_budget(session=session, scope="team:Web", monthly="50")

    def add(threshold: str, kind: str = "budget") -> int:
        return rules.add_rule(
            session=session,
            kind=kind,
            scope="team:Web",
            threshold=threshold,
            channels=["email:finance@example.org"],
        ).id

    # $30 of its own and half the shared $20: $40 of $50, 80 %.
    at_80, at_90, projected = add("80"), add("90"), add("100", "projected")
    fired = evaluate.evaluate(session=session, now=NOW)
    by_rule = {f.rule_id: f for f in fired}
    assert set(by_rule) == {at_80, projected}  # 31 days at May's pace: over the budget
    firing = by_rule[at_80]
    assert (
        Decimal(firing.fields["spent"]) == chargeback(session=session, month=MAY).by_team()["Web"]
    )
    assert firing.fields["scope"] == "team:Web" and firing.dedupe_key == "pct:80"
    assert firing.subject.startswith("team Web: 80 %")
    assert at_90 not in by_rule
    assert len(evaluate.record_firings(session=session, firings=fired, now=NOW)) == 2
    assert evaluate.record_firings(session=session, firings=fired, now=NOW) == []


def test_team_scopes_fit_budget_kinds_and_known_teams_only(session):
    from tracker.attribution import teams

    teams.add_team(session=session, name="Web", actor="t")
    channels = ["email:finance@example.org"]
    with pytest.raises(InvalidInput, match="budget and projected kinds only"):
        rules.add_rule(session=session, kind="quota", scope="team:Web", channels=channels)
    with pytest.raises(NotFound, match="teams: Web"):
        rules.add_rule(session=session, kind="budget", scope="team:Ghost", channels=channels)


def test_spendlimit_fires_once_when_a_provider_cap_and_our_budget_drift_apart(session):
    below = add_account(session, "prod", budget="500")
    uncapped = add_account(session, "grok", provider="xai", budget="100")
    fine = add_account(session, "claude", provider="anthropic", budget="100")
    record_spend_limits(session, below.id, [SpendLimit(amount=Decimal(300))], NOW)
    record_spend_limits(session, uncapped.id, [], NOW)  # read: the provider has no cap
    record_spend_limits(session, fine.id, [SpendLimit(amount=Decimal(250))], NOW)
    rules.add_rule(cipher=CIPHER, session=session, kind="spendlimit", channels=["email:a@b.co"])
    fired = evaluate.evaluate(session=session, now=NOW)
    assert sorted((f.fields["account"], f.fields["status"]) for f in fired) == [
        ("grok", "no cap at the provider"),
        ("prod", "cap below budget"),
    ]
    prod = next(f for f in fired if f.fields["account"] == "prod")
    assert prod.period == "2026-05" and prod.fields["provider_cap"] == "300"
    assert "at OpenAI its spend limit is $300.00" in prod.body
    assert len(evaluate.record_firings(session=session, firings=fired, now=NOW)) == 2
    assert evaluate.record_firings(session=session, firings=fired, now=NOW) == []
    # The cap is raised to the budget: nothing more fires for that account.
    record_spend_limits(session, below.id, [SpendLimit(amount=Decimal(500))], NOW)
    assert [f.fields["account"] for f in evaluate.evaluate(session=session, now=NOW)] == ["grok"]


def test_a_spendlimit_rule_watches_its_scope_and_threshold(session):
    account = add_account(session, "prod", budget="500")
    add_account(session, "other", budget="10")
    record_spend_limits(session, account.id, [SpendLimit(amount=Decimal(450))], NOW)
    rule = rules.add_rule(
        cipher=CIPHER,
        session=session,
        kind="spendlimit",
        scope="account:prod",
        threshold="90",
        channels=["email:a@b.co"],
    )
    assert rules.rule_json(rule)["unit"] == "% of budget (provider cap below)"
    assert evaluate.evaluate(session=session, now=NOW) == []  # $450 is 90 % of $500
    record_spend_limits(session, account.id, [SpendLimit(amount=Decimal(449))], NOW)
    assert [f.fields["account"] for f in evaluate.evaluate(session=session, now=NOW)] == ["prod"]
