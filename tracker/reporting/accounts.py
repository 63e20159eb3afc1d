"""The Accounts page's read model: accounts, their status and rate-limit headroom."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.models import (
    Account,
    Service,
)
from tracker.providers.ratelimits import rate_limit_headroom, rate_limit_readings


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
