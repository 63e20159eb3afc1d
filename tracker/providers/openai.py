"""OpenAI: the organization Usage API (tokens, requests, units) and the Costs API (billed USD).

Needs an organization **admin key** (`sk-admin-...`, scope `api.usage.read`); a project key
(`sk-proj-...`) is refused before any call with a message saying so.

Rows produced, all on UTC days (`bucket_width=1d`, windows aligned to 00:00 UTC):

- Usage rows, one per endpoint, day, model, project and API key, with tokens and requests and
  no money (`billed_cost` None; the price book estimates them). `usage_type` names the endpoint:
  `completions`, `embeddings`, `moderations`, `images:<source>:<size>`, `audio_speeches`
  (characters in `other_units`), `audio_transcriptions` (seconds), `vector_stores` (bytes),
  `code_interpreter_sessions` (sessions), `file_search_calls`, `web_search_calls:<context>`.
  Completions are also grouped by `batch` and `service_tier`; batch usage gets service tier
  `batch`. OpenAI's `input_tokens` includes cached and cache-write tokens, so the row's
  `input_tokens` is `input_tokens - input_cached_tokens - input_cache_write_tokens`. The
  audio and image fields are kept as parts of the token columns (`usage_details`:
  `input_audio_tokens`, `cached_audio_tokens`, `output_image_tokens`...), so the price book
  prices them at their own rates; text is what is left. Tool calls and sessions are priced
  by their unit (`other_unit_name`).
- Billed rows from the Costs API, one per day, project and line item, with
  `usage_type = "cost:<line item>"`, zero tokens and the amount in `billed_cost` (quantity in
  `other_units`, its `quantity_unit` as reported in `other_unit_name`). The line item is
  kept verbatim (its format is undocumented); the model is taken from the text before its
  first comma ("gpt-4o-2024-08-06, input"), else left empty.
- Spend limits (`fetch_spend_limits`): the organisation's hard monthly limit and each
  project's, in cents (none set: 404), and the organisation's spend alerts
  (`/organization/spend_alerts`, paged): thresholds in cents at which OpenAI emails, kept
  as alerts (they never stop spend, so they are never taken for a cap).

Usage rows and billed rows are deliberately separate rows: summing `billed_cost` over an
account gives exactly what OpenAI bills, and tokens are never counted twice. Every metric but
the required ones is optional (older accounts return fewer fields); amounts may be numbers
or strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, ClassVar

from tracker.core.units import today_utc
from tracker.models import LINE_ITEM, LimitKind
from tracker.models.usage_kinds import pack
from tracker.providers.base import (
    Connector,
    ProviderAuthError,
    ProviderPermissionError,
    ProviderResponseError,
    UsageRow,
    day_of_epoch,
    dim,
    epoch_seconds,
    required_int,
    to_decimal,
    to_int,
)
from tracker.providers.billing import ALERT_ONLY, SpendLimit

ADMIN_KEY_HINT = (
    "the usage and costs APIs need an organization admin key (sk-admin-...), created by an "
    "organization owner under Settings > Organization > Admin keys"
)
STANDARD_GROUPS = ["project_id", "user_id", "api_key_id", "model"]
# Usage endpoint -> (group_by values, how to read one result into row fields).
USAGE_ENDPOINTS: dict[str, list[str]] = {
    "completions": [*STANDARD_GROUPS, "batch", "service_tier"],
    "embeddings": STANDARD_GROUPS,
    "moderations": STANDARD_GROUPS,
    "images": [*STANDARD_GROUPS, "source", "size"],
    "audio_speeches": STANDARD_GROUPS,
    "audio_transcriptions": STANDARD_GROUPS,
    "vector_stores": ["project_id"],
    "code_interpreter_sessions": ["project_id"],
    "file_search_calls": ["project_id", "user_id", "api_key_id"],
    "web_search_calls": [*STANDARD_GROUPS, "context_level"],
}
# The completions result's modality fields (2026-07) -> our token parts: `input_audio_tokens`
# and `input_image_tokens` are uncached (as `input_text_tokens` is), the cached ones apart.
MODALITY_PARTS = {
    "input_audio_tokens": "input_audio_tokens",
    "input_image_tokens": "input_image_tokens",
    "input_cached_audio_tokens": "cached_audio_tokens",
    "input_cached_image_tokens": "cached_image_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "output_image_tokens": "output_image_tokens",
}
# Endpoints added to the API later: an account whose API does not know them answers 404.
OPTIONAL_ENDPOINTS = frozenset({"file_search_calls", "web_search_calls"})
USAGE_PAGE_LIMIT = 31  # buckets per page: the maximum for 1d buckets
COSTS_PAGE_LIMIT = 180
# Projects whose API keys are listed for their names at each sync (one call each, at least).
MAX_NAMED_PROJECTS = 200
# The finest grain the Costs API bills at: each amount then names the key that spent it.
COSTS_GROUPS = ["project_id", "line_item", "api_key_id"]
MAX_ALERT_PAGES = 100  # of the default 20 alerts each: far more than an organisation sets


class OpenAIConnector(Connector):
    provider: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.reveal()}"}

    def _require_admin_key(self) -> None:
        key = self.credential.reveal()
        if key.startswith("sk-proj-") or key.startswith("sk-svcacct-"):
            raise ProviderAuthError(f"this is a project or service-account key; {ADMIN_KEY_HINT}")

    def _call(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Pages of an admin endpoint, with a wrong-key-type hint on 401/403."""
        try:
            yield from self.iter_cursor_pages(path, params)
        except (ProviderAuthError, ProviderPermissionError) as exc:
            message = str(exc)
            if "api.usage.read" in message or "insufficient permissions" in message.lower():
                raise type(exc)(
                    f"openai: the key is valid but not an admin key; {ADMIN_KEY_HINT}",
                    status=exc.status,
                ) from None
            raise

    def test(self) -> str:
        """Check for an admin key with one cheap Costs API call."""
        self._require_admin_key()
        today = today_utc()
        params = {"start_time": epoch_seconds(today), "limit": 1}
        page = next(self._call("/organization/costs", params))
        if page.get("object") != "page":
            raise ProviderResponseError("openai: the costs API answered an unexpected object")
        return "admin key accepted; usage and costs can be read"

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield usage rows of every endpoint, then billed rows, for UTC days in [start, end)."""
        self._require_admin_key()
        names = self._project_names()
        key_names = self._key_names(list(names))
        user_names = self._user_names()
        window = {
            "start_time": epoch_seconds(start),
            "end_time": epoch_seconds(end),
            "bucket_width": "1d",
        }
        for endpoint, groups in USAGE_ENDPOINTS.items():
            params = {**window, "limit": USAGE_PAGE_LIMIT, "group_by": groups}
            try:
                for page in self._call(f"/organization/usage/{endpoint}", params):
                    for day, result in self.buckets(page, endpoint, "start_time", day_of_epoch):
                        row = _usage_row(endpoint, day, result)
                        yield _named(row, names, key_names, user_names)
            except ProviderResponseError as exc:
                if exc.status == 404 and endpoint in OPTIONAL_ENDPOINTS:
                    continue
                raise
        params = {**window, "limit": COSTS_PAGE_LIMIT, "group_by": COSTS_GROUPS}
        for page in self._call("/organization/costs", params):
            for day, result in self.buckets(page, "costs", "start_time", day_of_epoch):
                yield _named(_cost_row(day, result), names, key_names, user_names)

    def fetch_spend_limits(self) -> list[SpendLimit]:
        """The organisation's hard spend limit (`/organization/spend_limit`), each project's
        that has one (`/organization/projects/{id}/spend_limit`) and the organisation's spend
        alerts (`/organization/spend_alerts`); cents, monthly."""
        found = [self._spend_limit("/organization/spend_limit", "", None)]
        projects = self._project_names()
        for project in list(projects)[:MAX_NAMED_PROJECTS]:
            path = f"/organization/projects/{project}/spend_limit"
            limit = self._spend_limit(path, f"project:{project}", projects[project] or project)
            if limit.amount is not None:
                found.append(limit)
        return found + self._spend_alerts()

    def _spend_alerts(self) -> list[SpendLimit]:
        """The organisation's spend alerts, every page (`after` the last id while `has_more`).
        None set: one row saying so; a key that may not list them (403, or 404 where the API
        has no such list): one row saying it could not be read, which is not "none"."""
        alerts: list[SpendLimit] = []
        try:
            for data in self._after_pages("/organization/spend_alerts", {}, MAX_ALERT_PAGES):
                alerts.extend(_spend_alert(item) for item in data)
        except (ProviderPermissionError, ProviderResponseError) as exc:
            if exc.status not in (403, 404):
                raise
            note = f"OpenAI does not let this key list spend alerts: {exc}"
            return [_no_alerts(readable=False, note=note)]
        return alerts or [_no_alerts(readable=True, note="no spend alert is set at OpenAI")]

    def _spend_limit(self, path: str, scope: str, name: str | None) -> SpendLimit:
        """One hard spend limit; 404 means none is set, 403 that the key may not read it."""
        wide = scope == ""
        try:
            body = self.get_object(path)
        except ProviderPermissionError as exc:
            return SpendLimit(scope=scope, scope_name=name, account_wide=wide, readable=False,
                              note=str(exc))  # fmt: skip
        except ProviderResponseError as exc:
            if exc.status == 404:
                return SpendLimit(scope=scope, scope_name=name, account_wide=wide)
            raise
        cents = body.get("threshold_amount")
        amount = None if cents is None else to_decimal(cents, "threshold_amount") / 100
        if amount is not None and amount < 0:
            raise ProviderResponseError(f"openai sent a negative spend limit: {amount}")
        enforcement = body.get("enforcement")
        status = dim(enforcement.get("status")) if isinstance(enforcement, dict) else ""
        return SpendLimit(
            scope=scope,
            scope_name=name,
            amount=amount,
            currency=str(body.get("currency") or "USD").upper()[:3],
            period=str(body.get("interval") or "month"),
            enforcement=f"hard ({status})" if status else "hard",
            account_wide=wide,
        )

    def organization_key(self) -> str | None:
        """The organisation's oldest project (its default one, which cannot be deleted):
        project ids are unique across OpenAI, so two keys of one organisation share it."""
        body = self.get_object("/organization/projects", {"limit": 100, "include_archived": "true"})
        projects = [p for p in body.get("data") or [] if isinstance(p, dict) and p.get("id")]
        if not projects:
            return None
        oldest = min(projects, key=lambda p: (to_int(p.get("created_at")), str(p["id"])))
        return f"openai:{oldest['id']}"

    def _key_names(self, projects: list[str]) -> dict[str, str]:
        """API key id -> name, per project; empty where the key may not list them (names are
        optional: the ids stay)."""
        names: dict[str, str] = {}
        for project in projects[:MAX_NAMED_PROJECTS]:
            path = f"/organization/projects/{project}/api_keys"
            try:
                for data in self._after_pages(path, {"limit": 100}, 100):
                    for key in data:
                        if isinstance(key, dict) and key.get("id") and key.get("name"):
                            names[str(key["id"])] = str(key["name"])[:255]
            except (ProviderPermissionError, ProviderResponseError):
                continue
        return names

    def _project_names(self) -> dict[str, str]:
        """Project id -> name; empty when the key may not list projects (names are optional)."""
        return self._listed_names("/organization/projects", {"include_archived": "true"}, "name")

    def _user_names(self) -> dict[str, str]:
        """Organisation user id -> name (else email); empty when the key may not list them."""
        return self._listed_names("/organization/users", {}, "name", "email")

    def _listed_names(self, path: str, extra: dict[str, Any], *fields: str) -> dict[str, str]:
        """id -> the first non-empty of `fields`, over every page of an admin listing."""
        names: dict[str, str] = {}
        try:
            for data in self._after_pages(path, {"limit": 100, **extra}, 1000):
                for item in data:
                    if isinstance(item, dict) and item.get("id"):
                        name = next((str(item[f]) for f in fields if item.get(f)), "")
                        names[str(item["id"])] = name[:255]
        except (ProviderPermissionError, ProviderResponseError):
            return names
        return names

    def _after_pages(
        self, path: str, params: dict[str, Any], max_pages: int
    ) -> Iterator[list[Any]]:
        """The `data` list of every page of an admin listing paged by `after` (the previous
        page's `last_id`, else its last item's id) while `has_more`. A page without a data
        list, an id seen twice or more than `max_pages` pages is a ProviderResponseError."""
        seen: set[str] = set()
        query = dict(params)
        for _ in range(max_pages):
            body = self.get_object(path, query)
            data = body.get("data")
            if not isinstance(data, list):
                raise ProviderResponseError(f"openai answered {path} without a data list")
            yield data
            if not body.get("has_more") or not data:
                return
            last = body.get("last_id") or (
                data[-1].get("id") if isinstance(data[-1], dict) else None
            )
            if not last or str(last) in seen:
                raise ProviderResponseError(f"openai repeated a page of {path}")
            seen.add(str(last))
            query = {**params, "after": str(last)}
        raise ProviderResponseError(f"openai returned more than {max_pages} pages of {path}")


def _spend_alert(item: Any) -> SpendLimit:
    """One organisation spend alert: `threshold_amount` in cents, per `interval`."""
    if not isinstance(item, dict) or not item.get("id"):
        raise ProviderResponseError("openai: a spend alert has no id")
    cents = item.get("threshold_amount")
    if cents is None:
        raise ProviderResponseError("openai: a spend alert has no threshold_amount")
    amount = to_decimal(cents, "threshold_amount") / 100
    if amount < 0:
        raise ProviderResponseError(f"openai sent a negative spend alert: {amount}")
    return SpendLimit(
        scope=f"alert:{item['id']}",
        scope_name="organisation spend alert",
        amount=amount,
        currency=str(item.get("currency") or "USD").upper()[:3],
        period=str(item.get("interval") or "month"),
        enforcement=ALERT_ONLY,
        kind=LimitKind.ALERT,
    )


def _no_alerts(*, readable: bool, note: str) -> SpendLimit:
    return SpendLimit(scope="alerts", kind=LimitKind.ALERT, readable=readable, note=note)


def _usage_row(endpoint: str, day: dt.date, r: dict[str, Any]) -> UsageRow:
    common: dict[str, Any] = {
        "day": day,
        "model": dim(r.get("model")),
        "project_id": dim(r.get("project_id")),
        "api_key_id": dim(r.get("api_key_id")),
        "user_id": dim(r.get("user_id")),
        "usage_type": endpoint,
        "requests": to_int(r.get("num_model_requests")),
    }
    if endpoint == "completions":
        total_input = required_int(r, "input_tokens")
        cached = to_int(r.get("input_cached_tokens"))
        cache_write = to_int(r.get("input_cache_write_tokens"))
        uncached = r.get("input_uncached_tokens")
        # Prefer the provider's own uncached figure; derive it on accounts that lack it.
        input_tokens = (
            to_int(uncached) if uncached is not None else total_input - cached - cache_write
        )
        tier = "batch" if r.get("batch") is True else dim(r.get("service_tier"))
        return UsageRow(
            **common,
            service_tier=tier,
            input_tokens=max(input_tokens, 0),
            cached_input_tokens=cached,
            cache_write_tokens=cache_write,
            output_tokens=required_int(r, "output_tokens"),
            details=pack({ours: to_int(r.get(theirs)) for theirs, ours in MODALITY_PARTS.items()}),
        )
    if endpoint in ("embeddings", "moderations"):
        return UsageRow(**common, input_tokens=required_int(r, "input_tokens"))
    if endpoint == "images":
        kind = f"images:{dim(r.get('source'))}:{dim(r.get('size'))}"
        return UsageRow(
            **{**common, "usage_type": kind},
            other_units=to_decimal(r.get("images")),
            other_unit_name="images",
        )
    if endpoint == "audio_speeches":
        return UsageRow(
            **common, other_units=to_decimal(r.get("characters")), other_unit_name="characters"
        )
    if endpoint == "audio_transcriptions":
        return UsageRow(
            **common, other_units=to_decimal(r.get("seconds")), other_unit_name="seconds"
        )
    if endpoint == "vector_stores":
        return UsageRow(
            **common, other_units=to_decimal(r.get("usage_bytes")), other_unit_name="bytes"
        )
    if endpoint == "code_interpreter_sessions":
        return UsageRow(
            **common, other_units=to_decimal(r.get("num_sessions")), other_unit_name="sessions"
        )
    if endpoint == "file_search_calls":
        return UsageRow(
            **{**common, "requests": to_int(r.get("num_requests"))},
            other_units=to_decimal(r.get("num_requests")),
            other_unit_name="file_search_calls",
        )
    if endpoint == "web_search_calls":
        kind = "web_search_calls" + (f":{r['context_level']}" if r.get("context_level") else "")
        return UsageRow(
            **{**common, "usage_type": kind},
            other_units=to_decimal(r.get("num_requests")),
            other_unit_name="web_search_calls",
        )
    raise ProviderResponseError(f"openai: unknown usage endpoint {endpoint}")


def _cost_row(day: dt.date, r: dict[str, Any]) -> UsageRow:
    amount = r.get("amount")
    if isinstance(amount, dict):
        value, currency = amount.get("value"), amount.get("currency")
    else:  # defensive: a bare number has been seen in third-party fixtures
        value, currency = amount, None
    if value is None:
        raise ProviderResponseError("openai sent a cost row without an amount value")
    line_item = dim(r.get("line_item"))
    model = line_item.split(",", 1)[0].strip() if "," in line_item else ""
    quantity = r.get("quantity")
    return UsageRow(
        day=day,
        model=model,
        project_id=dim(r.get("project_id")),
        api_key_id=dim(r.get("api_key_id")),
        usage_type=f"{LINE_ITEM}{line_item}"[:255],
        other_units=to_decimal(quantity) if quantity is not None else to_decimal(0),
        other_unit_name=dim(r.get("quantity_unit"))[:64] or None,
        billed_cost=to_decimal(value, "cost amount"),
        currency=(str(currency) if currency else "usd").upper()[:3],
    )


def _named(
    row: UsageRow, names: dict[str, str], key_names: dict[str, str], user_names: dict[str, str]
) -> UsageRow:
    """The row with its project's, API key's and user's names, where the listings had them."""
    project_name = names.get(row.project_id) if row.project_id else None
    key_name = key_names.get(row.api_key_id) if row.api_key_id else None
    user_name = user_names.get(row.user_id) if row.user_id else None
    if project_name or key_name or user_name:
        return replace(
            row,
            project_name=project_name or row.project_name,
            api_key_name=key_name or row.api_key_name,
            user_name=user_name or row.user_name,
        )
    return row
