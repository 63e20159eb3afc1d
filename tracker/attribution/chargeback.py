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
   `shared_fixed` or `shared_proportional`, with the bucket it came from. A bucket moves per
   provider, account and model (its keys and users are summed away in the moved pieces).

`team_daily` is the same computation spread over UTC days, for team budgets and their
projections: each month is charged back whole as above, and each piece's micro-dollars are
then spread over the days its spend came from (by largest remainder again). A month's days
therefore add up to its chargeback exactly, team by team; no second definition of a team's
spend exists. `team_spend` sums it, reading whole months (and months to date) without their
days.

`TeamShares` applies the same rules to one charge at a time, as ratios: the FOCUS 1.4 export
splits each charge into one allocated charge per team part (`tracker.exports.focus14`).
"""

from __future__ import annotations

import datetime as dt
import gc
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from operator import itemgetter
from typing import NamedTuple

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from tracker.attribution.teams import RuleView, TeamResolver, list_rules
from tracker.core.units import month_bounds, month_start, to_dollars
from tracker.costs.allocate import split
from tracker.costs.spend import ROW_SPEND_MICROS
from tracker.models import (
    Account,
    CostSource,
    Service,
    UsageAttributionMonthly,
    UsageDaily,
    UsageLabelMonthly,
    UsageRecord,
)

_u = UsageRecord


class Piece(NamedTuple):
    """Spend of one team from one provider, account, project, key, user and model, and how it
    got there (`method`, and for shared pieces the bucket they came from). A tuple: a large
    month makes tens of thousands of pieces, and a frozen dataclass took most of its time."""

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
    # (day, micro-dollars) adding up to `micros`, when asked for (`team_daily`); else ().
    days: tuple[tuple[dt.date, int], ...] = ()

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


def chargeback(*, session: Session, month: dt.date, estimated_only: bool = False) -> Chargeback:
    """The chargeback of the calendar month that `month` falls in.

    With `estimated_only`, of the month's estimated spend only (usage the provider has not
    billed yet: what the month-end close accrues), resolved to teams and shared by the same
    rules; a proportional rule still weighs teams by their whole direct spend that month, so a
    team's share of what is accrued is its share of the month."""
    first, _last = month_bounds(month)
    pieces = _month_pieces(session, TeamResolver(session), first, estimated_only=estimated_only)
    return Chargeback(first, tuple(pieces))


def team_daily(*, session: Session, start: dt.date, end: dt.date) -> dict[str, dict[dt.date, int]]:
    """Each team's spend (micro-dollars) per UTC day start..end inclusive, days with none left
    out; "Unassigned" included. Every month touched is charged back whole (its own rules in
    force), so the days of a month add up to `chargeback(...).by_team()` to the micro-dollar."""
    resolver = TeamResolver(session)
    out: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    month = month_start(start)
    while month <= end:
        for piece in _month_pieces(session, resolver, month, with_days=True):
            for day, micros in piece.days:
                if start <= day <= end and micros:
                    out[piece.team][day] += micros
        month = month_bounds(month)[1] + dt.timedelta(days=1)
    return {team: dict(sorted(days.items())) for team, days in sorted(out.items())}


def team_spend(*, session: Session, start: dt.date, end: dt.date) -> dict[str, int]:
    """Each team's spend (micro-dollars) on UTC days start..end inclusive: `team_daily`
    summed, without its per-day read where a month is wholly inside the range, or holds no
    usage after `end` (a month to date), which is what a budget asks."""
    resolver = TeamResolver(session)
    out: dict[str, int] = defaultdict(int)
    month = month_start(start)
    while month <= end:
        first, last = month_bounds(month)
        whole = start <= first and (end >= last or _last_usage_day(session, first, last) <= end)
        for piece in _month_pieces(session, resolver, first, with_days=not whole):
            if whole:
                out[piece.team] += piece.micros
            else:
                out[piece.team] += sum(m for day, m in piece.days if start <= day <= end)
        month = last + dt.timedelta(days=1)
    return dict(sorted(out.items()))


def _last_usage_day(session: Session, first: dt.date, last: dt.date) -> dt.date:
    """The last day with usage in first..last (from the daily rollup); `first` when none."""
    found = session.scalar(
        select(func.max(UsageDaily.day)).where(UsageDaily.day >= first, UsageDaily.day <= last)
    )
    return found or first


def _month_pieces(
    session: Session,
    resolver: TeamResolver,
    first: dt.date,
    *,
    with_days: bool = False,
    estimated_only: bool = False,
) -> list[Piece]:
    """The pieces of the month starting `first`: direct, then moved by the shared-cost rules
    in force on `first`; with `with_days`, each piece says which days its spend came from;
    with `estimated_only`, of the estimated spend only (see `chargeback`)."""
    with _collector_paused():
        pieces = _direct_pieces(session, resolver, first, with_days, estimated_only)
    own: dict[str, int] = defaultdict(int)
    weighed = _direct_pieces(session, resolver, first, False, False) if estimated_only else pieces
    for p in weighed:
        own[p.team] += p.micros
    for rule in list_rules(session=session):
        if rule.in_force(first):
            pieces = _apply(rule, pieces, resolver, own)
    pieces.sort(key=_PIECE_ORDER)
    return pieces


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a month's rows become pieces: tens of thousands of
    tuples, none in a cycle, whose allocations would otherwise set off full collections of
    the app's whole heap (Streamlit, pandas, Plotly loaded): a third of the time at 20M usage
    rows (docs/scaling.md). Process-wide, so it is switched back on only if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _direct_pieces(
    session: Session, resolver: TeamResolver, first: dt.date, with_days: bool, estimated_only: bool
) -> list[Piece]:
    """Each team's own spend of the month starting `first`, by the mappings in force."""
    last = month_bounds(first)[1]
    direct: dict[tuple[str, str, str, str, str, str, str], int] = defaultdict(int)
    days: dict[tuple[str, ...], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    # The monthly rollup does not know which spend is estimated: that reads the detail.
    by_day = estimated_only or resolver.changes_within(first, last)
    # Without per-day rows (no mapping changes inside the month), each group's days come
    # from a second, per-day read of the same rows.
    profile = _day_profiles(session, first, last) if with_days and not by_day else {}
    if by_day:
        rows = _daily_rows(session, first, last, estimated_only=estimated_only)
    else:
        rows = _monthly_rows(session, first)
    for row in rows:
        day, account, provider, project_id, project, key_id, key, user_id, user, model, m = row
        team = resolver.team(day, user=user_id, api_key=key_id, project=project_id, account=account)
        group = (team, provider, account, project, key, user, model)
        direct[group] += m
        if with_days:
            source = (
                {day: m}
                if by_day
                else profile[(account, provider, project_id, key_id, user_id, model)]
            )
            for d, day_micros in source.items():
                days[group][d] += day_micros
    pieces: list[Piece] = []
    for group, m in direct.items():
        if m:
            team, provider, account, project, key, user, model = group
            center, gl = resolver.books(team)
            spread = tuple(sorted(days[group].items()))
            pieces.append(
                Piece(team, center, gl, provider, account, project, key, user, model,
                      "direct", None, m, spread)
            )  # fmt: skip
    return pieces


# team, provider, account, project, key, user, model: the order pages list pieces in.
_PIECE_ORDER = itemgetter(0, 3, 4, 5, 6, 7, 8)


def _day_profiles(
    session: Session, first: dt.date, last: dt.date
) -> dict[tuple[str, ...], dict[dt.date, int]]:
    """Spend per day of each (account, provider, project id, key id, user id, model) group."""
    found: dict[tuple[str, ...], dict[dt.date, int]] = defaultdict(dict)
    for row in _daily_rows(session, first, last):
        day, account, provider, project_id, _p, key_id, _k, user_id, _u, model, micros = row
        found[(account, provider, project_id, key_id, user_id, model)][day] = micros
    return found


# (day, account, provider, project id, project label, key id, key label, user id, user
# label, model, spend in micro-dollars); a label is the name, else the id.
SpendRow = tuple[dt.date, str, str, str, str, str, str, str, str, str, int]


def _daily_rows(
    session: Session, first: dt.date, last: dt.date, *, estimated_only: bool = False
) -> Iterable[SpendRow]:
    """Spend per day, account, project, key, user and model, from the detail: for months in
    which a mapping starts or ends, so days may belong to different teams (and for the
    estimated spend alone, with `estimated_only`)."""
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
        .where(_u.cost_source == CostSource.ESTIMATED if estimated_only else true())
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
    for row in session.connection().execute(stmt):
        yield (*row[:10], int(row[10] or 0))


def _monthly_rows(session: Session, first: dt.date) -> Iterable[SpendRow]:
    """The same per month (dated its first day), from the monthly rollup, with the names the
    label rollup holds: every day of such a month resolves alike."""
    labels: dict[tuple[str, int, str], str] = {}
    lm = UsageLabelMonthly
    for kind, account_id, ident, label in session.connection().execute(
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
    rows = session.connection().execute(stmt)  # plain rows: no ORM loading per row
    for account_id, account, provider, project, key, user, model, micros in rows:
        yield (
            first, account, provider,
            project, labels.get(("project", account_id, project), project),
            key, labels.get(("api_key", account_id, key), key),
            user, labels.get(("user", account_id, user), user),
            model, int(micros),
        )  # fmt: skip


def _targets(
    rule: RuleView, resolver: TeamResolver, own: dict[str, int]
) -> tuple[list[str], list[int]]:
    """The teams a rule shares its source with, and their weights: fixed percentages, the
    teams' own (direct) spend of the month, or even (also when none of them has any)."""
    if rule.targets:
        targets = [team for team, _ in rule.targets]
    else:
        targets = [name for name in resolver.teams if name != rule.source]
    if not targets:
        return [], []
    if rule.method == "fixed":
        weights = [int(percent * 10_000) for _, percent in rule.targets if percent is not None]
    elif rule.method == "proportional" and any(own.get(t, 0) > 0 for t in targets):
        weights = [max(own.get(t, 0), 0) for t in targets]
    else:
        weights = [1] * len(targets)
    return targets, weights


def _apply(
    rule: RuleView, pieces: list[Piece], resolver: TeamResolver, own: dict[str, int]
) -> list[Piece]:
    """Move what `rule.source` holds to its targets."""
    targets, weights = _targets(rule, resolver, own)
    if not targets:
        return pieces
    books = {team: resolver.books(team) for team in targets}
    method = f"shared_{rule.method}"
    out: list[Piece] = []
    # The bucket moves per provider, account and model: each team's share says where it came
    # from without one piece per key and user of the bucket (thousands, times each target).
    bucket: dict[tuple[str, str, str], int] = defaultdict(int)
    bucket_days: dict[tuple[str, str, str], dict[dt.date, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for p in pieces:
        if p.team != rule.source or p.micros <= 0:
            out.append(p)
            continue
        where = (p.provider, p.account, p.model)
        bucket[where] += p.micros
        for day, micros in p.days:
            bucket_days[where][day] += micros
    for (provider, account, model), total in bucket.items():
        days = tuple(sorted(bucket_days[(provider, account, model)].items()))
        for team, micros in zip(targets, split(total, weights), strict=True):
            if micros:
                out.append(
                    Piece(team, *books[team], provider, account, "", "", "", model, method,
                          rule.source, micros, _spread(days, micros))
                )  # fmt: skip
    return out


def _spread(days: tuple[tuple[dt.date, int], ...], micros: int) -> tuple[tuple[dt.date, int], ...]:
    """`micros` over the days of a piece in proportion to its spend on each (the piece's own
    micro-dollars are above zero, so the weights add up to more than zero)."""
    if not days:
        return ()
    parts = split(micros, [m for _day, m in days])
    return tuple((day, m) for (day, _), m in zip(days, parts, strict=True) if m)


# --- the same rules, per charge (the FOCUS 1.4 export's allocated charges) ------------------


class Share(NamedTuple):
    """A team's part of one charge: `weight` out of the sum of the charge's shares."""

    team: str
    weight: int
    method: str  # "direct", or "shared_even" / "shared_fixed" / "shared_proportional"
    shared_from: str | None  # the team (or Unassigned) a shared part came from


class TeamShares:
    """How the month's shared-cost rules split a team's spend, as ratios, so one charge can be
    split the way `chargeback` moves whole buckets: the rules in force on the month's first
    day, in the order they were made, with the same weights (a proportional rule weighs the
    targets' direct spend of the whole month). Like the chargeback, spend that is not above
    zero stays with its own team. Per charge the parts are rounded one by one, so a team's
    total over many charges may differ from the chargeback's by micro-dollars."""

    def __init__(self, session: Session, resolver: TeamResolver, month: dt.date) -> None:
        first = month_start(month)
        self._resolver = resolver
        self._rules = [r for r in list_rules(session=session) if r.in_force(first)]
        self._own: dict[str, int] = defaultdict(int)
        if any(r.method == "proportional" for r in self._rules):
            for p in _direct_pieces(session, resolver, first, False, False):
                self._own[p.team] += p.micros
        self._cache: dict[str, tuple[Share, ...]] = {}

    def of(self, team: str, *, positive: bool = True) -> tuple[Share, ...]:
        """The shares of a charge whose own team is `team`, by team name; `positive`: the
        charge is above zero (only such spend is shared)."""
        if not positive or not self._rules:
            return (Share(team, 1, "direct", None),)
        found = self._cache.get(team)
        if found is None:
            found = self._cache[team] = self._shares(team)
        return found

    def _shares(self, team: str) -> tuple[Share, ...]:
        # (team, method, source) -> its fraction of the charge: a team that receives parts
        # by two rules holds two shares, each with the one method that moved it.
        parts: dict[tuple[str, str, str | None], Fraction] = {(team, "direct", None): Fraction(1)}
        for rule in self._rules:
            held = [key for key in parts if key[0] == rule.source]
            if not held:
                continue
            targets, weights = _targets(rule, self._resolver, self._own)
            if not targets:
                continue
            moved = sum((parts.pop(key) for key in held), Fraction(0))
            total = sum(weights)
            for target, weight in zip(targets, weights, strict=True):
                if weight:
                    key = (target, f"shared_{rule.method}", rule.source)
                    parts[key] = parts.get(key, Fraction(0)) + moved * weight / total
        scale = math.lcm(*(f.denominator for f in parts.values()))
        return tuple(
            Share(name, int(f * scale), method, source)
            for (name, method, source), f in sorted(parts.items(), key=lambda p: str(p[0]))
            if f
        )
