"""The attribution tables: teams, what maps to them (dated), and shared-cost rules.

Read and written only by `tracker.attribution`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tracker.models.base import ID, Base, utcnow


class Team(Base):
    """A team that spend is charged back to, with its cost center and GL account, and its
    monthly budget (USD; None: none), measured against its chargeback spend."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    cost_center: Mapped[str | None] = mapped_column(String(64))
    gl_account: Mapped[str | None] = mapped_column(String(64))
    monthly_budget: Mapped[Decimal | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("monthly_budget IS NULL OR monthly_budget >= 0", name="budget"),
    )


class TeamMapping(Base):
    """From `valid_from` (inclusive) to `valid_to` (exclusive; None: open), the spend of an
    account, a project (or workspace), an API key or a user belongs to a team. The most
    specific mapping wins: user, then API key, then project, then account."""

    __tablename__ = "team_mappings"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    valid_from: Mapped[dt.date]
    valid_to: Mapped[dt.date | None]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_team_mappings_kind_value", "kind", "value"),
        CheckConstraint("kind IN ('account', 'project', 'api_key', 'user')", name="kind"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period"),
    )


class SharedCostRule(Base):
    """Splits what a shared bucket (a team, or the unassigned spend when `team_id` is None)
    was charged across other teams: evenly, by fixed percentages, or in proportion to the
    teams' own spend that month. `targets`: [{"team_id": 3, "percent": "40"}, ...]
    (percent for `fixed` only; an empty list: every other team)."""

    __tablename__ = "shared_cost_rules"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16))
    targets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    valid_from: Mapped[dt.date]
    valid_to: Mapped[dt.date | None]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("method IN ('even', 'fixed', 'proportional')", name="method"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period"),
    )
