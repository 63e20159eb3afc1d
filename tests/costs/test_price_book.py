"""The price book against the providers' own price pages: every token kind, unit and fee.

Each case names the page its prices come from and the amount worked out by hand from that
page (USD); the book must land within half a cent of it. Dated cases sit on both sides of a
price change. Counts follow the book's convention: `input_tokens` is uncached input, and a
token part (audio, image, reasoning) is part of its column (`tracker.models.usage_kinds`).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from tracker.core.errors import InvalidInput
from tracker.costs.corrections import load_corrections, parse_corrections
from tracker.costs.pricebook import PriceBook, price_usage

D = dt.date
M = 1_000_000
HALF_CENT = Decimal("0.005")

OPENAI = "https://platform.openai.com/docs/pricing"
OPENAI_PRIORITY = "https://openai.com/api-priority-processing/"
ANTHROPIC = "https://docs.anthropic.com/en/docs/about-claude/pricing"
ANTHROPIC_SEARCH = "https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool"
PERPLEXITY = "https://docs.perplexity.ai/getting-started/pricing"
DEEPSEEK = "https://api-docs.deepseek.com/quick_start/pricing"
GROQ = "https://groq.com/pricing"
OPENROUTER = "https://openrouter.ai/openai/gpt-4o"

# (id, source, pricing call, expected USD, expected status)
CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # --- OpenAI: text, tools, audio, images, speech, transcription -----------------------
    (
        "gpt-4o-mini text and cached input",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=D(2026, 8, 1),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "0.825",  # 0.15 + 0.075 + 0.60
        "priced",
    ),
    (
        "gpt-4.1 web search calls at $10 per 1,000",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-4.1",
            day=D(2026, 8, 1),
            input_tokens=M,
            details={"web_search_calls": 1000},
        ),
        "12",  # 2 + 1000 * 0.01
        "priced",
    ),
    (
        "gpt-4.1 file search calls at $2.50 per 1,000",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-4.1",
            day=D(2026, 8, 1),
            details={"file_search_calls": 2000},
        ),
        "5",
        "priced",
    ),
    (
        "file search calls reported without a model",
        OPENAI,
        dict(provider="openai", model="", day=D(2026, 8, 1), details={"file_search_calls": 150}),
        "0.375",
        "priced",
    ),
    (
        "code interpreter sessions (reported per project, no model) at $0.03 each",
        OPENAI,
        dict(
            provider="openai",
            model="",
            day=D(2026, 8, 1),
            details={"code_interpreter_sessions": 14},
        ),
        "0.42",
        "priced",
    ),
    (
        "code interpreter sessions in the Assistants API's time, before the Responses API",
        OPENAI,
        dict(
            provider="openai",
            model="",
            day=D(2024, 6, 1),
            details={"code_interpreter_sessions": 3},
        ),
        "0.09",
        "priced",
    ),
    (
        "gpt-realtime text and audio tokens",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-realtime",
            day=D(2026, 11, 1),
            input_tokens=3000,
            output_tokens=500,
            details={"input_audio_tokens": 2000, "output_audio_tokens": 500},
        ),
        "0.1",  # 1000 * 4 + 2000 * 32 + 500 * 64, per million
        "priced",
    ),
    (
        "gpt-realtime cached audio input",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-realtime",
            day=D(2026, 11, 1),
            cached_tokens=M,
            details={"cached_audio_tokens": M},
        ),
        "0.4",
        "priced",
    ),
    (
        "gpt-realtime image input",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-realtime",
            day=D(2026, 11, 1),
            input_tokens=M,
            details={"input_image_tokens": M},
        ),
        "5",
        "priced",
    ),
    (
        "gpt-image-1 text and image input, image output",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-image-1",
            day=D(2026, 8, 1),
            input_tokens=2 * M,
            output_tokens=M,
            details={"input_image_tokens": M, "output_image_tokens": M},
        ),
        "55",  # 5 (text) + 10 (image input) + 40 (image output)
        "priced",
    ),
    (
        "gpt-image-1 cached image input",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-image-1",
            day=D(2026, 8, 1),
            cached_tokens=M,
            details={"cached_image_tokens": M},
        ),
        "2.5",
        "priced",
    ),
    (
        "gpt-4o vision input is billed as input tokens",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-4o",
            day=D(2026, 8, 1),
            input_tokens=M,
            details={"input_image_tokens": M},
        ),
        "2.5",
        "priced",
    ),
    (
        "whisper-1 at $0.006 a minute (per second)",
        OPENAI,
        dict(
            provider="openai", model="whisper-1", day=D(2026, 8, 1), details={"audio_seconds": 5400}
        ),
        "0.54",
        "priced",
    ),
    (
        "tts-1 at $15 per million characters",
        OPENAI,
        dict(provider="openai", model="tts-1", day=D(2026, 8, 1), details={"characters": 184_500}),
        "2.7675",
        "priced",
    ),
    (
        "tts-1-hd at $30 per million characters",
        OPENAI,
        dict(provider="openai", model="tts-1-hd", day=D(2026, 8, 1), details={"characters": M}),
        "30",
        "priced",
    ),
    (
        "gpt-4o-mini batch before the catalog's batch prices: half price",
        "https://platform.openai.com/docs/guides/batch",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            batch=True,
        ),
        "0.375",
        "priced",
    ),
    # --- OpenAI service tiers, dated on both sides of the catalog's 2026-10-12 -----------
    (
        "gpt-5 priority on 2026-10-11 (correction)",
        OPENAI_PRIORITY,
        dict(
            provider="openai",
            model="gpt-5",
            day=D(2026, 10, 11),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            service_tier="priority",
        ),
        "22.75",  # 2.50 + 0.25 + 20
        "priced",
    ),
    (
        "gpt-5 priority on 2026-10-12 (catalog)",
        OPENAI_PRIORITY,
        dict(
            provider="openai",
            model="gpt-5",
            day=D(2026, 10, 12),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            service_tier="priority",
        ),
        "22.75",
        "priced",
    ),
    (
        "gpt-4.1 priority in 2026-03",
        OPENAI_PRIORITY,
        dict(
            provider="openai",
            model="gpt-4.1-2025-04-14",
            day=D(2026, 3, 2),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            service_tier="priority",
        ),
        "18.375",  # 3.50 + 0.875 + 14
        "priced",
    ),
    (
        "gpt-4o-mini priority in 2026-08",
        OPENAI_PRIORITY,
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            service_tier="priority",
        ),
        "1.25",
        "priced",
    ),
    (
        "gpt-5.4 flex cached input at $0.125",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-5.4",
            day=D(2026, 11, 2),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            service_tier="flex",
            requests=100,
        ),
        "8.875",  # 1.25 + 0.125 + 7.50; 2M prompt over 100 requests could pass 272k: see below
        "approximate",
    ),
    (
        "gpt-5.4 batch cached input at $0.125, no request near the tier",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-5.4",
            day=D(2026, 11, 2),
            input_tokens=100_000,
            cached_tokens=100_000,
            output_tokens=M,
            requests=10,
            batch=True,
        ),
        "7.6375",  # 0.125 + 0.0125 + 7.50
        "priced",
    ),
    (
        "gpt-5.4 standard, no request could pass 272k tokens",
        OPENAI,
        dict(
            provider="openai",
            model="gpt-5.4",
            day=D(2026, 8, 1),
            input_tokens=200_000,
            output_tokens=10_000,
            requests=5,
        ),
        "0.65",  # 0.5 + 0.15
        "priced",
    ),
    # --- Anthropic -----------------------------------------------------------------------
    (
        "claude-haiku-4-5 input, cache reads, 5-minute and 1-hour writes",
        ANTHROPIC,
        dict(
            provider="anthropic",
            model="claude-haiku-4-5",
            day=D(2026, 8, 1),
            input_tokens=M,
            cached_tokens=M,
            cache_write_tokens=M,
            cache_write_1h_tokens=M,
            output_tokens=M,
        ),
        "9.35",  # 1 + 0.10 + 1.25 + 2 + 5
        "priced",
    ),
    (
        "claude-sonnet-4-5 web searches at $10 per 1,000",
        ANTHROPIC_SEARCH,
        dict(
            provider="anthropic",
            model="claude-sonnet-4-5",
            day=D(2026, 8, 1),
            input_tokens=100_000,
            output_tokens=10_000,
            requests=20,
            details={"web_search_calls": 300},
        ),
        "3.45",  # 0.30 + 0.15 + 3
        "priced",
    ),
    (
        "claude-sonnet-4-5 1M prompt tokens in 100 requests: one could pass 200k",
        ANTHROPIC,
        dict(
            provider="anthropic",
            model="claude-sonnet-4-5",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            requests=100,
        ),
        "18",  # base tier: 3 + 15
        "approximate",
    ),
    (
        "claude-haiku-4-5 batch before the catalog's batch prices",
        "https://docs.anthropic.com/en/docs/build-with-claude/batch-processing",
        dict(
            provider="anthropic",
            model="claude-haiku-4-5",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            batch=True,
        ),
        "3",
        "priced",
    ),
    # --- Perplexity: request fees by search context size --------------------------------
    (
        "sonar, low search context",
        PERPLEXITY,
        dict(
            provider="perplexity",
            model="sonar",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            requests=1000,
            details={"requests_low_context": 1000},
        ),
        "7",  # 1 + 1 + 1000 * 0.005
        "priced",
    ),
    (
        "sonar, medium search context",
        PERPLEXITY,
        dict(
            provider="perplexity",
            model="sonar",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            requests=1000,
            details={"requests_medium_context": 1000},
        ),
        "10",
        "priced",
    ),
    (
        "sonar-pro, high search context",
        PERPLEXITY,
        dict(
            provider="perplexity",
            model="sonar-pro",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            requests=1000,
            details={"requests_high_context": 1000},
        ),
        "32",  # 3 + 15 + 14
        "priced",
    ),
    (
        "sonar-reasoning-pro, mixed search context sizes",
        PERPLEXITY,
        dict(
            provider="perplexity",
            model="sonar-reasoning-pro",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            requests=1000,
            details={"requests_low_context": 500, "requests_medium_context": 500},
        ),
        "18",  # 2 + 8 + 500 * 0.006 + 500 * 0.010
        "priced",
    ),
    (
        "sonar-deep-research reasoning tokens and searches",
        PERPLEXITY,
        dict(
            provider="perplexity",
            model="sonar-deep-research",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
            details={"reasoning_tokens": 400_000, "web_search_calls": 20},
        ),
        "8.1",  # 2 + 0.6 * 8 + 0.4 * 3 + 20 * 0.005
        "priced",
    ),
    # --- DeepSeek: dated prices and the V4-Flash aliasing --------------------------------
    (
        "deepseek-chat V3.1 prices",
        "https://api-docs.deepseek.com/news/news250821",
        dict(
            provider="deepseek",
            model="deepseek-chat",
            day=D(2025, 9, 10),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "2.31",
        "priced",
    ),
    (
        "deepseek-chat V3.2 prices, last day",
        "https://api-docs.deepseek.com/news/news250929",
        dict(
            provider="deepseek",
            model="deepseek-chat",
            day=D(2026, 4, 23),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "0.728",  # 0.28 + 0.028 + 0.42
        "priced",
    ),
    (
        "deepseek-chat as DeepSeek-V4-Flash, first day",
        DEEPSEEK,
        dict(
            provider="deepseek",
            model="deepseek-chat",
            day=D(2026, 4, 24),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "0.4228",  # 0.14 + 0.0028 + 0.28
        "priced",
    ),
    (
        "deepseek-reasoner as DeepSeek-V4-Flash, last day",
        DEEPSEEK,
        dict(
            provider="deepseek",
            model="deepseek-reasoner",
            day=D(2026, 7, 24),
            input_tokens=M,
            output_tokens=M,
        ),
        "0.42",
        "priced",
    ),
    (
        "deepseek-v4-flash once it has peak hours: off-peak price, approximate",
        DEEPSEEK,
        dict(
            provider="deepseek",
            model="deepseek-v4-flash",
            day=D(2026, 9, 15),
            input_tokens=M,
            output_tokens=M,
        ),
        "0.75",  # off-peak 0.15 + 0.60, in force most of the UTC day
        "approximate",
    ),
    # --- Groq and OpenRouter --------------------------------------------------------------
    (
        "groq llama-3.3-70b-versatile",
        GROQ,
        dict(
            provider="groq",
            model="llama-3.3-70b-versatile",
            day=D(2026, 8, 1),
            input_tokens=M,
            output_tokens=M,
        ),
        "1.38",
        "priced",
    ),
    (
        "groq whisper-large-v3 per hour; a 10-second minimum per request: approximate",
        GROQ,
        dict(
            provider="groq",
            model="whisper-large-v3",
            day=D(2026, 8, 1),
            details={"audio_seconds": 7200},
        ),
        "0.222",
        "approximate",
    ),
    (
        "openrouter openai/gpt-4o cached input from 2026-10-19",
        OPENROUTER,
        dict(provider="openrouter", model="openai/gpt-4o", day=D(2026, 10, 19), cached_tokens=M),
        "1.25",
        "priced",
    ),
    (
        "openrouter openai/gpt-4o cached input the day before",
        OPENROUTER,
        dict(provider="openrouter", model="openai/gpt-4o", day=D(2026, 10, 18), cached_tokens=M),
        "2.5",
        "priced",
    ),
]


@pytest.mark.parametrize(
    ("source", "call", "expected", "status"),
    [pytest.param(c[1], c[2], c[3], c[4], id=c[0]) for c in CASES],
)
def test_prices_match_the_providers_pages(
    source: str, call: dict[str, Any], expected: str, status: str
) -> None:
    quote = price_usage(**call)
    assert source.startswith("https://")
    assert quote.priced, quote.reason
    assert quote.estimated_cost is not None
    assert abs(quote.estimated_cost - Decimal(expected)) <= HALF_CENT
    assert quote.status == status, quote.notes


def test_the_table_covers_every_kind_and_fee() -> None:
    assert len(CASES) >= 30
    used = {k for c in CASES for k in (c[2].get("details") or {})}
    assert used >= {
        "input_audio_tokens",
        "cached_audio_tokens",
        "output_audio_tokens",
        "input_image_tokens",
        "cached_image_tokens",
        "output_image_tokens",
        "reasoning_tokens",
        "web_search_calls",
        "file_search_calls",
        "audio_seconds",
        "characters",
        "requests_low_context",
        "requests_medium_context",
        "requests_high_context",
    }


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (dict(provider="openai", model="no-such-model", input_tokens=M), "not in the price book"),
        (dict(provider="perplexity", model="sonar-ultra-9", requests=10), "not in the price book"),
        (
            # Audio on a model with no audio price is not priced at the text rate.
            dict(
                provider="openai",
                model="gpt-4o-audio-preview",
                input_tokens=M,
                details={"input_audio_tokens": M},
            ),
            "no input audio price",
        ),
        (
            dict(provider="deepseek", model="deepseek-chat", day=D(2026, 7, 25), input_tokens=M),
            "retired after 2026-07-24",
        ),
        (
            dict(
                provider="openai",
                model="gpt-realtime",
                input_tokens=10,
                details={"input_audio_tokens": 20},
            ),
            "more than input_tokens",
        ),
    ],
)
def test_unknown_is_unpriced_never_zero(call: dict[str, Any], reason: str) -> None:
    quote = price_usage(**{"day": D(2026, 8, 1), **call})
    assert not quote.priced and quote.estimated_cost is None
    assert quote.status == "unpriced"
    assert reason in (quote.reason or "")


# --- approximate only when it is --------------------------------------------------------

SONNET = dict(provider="anthropic", model="claude-sonnet-4-5", day=D(2026, 8, 1))  # 200k tier


@pytest.mark.parametrize(
    ("prompt", "requests", "approximate"),
    [
        (200_000, 0, False),  # the whole day's prompt is not above the tier
        (200_001, 0, True),  # unknown requests: one request may have held it all
        (200_001, 1, True),  # one request above the tier: certainly crossed
        (200_001, 2, False),  # two requests of at least one token: neither passes 200,000
        (1_000_000, 5, True),  # the average is above the tier
        (1_000_000, 100, True),  # average 10k, but one request could hold 999,901
        (150_000, 10_000, False),
    ],
)
def test_a_tier_is_approximate_only_when_a_request_could_have_passed_it(
    prompt: int, requests: int, approximate: bool
) -> None:
    quote = price_usage(
        **SONNET, input_tokens=prompt // 2, cached_tokens=prompt - prompt // 2, requests=requests
    )
    assert quote.approximate is approximate


def test_a_stored_row_follows_the_same_rule() -> None:
    book = PriceBook()
    day = D(2026, 8, 1)

    def status(i: int, n: int) -> str:
        return book.outcome("anthropic", "claude-sonnet-4-5", day, "messages", "", i, 0, 0, 0, 10,
                            n, Decimal(0), None)[1]  # fmt: skip

    assert status(150_000, 3) == "priced"
    assert status(300_000, 3) == "approximate"
    assert status(300_000, 200_000) == "priced"  # 300,000 tokens over 200,000 requests


def test_time_of_day_prices_are_approximate_only_where_they_vary() -> None:
    # DeepSeek V4-Flash before 2026-08-17: one flat rate (a correction), so exact.
    flat = price_usage(provider="deepseek", model="deepseek-v4-flash", day=D(2026, 6, 1),
                       input_tokens=M)  # fmt: skip
    assert (flat.estimated_cost, flat.approximate) == (Decimal("0.14"), False)
    # V3 before its 2025-09-05 change: peak and off-peak prices, approximate.
    tod = price_usage(provider="deepseek", model="deepseek-chat", day=D(2025, 9, 1),
                      input_tokens=M)  # fmt: skip
    assert tod.approximate


# --- corrections: dated, with provenance -------------------------------------------------


def test_every_correction_has_dates_and_a_source() -> None:
    corrections = load_corrections()
    assert corrections.price_changes and corrections.aliases and corrections.batch_discounts
    for rule in corrections.all():
        assert rule.source and rule.checked_on <= D(2026, 12, 31)
        assert rule.effective_to is None or rule.effective_to >= rule.effective_from
    # The September 2025 DeepSeek prices end where the V4-Flash aliasing starts.
    v32 = next(c for c in corrections.price_changes if c.source.endswith("news250929"))
    assert v32.effective_to == D(2026, 4, 23)


@pytest.mark.parametrize("missing", ["effective_from", "source", "checked_on"])
def test_a_correction_without_provenance_is_refused(missing: str) -> None:
    entry = {
        "provider": "openai",
        "models": ["gpt-4o"],
        "effective_from": "2026-01-01",
        "source": "https://example.com/prices",
        "checked_on": "2026-11-30",
        "prices": {"input": "1"},
    }
    del entry[missing]
    with pytest.raises(InvalidInput) as caught:
        parse_corrections({"price_changes": [entry]})
    message = str(caught.value)
    assert "price_changes entry 1 (openai gpt-4o)" in message and missing in message
    assert "docs/pricing.md" in message


def test_a_correction_with_an_unknown_price_kind_or_bad_dates_is_refused() -> None:
    good = {
        "provider": "openai",
        "models": ["gpt-4o"],
        "effective_from": "2026-01-01",
        "source": "s",
        "checked_on": "2026-11-30",
    }
    with pytest.raises(InvalidInput, match="unknown price kind"):
        parse_corrections({"price_changes": [{**good, "prices": {"inptu": "1"}}]})
    with pytest.raises(InvalidInput, match="before effective_from"):
        parse_corrections(
            {"price_changes": [{**good, "effective_to": "2025-01-01", "prices": {"input": "1"}}]}
        )
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        parse_corrections({"batch_discounts": [{**good, "checked_on": "30/11/2026"}]})


def test_the_corrections_file_is_valid_json_with_an_about() -> None:
    from tracker.costs.corrections import CORRECTIONS_PATH

    raw = json.loads(CORRECTIONS_PATH.read_text(encoding="utf-8"))
    assert "effective_to" in raw["about"] and "checked_on" in raw["about"]


def test_a_row_s_own_unit_is_priced_by_its_name() -> None:
    book = PriceBook()
    day = D(2026, 8, 1)
    # Anthropic's server_tool_use web searches, as the sync stores them: $10 per 1,000.
    searches = book.outcome(
        "anthropic", "claude-sonnet-4-5", day, "messages", "", 1000, 0, 0, 0, 100, 10,
        Decimal(5), None, "web_search_requests",
    )  # fmt: skip
    assert searches == (Decimal("0.0545"), "priced")  # 0.003 + 0.0015 + 5 * 0.01
    # OpenAI's transcription seconds and speech characters.
    seconds = book.outcome("openai", "whisper-1", day, "audio_transcriptions", "", 0, 0, 0, 0,
                           0, 3, Decimal(90), None, "seconds")  # fmt: skip
    assert seconds == (Decimal("0.009"), "priced")
    # Bytes of vector storage have no price: unpriced, never $0.
    stored = book.outcome("openai", "", day, "vector_stores", "", 0, 0, 0, 0, 0, 0,
                          Decimal(10**9), None, "bytes")  # fmt: skip
    assert stored == (None, "unpriced")
    # Beside priced tokens, a unit without a price leaves the estimate approximate.
    beside = book.outcome("openai", "gpt-4o-mini", day, "completions", "", M, 0, 0, 0, 0, 1,
                          Decimal(2), None, "bytes")  # fmt: skip
    assert beside == (Decimal("0.15"), "approximate")
