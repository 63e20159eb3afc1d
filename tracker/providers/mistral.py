"""Mistral: the monthly cost per category and workspace from the Admin API (beta).

Needs an **Admin API key** (Mistral Admin Panel; Enterprise plans only, a standard API key
does not work), sent as `x-api-key`, to `https://console.mistral.ai/api/admin` (docs.mistral.ai
/admin/admin-api/usage-metrics; its API reference also shows `https://api.mistral.ai/api/admin`
with a bearer token, and a newer page `https://api.mistral.ai/v1/admin`: set the account's
base URL to one of those if the default host refuses the key).

- `test`: this month's usage (`GET /usage?month&year`), which names the billing currency.
- `fetch_usage`: for every month of the range, `GET /usage?month=M&year=Y` for the
  organisation and, per workspace (`GET /workspaces`, every page), with `workspace_id`. One
  figure per month, category (`chat`, `completion`, `ocr`, `audio`, `connectors`,
  `libraries_api`, `fine_tuning`, `vibe_usage`), workspace and, where the category lists
  them, model; what the organisation reports beyond its workspaces' sum is kept without a
  workspace, so a month adds up to the organisation's figure exactly. Rows: `usage_type =
  "cost:<category>"`, the workspace as the project, the money in `billed_cost`, no tokens.
- **Months, not days**: Mistral reports a month (to date), so the month's figure is spread
  evenly over its days up to the last day synced, to the micro-dollar, the remainder on the
  last days: month totals, budgets and invoices are exact, a day's figure is that average.
  `month_grain` makes the sync rewrite whole months (`tracker.ingest.sync`).
- `fetch_spend_limits`: the organisation's monthly spending limit (`GET /spend-limit`), in its
  currency; where the amount sits is not documented (see below).
- **Currency**: the tracker keeps US dollars and converts nothing. An organisation billed in
  another currency (often EUR) is refused with a message, storing nothing.

The nesting of a category's figure is not documented (tests/fakes/payloads/mistral/
README.md): a category may be a number, or an object with a money field (`cost`,
`total_cost`, `amount`, `total`) or with `models` (a list, or a map of model to object) each
holding one; anything else is refused with the category's name, storing nothing.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from tracker.core.units import today_utc
from tracker.models import LINE_ITEM
from tracker.providers.base import (
    Connector,
    ProviderResponseError,
    UsageRow,
    dim,
    to_decimal,
    to_int,
)
from tracker.providers.billing import SpendLimit

CATEGORIES = (
    "chat",
    "completion",
    "ocr",
    "audio",
    "connectors",
    "libraries_api",
    "fine_tuning",
    "vibe_usage",
)
MONEY_KEYS = ("cost", "total_cost", "amount", "total")
# Where the spend limit's amount may be: the documented example shows none (payloads README).
LIMIT_KEYS = ("monthly_limit", "limit", "amount", "usage_limit")
MICROS = Decimal(1_000_000)
PAGE_SIZE = 100
MAX_PAGES = 1000
ORGANISATION = ""  # the project id of what no workspace reports


class MistralConnector(Connector):
    provider: ClassVar[str] = "mistral"
    default_base_url: ClassVar[str] = "https://console.mistral.ai/api/admin"
    month_grain: ClassVar[bool] = True

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.credential.reveal()}

    def test(self) -> str:
        """Read this month's usage: the key works, and the currency says if it can be kept."""
        today = today_utc()
        body = self._usage(today.year, today.month)
        currency = _currency(body)
        total = sum((cost for _, _, cost in _costs(body)), Decimal(0))
        shown = f"{total:,.2f} {currency or ''}".strip()
        note = (
            ""
            if currency in (None, "USD")
            else f"; usage in {currency} is not stored: the tracker keeps US dollars"
        )
        return f"admin key accepted; {today:%B %Y} so far: {shown}{note}"

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield the months of [start, end) spread over their days (see the module)."""
        workspaces = self._workspaces()
        month = start.replace(day=1)
        while month < end:
            last = min(month.replace(day=calendar.monthrange(month.year, month.month)[1]),
                       end - dt.timedelta(days=1))  # fmt: skip
            days = [month + dt.timedelta(days=n) for n in range((last - month).days + 1)]
            for model, category, workspace, name, cost in self._month(month, workspaces):
                for day, share in zip(days, _spread(cost, len(days)), strict=True):
                    if share and start <= day < end:
                        yield UsageRow(
                            day=day,
                            model=model,
                            project_id=workspace,
                            project_name=name,
                            usage_type=f"{LINE_ITEM}{category}",
                            billed_cost=share,
                        )
            month = last + dt.timedelta(days=1)

    def fetch_spend_limits(self) -> list[SpendLimit]:
        """The organisation's monthly spending limit (API and Vibe), in its currency."""
        body = self.get_object("/spend-limit")
        limits = body.get("limits")
        if not isinstance(limits, dict):
            raise ProviderResponseError("mistral: the spend limit answered without limits")
        currency = _currency(limits) or "USD"
        completion = limits.get("completion")
        scopes = [completion, limits] if isinstance(completion, dict) else [limits]
        reached = any(s.get("monthly_limit_reached") is True for s in scopes)
        enforcement = "suspends the API" + (": reached" if reached else "")
        if any(s.get("no_monthly_limit") is True for s in scopes):
            return [SpendLimit(currency=currency, note="no monthly limit set at Mistral")]
        for scope in scopes:
            for key in LIMIT_KEYS:
                if scope.get(key) is not None:
                    amount = to_decimal(scope[key], f"spend limit {key}")
                    if amount < 0:
                        raise ProviderResponseError(
                            f"mistral sent a negative spend limit: {amount}"
                        )
                    return [SpendLimit(amount=amount, currency=currency, enforcement=enforcement)]
        return [
            SpendLimit(
                currency=currency,
                readable=False,
                note="Mistral's answer holds no limit amount this tracker can read "
                f"({_fields(limits)})",
            )
        ]

    # --- the endpoints ---------------------------------------------------------------------

    def _usage(self, year: int, month: int, workspace: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"month": month, "year": year}
        if workspace:
            params["workspace_id"] = workspace
        return self.get_object("/usage", params)

    def _workspaces(self) -> list[tuple[str, str]]:
        """(uuid, name) of every workspace, page after page."""
        found: list[tuple[str, str]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self.get_object("/workspaces", {"page": page, "page_size": PAGE_SIZE})
            items = body.get("items")
            if not isinstance(items, list):
                raise ProviderResponseError("mistral: the workspace list has no items list")
            for item in items:
                if not isinstance(item, dict) or not item.get("uuid"):
                    raise ProviderResponseError("mistral: a workspace has no uuid")
                found.append((dim(item["uuid"]), dim(item.get("name")) or dim(item["uuid"])))
            if not items or len(found) >= to_int(body.get("total"), "total"):
                return found
        raise ProviderResponseError(f"mistral returned more than {MAX_PAGES} workspace pages")

    def _month(
        self, month: dt.date, workspaces: list[tuple[str, str]]
    ) -> list[tuple[str, str, str, str | None, Decimal]]:
        """(model, category, workspace, its name, cost USD) of one month: each workspace's,
        and what the organisation reports beyond them."""
        organisation = self._usage(month.year, month.month)
        _require_usd(organisation, month)
        figures: list[tuple[str, str, str, str | None, Decimal]] = []
        in_workspaces: dict[tuple[str, str], Decimal] = {}
        for uuid, name in workspaces:
            body = self._usage(month.year, month.month, uuid)
            _require_usd(body, month)
            for model, category, cost in _costs(body):
                figures.append((model, category, uuid, name, cost))
                key = (model, category)
                in_workspaces[key] = in_workspaces.get(key, Decimal(0)) + cost
        for model, category, cost in _costs(organisation):
            rest = cost - in_workspaces.pop((model, category), Decimal(0))
            if rest < 0:
                raise ProviderResponseError(
                    f"mistral: the workspaces' {category} cost of {month:%Y-%m} is more than "
                    "the organisation's; nothing was stored"
                )
            if rest:
                figures.append((model, category, ORGANISATION, None, rest))
        if any(in_workspaces.values()):
            raise ProviderResponseError(
                f"mistral: workspaces report {month:%Y-%m} costs the organisation does not; "
                "nothing was stored"
            )
        return figures


def _currency(body: dict[str, Any]) -> str | None:
    value = body.get("currency")
    if value is None:
        return None
    return str(value).strip().upper() or None


def _require_usd(body: dict[str, Any], month: dt.date) -> None:
    """Refuse money in another currency: the tracker keeps US dollars, converting nothing."""
    currency = _currency(body)
    if currency == "USD" or not any(cost for _, _, cost in _costs(body)):
        return
    raise ProviderResponseError(
        f"mistral reports {month:%Y-%m} in {currency or 'an unnamed currency'}; the tracker "
        "keeps US dollars and converts nothing, so no Mistral usage was stored"
    )


def _costs(body: dict[str, Any]) -> list[tuple[str, str, Decimal]]:
    """(model, category, cost) of a usage answer, one per model and category ('' for a
    category without models)."""
    summed: dict[tuple[str, str], Decimal] = {}
    for category in CATEGORIES:
        for model, cost in _category(category, body.get(category)):
            if cost < 0:
                raise ProviderResponseError(f"mistral sent a negative {category} cost: {cost}")
            summed[(model, category)] = summed.get((model, category), Decimal(0)) + cost
    return [(model, category, cost) for (model, category), cost in summed.items()]


def _category(name: str, value: Any) -> list[tuple[str, Decimal]]:
    if value is None or value == {} or value == []:
        return []
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return [("", to_decimal(value, f"{name} cost"))]
    models = value.get("models") if isinstance(value, dict) else value
    if isinstance(models, dict):
        models = [
            {"model": key, **entry} for key, entry in models.items() if isinstance(entry, dict)
        ]
    if isinstance(models, list) and models:
        return [_model_cost(name, entry) for entry in models]
    if isinstance(value, dict):
        for key in MONEY_KEYS:
            if value.get(key) is not None:
                return [("", to_decimal(value[key], f"{name} {key}"))]
    raise ProviderResponseError(
        f"mistral: the {name} usage has no cost this tracker can read "
        f"({_fields(value)}); nothing was stored"
    )


def _model_cost(category: str, entry: Any) -> tuple[str, Decimal]:
    if not isinstance(entry, dict):
        raise ProviderResponseError(f"mistral: a {category} model entry is not an object")
    model = dim(entry.get("model") or entry.get("name"))
    for key in MONEY_KEYS:
        if entry.get(key) is not None:
            return model, to_decimal(entry[key], f"{category} {model} {key}")
    raise ProviderResponseError(
        f"mistral: the {category} usage of model {model or '?'} has no cost "
        f"({_fields(entry)}); nothing was stored"
    )


def _fields(value: Any) -> str:
    if isinstance(value, dict):
        return "fields: " + ", ".join(sorted(str(k) for k in value)[:10])
    return f"a {type(value).__name__}"


def _spread(total: Decimal, days: int) -> list[Decimal]:
    """`total` in equal daily shares to the micro-dollar; the remainder on the last days, so
    the shares add up to the total rounded to the micro-dollar."""
    micros = int((total * MICROS).to_integral_value(ROUND_HALF_UP))
    share, extra = divmod(micros, days)
    return [Decimal(share + (1 if n >= days - extra else 0)) / MICROS for n in range(days)]
