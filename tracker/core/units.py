"""Units: money parsing and formatting, exact micro-dollars, month bounds, today in UTC.

Conventions every module follows:
- Money is `Decimal` in USD. The database stores `NUMERIC(18, 6)`; sums are taken as whole
  micro-dollars (`MICRO`) and turned back with `to_dollars`, exact on every backend.
- Days are UTC calendar days. A day range is inclusive of both ends: `month_bounds` returns
  the first and the last day of the month, never the first day of the next one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from tracker.core.errors import InvalidInput

MICRO = Decimal("0.000001")
CENT = Decimal("0.01")
# The largest amount a person may type for a budget (USD); more is a typo, not a budget.
MAX_MONEY = Decimal("1000000000")


def to_dollars(micros: int | None) -> Decimal:
    """Whole micro-dollars back to an exact Decimal with six places."""
    return (Decimal(int(micros or 0)) * MICRO).quantize(MICRO)


def dec_str(value: Decimal | None) -> str | None:
    """A Decimal as a plain string without exponent or trailing zeros (exact)."""
    return None if value is None else format(value.normalize(), "f")


def parse_decimal(raw: str | Decimal | int | None, what: str) -> Decimal | None:
    """A non-negative Decimal from user input, e.g. a price or a percentage (empty: None)."""
    if raw is None or raw == "":
        return None
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except InvalidOperation:
        raise InvalidInput(f"{what} must be a number, not {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{what} must be zero or more")
    return value


def parse_money(
    raw: str | Decimal | float | int | None, *, what: str, currency: str = "USD"
) -> Decimal | None:
    """An amount a person typed, like '1500', '1,500.00' or '$1500', to the cent; USD unless
    `currency` (an ISO code, for the messages only) says otherwise.

    Empty input is None (no amount); anything else must be a number from 0 to `MAX_MONEY`.
    """
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if isinstance(raw, Decimal):
        value = raw
    else:
        text = str(raw).strip().replace(",", "").lstrip("$").strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            unit = "US dollars" if currency == "USD" else currency
            raise InvalidInput(f"{what} {raw!r} is not a number of {unit}, e.g. 1500.00") from None
    if not value.is_finite() or value < 0 or value > MAX_MONEY:
        raise InvalidInput(f"{what} must be between 0 and {MAX_MONEY:,} {currency}")
    return value.quantize(CENT)


def today_utc() -> dt.date:
    """Today's UTC date."""
    return dt.datetime.now(dt.UTC).date()


def month_start(day: dt.date) -> dt.date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    """The first day of the month after `day`'s."""
    return month_start(month_start(day) + dt.timedelta(days=32))


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and the last UTC day of the month containing `day` (both inclusive)."""
    return month_start(day), next_month(day) - dt.timedelta(days=1)


def same_days_last_month(day: dt.date) -> tuple[dt.date, dt.date]:
    """The comparison window for month-to-date: the 1st of last month to the same day number.

    When last month is shorter (e.g. 31 March -> February), the window ends on its last day.
    """
    last_month_end = month_start(day) - dt.timedelta(days=1)
    start = last_month_end.replace(day=1)
    return start, last_month_end.replace(day=min(day.day, last_month_end.day))
