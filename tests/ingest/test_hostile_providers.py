"""Providers that answer nonsense, redirect keys away, or never answer: the sync holds.

Each bad answer comes from the fake provider server on 127.0.0.1, in the documented shapes
with one field spoiled. A good pass is stored first; the bad pass must fail for that account
with one message naming the field and value, and leave every stored row as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

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
)
from tests.fakes.recorder import Recorder, recording_server
from tests.ingest.test_sync import (
    AUG1,
    AUG3,
    OPENAI_BILLED,
    OPENAI_COSTS,
    OPENAI_USAGE,
    account,
    add,
    add_anthropic,
    add_openai,
    billed_by_day,
    runs,
    snapshot,
)
from tracker.core.errors import InvalidInput
from tracker.ingest import sync
from tracker.providers import accounts


def spoil_first_result(buckets: list[dict[str, Any]], field: str, value: Any) -> None:
    for bucket in buckets:
        if bucket["results"]:
            if value is KeyError:
                del bucket["results"][0][field]
            else:
                bucket["results"][0][field] = value
            return


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (("usage", "output_tokens", -335_000_000), "output_tokens = -335000000"),
        (("usage", "output_tokens", 10**20), "output_tokens = 100000000000000000000"),
        (("usage", "output_tokens", KeyError), "without 'output_tokens'"),
        (("cost", "amount", {"value": -21507, "currency": "usd"}), "a cost of -21507"),
        (("cost", "amount", {"value": 1e30, "currency": "usd"}), "a cost of 1E+30"),
        (("cost", "amount", {"value": None, "currency": "usd"}), "without an amount value"),
    ],
)
def test_bad_provider_data_fails_the_account_and_changes_nothing(
    runtime, server, spoil: tuple[str, str, Any], says: str
) -> None:
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    where, field, value = spoil
    buckets = server.openai_usage["completions"] if where == "usage" else server.openai_costs
    spoil_first_result(buckets, field, value)
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    [result] = summary.results
    assert result.status == "failed" and says in result.message, result.message
    assert snapshot(runtime) == before
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED
    assert says in (runs(runtime, openai_id)[-1].error or "")
    assert says in (account(runtime, openai_id).last_error or "")


def test_buckets_outside_the_window_delete_nothing(runtime, server) -> None:
    add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    year_3000 = 32503680000  # 3000-01-01 00:00 UTC
    buckets = copy.deepcopy(server.openai_usage["completions"])
    for i, bucket in enumerate(buckets):
        bucket["start_time"] = year_3000 + i * 86_400
        bucket["end_time"] = bucket["start_time"] + 86_400
    # Whatever the window asked for, the provider answers with the year 3000.
    server.storm(OPENAI_USAGE, Reply(200, {"object": "page", "data": buckets, "has_more": False}))
    [result] = sync.run_sync(runtime, start=AUG1, end=AUG3).results
    assert result.status == "failed"
    assert "sent usage for 3000-01-01, outside the days asked for" in result.message
    assert snapshot(runtime) == before and len(before) > 0


def test_days_an_answer_did_not_cover_keep_their_rows(runtime, server) -> None:
    openai_id = add_openai(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    before = snapshot(runtime)
    completions = server.openai_usage["completions"]
    aug1 = [b for b in completions if b["start_time"] < completions[0]["start_time"] + 86_400]
    assert aug1 and len(aug1) < len(completions)
    # A short answer: the completions report stops after Aug 1 (no bucket, not even an
    # empty one, for Aug 2 and 3). Those days are not covered, so their rows must stay.
    short = {"object": "page", "data": aug1, "has_more": False, "next_page": None}
    server.storm(OPENAI_USAGE, Reply(200, short))
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert snapshot(runtime) == before
    server.calm(OPENAI_USAGE)
    # On a covered day a row the provider no longer reports goes.
    dropped = next(b for b in server.openai_usage["completions"] if b["results"])
    dropped["results"].pop()
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert len(snapshot(runtime)) == len(before) - 1
    assert billed_by_day(runtime, openai_id) == OPENAI_BILLED


@pytest.fixture
def other_host() -> Iterator[Recorder]:
    with recording_server("localhost") as recorder:
        yield recorder


CONNECTORS = {
    # provider: (key, base URL path on the fake server, organisation)
    "openai": (OPENAI_KEY, "/v1", None),
    "anthropic": (ANTHROPIC_KEY, "", None),
    "github_copilot": (GITHUB_TOKEN, "", GITHUB_ORG),
    "openrouter": (OPENROUTER_KEY, "/api/v1", None),
    "deepseek": (DEEPSEEK_KEY, "", None),
    "groq": (GROQ_KEY, "/openai/v1", None),
    "perplexity": (PERPLEXITY_KEY, "", None),
}


@pytest.mark.parametrize("provider", sorted(CONNECTORS))
def test_a_redirect_to_another_host_never_carries_the_key(
    runtime, server, other_host: Recorder, provider: str
) -> None:
    key, path, org = CONNECTORS[provider]
    add(runtime, provider, f"{provider}-acct", key, server.url + path, org)
    server.redirect_to = other_host.url
    sync.run_sync(runtime, start=AUG1, end=AUG3)
    assert other_host.requests, f"{provider}: the redirect was not followed at all"
    for _path, headers in other_host.requests:
        assert not {"authorization", "x-api-key", "api-key", "cookie"} & set(headers), headers
        assert key not in " ".join(headers.values())


def test_four_stuck_providers_cost_at_most_their_budgets(runtime, server) -> None:
    budget = 2.0
    runtime = dataclasses.replace(
        runtime, settings=dataclasses.replace(runtime.settings, sync_account_budget_seconds=budget)
    )
    ids = [add_openai(runtime, server, name=f"openai-{i}") for i in range(3)]
    ids.append(add_anthropic(runtime, server))
    server.storm(
        OPENAI_USAGE, Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "3600"})
    )
    server.storm(OPENAI_COSTS, Reply(500, {"error": {"message": "boom"}}))
    server.storm("/v1/organizations/usage_report/messages", Reply(200, {}, delay=30))
    started = time.monotonic()
    summary = sync.run_sync(runtime, start=AUG1, end=AUG3)
    elapsed = time.monotonic() - started
    assert [r.status for r in summary.results] == ["failed"] * 4
    # Each account stops at its budget (plus a little for the database work).
    assert elapsed < 4 * (budget + 1.5), elapsed
    anthropic = next(r for r in summary.results if r.provider == "anthropic")
    assert "sync budget" in anthropic.message or "did not answer" in anthropic.message


def test_base_urls_are_https_and_the_providers_own_unless_allowed(runtime) -> None:
    with runtime.session_factory.begin() as session:
        add = dict(session=session, cipher=runtime.cipher, provider="anthropic", api_key="sk-ant-x")
        with pytest.raises(InvalidInput, match="plain http"):
            accounts.add_account(name="a", base_url="http://gateway.example.com", **add)
        with pytest.raises(InvalidInput, match="ALLOW_CUSTOM_BASE_URLS"):
            accounts.add_account(name="b", base_url="https://evil.example.com", **add)
        with pytest.raises(InvalidInput, match="user name or password"):
            accounts.add_account(name="c", base_url="https://u:p@api.anthropic.com", **add)
        official = accounts.add_account(name="d", base_url="https://api.anthropic.com/", **add)
        assert accounts.custom_host("anthropic", official.base_url) is None
        gateway = accounts.add_account(
            name="e", base_url="https://llm-gw.example.com", allow_custom_base_url=True, **add
        )
        assert accounts.view(gateway).custom_host == "llm-gw.example.com"
        with pytest.raises(InvalidInput, match="needs the key entered again"):
            accounts.update_account(
                session=session,
                cipher=runtime.cipher,
                name="d",
                actor="t",
                base_url="http://127.0.0.1:9",
            )


def test_a_second_account_for_one_organisation_is_refused(runtime, server) -> None:
    first = add_openai(runtime, server, name="openai-prod")
    second = add_openai(runtime, server, name="openai-again")
    add_anthropic(runtime, server, name="anthropic-a")
    add_anthropic(runtime, server, name="anthropic-b")
    results = {r.name: r for r in sync.run_sync(runtime, start=AUG1, end=AUG3).results}
    # Accounts sync by name: the first of each organisation wins, the second is refused.
    assert results["anthropic-a"].status == "ok"
    assert results["anthropic-b"].status == "failed"
    assert (
        "same Anthropic organisation as the account 'anthropic-a'" in results["anthropic-b"].message
    )
    assert results["openai-again"].status == "ok"
    assert results["openai-prod"].status == "failed"
    assert "'openai-again'" in results["openai-prod"].message
    assert billed_by_day(runtime, first) == {}  # nothing counted twice
    assert billed_by_day(runtime, second) == OPENAI_BILLED
    with runtime.session_factory.begin() as session:
        outcome = accounts.check_account(
            session=session,
            cipher=runtime.cipher,
            name="anthropic-b",
            http=sync.http_session_for(runtime),
            timeout=5,
        )
    assert not outcome.ok and "count twice" in outcome.message
