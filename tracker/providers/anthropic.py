"""Anthropic: the Admin API usage report (tokens) and the analytics or cost report (USD).

Needs an **Admin API key** (`sk-ant-admin...`); workspace keys are refused by Anthropic.

Rows produced, on UTC days:

- Usage rows from `/v1/organizations/usage_report/messages`, grouped by model, workspace,
  API key and service tier (`usage_type = "messages"`). Anthropic's `uncached_input_tokens`
  already excludes cache reads and writes, so it is stored as `input_tokens` as it is; cache
  reads, 5-minute writes and 1-hour writes go to their own columns. Web-search requests are
  kept in `other_units` ("web_search_requests"), which the price book prices per search. No
  money on these rows.
- Billed rows from the **Usage and Cost Analytics API** (`/v1/organizations/analytics/cost`,
  beta header `analytics-usage-cost-2026-08-24`) where the key may use it: per day, actor,
  API key, workspace, model, product and service tier, with `usage_type = "cost:<product>"`
  (`cost:api`, `cost:claude_code`, `cost:claude_ai`; `cost:other` when none), the row's
  `amount` (after discounts, before credits) as `billed_cost` and its `list_amount` (before
  discounts) as `list_cost`, both fractional cents divided by 100. The actor is the user
  dimension: a user's id (email as its name), a service account's id, nothing for an API
  key (already the key dimension). It serves days from 2026-01-01 within the last 365 days,
  asked in ranges of at most 31 days; other days, or a key it refuses (400, 403 or 404, then
  not asked again in that pass), fall back to the cost report below, so one day's money
  comes from one of the two only.
- Otherwise billed rows from `/v1/organizations/cost_report`, grouped by workspace and
  description, with `usage_type = "cost:<token type or cost type>"` (e.g. `cost:output_tokens`,
  `cost:web_search`), zero tokens and the amount in `billed_cost`. The cost report gives amounts
  as decimal strings in **cents**; they are divided by 100 exactly as Decimals. Descriptions are
  not keyed on (their wording is not documented for every cost type). Priority Tier costs are
  not in the cost report (Anthropic's documented limitation).
- Spend limits (`fetch_spend_limits`, beta header `spend-limit-reads-2026-09-26`): every
  scope's cap, cents; the organisation's (and a Console organisation's usage-tier cap)
  bound the whole account. Then each member's effective limit per period
  (`/v1/organizations/spend_limits/effective`, paged by member; Claude Enterprise
  organisations): the cap that applies to the member, where it comes from (the member's
  own, a seat tier's, a group's, the organisation's default) and the member's spend so
  far in the period. A key or organisation it is not for (400, 403, 404) is recorded as
  not readable, never as "no limit".

`workspace_id` null means the default workspace and `api_key_id` null means Console/Workbench
usage; both are stored as ''.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from tracker.core import units
from tracker.models import LINE_ITEM, LimitKind
from tracker.providers.base import (
    Connector,
    ProviderAuthError,
    ProviderError,
    ProviderPermissionError,
    ProviderResponseError,
    UsageRow,
    day_of_iso,
    dim,
    required_int,
    to_decimal,
    to_int,
    utc_midnight,
)
from tracker.providers.billing import SpendLimit

API_VERSION = "2023-06-01"
ADMIN_KEY_HINT = (
    "the usage and cost reports need an Admin API key (sk-ant-admin...), created by an "
    "organization admin in the Console under Settings > Admin keys"
)
PAGE_LIMIT = 31  # buckets per page: the maximum for 1d buckets
CENTS = Decimal(100)
SPEND_LIMITS_BETA = "spend-limit-reads-2026-09-26"
SPEND_LIMIT_PAGE = 1000  # the most one page may hold
MAX_SPEND_LIMIT_PAGES = 1000
SPEND_LIMITS = "/v1/organizations/spend_limits"
EFFECTIVE_LIMITS = "/v1/organizations/spend_limits/effective"
REFUSALS = (400, 403, 404)  # the key, the organisation's type or the beta is not allowed
# The scopes whose cap bounds everything the organisation spends.
ORGANISATION_SCOPES = {"organization": "", "usage_tier": "usage_tier"}
PERIODS = {"monthly": "month", "daily": "day", "weekly": "week"}
ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
ANALYTICS_COST = "/v1/organizations/analytics/cost"
ANALYTICS_FIRST_DAY = dt.date(2026, 1, 1)  # the analytics data starts here
ANALYTICS_HISTORY_DAYS = 365  # and reaches this far back
ANALYTICS_MAX_DAYS = 31  # the longest range one request may ask for
ANALYTICS_GROUPS = ["actor", "api_key_id", "workspace_id", "model", "product", "service_tier"]
ANALYTICS_REFUSALS = (400, 403, 404)  # the key, the organisation or the beta is not allowed
ANALYTICS_RESTARTS = 2  # a cursor that expires after a data refresh (410): ask again


class AnthropicConnector(Connector):
    provider: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"

    beta: str | None = None  # the `anthropic-beta` header of the call being made, if any
    analytics_refused: str | None = None  # why the analytics API is not used in this pass

    def auth_headers(self) -> dict[str, str]:
        headers = {"x-api-key": self.credential.reveal(), "anthropic-version": API_VERSION}
        if self.beta:
            headers["anthropic-beta"] = self.beta
        return headers

    @contextmanager
    def _admin_key_needed(self) -> Iterator[None]:
        """A refused key that is not an admin key: say so, and which key to use."""
        try:
            yield
        except (ProviderAuthError, ProviderPermissionError) as exc:
            if not self.credential.reveal().startswith("sk-ant-admin"):
                raise type(exc)(
                    f"{exc}; this does not look like an admin key: {ADMIN_KEY_HINT}",
                    status=exc.status,
                ) from None
            raise

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        with self._admin_key_needed():
            yield from self.iter_cursor_pages(path, params)

    def test(self) -> str:
        """Check the admin key by reading the organization it belongs to."""
        org = self._organization()
        name = org.get("name") or org.get("id") or "unknown"
        return f"admin key for organization {name}"

    def _organization(self) -> dict[str, Any]:
        with self._admin_key_needed():
            return self.get_object("/v1/organizations/me")

    def organization_key(self) -> str | None:
        org_id = self._organization().get("id")
        return f"anthropic:{org_id}" if org_id else None

    def fetch_spend_limits(self) -> list[SpendLimit]:
        """The organisation's spend limits, then its members' effective limits."""
        return self._organisation_limits() + self._member_limits()

    def _organisation_limits(self) -> list[SpendLimit]:
        """Every scope's configured limit (`/v1/organizations/spend_limits`, beta). A key
        that may not list them (documented for Claude Enterprise organisations; Console
        ones in early access) is recorded as not readable."""
        self.beta = SPEND_LIMITS_BETA
        try:
            return [_spend_limit(item) for item in self._listed(SPEND_LIMITS, "spend limits")]
        except (ProviderPermissionError, ProviderResponseError) as exc:
            if exc.status not in REFUSALS:
                raise
            note = f"Anthropic does not let this key list spend limits: {exc}"
            return [SpendLimit(readable=False, note=note)]
        finally:
            self.beta = None

    def _member_limits(self) -> list[SpendLimit]:
        """Each member's effective limit per period (documented without a beta header).
        Refused (a Console organisation: 400; the key: 403; 404): one row saying the
        members' limits could not be read, which is not "no limit"."""
        try:
            items = self._listed(EFFECTIVE_LIMITS, "effective limits")
        except (ProviderPermissionError, ProviderResponseError) as exc:
            if exc.status not in REFUSALS:
                raise
            note = f"Anthropic does not let this key read its members' effective limits: {exc}"
            return [SpendLimit(scope="members", kind=LimitKind.MEMBER, account_wide=False,
                               readable=False, note=note)]  # fmt: skip
        return [_member_limit(item) for item in items]

    def _listed(self, path: str, what: str) -> list[Any]:
        """The items of every page of a `data`/`next_page` listing (its `has_more` may be
        absent: the cursor decides), a thousand a page."""
        items: list[Any] = []
        params: dict[str, Any] = {"limit": SPEND_LIMIT_PAGE}
        seen: set[str] = set()
        for _ in range(MAX_SPEND_LIMIT_PAGES):
            body = self.get_object(path, params)
            data = body.get("data")
            if not isinstance(data, list):
                raise ProviderResponseError(f"anthropic: the {what} have no data list")
            items.extend(data)
            cursor = body.get("next_page")
            if not cursor or body.get("has_more") is False:
                return items
            if str(cursor) in seen:
                raise ProviderResponseError(f"anthropic repeated a {what} page cursor")
            seen.add(str(cursor))
            params = {"limit": SPEND_LIMIT_PAGE, "page": str(cursor)}
        raise ProviderResponseError(f"anthropic: the {what} did not end")

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield usage rows then billed rows for UTC days in [start, end)."""
        window = {
            "starting_at": _rfc3339(start),
            "ending_at": _rfc3339(end),
            "bucket_width": "1d",
            "limit": PAGE_LIMIT,
        }
        usage_params = {
            **window,
            "group_by[]": ["model", "workspace_id", "api_key_id", "service_tier"],
        }
        workspaces = self._names("/v1/organizations/workspaces")
        keys = self._names("/v1/organizations/api_keys")
        for page in self._pages("/v1/organizations/usage_report/messages", usage_params):
            for day, r in self.buckets(page, "usage report", "starting_at", day_of_iso):
                yield _named(_usage_row(day, r), workspaces, keys)
        analytics_days = self._analytics_days(start, end)
        if analytics_days is not None:
            first, last = analytics_days
            try:
                rows = list(self._analytics_costs(first, last))
            except ProviderError as exc:
                if exc.status not in ANALYTICS_REFUSALS:
                    raise
                self.analytics_refused = f"the Usage and Cost Analytics API refused: {exc}"
            else:
                yield from (_named(row, workspaces, keys) for row in rows)
                # The days before it (older than it serves) from the cost report.
                if start < first:
                    yield from self._cost_report(start, first, workspaces, keys)
                if last < end:
                    yield from self._cost_report(last, end, workspaces, keys)
                return
        yield from self._cost_report(start, end, workspaces, keys)

    def _cost_report(
        self, start: dt.date, end: dt.date, workspaces: dict[str, str], keys: dict[str, str]
    ) -> Iterator[UsageRow]:
        cost_params = {
            "starting_at": _rfc3339(start),
            "ending_at": _rfc3339(end),
            "bucket_width": "1d",
            "limit": PAGE_LIMIT,
            "group_by[]": ["workspace_id", "description"],
        }
        for page in self._pages("/v1/organizations/cost_report", cost_params):
            for day, r in self.buckets(page, "cost report", "starting_at", day_of_iso):
                yield _named(_cost_row(day, r), workspaces, keys)

    def _analytics_days(self, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
        """The part of [start, end) the analytics API serves (from 2026-01-01, the last 365
        days, not after today), or None when it serves none of it or was refused."""
        if self.analytics_refused is not None:
            return None
        today = units.today_utc()
        first = max(start, ANALYTICS_FIRST_DAY, today - dt.timedelta(days=ANALYTICS_HISTORY_DAYS))
        last = min(end, today + dt.timedelta(days=1))
        return (first, last) if first < last else None

    def _analytics_costs(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Cost rows of the analytics API for [start, end), in ranges of at most 31 days."""
        window = start
        while window < end:
            stop = min(end, window + dt.timedelta(days=ANALYTICS_MAX_DAYS))
            yield from self._analytics_window(window, stop)
            window = stop

    def _analytics_window(self, start: dt.date, end: dt.date) -> list[UsageRow]:
        params: dict[str, Any] = {
            "starting_at": _rfc3339(start),
            "ending_at": _rfc3339(end),
            "time_bucket_width": "1d",
            "group_by[]": ANALYTICS_GROUPS,
        }
        self.beta = ANALYTICS_BETA
        try:
            for attempt in range(ANALYTICS_RESTARTS + 1):
                try:
                    rows: list[UsageRow] = []
                    for page in self._pages(ANALYTICS_COST, params):
                        data = page.get("data")
                        if not isinstance(data, list):
                            raise ProviderResponseError("anthropic: analytics cost has no data")
                        rows.extend(_analytics_row(item) for item in data)
                    return rows
                except ProviderError as exc:
                    # 410: the cursor expired because the data was refreshed; start again.
                    if exc.status != 410 or attempt == ANALYTICS_RESTARTS:
                        raise
            raise ProviderResponseError("anthropic: analytics pages kept expiring")
        finally:
            self.beta = None

    def _names(self, path: str) -> dict[str, str]:
        """Id -> name from an admin listing (workspaces, API keys); empty where the key may
        not list them (names are optional: the ids stay)."""
        names: dict[str, str] = {}
        params: dict[str, Any] = {"limit": 100}
        try:
            for _ in range(1000):
                body = self.get_object(path, params)
                data = body.get("data") or []
                for item in data:
                    if isinstance(item, dict) and item.get("id") and item.get("name"):
                        names[str(item["id"])] = str(item["name"])[:255]
                if not body.get("has_more") or not data:
                    break
                params = {**params, "after_id": body.get("last_id") or data[-1].get("id")}
        except (ProviderPermissionError, ProviderResponseError):
            return names
        return names


def _named(row: UsageRow, workspaces: dict[str, str], keys: dict[str, str]) -> UsageRow:
    workspace = workspaces.get(row.project_id) if row.project_id else None
    key = keys.get(row.api_key_id) if row.api_key_id else None
    if workspace or key:
        return replace(
            row, project_name=workspace or row.project_name, api_key_name=key or row.api_key_name
        )
    return row


def _rfc3339(day: dt.date) -> str:
    return utc_midnight(day).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage_row(day: dt.date, r: dict[str, Any]) -> UsageRow:
    cache = r.get("cache_creation") if isinstance(r.get("cache_creation"), dict) else {}
    tools = r.get("server_tool_use") if isinstance(r.get("server_tool_use"), dict) else {}
    web_searches = to_int((tools or {}).get("web_search_requests"))
    return UsageRow(
        day=day,
        model=dim(r.get("model")),
        project_id=dim(r.get("workspace_id")),
        api_key_id=dim(r.get("api_key_id")),
        usage_type="messages",
        service_tier=dim(r.get("service_tier")),
        input_tokens=required_int(r, "uncached_input_tokens"),
        cached_input_tokens=to_int(r.get("cache_read_input_tokens")),
        cache_write_tokens=to_int((cache or {}).get("ephemeral_5m_input_tokens")),
        cache_write_1h_tokens=to_int((cache or {}).get("ephemeral_1h_input_tokens")),
        output_tokens=required_int(r, "output_tokens"),
        other_units=Decimal(web_searches),
        other_unit_name="web_search_requests" if web_searches else None,
    )


def _cost_row(day: dt.date, r: dict[str, Any]) -> UsageRow:
    kind = r.get("token_type") or r.get("cost_type") or r.get("description") or "total"
    currency = str(r.get("currency") or "USD").upper()[:3]
    return UsageRow(
        day=day,
        model=dim(r.get("model")),
        project_id=dim(r.get("workspace_id")),
        usage_type=f"{LINE_ITEM}{kind}"[:255],
        service_tier=dim(r.get("service_tier")),
        # Lowest currency unit (cents) as a decimal string: "123.45" is $1.2345.
        billed_cost=to_decimal(r.get("amount"), "cost amount") / CENTS,
        currency=currency,
    )


def _analytics_row(item: Any) -> UsageRow:
    """One analytics cost row: `cost.amount` and `cost.list_amount` are fractional cents."""
    if not isinstance(item, dict) or not isinstance(item.get("cost"), dict):
        raise ProviderResponseError("anthropic: an analytics cost row has no cost object")
    group: dict[str, Any] = item["group"] if isinstance(item.get("group"), dict) else {}
    cost = item["cost"]
    user_id, user_name = _actor(group.get("actor"))
    listed = cost.get("list_amount")
    return UsageRow(
        day=day_of_iso(item.get("starting_at")),
        model=dim(group.get("model")),
        project_id=dim(group.get("workspace_id")),
        api_key_id=dim(group.get("api_key_id")),
        user_id=user_id,
        user_name=user_name,
        usage_type=f"{LINE_ITEM}{dim(group.get('product')) or 'other'}"[:255],
        service_tier=dim(group.get("service_tier"))[:64],
        requests=to_int(cost.get("requests")),
        billed_cost=to_decimal(cost.get("amount"), "analytics amount") / CENTS,
        list_cost=None if listed is None else to_decimal(listed, "list_amount") / CENTS,
        currency=dim(cost.get("currency")).upper()[:3] or "USD",
    )


def _actor(actor: Any) -> tuple[str, str | None]:
    """The user dimension of an analytics actor: a user (id, email as the name), a service
    account or a federated identity (its id); an API key's is '' (the key dimension has it)."""
    if not isinstance(actor, dict) or actor.get("type") in (None, "api_actor"):
        return "", None
    email = dim(actor.get("email_address") or actor.get("email")) or None
    ident = next(
        (dim(v) for k, v in actor.items() if k not in ("type", "email_address", "email") and v),
        "",
    )
    return (ident or email or dim(actor.get("type")))[:255], email


def _spend_limit(item: Any) -> SpendLimit:
    """One of the organisation's spend limits: `amount` is cents as a decimal string (null:
    no numeric cap at that scope); a limit switched off (`is_enabled` false) caps nothing."""
    if not isinstance(item, dict) or not isinstance(item.get("scope"), dict):
        raise ProviderResponseError("anthropic: a spend limit has no scope object")
    scope = item["scope"]
    kind = dim(scope.get("type"))
    ident = next((dim(v) for k, v in scope.items() if k != "type" and v), "")
    cents = item.get("amount")
    amount = None if cents is None else to_decimal(cents, "spend limit amount") / CENTS
    if amount is not None and amount < 0:
        raise ProviderResponseError(f"anthropic sent a negative spend limit: {amount}")
    enabled = item.get("is_enabled") is not False
    wide = kind in ORGANISATION_SCOPES
    return SpendLimit(
        scope=ORGANISATION_SCOPES[kind] if wide else f"{kind}:{ident}",
        scope_name=None if wide else f"{kind.replace('_', ' ')} {ident}".strip(),
        amount=amount if enabled else None,
        currency=dim(item.get("currency")).upper()[:3] or "USD",
        period=PERIODS.get(dim(item.get("period")), dim(item.get("period")) or "month"),
        enforcement="enabled" if enabled else "switched off",
        account_wide=wide,
        note=None if enabled else "switched off at Anthropic: it caps nothing until switched on",
    )


# Where a member's effective limit comes from, as the page says it (`source.type`).
SOURCES = {
    "user": "the member's own limit",
    "seat_tier": "seat tier",
    "rbac_group": "group",
    "organization_service": "organisation default for",
    "organization": "the organisation's default",
    "workspace": "workspace",
}


def _member_limit(item: Any) -> SpendLimit:
    """One member's effective limit for one period: `amount` and `period_to_date_spend` are
    cents as decimal strings (`amount` null: no limit applies for that period); the actor
    is a user (`user_id`, `email_address`, `name`) or a scoped Admin API key."""
    if not isinstance(item, dict) or not isinstance(item.get("actor"), dict):
        raise ProviderResponseError("anthropic: an effective limit has no actor")
    actor = item["actor"]
    ident = dim(actor.get("user_id") or actor.get("scoped_api_key_id"))
    if not ident:
        raise ProviderResponseError("anthropic: an effective limit's actor has no id")
    cents = item.get("amount")
    amount = None if cents is None else to_decimal(cents, "effective limit amount") / CENTS
    spent_cents = item.get("period_to_date_spend")
    spent = None if spent_cents is None else to_decimal(spent_cents, "period_to_date_spend")
    if (amount is not None and amount < 0) or (spent is not None and spent < 0):
        raise ProviderResponseError(f"anthropic sent a negative effective limit for {ident}")
    raw_period = dim(item.get("period"))
    period = PERIODS.get(raw_period, raw_period or "month")
    email = dim(actor.get("email_address")) or None
    name = dim(actor.get("name")) or email or ident
    if actor.get("deleted") is True:
        name = f"{name} (deleted)"
    return SpendLimit(
        scope=f"member:{ident}:{period}",
        scope_name=name,
        amount=amount,
        currency=dim(item.get("currency")).upper()[:3] or "USD",
        period=period,
        account_wide=False,
        note=_source(item.get("source")) if amount is not None else "no limit for this period",
        kind=LimitKind.MEMBER,
        spent=None if spent is None else spent / CENTS,
        email=email,
    )


def _source(source: Any) -> str:
    """Where an effective limit comes from: "from seat tier premium", "from the
    organisation's default", ..."""
    if not isinstance(source, dict):
        return "from an unnamed scope"
    kind = dim(source.get("type"))
    ident = next((dim(v) for k, v in source.items() if k != "type" and v), "")
    said = SOURCES.get(kind, kind.replace("_", " ") or "an unnamed scope")
    return (
        f"from {said} {ident}".strip() if kind not in ("user", "organization") else f"from {said}"
    )
