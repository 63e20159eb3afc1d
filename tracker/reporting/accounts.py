"""The Accounts page's read model: accounts, their status and rate-limit headroom."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.models import (
    Account,
    Service,
)

# --- accounts page ---------------------------------------------------------------------------


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


def rate_limit_table(*, session: Session) -> pd.DataFrame:
    """Remaining vs limit per account and resource from the last snapshot each sync kept.

    Columns: account, provider, resource, remaining, limit (int), remaining_pct (float, for
    a progress bar), observed_at (UTC). Accounts without a snapshot are left out.
    """
    rows = session.execute(
        select(
            Account.name,
            Service.display_name,
            Account.rate_limit_snapshot,
            Account.rate_limit_updated_at,
        )
        .join(Service, Service.id == Account.service_id)
        .where(Account.rate_limit_snapshot.is_not(None))
        .order_by(Account.name)
    ).all()
    columns = [
        "account",
        "provider",
        "resource",
        "remaining",
        "limit",
        "remaining_pct",
        "observed_at",
    ]
    return pd.DataFrame(
        [
            (
                name,
                display,
                r.resource,
                r.remaining,
                r.limit,
                float(r.remaining_pct),
                observed,
            )
            for name, display, snapshot, observed in rows
            for r in rate_limit_readings(snapshot)
        ],
        columns=columns,
    )


def accounts_table(*, session: Session) -> pd.DataFrame:
    """Accounts as the Accounts page lists them: masked key only, never the credential."""
    rows = session.execute(
        select(Account, Service.display_name)
        .join(Service, Service.id == Account.service_id)
        .order_by(Account.name)
    ).all()
    return pd.DataFrame(
        [
            {
                "name": a.name,
                "provider": display,
                "key": a.masked_key,
                "status": a.status,
                "last_sync_at": a.last_sync_at,
                "last_error": a.last_error,
                "rate_limit_headroom": rate_limit_headroom(a.rate_limit_snapshot),
                "monthly_budget": a.monthly_budget,
                "token_quota": a.token_quota,
                "organization": a.organization_id,
                "base_url": a.base_url,
            }
            for a, display in rows
        ],
        columns=[
            "name",
            "provider",
            "key",
            "status",
            "last_sync_at",
            "last_error",
            "rate_limit_headroom",
            "monthly_budget",
            "token_quota",
            "organization",
            "base_url",
        ],
    )
