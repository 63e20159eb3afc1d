"""GitHub Copilot: seats (billed, else prorated list price) and premium requests / AI credits.

Needs a token of an organization owner or billing manager (classic scopes
`manage_billing:copilot` or `read:org`, plus "Administration: read" for the billing usage
reports) and the organization's login as the account's organization.

Rows produced, on UTC days:

- `usage_type = "seats"`: one row per day and plan, with the number of seats assigned that day
  in `other_units` and their cost in `billed_cost`. **Billed seats first:** for each calendar
  month the organisation's billing usage report (`/organizations/{org}/settings/billing/usage`,
  daily line items) is read; when it has Copilot seat line items (product Copilot, a SKU that
  is neither premium requests nor AI credits) their `netAmount` per date is the seats' cost
  for that whole month and the list-price estimate below is not used for it (never both). A
  line item naming a cost center (`costCenterName`/`costCenter`, present in GitHub's
  enterprise and CSV reports, not documented for the organisation endpoint) puts it in the
  project dimension, so a team mapping of kind "project" maps cost centers to teams.
  **Otherwise (estimate):** GitHub bills seats monthly at the plan's list price (Business $19,
  Enterprise $39 per seat and month, `SEAT_PRICES`) and prorates mid-cycle changes; without seat
  line items the API gives no seat amount, so a seat costs `price / days in that calendar month`
  for each day it is assigned, rounded to 6 decimals. A seat counts from the day it was created
  until (not including) its `pending_cancellation_date`. The seat list is today's: seats removed
  before the sync are not in it, so days far in the past may be under-counted; the worker's
  incremental window re-counts only the last few days. Negotiated (non-list) seat prices are not
  known to the API: correct them with a price override or the reconciliation.
- `usage_type = "premium_requests"` / `"ai_credits"`: enhanced-billing usage per day and model
  (`/organizations/{org}/settings/billing/premium_request/usage` and `.../ai_credit/usage`,
  one call per day), gross quantity in `other_units`, requests in `requests` (premium
  requests only), and `netAmount` (after included allowances) as `billed_cost`. Organizations
  not on the enhanced billing platform answer 404 there: they simply have no such rows.
  **Per user:** the same report is asked per seat holder (`user=<login>`) and day, as long as
  that stays within `USER_CALLS_PER_REPORT` calls a sync; each user's rows carry the login as
  `user_id`, and what the users' rows do not explain (users no longer holding a seat) stays
  as an organisation row with no user, so the rows add up to the organisation's figure.
  **Never counted twice:** these two dedicated reports are the only source of premium-request
  and AI-credit money; the same SKUs in the billing usage report and the usage summary are
  skipped (the summary is not read: it repeats the line items as monthly totals).
- Spend limits (`fetch_spend_limits`): the organisation's GitHub budgets covering a Copilot
  SKU, in whole dollars; one of the organisation or enterprise that stops usage bounds the
  account (a budget caps the metered SKUs it names, never the seats).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
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
METERED_SKU_WORDS = ("premium", "credit")  # SKUs read from their own reports, not as seats
USER_CALLS_PER_REPORT = 1000  # per-user breakdown only while users x days stays under this
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
        seats = self._seats()
        billed_months: set[tuple[int, int]] = set()
        for row in self._billed_seat_rows(start, end):
            billed_months.add((row.day.year, row.day.month))
            yield row
        estimated = _seat_rows(seats, org_plan, start, end)
        yield from (r for r in estimated if (r.day.year, r.day.month) not in billed_months)
        logins = sorted({login for seat in seats if (login := _login(seat))})
        days = (end - start).days
        per_user = logins if len(logins) * days <= USER_CALLS_PER_REPORT else []
        for usage_type, report in BILLING_REPORTS.items():
            day = start
            while day < end:
                body = self._report(report, day)
                if body is None:  # not on enhanced billing / no such report
                    break
                org_rows = list(_billing_rows(usage_type, day, body))
                user_rows = [
                    replace(row, user_id=login, user_name=login)
                    for login in per_user
                    for row in _billing_rows(
                        usage_type, day, self._report(report, day, login) or {}
                    )
                ]
                yield from user_rows
                yield from _unattributed(org_rows, user_rows)
                day += dt.timedelta(days=1)

    def _report(self, report: str, day: dt.date, user: str | None = None) -> dict[str, Any] | None:
        """One day of a premium-request / AI-credit report, None when the org has none (404)."""
        params: dict[str, Any] = {"year": day.year, "month": day.month, "day": day.day}
        if user is not None:
            params["user"] = user
        try:
            return self.get_object(
                f"/organizations/{self.org}/settings/billing/{report}/usage", params
            )
        except ProviderError as exc:
            if exc.status in (404, 410):
                return None if user is None else {}
            raise

    def _billed_seat_rows(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Seat line items of the billing usage report, month by month; nothing for an
        organisation off the enhanced billing platform (404)."""
        month = dt.date(start.year, start.month, 1)
        while month < end:
            try:
                body = self.get_object(
                    f"/organizations/{self.org}/settings/billing/usage",
                    {"year": month.year, "month": month.month},
                )
            except ProviderError as exc:
                if exc.status in (404, 410):
                    return
                raise
            for row in _seat_line_items(body):
                if start <= row.day < end:
                    yield row
            month = (month + dt.timedelta(days=32)).replace(day=1)

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
        """Every seat, page by page: GitHub's `Link: rel="next"` leads while it is sent;
        without it the pages go on until `total_seats` are read or a page is empty."""
        seats: list[dict[str, Any]] = []
        path = f"/orgs/{self.org}/copilot/billing/seats"
        for page in range(1, MAX_SEAT_PAGES + 1):
            response = self.get(path, {"page": page, "per_page": SEATS_PER_PAGE})
            try:
                body = response.json()
            except ValueError:
                raise ProviderResponseError("github_copilot: the seat list is not JSON") from None
            batch = body.get("seats") if isinstance(body, dict) else None
            if not isinstance(batch, list):
                raise ProviderResponseError("github_copilot: the seat list has no seats array")
            seats.extend(s for s in batch if isinstance(s, dict))
            if "link" in response.headers:
                if "next" not in response.links or not batch:
                    return seats
                continue
            if not batch or len(seats) >= to_int(body.get("total_seats")):
                return seats
        raise ProviderResponseError("github_copilot: the seat list did not end")


def _login(seat: dict[str, Any]) -> str:
    assignee = seat.get("assignee")
    return dim(assignee.get("login")) if isinstance(assignee, dict) else ""


def _seat_line_items(body: dict[str, Any]) -> Iterator[UsageRow]:
    """Copilot seat line items of the billing usage report, one row per date, SKU and cost
    center (their `netAmount` summed)."""
    items = body.get("usageItems")
    if not isinstance(items, list):
        raise ProviderResponseError("github_copilot: the billing usage has no usageItems list")
    totals: dict[tuple[dt.date, str, str], tuple[Decimal, Decimal]] = {}
    for item in items:
        if not isinstance(item, dict) or dim(item.get("product")).lower() != "copilot":
            continue
        sku = dim(item.get("sku"))
        if not sku or any(word in sku.lower() for word in METERED_SKU_WORDS):
            continue
        key = (
            day_of_iso(item.get("date")),
            sku,
            dim(item.get("costCenterName") or item.get("costCenter")),
        )
        quantity, net = totals.get(key, (Decimal(0), Decimal(0)))
        totals[key] = (
            quantity + to_decimal(item.get("quantity", item.get("grossQuantity", 0)), "quantity"),
            net + to_decimal(item.get("netAmount"), "netAmount"),
        )
    for (day, sku, cost_center), (quantity, net) in sorted(totals.items()):
        plan = next((p for p in SEAT_PRICES if p in sku.lower()), sku.lower())
        yield UsageRow(
            day=day,
            model=f"copilot-{plan}"[:128],
            usage_type="seats",
            service_tier=plan[:64],
            project_id=cost_center,
            project_name=cost_center or None,
            other_units=quantity,
            other_unit_name="seats",
            billed_cost=net,
        )


def _unattributed(org_rows: list[UsageRow], user_rows: list[UsageRow]) -> Iterator[UsageRow]:
    """The organisation's rows less what its users' rows explain, per model (the rest)."""
    for row in org_rows:
        mine = [r for r in user_rows if r.model == row.model]
        units = row.other_units - sum((r.other_units for r in mine), Decimal(0))
        cost = row.billed_cost
        if cost is not None:
            cost -= sum((r.billed_cost or Decimal(0) for r in mine), Decimal(0))
        if not mine or units != 0 or (cost or 0) != 0:
            requests_left = row.requests - sum(r.requests for r in mine)
            yield replace(row, other_units=units, billed_cost=cost, requests=requests_left)


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
