"""GitHub Copilot: seats (prorated per day) and enhanced-billing premium requests / AI credits.

Needs a token of an organization owner or billing manager (classic scopes
`manage_billing:copilot` or `read:org`, plus "Administration: read" for the billing usage
reports) and the organization's login as the account's organization.

Rows produced, on UTC days:

- `usage_type = "seats"`: one row per day and plan, with the number of seats assigned that day
  in `other_units` and their prorated cost in `billed_cost`.
  **Assumption:** GitHub bills seats monthly at the plan's list price (Business $19, Enterprise
  $39 per seat and month, `SEAT_PRICES`) and prorates mid-cycle changes; the API gives no
  seat amount, so a seat costs `price / days in that calendar month` for each day it is
  assigned, rounded to 6 decimals. A seat counts from the day it was created until (not
  including) its `pending_cancellation_date`. The seat list is today's: seats removed before
  the sync are not in it, so days far in the past may be under-counted; the worker's
  incremental window re-counts only the last few days. Negotiated (non-list) seat prices are
  not known to the API: correct them with a price override or the reconciliation.
- `usage_type = "premium_requests"` / `"ai_credits"`: enhanced-billing usage per day and model
  (`/organizations/{org}/settings/billing/premium_request/usage` and `.../ai_credit/usage`,
  one call per day), gross quantity in `other_units`, requests in `requests` (premium
  requests only), and `netAmount` (after included allowances) as `billed_cost`. Organizations
  not on the enhanced billing platform answer 404 there: they simply have no such rows.
- Spend limits (`fetch_spend_limits`): the organisation's GitHub budgets covering a Copilot
  SKU, in whole dollars; one of the organisation or enterprise that stops usage bounds the
  account (a budget caps the metered SKUs it names, never the seats).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import requests

from tracker.providers.base import (
    Connector,
    ProviderError,
    ProviderPermissionError,
    ProviderRateLimited,
    ProviderResponseError,
    UsageRow,
    day_of_iso,
    dim,
    to_decimal,
    to_int,
)
from tracker.providers.billing import SpendLimit

# USD per seat per month, list prices (GitHub docs, data/variables/copilot.yml).
SEAT_PRICES: dict[str, Decimal] = {"business": Decimal("19"), "enterprise": Decimal("39")}
SEATS_PER_PAGE = 100
MAX_SEAT_PAGES = 1000
MICRO = Decimal("0.000001")
BUDGETS_PER_PAGE = 10  # the most GitHub documents for an organisation's budgets
MAX_BUDGET_PAGES = 1000
COPILOT_SKU_WORDS = ("copilot", "ai_credit", "premium_request")
BILLING_REPORTS = {
    "premium_requests": "premium_request",
    "ai_credits": "ai_credit",
}


class CopilotConnector(Connector):
    provider: ClassVar[str] = "github_copilot"
    default_base_url: ClassVar[str] = "https://api.github.com"
    max_history_days: ClassVar[int | None] = 730  # enhanced billing keeps 24 months

    def auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.credential.reveal()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    @property
    def org(self) -> str:
        if not self.organization:
            raise ProviderResponseError(
                "github_copilot: the account has no organization; set it to the org's login"
            )
        return self.organization

    def raise_for_status(self, response: requests.Response) -> None:
        """GitHub signals rate limits with 403 too: report those as rate limits, not scopes."""
        try:
            super().raise_for_status(response)
        except ProviderPermissionError as exc:
            remaining = response.headers.get("x-ratelimit-remaining")
            if remaining == "0" or "rate limit" in str(exc).lower():
                raise ProviderRateLimited(
                    f"github_copilot: GitHub's rate limit was hit ({exc}); try again later",
                    status=exc.status,
                ) from None
            raise

    def organization_key(self) -> str | None:
        return f"github:{self.organization.lower()}" if self.organization else None

    def test(self) -> str:
        """Read the organization's Copilot billing summary."""
        billing = self.get_object(f"/orgs/{self.org}/copilot/billing")
        seats = billing.get("seat_breakdown") or {}
        plan = billing.get("plan_type") or "unknown plan"
        return f"Copilot {plan} for {self.org}: {to_int(seats.get('total'))} seat(s)"

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield seat rows and billed premium-request / AI-credit rows for days in [start, end)."""
        billing = self.get_object(f"/orgs/{self.org}/copilot/billing")
        org_plan = str(billing.get("plan_type") or "business")
        yield from _seat_rows(self._seats(), org_plan, start, end)
        for usage_type, report in BILLING_REPORTS.items():
            day = start
            while day < end:
                try:
                    body = self.get_object(
                        f"/organizations/{self.org}/settings/billing/{report}/usage",
                        {"year": day.year, "month": day.month, "day": day.day},
                    )
                except ProviderError as exc:
                    if exc.status in (404, 410):  # not on enhanced billing / no such report
                        break
                    raise
                yield from _billing_rows(usage_type, day, body)
                day += dt.timedelta(days=1)

    def fetch_spend_limits(self) -> list[SpendLimit]:
        """The organisation's GitHub budgets that cover Copilot (`/organizations/{org}/settings/
        billing/budgets`, every page): whole dollars. A budget of the organisation (or its
        enterprise) that stops usage bounds the account; other Copilot budgets are kept for
        the record. An organisation without budgets there (404, 403) is not readable."""
        found: list[SpendLimit] = []
        path = f"/organizations/{self.org}/settings/billing/budgets"
        for page in range(1, MAX_BUDGET_PAGES + 1):
            try:
                body = self.get_object(path, {"page": page, "per_page": BUDGETS_PER_PAGE})
            except ProviderError as exc:
                if exc.status not in (403, 404):
                    raise
                note = f"GitHub does not let this token read the organisation's budgets: {exc}"
                return [SpendLimit(readable=False, note=note)]
            budgets = body.get("budgets")
            if not isinstance(budgets, list):
                raise ProviderResponseError(
                    "github_copilot: the budgets answer has no budgets list"
                )
            found.extend(limit for item in budgets if (limit := _budget(item)) is not None)
            if not budgets or body.get("has_next_page") is not True:
                return found
        raise ProviderResponseError("github_copilot: the budget list did not end")

    def _seats(self) -> list[dict[str, Any]]:
        seats: list[dict[str, Any]] = []
        for page in range(1, MAX_SEAT_PAGES + 1):
            body = self.get_object(
                f"/orgs/{self.org}/copilot/billing/seats",
                {"page": page, "per_page": SEATS_PER_PAGE},
            )
            batch = body.get("seats")
            if not isinstance(batch, list):
                raise ProviderResponseError("github_copilot: the seat list has no seats array")
            seats.extend(s for s in batch if isinstance(s, dict))
            total = to_int(body.get("total_seats"))
            if not batch or len(seats) >= total:
                return seats
        raise ProviderResponseError("github_copilot: the seat list did not end")


def _seat_rows(
    seats: list[dict[str, Any]], org_plan: str, start: dt.date, end: dt.date
) -> Iterator[UsageRow]:
    spans: list[tuple[str, dt.date, dt.date | None]] = []
    for seat in seats:
        plan = str(seat.get("plan_type") or org_plan)
        if plan not in SEAT_PRICES:
            plan = org_plan if org_plan in SEAT_PRICES else "business"
        first = day_of_iso(seat.get("created_at"))
        cancel = seat.get("pending_cancellation_date")
        spans.append((plan, first, day_of_iso(cancel) if cancel else None))
    day = start
    while day < end:
        per_plan: Counter[str] = Counter(
            plan for plan, first, last in spans if first <= day and (last is None or day < last)
        )
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        for plan, count in sorted(per_plan.items()):
            cost = (SEAT_PRICES[plan] * count / days_in_month).quantize(MICRO, ROUND_HALF_UP)
            yield UsageRow(
                day=day,
                model=f"copilot-{plan}",
                usage_type="seats",
                service_tier=plan,
                other_units=Decimal(count),
                other_unit_name="seats",
                billed_cost=cost,
            )
        day += dt.timedelta(days=1)


def _billing_rows(usage_type: str, day: dt.date, body: dict[str, Any]) -> Iterator[UsageRow]:
    items = body.get("usageItems")
    if items is None:
        return
    if not isinstance(items, list):
        raise ProviderResponseError("github_copilot: usageItems is not a list")
    for item in items:
        if not isinstance(item, dict) or item.get("product") not in (None, "Copilot", "copilot"):
            continue
        quantity = item.get("grossQuantity", item.get("quantity"))
        net = item.get("netAmount")
        unit = dim(item.get("unitType"))[:64] or None
        yield UsageRow(
            day=day,
            model=dim(item.get("model")),
            usage_type=usage_type,
            # Premium requests can be fractional (model multipliers); the count is whole ones.
            requests=int(to_decimal(quantity)) if usage_type == "premium_requests" else 0,
            other_units=to_decimal(quantity, "quantity"),
            other_unit_name=unit,
            billed_cost=to_decimal(net, "netAmount") if net is not None else None,
        )


def _budget(item: Any) -> SpendLimit | None:
    """A Copilot budget as a spend limit; None for a budget of another product."""
    if not isinstance(item, dict):
        raise ProviderResponseError("github_copilot: a budget is not an object")
    skus = item.get("budget_product_skus") or [item.get("budget_product_sku")]
    names = [dim(s) for s in skus if s] if isinstance(skus, list) else []
    if not any(word in n.lower() for n in names for word in COPILOT_SKU_WORDS):
        return None
    amount = to_decimal(item.get("budget_amount"), "budget_amount")
    if amount < 0:
        raise ProviderResponseError(f"github_copilot sent a negative budget: {amount}")
    scope = dim(item.get("budget_scope"))
    stops = item.get("prevent_further_usage") is True
    entity = dim(item.get("budget_entity_name") or item.get("user"))
    return SpendLimit(
        scope=f"budget:{dim(item.get('id'))}",
        scope_name=" ".join(p for p in (scope, entity, "·", ", ".join(names)) if p),
        amount=amount,
        enforcement="stops usage" if stops else "alerts only",
        account_wide=stops and scope in ("organization", "enterprise"),
    )
