"""OpenAIConnector against the fake server: pages, units, billed rows, errors, retries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.fakes.provider_server import OPENAI_KEY, Reply, iter_rows, load
from tests.providers.conftest import MAX_RETRIES
from tracker.core.crypto import Secret
from tracker.providers.base import ProviderAuthError, ProviderRateLimited
from tracker.providers.openai import OpenAIConnector

AUG1, AUG4 = dt.date(2026, 8, 1), dt.date(2026, 8, 4)
USAGE = "/v1/organization/usage/completions"


def connector(server, http, key=OPENAI_KEY):
    return OpenAIConnector(credential=Secret(key), http=http, base_url=server.url + "/v1")


def test_usage_and_billed_rows_match_the_provider(server, http):
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    completions = [r for r in rows if r.usage_type == "completions"]
    expected = list(
        iter_rows(
            load("openai/usage_completions_page1.json")["data"]
            + load("openai/usage_completions_page2.json")["data"]
        )
    )
    assert len(completions) == len(expected) == 7
    # input_tokens is uncached input only: OpenAI's input_tokens includes the cached ones.
    assert sum(r.input_tokens for r in completions) == sum(
        e["input_tokens"] - e["input_cached_tokens"] for e in expected
    )
    assert sum(r.cached_input_tokens for r in completions) == 3_300_000
    assert sum(r.output_tokens for r in completions) == 1_395_000
    assert sum(r.requests for r in completions) == 14_250
    assert all(r.billed_cost is None for r in completions)
    assert {r.project_name for r in completions} == {"support-bot", "research-agents"}
    # Users by id, named from the organisation's user listing (name, else email).
    assert {(r.user_id, r.user_name) for r in completions} == {
        ("", None),
        ("user_Lq5Zr1", "Ada Park"),
        ("user_Mt7Ys3", "tomas.ruiz@example.com"),
    }

    billed = [r for r in rows if r.usage_type.startswith("cost:")]
    assert sum(r.billed_cost for r in billed) == Decimal("2.82") + Decimal("2.487") + Decimal(
        "3.381"
    )
    by_day = {}
    for r in billed:
        by_day[r.day] = by_day.get(r.day, Decimal(0)) + r.billed_cost
    assert by_day == {
        dt.date(2026, 8, 1): Decimal("2.82"),
        dt.date(2026, 8, 2): Decimal("2.487"),
        dt.date(2026, 8, 3): Decimal("3.381"),
    }
    first = next(r for r in billed if r.usage_type == "cost:gpt-4o-mini-2024-07-18, input")
    assert first.model == "gpt-4o-mini-2024-07-18" and first.input_tokens == 0
    assert first.other_units == 1_600_000 and first.other_unit_name == "tokens"
    assert first.currency == "USD"


def test_every_usage_endpoint_gets_its_usage_type_and_units(server, http):
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    types = {r.usage_type for r in rows if not r.usage_type.startswith("cost:")}
    assert types == {
        "completions",
        "embeddings",
        "moderations",
        "images:image.generation:1024x1024",
        "images:image.edit:1024x1024",
        "audio_speeches",
        "audio_transcriptions",
        "vector_stores",
        "code_interpreter_sessions",
        "file_search_calls",
        "web_search_calls:medium",
    }
    speech = next(r for r in rows if r.usage_type == "audio_speeches")
    assert (speech.other_units, speech.other_unit_name) == (184500, "characters")
    # The empty embeddings bucket of Aug 2 yields nothing rather than a zero row.
    assert [r.day for r in rows if r.usage_type == "embeddings"] == [AUG1]


def test_follows_pages_and_sends_the_documented_query(server, http):
    list(connector(server, http).fetch_usage(AUG1, AUG4))
    # 3 daily buckets at 2 per page: two pages each for completions and costs.
    assert server.count(USAGE) == 2
    assert server.count("/v1/organization/costs") == 2
    query = server.last(USAGE).query
    assert query["group_by"] == [
        "project_id", "user_id", "api_key_id", "model", "batch", "service_tier"
    ]  # fmt: skip
    assert query["start_time"] == ["1785542400"] and query["end_time"] == ["1785801600"]
    assert query["bucket_width"] == ["1d"] and "page" in query
    assert server.last("/v1/organization/costs").query["group_by"] == [
        "project_id",
        "line_item",
        "api_key_id",
    ]


def test_old_shape_buckets_without_newer_fields(server, http):
    server.old_shape = True
    rows = [
        r for r in connector(server, http).fetch_usage(AUG1, AUG4) if r.usage_type == "completions"
    ]
    assert len(rows) == 7
    assert sum(r.input_tokens for r in rows) == 10_000_000  # no cache split reported
    assert sum(r.cached_input_tokens for r in rows) == 0
    assert sum(r.output_tokens for r in rows) == 1_395_000


def test_batch_flag_becomes_service_tier_batch(server, http):
    server.openai_usage["completions"][0]["results"][0]["batch"] = True
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    tiers = {r.service_tier for r in rows if r.usage_type == "completions"}
    assert tiers == {"batch", ""}


def test_amount_as_string_is_exact(server, http):
    server.openai_costs[0]["results"][0]["amount"]["value"] = "0.1"
    rows = [r for r in connector(server, http).fetch_usage(AUG1, AUG4) if r.billed_cost]
    assert Decimal("0.1") in {r.billed_cost for r in rows}


def test_project_key_is_told_it_needs_an_admin_key_before_any_call(server, http):
    conn = connector(server, http, key="sk-proj-abcdefghijklmnop1234")
    with pytest.raises(ProviderAuthError, match="admin key"):
        conn.test()
    with pytest.raises(ProviderAuthError, match="admin key"):
        list(conn.fetch_usage(AUG1, AUG4))
    assert server.count() == 0


def test_bad_key_is_rejected_without_retry_or_echo(server, http):
    conn = connector(server, http, key="sk-admin-wrong-key-zzzz9999")
    with pytest.raises(ProviderAuthError) as caught:
        conn.test()
    assert "401" in str(caught.value) and "sk-admin-wrong" not in str(caught.value)
    assert server.count() == 1


def test_restricted_key_missing_scope_is_told_it_needs_an_admin_key(server, http):
    server.script(
        "/v1/organization/costs", Reply(403, load("openai/error_403_missing_scope_observed.json"))
    )
    with pytest.raises(ProviderAuthError.__mro__[1], match="not an admin key"):
        connector(server, http).test()


def test_admin_key_test_passes(server, http):
    assert "admin key accepted" in connector(server, http).test()


def test_429_with_retry_after_then_success(server, http):
    server.script(USAGE, Reply(429, load("openai/error_429_rate_limit.json"), {"Retry-After": "1"}))
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    assert len([r for r in rows if r.usage_type == "completions"]) == 7
    assert server.count(USAGE) == 3  # one refused, then the two pages


def test_500_then_success(server, http):
    server.script(USAGE, Reply(500, {"error": {"message": "boom"}}))
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    assert len([r for r in rows if r.usage_type == "completions"]) == 7
    assert server.count(USAGE) == 3


def test_429_storm_gives_up_within_bounds(server, http):
    server.storm(USAGE)
    with pytest.raises(ProviderRateLimited):
        list(connector(server, http).fetch_usage(AUG1, AUG4))
    assert server.count(USAGE) == MAX_RETRIES + 1


def test_rate_limit_headers_are_kept(server, http):
    conn = connector(server, http)
    conn.test()
    assert conn.rate_limits.headers["x-ratelimit-remaining-requests"] == "14399"


def test_audio_and_image_tokens_are_kept_as_parts_of_their_columns(server, http):
    result = server.openai_usage["completions"][0]["results"][0]
    result.update(
        model="gpt-realtime",
        input_tokens=10_000,
        input_cached_tokens=4_000,
        input_uncached_tokens=6_000,
        input_text_tokens=1_000,
        input_audio_tokens=4_500,
        input_image_tokens=500,
        input_cached_text_tokens=1_000,
        input_cached_audio_tokens=3_000,
        output_tokens=2_000,
        output_text_tokens=500,
        output_audio_tokens=1_500,
    )
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    realtime = next(r for r in rows if r.model == "gpt-realtime")
    # The columns keep every modality; the parts say how much of each is audio or image.
    assert (realtime.input_tokens, realtime.cached_input_tokens) == (6_000, 4_000)
    assert realtime.output_tokens == 2_000
    assert dict(realtime.details) == {
        "input_audio_tokens": 4_500,
        "input_image_tokens": 500,
        "cached_audio_tokens": 3_000,
        "output_audio_tokens": 1_500,
    }
    # A text-only result has no details.
    assert all(not r.details for r in rows if r.model != "gpt-realtime")


def test_parts_larger_than_their_column_are_refused_before_anything_is_stored() -> None:
    from tracker.models.usage_kinds import pack
    from tracker.providers.base import ProviderResponseError, UsageRow, check_row

    row = UsageRow(day=AUG1, model="gpt-realtime", input_tokens=10,
                   details=pack({"input_audio_tokens": 11}))  # fmt: skip
    with pytest.raises(ProviderResponseError, match="input_audio_tokens .11. is more than"):
        check_row(row, "openai")
    check_row(UsageRow(day=AUG1, input_tokens=11, details=row.details), "openai")
