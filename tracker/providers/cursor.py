"""Cursor: usage and cost per event from the team's Admin API, by member, model and day.

Needs a team **Admin API key** (Cursor dashboard > Settings > Advanced > Admin API Keys,
`key_...`), sent as the user name of HTTP basic auth with an empty password, to
`https://api.cursor.com`. Reports are read by POSTing JSON queries (read-only). Documented at
cursor.com/docs/account/teams/admin-api; the shapes used are in tests/fakes/payloads/cursor/.

- `test`: `GET /teams/members` checks the key; `POST /teams/spend` (every page) adds what the
  members spent in the current cycle, Cursor's own figure, to compare with its dashboard.
- `fetch_usage`: `POST /teams/filtered-usage-events` over windows of at most 30 days, every
  page (`page`, `pageSize`, until `pagination.hasNextPage` is false), one row per event, added
  up by the sync per UTC day, model, member (`user_id` the email, `user_name` from
  `/teams/members`) and kind (`usage_type`: `usage_based`, `included_in_business`, ...).
  Money (`billed_cost`, US dollars from cents, exact): the event's `chargedCents` where it has
  one, else `tokenUsage.totalCents` of a token-based (usage-based) call, else 0: usage
  included in the seats costs nothing more, and is not estimated either. Tokens:
  `inputTokens` (the uncached part), `cacheReadTokens`, `cacheWriteTokens`, `outputTokens`;
  requests: the number of events. Seat fees are not in the Admin API.
- **Rolling history**: Cursor keeps only a recent window of usage, so the tracker's rows are
  the lasting record, and a sync must never prune a day the API no longer answers for. A day
  counts as covered (`Connector.covered_days`) only if `POST /teams/daily-usage-data`
  (a row per member for every day Cursor still holds) answered for it and it is not before
  the first day with an event in the answer; every other day keeps what it had.
- **Limits**: 20 requests per minute per endpoint and team (then 429: the session's retries
  wait, honouring Retry-After when sent); usage is aggregated hourly, so polling more than
  hourly gains nothing; 30 days per query.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

from tracker.providers.base import (
    Connector,
    ProviderResponseError,
    UsageRow,
    dim,
    epoch_seconds,
    to_decimal,
    to_int,
)

WINDOW_DAYS = 30  # the most one daily-usage or usage-events query may span
PAGE_SIZE = 500
MAX_PAGES = 10_000
CENTS = Decimal(100)


class CursorConnector(Connector):
    provider: ClassVar[str] = "cursor"
    default_base_url: ClassVar[str] = "https://api.cursor.com"

    def auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.credential.reveal()}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def test(self) -> str:
        """Check the key with the member list; report the cycle's spend as Cursor counts it."""
        members = self._members()
        spent, cycle_start = self._cycle_spend()
        since = f" since {cycle_start}" if cycle_start else ""
        return (
            f"key accepted for a team of {len(members)} member(s); ${spent:,.2f} spent in the "
            f"current cycle{since} (Cursor's own figure)"
        )

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield one row per usage event on UTC days in [start, end), and note which days
        the answer covers (see the module docstring)."""
        names = self._members()
        held = self.coverage.setdefault("daily usage", set())
        with_events = self.coverage.setdefault("usage events", set())
        first_event: dt.date | None = None
        lo = start
        while lo < end:
            hi = min(lo + dt.timedelta(days=WINDOW_DAYS), end)
            held.update(self._days_held(lo, hi))
            for event in self._events(lo, hi):
                row = self._row(event, names)
                if not start <= row.day < end:
                    continue
                first_event = row.day if first_event is None else min(first_event, row.day)
                yield row
            lo = hi
        if first_event is not None:
            with_events.update(
                first_event + dt.timedelta(days=n) for n in range((end - first_event).days)
            )

    # --- the endpoints ---------------------------------------------------------------------

    def _members(self) -> dict[str, str]:
        """Member email -> name."""
        members = self.get_object("/teams/members").get("teamMembers")
        if not isinstance(members, list):
            raise ProviderResponseError("cursor: /teams/members answered without teamMembers")
        return {
            str(m["email"]): str(m.get("name") or m["email"])
            for m in members
            if isinstance(m, dict) and m.get("email")
        }

    def _cycle_spend(self) -> tuple[Decimal, dt.date | None]:
        """The members' spend in the current cycle (USD) and the cycle's first day."""
        total, cycle_start, page = Decimal(0), None, 1
        while page <= MAX_PAGES:
            body = self.get_object("/teams/spend", post={"page": page, "pageSize": 100})
            spend = body.get("teamMemberSpend")
            if not isinstance(spend, list):
                raise ProviderResponseError("cursor: /teams/spend answered without teamMemberSpend")
            total += sum(
                (
                    to_decimal(s.get("spendCents"), "spendCents")
                    for s in spend
                    if isinstance(s, dict)
                ),
                Decimal(0),
            )
            if body.get("subscriptionCycleStart") is not None:
                cycle_start = _day_of_ms(body["subscriptionCycleStart"])
            if page >= to_int(body.get("totalPages") or 1, "totalPages"):
                break
            page += 1
        return total / CENTS, cycle_start

    def _days_held(self, lo: dt.date, hi: dt.date) -> set[dt.date]:
        """The days in [lo, hi) Cursor still holds: those `/teams/daily-usage-data` has rows for."""
        body = self.get_object("/teams/daily-usage-data", post=_window(lo, hi))
        data = body.get("data")
        if not isinstance(data, list):
            raise ProviderResponseError("cursor: /teams/daily-usage-data answered without data")
        days = {_day_of_ms(r.get("date")) for r in data if isinstance(r, dict)}
        return {d for d in days if lo <= d < hi}

    def _events(self, lo: dt.date, hi: dt.date) -> Iterator[dict[str, Any]]:
        """Every usage event of [lo, hi), page after page."""
        for page in range(1, MAX_PAGES + 1):
            query = {**_window(lo, hi), "page": page, "pageSize": PAGE_SIZE}
            body = self.get_object("/teams/filtered-usage-events", post=query)
            events = body.get("usageEvents")
            if not isinstance(events, list):
                raise ProviderResponseError(
                    "cursor: /teams/filtered-usage-events answered without usageEvents"
                )
            yield from (e for e in events if isinstance(e, dict))
            pagination = body.get("pagination")
            more = (
                pagination.get("hasNextPage")
                if isinstance(pagination, dict)
                else len(events) >= PAGE_SIZE
            )
            if not more or not events:
                return
        raise ProviderResponseError(f"cursor returned more than {MAX_PAGES} pages of events")

    def _row(self, event: dict[str, Any], names: dict[str, str]) -> UsageRow:
        email = dim(event.get("userEmail"))
        usage = event.get("tokenUsage")
        tokens: dict[str, Any] = usage if isinstance(usage, dict) else {}
        if event.get("chargedCents") is not None:
            cents = to_decimal(event["chargedCents"], "chargedCents")
        elif event.get("isTokenBasedCall") and event.get("isChargeable") is not False:
            cents = to_decimal(tokens.get("totalCents"), "totalCents")
        else:
            cents = Decimal(0)  # included in the seats, or not charged
        return UsageRow(
            day=_day_of_ms(event.get("timestamp")),
            model=dim(event.get("model")),
            user_id=email,
            user_name=names.get(email),
            usage_type=_kind(event.get("kind")),
            input_tokens=to_int(tokens.get("inputTokens"), "inputTokens"),
            cached_input_tokens=to_int(tokens.get("cacheReadTokens"), "cacheReadTokens"),
            cache_write_tokens=to_int(tokens.get("cacheWriteTokens"), "cacheWriteTokens"),
            output_tokens=to_int(tokens.get("outputTokens"), "outputTokens"),
            requests=1,
            billed_cost=cents / CENTS,
        )


def _window(lo: dt.date, hi: dt.date) -> dict[str, int]:
    """A query's startDate and endDate (epoch milliseconds, both inclusive) for [lo, hi)."""
    return {"startDate": epoch_seconds(lo) * 1000, "endDate": epoch_seconds(hi) * 1000 - 1}


def _day_of_ms(value: Any) -> dt.date:
    """The UTC day of an epoch-milliseconds time (a number or, for events, a string)."""
    try:
        return dt.datetime.fromtimestamp(int(str(value)) / 1000, dt.UTC).date()
    except (TypeError, ValueError, OverflowError, OSError):
        raise ProviderResponseError(f"cursor sent {value!r} as a time") from None


def _kind(value: Any) -> str:
    """The event's billing kind as a usage type: 'Usage-based' -> 'usage_based'."""
    text = str(value or "").removeprefix("USAGE_EVENT_KIND_").lower()
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "_".join(words)[:64] or "usage"
