"""What a usage row counts: its token columns, and the details beside them.

A usage row has five token columns (`TOKEN_COLUMNS`), `requests`, and `other_units` with
`other_unit_name` (the one quantity a provider reports in its own unit for the row: OpenAI's
images, seconds of transcription, characters of speech, code-interpreter sessions...). What
else a provider reports goes in `usage_records.usage_details`, a JSON object of whole counts
(NULL when there is none), keyed by the kinds below:

- **Token parts** (`TOKEN_PARTS`): a part of one token column, e.g. the audio tokens among
  the uncached input tokens. The column keeps the whole count, so every token total, rollup
  and chart is unchanged; the price book prices the part at its own rate and the rest of
  the column at the column's rate.
- **Units** (`UNIT_KINDS`): counts beside the tokens, each priced per unit: tool calls
  (web search, file search), code-interpreter sessions, images, seconds of audio,
  characters, and Perplexity's requests by search context size (a part of `requests`).

A row's own metered unit stays in `other_units`, as reported; `UNIT_OF_NAME` says which kind
it is, so it is counted in one place only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The token counts of a usage row (and of every rollup row), in reporting order.
TOKEN_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
)

# Token part -> the column it is a part of.
TOKEN_PARTS: dict[str, str] = {
    "input_audio_tokens": "input_tokens",
    "input_image_tokens": "input_tokens",
    "cached_audio_tokens": "cached_input_tokens",
    "cached_image_tokens": "cached_input_tokens",
    "output_audio_tokens": "output_tokens",
    "output_image_tokens": "output_tokens",
    "reasoning_tokens": "output_tokens",  # where a provider bills them apart (Perplexity)
}

SEARCH_CONTEXT_SIZES = ("low", "medium", "high")
# Requests whose search context size is known: a part of `requests`.
SIZED_REQUESTS = tuple(f"requests_{size}_context" for size in SEARCH_CONTEXT_SIZES)
UNIT_KINDS = (
    "web_search_calls",
    "file_search_calls",
    "code_interpreter_sessions",
    "images",
    "audio_seconds",
    "characters",
    *SIZED_REQUESTS,
)
DETAIL_KINDS = (*TOKEN_PARTS, *UNIT_KINDS)

# `other_unit_name` as the connectors write it -> the unit kind it counts. Other names
# (bytes of vector storage, a billed line item's quantity, seats) have no per-unit price.
UNIT_OF_NAME = {
    "web_search_calls": "web_search_calls",
    "web_search_requests": "web_search_calls",  # Anthropic's server_tool_use
    "file_search_calls": "file_search_calls",
    "sessions": "code_interpreter_sessions",
    "images": "images",
    "seconds": "audio_seconds",
    "characters": "characters",
}

Details = tuple[tuple[str, int], ...]


def all_tokens(entity: Any) -> Any:
    """Every token kind of a row added up: a SQL expression over `usage_records` or a rollup
    table, or an int for a fetched row."""
    first, *rest = (getattr(entity, name) for name in TOKEN_COLUMNS)
    for column in rest:
        first = first + column
    return first


def pack(counts: Mapping[str, int] | Iterable[tuple[str, int]]) -> Details:
    """Details as a row holds them: known kinds, whole counts above zero, sorted by kind."""
    items = counts.items() if isinstance(counts, Mapping) else counts
    kept: dict[str, int] = {}
    for kind, count in items:
        if kind not in DETAIL_KINDS:
            raise ValueError(f"unknown usage detail {kind!r}; use one of {', '.join(DETAIL_KINDS)}")
        if count:
            kept[kind] = kept.get(kind, 0) + int(count)
    return tuple(sorted(kept.items()))


def added(a: Details, b: Details) -> Details:
    """Two rows' details added up (rows of one natural key within one pass)."""
    return pack([*a, *b]) if a and b else a or b


def as_json(details: Details) -> dict[str, int] | None:
    """The stored form: a JSON object, or NULL when there is nothing beside the columns."""
    return dict(details) or None


def from_json(stored: Mapping[str, Any] | None) -> dict[str, int]:
    """The stored details (NULL: none) as a dict of counts."""
    return {str(k): int(v) for k, v in (stored or {}).items() if v}


def part_problems(
    details: Mapping[str, int], columns: Mapping[str, int], ceiling: int | None = None
) -> list[str]:
    """Why these details cannot belong to a row with these column counts (parts larger than
    their column, negative counts, counts above `ceiling`); empty when they can."""
    problems = [f"{kind} is negative" for kind, count in details.items() if count < 0]
    if ceiling is not None:
        problems += [f"{k} is above {ceiling:,}" for k, count in details.items() if count > ceiling]
    for column in {*TOKEN_PARTS.values(), "requests"}:
        parts = [k for k in details if TOKEN_PARTS.get(k) == column] + (
            [k for k in details if k in SIZED_REQUESTS] if column == "requests" else []
        )
        total = sum(details[k] for k in parts)
        whole = columns.get(column, 0)
        if parts and total > whole:
            problems.append(
                f"{' + '.join(parts)} ({total:,}) is more than {column} ({whole:,}), which "
                "includes them"
            )
    return problems
