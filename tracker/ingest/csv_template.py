"""The usage CSV template (docs/csv-import.md): its columns and limits, and the header check.

Shared by the row checker (`csv_import`), the PostgreSQL fast path (`csv_copy`) and the
Accounts page's template download (`template_csv`).
"""

from __future__ import annotations

REQUIRED = ("day", "model", "input_tokens", "output_tokens", "requests")
OPTIONAL = ("cached_input_tokens", "cost", "project", "api_key_id", "user_id")
# Optional columns for what a row counts beside its tokens (`tracker.models.usage_kinds`):
# the audio, image and reasoning parts of the token columns, tool calls, sessions, images,
# seconds of audio, characters, and the search context size of the row's requests.
DETAIL_COLUMNS = (
    "input_audio_tokens",
    "cached_audio_tokens",
    "output_audio_tokens",
    "input_image_tokens",
    "cached_image_tokens",
    "output_image_tokens",
    "reasoning_tokens",
    "web_search_calls",
    "file_search_calls",
    "code_interpreter_sessions",
    "images",
    "audio_seconds",
    "characters",
    "search_context_size",
)
# In the order of the template file and docs/csv-import.md.
COLUMNS = REQUIRED + OPTIONAL + DETAIL_COLUMNS
MAX_ERRORS = 20
MAX_TOKENS = 10**15  # far beyond any real day; catches pasted garbage before BIGINT does


def header_problems(header: list[str]) -> tuple[list[str], list[str]]:
    """The header's column names (lower case, a byte-order mark dropped) and its problems,
    each as 'line 1: ...'."""
    columns = [h.strip().lstrip("\ufeff").lower() for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c and c not in COLUMNS]
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(
            f"line 1: unknown column(s) {', '.join(unknown)}; allowed: " + ", ".join(COLUMNS)
        )
    if repeated:
        problems.append(f"line 1: column(s) {', '.join(repeated)} appear twice")
    return columns, problems


def template_csv() -> str:
    """The template as a file to fill in: its header row only, so no example row can end up
    imported as usage."""
    return ",".join(COLUMNS) + "\n"
