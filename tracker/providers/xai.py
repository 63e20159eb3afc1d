"""xAI: daily spend, the prepaid balance, invoices and the spending limit, from the
Management API (`https://management-api.x.ai`).

Needs a **management key** (xAI Console > Settings > Management Keys; inference keys are
refused) with billing read access, sent as a bearer token, and the **team id** as the
account's organisation (Console URL or team settings). Documented at
docs.x.ai/developers/rest-api-reference/management/billing: the paths and some fields;
the response shapes below are as independent clients read them (tests/fakes/payloads/xai/
README.md says which is which), so every field is checked and anything else is refused
with an error, storing nothing.

- `test`: the prepaid balance (`GET /v1/billing/teams/{team}/prepaid/balance`).
- `fetch_usage`: `POST /v1/billing/teams/{team}/usage` with a daily, USD-summed analytics
  query grouped by `description` (xAI's billing line: "Chat grok-4", "File Storage"), in
  windows of at most 31 days; a window whose answer says `limitReached` (xAI cut it short)
  is asked again in halves, down to one day, which may not be cut short. One row per day
  and line, `usage_type = "cost:<line>"`, the model read from the line ("grok-..."), the
  USD in `billed_cost` (the analytics values are dollars, not cents).
- `fetch_balance`: the prepaid ledger's `total.val`, US cents as a string, **negative for
  credit** (a $10 top-up is "-1000"): the balance is minus that. It is the posted ledger:
  mid-month it can exceed the Console's live figure by the month's not yet posted spend.
- `fetch_invoices`: `GET /v1/billing/teams/{team}/invoices`: the monthly invoices (those
  with a billing cycle; top-up receipts are not usage) that are not drafts or void, their
  `total` in cents. They are matched like recorded ones (`tracker.costs.provider_invoices`).
- `fetch_spend_limits`: the effective monthly postpaid spending limit (`GET .../postpaid/
  spending-limits`, else the invoice preview's documented `effectiveSpendingLimit`), cents.
  It caps invoiced (postpaid) spend; prepaid credits are spent first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from tracker.models import LINE_ITEM
from tracker.providers.base import (
    Balance,
    Connector,
    ProviderResponseError,
    UsageRow,
    day_of_iso,
    dim,
    to_decimal,
)
from tracker.providers.billing import ProviderInvoice, SpendLimit

WINDOW_DAYS = 31
CENTS = Decimal(100)
MODEL = re.compile(r"\bgrok[\w.\-]*", re.IGNORECASE)
SKIPPED_INVOICE_STATUSES = ("DRAFT", "VOID")


class XAIConnector(Connector):
    provider: ClassVar[str] = "xai"
    default_base_url: ClassVar[str] = "https://management-api.x.ai"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.reveal()}"}

    @property
    def team(self) -> str:
        if not self.organization:
            raise ProviderResponseError(
                "xai: the account has no team id; set its organization to the xAI team id"
            )
        return self.organization

    @property
    def billing(self) -> str:
        """The team's billing path (the id quoted: it is part of the URL path)."""
        return f"/v1/billing/teams/{quote(self.team, safe='')}"

    def organization_key(self) -> str | None:
        return f"xai:{self.organization}" if self.organization else None

    def raise_for_status(self, response: requests.Response) -> None:
        """A 404 from the billing paths means the team id (or the key's team) is wrong."""
        try:
            super().raise_for_status(response)
        except ProviderResponseError as exc:
            if exc.status == 404:
                raise ProviderResponseError(
                    f"{exc}; check the account's team id (its organization) and that the "
                    "management key belongs to that team",
                    status=404,
                ) from None
            raise

    def test(self) -> str:
        """Read the team's prepaid balance."""
        balance = self.fetch_balance()
        return (
            f"management key accepted for team {self.team}; prepaid credit "
            f"${balance.remaining:,.2f} (xAI's posted ledger)"
        )

    def fetch_balance(self) -> Balance:
        """Prepaid credit left, USD: minus the ledger's total (credits are negative cents)."""
        body = self.get_object(f"{self.billing}/prepaid/balance")
        total = _cents(body.get("total"), "the prepaid balance's total")
        return Balance(remaining=(Decimal(0) - total) / CENTS, currency="USD")

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield one row per UTC day and billing line for days in [start, end)."""
        lo = start
        while lo < end:
            hi = min(lo + dt.timedelta(days=WINDOW_DAYS), end)
            yield from self._window(lo, hi)
            lo = hi

    def fetch_invoices(self) -> list[ProviderInvoice]:
        """The team's monthly invoices that are issued (not drafts, not void)."""
        body = self.get_object(f"{self.billing}/invoices")
        invoices = body.get("invoices")
        if not isinstance(invoices, list):
            raise ProviderResponseError("xai: the invoice list answered without an invoices list")
        return [found for item in invoices if (found := _invoice(item)) is not None]

    def fetch_spend_limits(self) -> list[SpendLimit]:
        """The team's effective monthly postpaid spending limit (and the hard one, if read)."""
        body = self.get_object(f"{self.billing}/postpaid/spending-limits")
        limits = body.get("spendingLimits", body)
        if not isinstance(limits, dict):
            raise ProviderResponseError("xai: the spending limits are not an object")
        soft = _first_cents(limits, ("effectiveSl", "softSl"))
        hard = _first_cents(limits, ("effectiveHardSl", "hardSlAuto"))
        if soft is None:
            preview = self.get_object(f"{self.billing}/postpaid/invoice/preview")
            soft = _first_cents(preview, ("effectiveSpendingLimit",))
        if soft is None:
            return [
                SpendLimit(readable=False, note="xAI answered without a spending limit we can read")
            ]
        found = [SpendLimit(amount=soft / CENTS, enforcement="postpaid, stops the API")]
        if hard is not None:
            found.append(
                SpendLimit(
                    scope="hard",
                    scope_name="hard limit (xAI's ceiling)",
                    amount=hard / CENTS,
                    enforcement="hard",
                    account_wide=False,
                )
            )
        return found

    # --- usage ----------------------------------------------------------------------------

    def _window(self, lo: dt.date, hi: dt.date) -> Iterator[UsageRow]:
        body = self.get_object(f"{self.billing}/usage", post=_usage_query(lo, hi))
        if body.get("limitReached") is True:
            if hi - lo <= dt.timedelta(days=1):
                raise ProviderResponseError(
                    f"xai cut its usage answer for {lo} short (limitReached) even for one day; "
                    "nothing was stored"
                )
            middle = lo + dt.timedelta(days=(hi - lo).days // 2)
            yield from self._window(lo, middle)
            yield from self._window(middle, hi)
            return
        series = body.get("timeSeries")
        if not isinstance(series, list):
            raise ProviderResponseError("xai: the usage answer has no timeSeries list")
        for entry in series:
            if not isinstance(entry, dict):
                raise ProviderResponseError("xai: a usage series is not an object")
            line = _line(entry.get("groupLabels"))
            points = entry.get("dataPoints")
            if not isinstance(points, list):
                raise ProviderResponseError(f"xai: the usage series {line!r} has no dataPoints")
            for point in points:
                row = _point_row(line, point)
                if row is not None and lo <= row.day < hi:
                    yield row


def _usage_query(lo: dt.date, hi: dt.date) -> dict[str, Any]:
    """The analytics query of [lo, hi): USD summed per UTC day and billing line."""
    return {
        "analyticsRequest": {
            "timeRange": {
                "startTime": f"{lo:%Y-%m-%d} 00:00:00",
                "endTime": f"{hi:%Y-%m-%d} 00:00:00",
                "timezone": "Etc/GMT",
            },
            "timeUnit": "TIME_UNIT_DAY",
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
            "groupBy": ["description"],
            "filters": [],
        }
    }


def _line(labels: Any) -> str:
    """A series' billing line: its group labels joined ("Chat grok-4")."""
    if labels is None:
        return "usage"
    if not isinstance(labels, list) or not all(isinstance(x, str | int) for x in labels):
        raise ProviderResponseError(f"xai sent {labels!r} as a usage series' labels")
    return " / ".join(str(x).strip() for x in labels if str(x).strip())[:240] or "usage"


def _point_row(line: str, point: Any) -> UsageRow | None:
    if not isinstance(point, dict):
        raise ProviderResponseError(f"xai: a data point of {line!r} is not an object")
    values = point.get("values")
    if not isinstance(values, list) or not values:
        raise ProviderResponseError(f"xai: a data point of {line!r} has no values")
    usd = to_decimal(values[0], f"USD of {line!r}")
    if usd == 0:
        return None
    model = MODEL.search(line)
    return UsageRow(
        day=day_of_iso(point.get("timestamp")),
        model=model.group(0).lower() if model else "",
        usage_type=f"{LINE_ITEM}{line}",
        billed_cost=usd,
    )


# --- money in cents ---------------------------------------------------------------------


def _cents(value: Any, what: str) -> Decimal:
    """US cents as xAI sends them: {"val": "1413"}, "1413" or 1413."""
    if isinstance(value, dict):
        value = value.get("val")
    if value is None or value == "":
        raise ProviderResponseError(f"xai answered without {what}")
    return to_decimal(value, what)


def _first_cents(body: dict[str, Any], keys: tuple[str, ...]) -> Decimal | None:
    """The first of `keys` the body has, in cents; None if it has none of them."""
    for key in keys:
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("val")
        if value is not None and value != "":
            return to_decimal(value, key)
    return None


def _invoice(item: Any) -> ProviderInvoice | None:
    """An issued monthly invoice; None for a draft, a void one or a top-up receipt."""
    if not isinstance(item, dict):
        raise ProviderResponseError("xai: an invoice is not an object")
    status = str(item.get("invoiceStatus") or item.get("status") or "").upper()
    if any(word in status for word in SKIPPED_INVOICE_STATUSES):
        return None
    monthly = item.get("monthly")
    cycle = monthly.get("billingCycle") if isinstance(monthly, dict) else None
    if not isinstance(cycle, dict):
        return None  # a prepaid top-up: credit bought, not usage billed
    number = dim(item.get("invoiceNumber") or item.get("invoiceId")).strip()
    if not number or len(number) > 128:
        raise ProviderResponseError(f"xai sent an invoice without a usable number: {number!r}")
    try:
        period = dt.date(int(cycle["year"]), int(cycle["month"]), 1)
    except (KeyError, TypeError, ValueError):
        raise ProviderResponseError(f"xai sent {cycle!r} as invoice {number}'s month") from None
    amount = _cents(item.get("total"), f"invoice {number}'s total") / CENTS
    if amount < 0:
        return None  # a credit note: nothing billed to match
    issued = day_of_iso(item.get("createTime") or item.get("issueTime"))
    due_raw = item.get("dueTime") or item.get("dueDate")
    due = day_of_iso(due_raw) if due_raw else None
    currency = str(item.get("currency") or "USD").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ProviderResponseError(f"xai sent {currency!r} as invoice {number}'s currency")
    return ProviderInvoice(
        invoice_number=number,
        period=period,
        issued_on=issued,
        amount=amount,
        currency=currency,
        due_on=due if due is not None and due >= issued else None,
    )
