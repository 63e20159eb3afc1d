"""The SKU patterns of the clouds' AI charges: model, token direction, tier; units; tags."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tracker.ingest.focus_skus import (
    USER_TAGS,
    BadTags,
    Sku,
    parse_sku,
    parse_tags,
    tag_value,
    token_count,
)


@pytest.mark.parametrize(
    ("text", "cloud", "expected"),
    [
        # Amazon Bedrock usage types.
        ("USE1-Claude3Sonnet-input-tokens", "aws", Sku("Claude3Sonnet", "input", "")),
        ("USW2-Claude4.6Sonnet-output-tokens", "aws", Sku("Claude4.6Sonnet", "output", "")),
        (
            "USW2-Claude4.6Sonnet-cache-read-input-token-count",
            "aws",
            Sku("Claude4.6Sonnet", "cached_input", ""),
        ),
        (
            "USW2-Claude4.5Sonnet-cache-write-input-token-count",
            "aws",
            Sku("Claude4.5Sonnet", "cache_write", ""),
        ),
        (
            "USE1-Claude4Sonnet-input-tokens-cross-region-global",
            "aws",
            Sku("Claude4Sonnet", "input", ""),
        ),
        (
            "USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-standard",
            "aws",
            Sku("anthropic.claude-opus-4-8", "cache_write", ""),
        ),
        ("USE1-NovaLite-input-tokens-flex", "aws", Sku("NovaLite", "input", "flex")),
        ("Claude3Haiku-output-tokens-batch", "aws", Sku("Claude3Haiku", "output", "batch")),
        ("USE1-Claude3Haiku-ProvisionedThroughput-ModelUnits", "aws", Sku("", None, "")),
        # Azure meter names.
        ("gpt-4o-0513-Inp-glbl", "azure", Sku("gpt-4o-0513", "input", "")),
        ("gpt-4o-mini-0718-Outp-regnl Tokens", "azure", Sku("gpt-4o-mini-0718", "output", "")),
        ("gpt 4o 0806 cached Inp glbl", "azure", Sku("gpt-4o-0806", "cached_input", "")),
        ("gpt 4o 0513 Input global Tokens", "azure", Sku("gpt-4o-0513", "input", "")),
        ("gpt-4-8K-Batch-Inp-glbl Tokens", "azure", Sku("gpt-4-8k", "input", "batch")),
        ("gpt-4o-transcribe-txt-inp-glbl Tokens", "azure", Sku("gpt-4o-transcribe", "input", "")),
        ("GPT 5 Inpt Glbl", "azure", Sku("gpt-5", "input", "")),
        ("Provisioned Managed Global Hourly", "azure", Sku("", None, "")),
        # Vertex AI SKU descriptions.
        ("Gemini 2.5 Pro Text Input - Predictions", "google", Sku("gemini-2.5-pro", "input", "")),
        (
            "Gemini 2.5 Flash GA Thinking Text Output - Predictions",
            "google",
            Sku("gemini-2.5-flash", "output", ""),
        ),
        ("Gemini 2.5 Pro Input Text Caching", "google", Sku("gemini-2.5-pro", "cached_input", "")),
        (
            "Cloud Vertex AI Model Garden Model as a Service Llama 4 Scout Input Token",
            "google",
            Sku("llama-4-scout", "input", ""),
        ),
        ("Gemini 2.5 Pro Text Caching Storage", "google", Sku("gemini-2.5-pro", None, "")),
        ("Imagen 3 Generation Images in Vertex", "google", Sku("", None, "")),
    ],
)
def test_sku_patterns(text, cloud, expected):
    assert parse_sku(text, cloud) == expected


@pytest.mark.parametrize(
    ("quantity", "unit", "tokens"),
    [
        ("1200500", "Tokens", 1_200_500),
        ("1200.5", "1K tokens", 1_200_500),
        ("2.5", "1M", 2_500_000),
        ("3", "Million Tokens", 3_000_000),
        ("15", "1,000 Tokens", 15_000),
        ("42", "count", 42),
        ("7", "Units", 7),
        ("24", "Hours", None),
        ("12", "gibibyte hour", None),
        ("-5", "Tokens", None),
    ],
)
def test_token_units(quantity, unit, tokens):
    assert token_count(Decimal(quantity), unit) == tokens


def test_tags_in_every_shape_the_clouds_write():
    assert parse_tags('{"User:Project": "chatbot"}') == {"user:project": "chatbot"}
    assert parse_tags('[{"key": "team", "value": "ml"}]') == {"team": "ml"}
    assert parse_tags([("team", "ml")]) == {"team": "ml"}  # a Parquet map
    assert parse_tags("") == {} and parse_tags(None) == {}
    with pytest.raises(BadTags):
        parse_tags("{team: ml")
    # An IAM principal tag is read before a resource tag of the same key.
    tags = parse_tags('{"user:user": "svc-role", "iamPrincipal/user": "alice"}')
    assert tag_value(tags, USER_TAGS) == "alice"
