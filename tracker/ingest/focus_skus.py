"""What a cloud bill's AI charge was for: model, token direction and tier from its SKU text,
tokens from its quantity and unit, user and project from its tags.

The patterns (docs/providers.md lists them with examples):

- **AWS** (Bedrock usage types, the `x_UsageType` column of AWS's FOCUS export): an optional
  region prefix, the model, the token kind, an optional tier or routing suffix, e.g.
  `USE1-Claude3Sonnet-input-tokens`, `USW2-Claude4.6Sonnet-cache-read-input-token-count`,
  `USE1-Claude4Sonnet-input-tokens-cross-region-global`,
  `USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-standard` (token kinds: Amazon
  Bedrock user guide, "Understanding your Amazon Bedrock Cost and Usage Report data"; examples:
  AWS ML blog "Amazon Bedrock cost attribution with Amazon Athena and CUDOS"). The model is
  kept as AWS writes it (`Claude3Sonnet`).
- **Azure** (meter names, `SkuMeter` in FocusCost 1.2, `x_SkuMeterName` in 1.0r2): the model,
  the modality and direction, the deployment scope, e.g. `gpt-4o-0513-Inp-glbl`,
  `gpt 4o 0806 cached Inp glbl`, `gpt-4o-mini-0718-Outp-regnl Tokens`,
  `gpt-4-8K-Batch-Inp-glbl Tokens` (as Azure's retail prices and cost details name them).
  The model is written lower-case with hyphens (`gpt-4o-0513`).
- **Google** (Vertex AI SKU descriptions): `Gemini 2.5 Pro Text Input - Predictions`,
  `Gemini 2.5 Flash GA Thinking Text Output - Predictions`, `Gemini 2.5 Pro Input Text
  Caching`, `Cloud Vertex AI Model Garden Model as a Service Llama 4 Scout Input Token`. The
  model is written lower-case with hyphens (`gemini-2.5-pro`), as Google's model ids are.

A SKU that names no direction, or that is billed per hour, character, second or byte
(provisioned throughput, caching storage, tuning...), is not a token charge: its money is
imported all the same, under its own usage type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

INPUT, CACHED_INPUT, CACHE_WRITE, OUTPUT = "input", "cached_input", "cache_write", "output"
# Our token column for each direction.
TOKEN_COLUMN = {
    INPUT: "input_tokens",
    CACHED_INPUT: "cached_input_tokens",
    CACHE_WRITE: "cache_write_tokens",
    OUTPUT: "output_tokens",
}

_INPUT_WORDS = {"input", "inp", "inpt", "prompt"}
_OUTPUT_WORDS = {"output", "outp", "outpt", "completion", "thinking"}
# Azure's shortest meter names say `in` and `out`; elsewhere those are ordinary words.
_AZURE_SHORT = {"in": "input", "out": "output"}
_CACHE_WORDS = {"cache", "cached", "caching", "cchd"}
_DIRECTION_WORDS = _INPUT_WORDS | _OUTPUT_WORDS | _CACHE_WORDS
# Billed by something other than tokens: never a token charge.
_NOT_TOKENS = {
    "storage", "hour", "hours", "hr", "hrs", "character", "characters", "chars", "second",
    "seconds", "minute", "minutes", "page", "pages", "training", "tuning", "tuned", "hourly",
    "provisioned", "throughput", "gb", "gib", "byte", "bytes", "request", "requests",
}  # fmt: skip
_NOT_MODEL_END = _DIRECTION_WORDS | _NOT_TOKENS | {"text", "txt", "image", "audio", "video"}
_TIERS = {"batch": "batch", "flex": "flex", "priority": "priority"}
# Words between the model and the direction, or after it, that are not the model's name.
_NOT_MODEL = {
    "text", "txt", "image", "img", "audio", "aud", "video", "token", "tokens", "glbl",
    "global", "regnl", "rgnl", "regional", "dzone", "datazone", "mantle", "ga", "1k", "1m",
    "predictions", "prediction",
}  # fmt: skip
_AWS_REGION = re.compile(r"^[A-Z]{2,4}\d{0,2}-(?=[A-Za-z])")
_GARDEN = re.compile(r"^cloud vertex ai model garden model as a service\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Sku:
    """What a SKU text says: the model ('' if none), the token direction (None: not a token
    charge) and the tier ('' for standard)."""

    model: str
    direction: str | None
    tier: str


def parse_sku(text: str, cloud: str) -> Sku:
    """Read a SKU text of `cloud` ('aws', 'azure' or 'google')."""
    text = text.strip()
    if cloud == "aws":
        words = _AWS_REGION.sub("", text).split("-")
    else:
        text = _GARDEN.sub("", text.split(" - ")[0])
        words = re.split(r"[\s_\-()]+", text)
    words = [w for w in words if w]
    lower = [w.lower() for w in words]
    if cloud == "azure":
        lower = [_AZURE_SHORT.get(w, w) for w in lower]
    if any(w in _NOT_TOKENS for w in lower):
        # The model, if any, is named before what the SKU bills ("Gemini 2.5 Pro Text
        # Caching Storage"); "Provisioned Managed Global Hourly" names none.
        end = next((i for i, w in enumerate(lower) if w in _NOT_MODEL_END), 0)
        return Sku(_model(words, lower, end, cloud), None, _tier(lower))
    at = next((i for i, w in enumerate(lower) if w in _DIRECTION_WORDS and i > 0), None)
    if at is None:
        return Sku("", None, _tier(lower))
    rest = set(lower[at:])
    if rest & _CACHE_WORDS:
        direction = CACHE_WRITE if "write" in rest else CACHED_INPUT
    elif rest & _OUTPUT_WORDS and not rest & _INPUT_WORDS:
        direction = OUTPUT
    elif rest & _INPUT_WORDS and not rest & _OUTPUT_WORDS:
        direction = INPUT
    else:
        direction = OUTPUT if lower[at] in _OUTPUT_WORDS else INPUT
    return Sku(_model(words, lower, at, cloud), direction, _tier(lower))


def _model(words: list[str], lower: list[str], end: int, cloud: str) -> str:
    kept = [
        w if cloud == "aws" else w.lower()
        for w, low in zip(words[:end], lower[:end], strict=True)
        if low not in _NOT_MODEL and low not in _TIERS and low not in _NOT_TOKENS
    ]
    return "-".join(kept)[:255]


def _tier(lower: list[str]) -> str:
    return next((_TIERS[w] for w in lower if w in _TIERS), "")


_UNIT = re.compile(
    r"^(?P<count>\d+(?:\.\d+)?)?\s*(?P<scale>k|m|thousand|million)?\s*"
    r"(?P<what>tokens?|counts?|units?)?$"
)
_SCALE = {"k": 1000, "thousand": 1000, "m": 1_000_000, "million": 1_000_000}


def tokens_per_unit(unit: str) -> Decimal | None:
    """How many tokens one `unit` is ('Tokens' 1, '1K Tokens' or '1K' 1000, '1M' a million,
    'count' 1), or None for a unit that is not a token count ('Hours', 'GB')."""
    text = unit.strip().lower().replace(",", "")
    match = _UNIT.match(text)
    if not text or match is None or not any(match.groups()):
        return None
    count = Decimal(match["count"] or 1)
    return count * _SCALE.get(match["scale"] or "", 1)


def token_count(quantity: Decimal, unit: str) -> int | None:
    """The whole number of tokens `quantity` of `unit` is, or None if it is not tokens."""
    per = tokens_per_unit(unit)
    if per is None or quantity < 0:
        return None
    return int((quantity * per).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- tags --------------------------------------------------------------------------------

# The tag keys read for the user and for the project (team), in order; each also as an AWS
# IAM principal tag (`iamPrincipal/KEY`) and an AWS user-defined tag (`user:KEY`).
USER_TAGS = ("user", "user_id", "username", "user_name", "email", "user_email")
PROJECT_TAGS = ("project", "team", "application", "app", "cost_center", "costcenter")
_TAG_PREFIXES = ("iamprincipal/", "user:", "")


class BadTags(ValueError):
    """The Tags value is not a JSON object (nor a list of key/value pairs)."""


def parse_tags(value: Any) -> dict[str, str]:
    """A FOCUS `Tags` value (a JSON object as text, or what Parquet gives for a map) as a
    dict with lower-case keys."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise BadTags(value[:60]) from None
    items: list[tuple[Any, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for pair in value:
            if isinstance(pair, dict) and "key" in pair:
                items.append((pair["key"], pair.get("value")))
            elif isinstance(pair, list | tuple) and len(pair) == 2:
                items.append((pair[0], pair[1]))
            else:
                raise BadTags(str(value)[:60])
    else:
        raise BadTags(str(value)[:60])
    return {str(k).lower(): "" if v is None else str(v) for k, v in items}


def tag_value(tags: dict[str, str], keys: tuple[str, ...]) -> str:
    """The first non-empty value of `keys` (each with the AWS prefixes), or ''."""
    for key in keys:
        for prefix in _TAG_PREFIXES:
            value = tags.get(prefix + key.lower(), "").strip()
            if value:
                return value[:255]
    return ""


def decimal_of(value: Any) -> Decimal | None:
    """A number from a CSV field or a Parquet value as an exact Decimal; None if empty.

    Raises ValueError for anything else. Floats (Parquet doubles) go through `str()`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(value) from None
    if not number.is_finite():
        raise ValueError(value)
    return number
