"""The Chargeback page's frames: a month's spend by team and provider, and its pieces."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from tracker.attribution import teams
from tracker.attribution.chargeback import Chargeback, chargeback
from tracker.core.units import month_start, to_dollars

# How a piece reached its team, as the page and the CSV say it.
METHOD_LABELS = {
    "direct": "Direct (mapping)",
    "shared_even": "Shared evenly",
    "shared_fixed": "Shared by fixed %",
    "shared_proportional": "Shared by own spend",
}
PIECE_COLUMNS = [
    "team",
    "cost_center",
    "gl_account",
    "provider",
    "account",
    "project",
    "api_key",
    "user",
    "model",
    "method",
    "shared_from",
    "cost",
]


def month_chargeback(*, session: Session, month: dt.date) -> Chargeback:
    return chargeback(session=session, month=month)


def recent_months(today: dt.date, count: int = 13) -> list[dt.date]:
    """The first days of this month and the `count - 1` before it, newest first."""
    months = [month_start(today)]
    while len(months) < count:
        months.append(month_start(months[-1] - dt.timedelta(days=1)))
    return months


def pieces_frame(result: Chargeback) -> pd.DataFrame:
    """One row per piece (cost as an exact Decimal)."""
    rows = [
        (
            p.team,
            p.cost_center,
            p.gl_account,
            p.provider,
            p.account,
            p.project,
            p.api_key,
            p.user,
            p.model,
            METHOD_LABELS.get(p.method, p.method),
            p.shared_from or "",
            p.cost,
        )
        for p in result.pieces
    ]
    return pd.DataFrame(rows, columns=PIECE_COLUMNS)


def team_provider_frame(result: Chargeback) -> pd.DataFrame:
    """Team (with cost center and GL account) x provider as exact Decimals, with a Total
    column and a Total row; teams by spend, largest first."""
    cells: dict[tuple[str, str | None, str | None], dict[str, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    providers = sorted({p.provider for p in result.pieces})
    for p in result.pieces:
        cells[(p.team, p.cost_center, p.gl_account)][p.provider] += p.micros
    rows: list[dict[str, Any]] = []
    for (team, center, gl), by_provider in cells.items():
        rows.append(
            {
                "team": team,
                "cost_center": center or "",
                "gl_account": gl or "",
                **{name: to_dollars(by_provider.get(name, 0)) for name in providers},
                "Total": to_dollars(sum(by_provider.values())),
            }
        )
    rows.sort(key=lambda r: (-r["Total"], r["team"]))
    if rows:
        rows.append(
            {
                "team": "Total",
                "cost_center": "",
                "gl_account": "",
                **{name: sum((r[name] for r in rows), Decimal(0)) for name in providers},
                "Total": result.total,
            }
        )
    return pd.DataFrame(rows, columns=["team", "cost_center", "gl_account", *providers, "Total"])


def teams_frame(*, session: Session) -> pd.DataFrame:
    return pd.DataFrame(
        [(t.name, t.cost_center, t.gl_account) for t in teams.list_teams(session=session)],
        columns=["team", "cost_center", "gl_account"],
    )


def mappings_frame(*, session: Session) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (m.id, teams.KIND_LABELS[m.kind], m.value, m.team, m.valid_from, m.valid_to)
            for m in teams.list_mappings(session=session)
        ],
        columns=["id", "kind", "value", "team", "valid_from", "valid_to"],
    )


def rules_frame(*, session: Session) -> pd.DataFrame:
    return pd.DataFrame(
        [(r.id, r.describe(), r.valid_from, r.valid_to) for r in teams.list_rules(session=session)],
        columns=["id", "rule", "valid_from", "valid_to"],
    )
