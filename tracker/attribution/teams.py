"""Teams, the dated mappings that say whose spend is whose, and shared-cost rules.

A mapping gives a team the spend of an account, a project (OpenAI project, Anthropic
workspace, an imported `project`), an API key or a user (the provider's user id) from
`valid_from` (inclusive) until `valid_to` (exclusive; open when None). The most specific
mapping in force on a day wins: user, then API key, then project, then account; spend no
mapping reaches is "Unassigned", never hidden. Two mappings of one kind and value may not
be in force on the same day.

A shared-cost rule splits what one bucket (a team such as a platform team, or the
unassigned spend) was charged across other teams, for the months it is in force: `even`,
`fixed` percentages (adding up to 100), or `proportional` to the teams' own spend.

Every change is audited; the app (admin and finance) and `python -m tracker teams` call
these functions.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound
from tracker.models import SharedCostRule, Team, TeamMapping
from tracker.providers.accounts import get_account

KINDS = ("user", "api_key", "project", "account")  # most specific first
KIND_LABELS = {"user": "user", "api_key": "API key", "project": "project", "account": "account"}
METHODS = ("even", "fixed", "proportional")
UNASSIGNED = "Unassigned"
MAPPING_COLUMNS = ("kind", "value", "team", "valid_from", "valid_to")


@dataclass(frozen=True)
class MappingView:
    id: int
    kind: str
    value: str
    team: str
    valid_from: dt.date
    valid_to: dt.date | None

    def in_force(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True)
class RuleView:
    id: int
    source: str  # a team name, or UNASSIGNED
    method: str
    targets: tuple[tuple[str, Decimal | None], ...]  # (team, percent); () = every other team
    valid_from: dt.date
    valid_to: dt.date | None

    def in_force(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def describe(self) -> str:
        if not self.targets:
            to = "every other team"
        elif self.method == "fixed":
            to = ", ".join(f"{team} {percent}%" for team, percent in self.targets)
        else:
            to = ", ".join(team for team, _ in self.targets)
        return f"{self.source} -> {to} ({self.method})"


# --- teams ---------------------------------------------------------------------------------


def add_team(
    *,
    session: Session,
    name: str,
    cost_center: str | None = None,
    gl_account: str | None = None,
    actor: str,
) -> Team:
    name = _text(name, "team name", 120)
    if name.lower() == UNASSIGNED.lower():
        raise InvalidInput(f"{UNASSIGNED!r} is the name of spend no mapping reaches; pick another")
    if session.scalar(select(Team).where(Team.name == name)) is not None:
        raise InvalidInput(f"a team named {name!r} exists already")
    team = Team(
        name=name,
        cost_center=_optional(cost_center, "cost center", 64),
        gl_account=_optional(gl_account, "GL account", 64),
    )
    session.add(team)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="team.add",
        target=name,
        cost_center=team.cost_center,
        gl_account=team.gl_account,
    )
    return team


def update_team(
    *,
    session: Session,
    name: str,
    cost_center: str | None,
    gl_account: str | None,
    actor: str,
) -> Team:
    team = get_team(session=session, name=name)
    team.cost_center = _optional(cost_center, "cost center", 64)
    team.gl_account = _optional(gl_account, "GL account", 64)
    audit.record(
        session=session,
        actor=actor,
        action="team.update",
        target=team.name,
        cost_center=team.cost_center,
        gl_account=team.gl_account,
    )
    return team


def remove_team(*, session: Session, name: str, actor: str) -> None:
    """Remove a team with its mappings and rules (its spend becomes unassigned)."""
    team = get_team(session=session, name=name)
    session.delete(team)
    audit.record(session=session, actor=actor, action="team.remove", target=name)


def get_team(*, session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name.strip()))
    if team is None:
        known = ", ".join(t.name for t in list_teams(session=session)) or "none yet"
        raise NotFound(f"no team named {name!r} (teams: {known})")
    return team


def list_teams(*, session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))


# --- mappings ------------------------------------------------------------------------------


def add_mapping(
    *,
    session: Session,
    kind: str,
    value: str,
    team: str,
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    actor: str,
) -> MappingView:
    if kind not in KINDS:
        raise InvalidInput(f"unknown mapping kind {kind!r}; use one of {', '.join(KINDS)}")
    value = _text(value, KIND_LABELS[kind], 255)
    if kind == "account":
        get_account(session=session, name=value)  # a typo must not map nothing, silently
    if valid_to is not None and valid_to <= valid_from:
        raise InvalidInput(f"valid_to {valid_to} must be after valid_from {valid_from}")
    owner = get_team(session=session, name=team)
    for other in list_mappings(session=session):
        if (other.kind, other.value) == (kind, value) and _overlap(
            other.valid_from, other.valid_to, valid_from, valid_to
        ):
            raise InvalidInput(
                f"{KIND_LABELS[kind]} {value!r} is mapped to {other.team} from "
                f"{other.valid_from} to {other.valid_to or 'open'} (mapping #{other.id}); "
                "end or remove that mapping first"
            )
    mapping = TeamMapping(
        kind=kind,
        value=value,
        team_id=owner.id,
        valid_from=valid_from,
        valid_to=valid_to,
        created_by=actor,
    )
    session.add(mapping)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="team.map",
        target=owner.name,
        kind=kind,
        value=value,
        valid_from=str(valid_from),
        valid_to=str(valid_to) if valid_to else None,
    )
    return MappingView(mapping.id, kind, value, owner.name, valid_from, valid_to)


def end_mapping(*, session: Session, mapping_id: int, valid_to: dt.date, actor: str) -> None:
    """End a mapping: from `valid_to` on it no longer holds (history before it stays)."""
    mapping = session.get(TeamMapping, mapping_id)
    if mapping is None:
        raise NotFound(f"no team mapping #{mapping_id}")
    if valid_to <= mapping.valid_from:
        raise InvalidInput(
            f"mapping #{mapping_id} starts on {mapping.valid_from}; end it after that day, "
            "or remove it"
        )
    mapping.valid_to = valid_to
    audit.record(
        session=session,
        actor=actor,
        action="team.end_mapping",
        target=str(mapping_id),
        valid_to=str(valid_to),
    )


def remove_mapping(*, session: Session, mapping_id: int, actor: str) -> None:
    mapping = session.get(TeamMapping, mapping_id)
    if mapping is None:
        raise NotFound(f"no team mapping #{mapping_id}")
    session.delete(mapping)
    audit.record(
        session=session,
        actor=actor,
        action="team.unmap",
        target=str(mapping_id),
        kind=mapping.kind,
        value=mapping.value,
    )


def list_mappings(*, session: Session) -> list[MappingView]:
    rows = session.execute(
        select(TeamMapping, Team.name)
        .join(Team, Team.id == TeamMapping.team_id)
        .order_by(TeamMapping.kind, TeamMapping.value, TeamMapping.valid_from)
    )
    return [MappingView(m.id, m.kind, m.value, name, m.valid_from, m.valid_to) for m, name in rows]


def import_mappings(*, session: Session, stream: TextIO, actor: str) -> int:
    """Add mappings from a CSV with the columns of `MAPPING_COLUMNS` (valid_to optional);
    all or nothing: any bad row refuses the file, naming its line."""
    reader = csv.DictReader(stream)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in MAPPING_COLUMNS[:4] if c not in header]
    if missing:
        raise InvalidInput(
            f"the mappings CSV needs the column(s) {', '.join(missing)}; "
            f"columns: {', '.join(MAPPING_COLUMNS)}"
        )
    added = 0
    with session.begin_nested():
        for line, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            try:
                add_mapping(
                    session=session,
                    kind=row["kind"],
                    value=row["value"],
                    team=row["team"],
                    valid_from=_day(row["valid_from"], "valid_from"),
                    valid_to=_day(row["valid_to"], "valid_to") if row.get("valid_to") else None,
                    actor=actor,
                )
            except (InvalidInput, NotFound) as exc:
                raise InvalidInput(f"line {line}: {exc}; nothing was imported") from None
            added += 1
    return added


class TeamResolver:
    """Whose is a row's spend: the team of the most specific mapping in force on its day
    (user, API key, project, account), with its cost center and GL account; else
    Unassigned."""

    def __init__(self, session: Session) -> None:
        self.teams = {t.name: t for t in list_teams(session=session)}
        # Read once: a month's chargeback asks for tens of thousands of rows' teams and books.
        self._books = {t.name: (t.cost_center, t.gl_account) for t in self.teams.values()}
        self._found: dict[tuple[dt.date, str, str, str, str], str] = {}
        self._mappings: dict[tuple[str, str], list[MappingView]] = {}
        for m in list_mappings(session=session):
            self._mappings.setdefault((m.kind, m.value), []).append(m)

    def team(
        self, day: dt.date, *, user: str = "", api_key: str, project: str, account: str
    ) -> str:
        key = (day, user, api_key, project, account)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._team(day, user, api_key, project, account)
        return found

    def _team(self, day: dt.date, user: str, api_key: str, project: str, account: str) -> str:
        for kind, value in (
            ("user", user),
            ("api_key", api_key),
            ("project", project),
            ("account", account),
        ):
            for m in self._mappings.get((kind, value), ()) if value else ():
                if m.in_force(day):
                    return m.team
        return UNASSIGNED

    def changes_within(self, first: dt.date, last: dt.date) -> bool:
        """Whether some mapping starts or ends on a day after `first` up to `last`: then
        days of that range may belong to different teams."""
        return any(
            first < day <= last
            for views in self._mappings.values()
            for m in views
            for day in (m.valid_from, m.valid_to)
            if day is not None
        )

    def books(self, team: str) -> tuple[str | None, str | None]:
        """(cost center, GL account) of a team; (None, None) for Unassigned."""
        return self._books.get(team, (None, None))


# --- shared-cost rules ---------------------------------------------------------------------


def add_rule(
    *,
    session: Session,
    source: str,
    method: str,
    targets: Iterable[tuple[str, str | Decimal | None]] = (),
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    actor: str,
) -> RuleView:
    """Share `source` (a team name, or "Unassigned") across `targets` ((team, percent)
    pairs; percent for `fixed` only; none: every other team)."""
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if valid_to is not None and valid_to <= valid_from:
        raise InvalidInput(f"valid_to {valid_to} must be after valid_from {valid_from}")
    source_team = None if source.strip().lower() == UNASSIGNED.lower() else source
    source_id = None if source_team is None else get_team(session=session, name=source_team).id
    stored: list[dict[str, Any]] = []
    for name, percent in targets:
        team = get_team(session=session, name=name)
        if team.id == source_id:
            raise InvalidInput(f"{team.name} cannot share its own cost with itself")
        share = None
        if method == "fixed":
            share = _percent(percent, team.name)
        stored.append({"team_id": team.id, "percent": None if share is None else str(share)})
    if method == "fixed":
        if not stored:
            raise InvalidInput("a fixed split needs each target team with its percentage")
        total = sum((Decimal(t["percent"]) for t in stored), Decimal(0))
        if total != 100:
            raise InvalidInput(f"the percentages add up to {total}, not 100")
    rule = SharedCostRule(
        team_id=source_id,
        method=method,
        targets=stored,
        valid_from=valid_from,
        valid_to=valid_to,
        created_by=actor,
    )
    session.add(rule)
    session.flush()
    view = next(r for r in list_rules(session=session) if r.id == rule.id)
    audit.record(session=session, actor=actor, action="team.share", target=view.describe()[:255])
    return view


def remove_rule(*, session: Session, rule_id: int, actor: str) -> None:
    rule = session.get(SharedCostRule, rule_id)
    if rule is None:
        raise NotFound(f"no shared-cost rule #{rule_id}")
    session.delete(rule)
    audit.record(session=session, actor=actor, action="team.unshare", target=str(rule_id))


def list_rules(*, session: Session) -> list[RuleView]:
    names = {t.id: t.name for t in list_teams(session=session)}
    out = []
    for rule in session.scalars(select(SharedCostRule).order_by(SharedCostRule.id)):
        targets = tuple(
            (names[t["team_id"]], None if t.get("percent") is None else Decimal(t["percent"]))
            for t in rule.targets
            if t.get("team_id") in names
        )
        source = UNASSIGNED if rule.team_id is None else names.get(rule.team_id, UNASSIGNED)
        out.append(RuleView(rule.id, source, rule.method, targets, rule.valid_from, rule.valid_to))
    return out


# --- helpers -------------------------------------------------------------------------------


def _text(value: str, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"the {what} is empty")
    if len(value) > limit:
        raise InvalidInput(f"the {what} is longer than {limit} characters")
    return value


def _optional(value: str | None, what: str, limit: int) -> str | None:
    return _text(value, what, limit) if value and value.strip() else None


def _day(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def _percent(raw: str | Decimal | None, team: str) -> Decimal:
    try:
        value = Decimal(str(raw).strip().rstrip("%")) if raw is not None else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not 0 < value <= 100:
        raise InvalidInput(f"the percentage for {team} must be a number above 0 and up to 100")
    return value


def _overlap(a_from: dt.date, a_to: dt.date | None, b_from: dt.date, b_to: dt.date | None) -> bool:
    return (a_to is None or b_from < a_to) and (b_to is None or a_from < b_to)
