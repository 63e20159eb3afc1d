"""Rate-limit snapshots: the limit and remaining headers a provider last sent, per resource.

The sync keeps each account's latest rate-limit headers (`accounts.rate_limit_snapshot`);
the Accounts page and the ratelimit alert both read them through `rate_limit_readings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class RateLimitReading:
    """One resource of a rate-limit snapshot: limit, remaining and percent remaining."""

    resource: str
    limit: int
    remaining: int

    @property
    def remaining_pct(self) -> Decimal:
        return Decimal(self.remaining) / self.limit * 100 if self.limit else Decimal(100)


def rate_limit_readings(snapshot: dict[str, Any] | None) -> list[RateLimitReading]:
    """Pair the limit and remaining headers of a snapshot per resource (requests, tokens, …).

    Providers name the pair differently (OpenAI's `x-ratelimit-remaining-tokens`,
    Anthropic's `anthropic-ratelimit-tokens-remaining`), so the words limit/remaining and the
    vendor prefixes are dropped and what is left names the resource ('tokens'); GitHub's bare
    `x-ratelimit-limit` becomes 'requests'. Values that are not whole numbers are skipped.
    The one implementation: the Accounts page and the ratelimit alert both read it.
    """
    pairs: dict[str, dict[str, int]] = {}
    for header, value in (snapshot or {}).items():
        words = str(header).lower().split("-")
        kind = "limit" if "limit" in words else "remaining" if "remaining" in words else None
        if kind is None:
            continue
        resource = "-".join(
            w
            for w in words
            if w not in ("x", "ratelimit", "anthropic", "github", "limit", "remaining")
        )
        try:
            pairs.setdefault(resource or "requests", {})[kind] = int(str(value).strip())
        except ValueError:
            continue
    return [
        RateLimitReading(resource, pair["limit"], pair["remaining"])
        for resource, pair in sorted(pairs.items())
        if "limit" in pair and "remaining" in pair and pair["limit"] > 0
    ]


def rate_limit_headroom(snapshot: dict[str, Any] | None) -> str:
    """Summarise a snapshot as "requests 499/500, tokens 29,000/30,000" (remaining/limit)."""
    return ", ".join(
        f"{r.resource} {r.remaining:,}/{r.limit:,}" for r in rate_limit_readings(snapshot)
    )
