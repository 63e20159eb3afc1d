"""Chargeback: a month's spend by team, to the micro-dollar, with where each piece came from.

1. Every usage row's spend (the spend rule of `tracker.costs.spend`, billed amounts already
   allocated to keys and models by `tracker.costs.allocate`) goes to the team of the most
   specific mapping in force on its day (`tracker.attribution.teams`): user, API key,
   project, account; else to "Unassigned". Method `direct`. A month read from the monthly
   rollup `usage_attribution_monthly` unless a mapping starts or ends inside it.
2. The shared-cost rules in force on the month's first day then move, in the order they
   were made, what their bucket holds to their target teams: evenly, by fixed percentages,
   or in proportion to the targets' direct spend that month (evenly when none has any).
   Each piece is split in whole micro-dollars by largest remainder (`costs.allocate.split`),
   so the teams add up to the organisation's total exactly. Method `shared_even`,
   `shared_fixed` or `shared_proportional`, with the bucket it came from.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.attribution.teams import RuleView, TeamResolver, list_rules
from tracker.core.units import month_bounds, to_dollars
from tracker.costs.allocate import split
from tracker.costs.spend import ROW_SPEND_MICROS
from tracker.models import (
    Account,
    Service,
    UsageAttributionMonthly,
    UsageLabelMonthly,
    UsageRecord,
)

_u = UsageRecord


@dataclass(frozen=True)
class Piece:
    """Spend of one team from one provider, account, project, key and model, and how it got
    there (`method`, and for shared pieces the bucket they came from)."""

    team: str
    cost_center: str | None
    gl_account: str | None
    provider: str
    account: str
    project: str
    api_key: str
    user: str
    model: str
    method: str
    shared_from: str | None
    micros: int

    @property
    def cost(self) -> Decimal:
        return to_dollars(self.micros)


@dataclass(frozen=True)
class Chargeback:
    month: dt.date  # the first day
    pieces: tuple[Piece, ...]

    @property
    def total(self) -> Decimal:
        return to_dollars(sum(p.micros for p in self.pieces))

    def by_team(self) -> dict[str, Decimal]:
        sums: dict[str, int] = defaultdict(int)
        for p in self.pieces:
            sums[p.team] += p.micros
        return {team: to_dollars(m) for team, m in sorted(sums.items())}


def chargeback(*, session: Session, month: dt.date) -> Chargeback:
    """The chargeback of the calendar month that `month` falls in."""
    first, last = month_bounds(month)
    resolver = TeamResolver(session)
    direct: dict[tuple[str, str, str, str, str, str, str], int] = defaultdict(int)
    by_day = resolver.changes_within(first, last)
    rows = _daily_rows(session, first, last) if by_day else _monthly_rows(session, first)
    for row in rows:
        day, account, provider, project_id, project, key_id, key, user_id, user, model, m = row
        team = resolver.team(day, user=user_id, api_key=key_id, project=project_id, account=account)
        direct[(team, provider, account, project, key, user, model)] += m
    pieces = [
        Piece(team, *resolver.books(team), provider, account, project, key, user, model,
              "direct", None, m)
        for (team, provider, account, project, key, user, model), m in direct.items()
        if m
    ]  # fmt: skip
    own: dict[str, int] = defaultdict(int)
    for p in pieces:
        own[p.team] += p.micros
    for rule in list_rules(session=session):
        if rule.in_force(first):
            pieces = _apply(rule, pieces, resolver, own)
    pieces.sort(
        key=lambda p: (p.team, p.provider, p.account, p.project, p.api_key, p.user, p.model)
    )
    return Chargeback(first, tuple(pieces))


# (day, account, provider, project id, project label, key id, key label, user id, user
# label, model, spend in micro-dollars); a label is the name, else the id.
SpendRow = tuple[dt.date, str, str, str, str, str, str, str, str, str, int]


def _daily_rows(session: Session, first: dt.date, last: dt.date) -> Iterable[SpendRow]:
    """Spend per day, account, project, key, user and model, from the detail: for months in
    which a mapping starts or ends, so days may belong to different teams."""
    label = func.coalesce
    stmt = (
        select(
            _u.day,
            Account.name,
            Service.display_name,
            _u.project_id,
            func.max(label(func.nullif(_u.project_name, ""), _u.project_id)),
            _u.api_key_id,
            func.max(label(func.nullif(_u.api_key_name, ""), _u.api_key_id)),
            _u.user_id,
            func.max(label(func.nullif(_u.user_name, ""), _u.user_id)),
            _u.model,
            func.sum(ROW_SPEND_MICROS),
        )
        .join(Account, Account.id == _u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(_u.day >= first, _u.day <= last)
        .group_by(
            _u.day,
            Account.name,
            Service.display_name,
            _u.project_id,
            _u.api_key_id,
            _u.user_id,
            _u.model,
        )  # fmt: skip
    )
    for row in session.execute(stmt):
        yield (*row[:10], int(row[10] or 0))


def _monthly_rows(session: Session, first: dt.date) -> Iterable[SpendRow]:
    """The same per month (dated its first day), from the monthly rollup, with the names the
    label rollup holds: every day of such a month resolves alike."""
    labels: dict[tuple[str, int, str], str] = {}
    lm = UsageLabelMonthly
    for kind, account_id, ident, label in session.execute(
        select(lm.kind, lm.account_id, lm.ident, func.max(lm.label))
        .where(lm.month == first)
        .group_by(lm.kind, lm.account_id, lm.ident)
    ):
        labels[(kind, account_id, ident)] = label
    a = UsageAttributionMonthly
    stmt = (
        select(
            a.account_id,
            Account.name,
            Service.display_name,
            a.project_id,
            a.api_key_id,
            a.user_id,
            a.model,
            a.cost_micros,
        )  # fmt: skip
        .join(Account, Account.id == a.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(a.month == first)
    )
    for account_id, account, provider, project, key, user, model, micros in session.execute(stmt):
        yield (
            first, account, provider,
            project, labels.get(("project", account_id, project), project),
            key, labels.get(("api_key", account_id, key), key),
            user, labels.get(("user", account_id, user), user),
            model, int(micros),
        )  # fmt: skip


def _apply(
    rule: RuleView, pieces: list[Piece], resolver: TeamResolver, own: dict[str, int]
) -> list[Piece]:
    """Move what `rule.source` holds to its targets."""
    if rule.targets:
        targets = [team for team, _ in rule.targets]
    else:
        targets = [name for name in resolver.teams if name != rule.source]
    if not targets:
        return pieces
    if rule.method == "fixed":
        weights = [int(percent * 10_000) for _, percent in rule.targets if percent is not None]
    elif rule.method == "proportional" and any(own.get(t, 0) > 0 for t in targets):
        weights = [max(own.get(t, 0), 0) for t in targets]
    else:
        weights = [1] * len(targets)
    out: list[Piece] = []
    for p in pieces:
        if p.team != rule.source or p.micros <= 0:
            out.append(p)
            continue
        for team, micros in zip(targets, split(p.micros, weights), strict=True):
            if micros:
                center, gl = resolver.books(team)
                out.append(
                    replace(
                        p,
                        team=team,
                        cost_center=center,
                        gl_account=gl,
                        method=f"shared_{rule.method}",
                        shared_from=rule.source,
                        micros=micros,
                    )
                )
    return out
