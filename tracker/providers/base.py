"""The seam every provider connector sits behind: rows and errors (the HTTP session: `http`).

A connector gets the decrypted credential (as a `Secret`), an optional base URL (gateways,
proxies, tests), an injected `requests.Session` and a timeout. It returns frozen `UsageRow`s
and raises only the errors below, whose messages say what to do and never hold the key.

Errors:
- `ProviderAuthError`: the key is wrong, revoked, or of the wrong kind (401; not retried).
- `ProviderPermissionError`: the key lacks a scope or role (403; not retried).
- `ProviderRateLimited`: 429 still returned after the session's bounded retries.
- `ProviderUnavailable`: 5xx after retries, a timeout or a connection failure.
- `ProviderResponseError`: the provider answered something we cannot read.
- `ProviderNotSupported`: the provider has no API for this (e.g. usage for Groq).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import requests

from tracker.core.crypto import Secret
from tracker.core.errors import TrackerError
from tracker.models import TOKEN_COLUMNS, USAGE_NATURAL_KEY
from tracker.models.usage_kinds import Details, part_problems
from tracker.providers.billing import BillingFacts
from tracker.providers.http import RETRY_STATUSES as RETRY_STATUSES
from tracker.providers.http import CredentialSafeSession as CredentialSafeSession
from tracker.providers.http import Deadline as Deadline
from tracker.providers.http import make_http_session as make_http_session
from tracker.providers.registry import provider_info

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds; a provider's API host answers a TCP connect in well under
RATE_LIMIT_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "x-github-ratelimit-")
# Providers echo (partly masked) keys in error texts, e.g. "Incorrect API key provided: sk-ab***yz".
KEY_LIKE = re.compile(r"\b(?:sk|gh[pousr]|github_pat|pplx|gsk)[-_A-Za-z0-9*.]{4,}")


class ProviderError(TrackerError):
    """A provider call failed; the message is safe to show and store.

    `status` is the HTTP status the provider answered, when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderAuthError(ProviderError):
    pass


class ProviderPermissionError(ProviderError):
    pass


class ProviderRateLimited(ProviderError):
    pass


class ProviderUnavailable(ProviderError):
    pass


class ProviderResponseError(ProviderError):
    pass


class ProviderNotSupported(ProviderError):
    pass


@dataclass(frozen=True)
class UsageRow:
    """One normalised daily usage row (USD unless `currency` says otherwise).

    `input_tokens` counts uncached input only; cache reads and writes go in their own fields
    whatever the provider's convention. `billed_cost` is the provider's own figure, or None.
    """

    day: dt.date
    model: str = ""
    project_id: str = ""
    api_key_id: str = ""
    user_id: str = ""
    usage_type: str = ""
    service_tier: str = ""
    project_name: str | None = None
    api_key_name: str | None = None
    user_name: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    other_units: Decimal = Decimal(0)
    other_unit_name: str | None = None
    billed_cost: Decimal | None = None
    currency: str = "USD"
    details: Details = ()  # token parts and units (`tracker.models.usage_kinds`), packed
    list_cost: Decimal | None = None  # the provider's list-price amount, where it gives one

    @property
    def natural_key(self) -> tuple[object, ...]:
        """The row's key within one account (`models.USAGE_NATURAL_KEY` less the account)."""
        return tuple(getattr(self, column) for column in USAGE_NATURAL_KEY[1:])


@dataclass(frozen=True)
class Balance:
    """Prepaid credit remaining at the provider, in the currency it reports."""

    remaining: Decimal
    currency: str


@dataclass
class RateLimitSnapshot:
    """The rate-limit headers of the latest call, as the provider sent them."""

    headers: dict[str, str] = field(default_factory=dict)
    observed_at: dt.datetime | None = None

    def update(self, response_headers: Mapping[str, str]) -> None:
        picked = {
            k.lower(): v
            for k, v in response_headers.items()
            if k.lower().startswith(RATE_LIMIT_HEADER_PREFIXES)
        }
        if picked:
            self.headers = picked
            self.observed_at = dt.datetime.now(dt.UTC)


class Connector(BillingFacts, ABC):
    """Base for provider connectors; subclasses implement `test` and `fetch_usage`."""

    provider: ClassVar[str]
    default_base_url: ClassVar[str]
    # How far back the provider keeps usage (None: as far as anyone asks). Sync never asks for,
    # and so never replaces, days older than this: they would come back empty.
    max_history_days: ClassVar[int | None] = None

    @property
    def has_usage_api(self) -> bool:
        """Whether usage comes from the provider's API; else by CSV import (registry)."""
        return provider_info(self.provider).has_usage_api

    def __init__(
        self,
        *,
        credential: Secret,
        http: requests.Session,
        base_url: str | None = None,
        organization: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.credential = credential
        self.http = http
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.organization = organization
        self.timeout = timeout
        self.rate_limits = RateLimitSnapshot()
        # report -> the UTC days its answer had a bucket for (`buckets`), since the last
        # `fetch_usage`; empty for connectors whose answers have no buckets.
        self.coverage: dict[str, set[dt.date]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, key={self.credential!r})"

    @abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """Headers that carry the credential."""

    @abstractmethod
    def test(self) -> str:
        """Check the credential with one cheap call; return a one-line description."""

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield daily rows for UTC days in [start, end)."""
        raise ProviderNotSupported(
            f"{self.provider} has no usage API; import its usage from CSV instead"
        )

    def covered_days(self, first: dt.date, last: dt.date) -> set[dt.date] | None:
        """The days in [first, last] every report of the last `fetch_usage` answered for
        (a bucket, even an empty one), which a sync may prune; None: the connector's answers
        have no buckets, so a complete answer covers the whole range."""
        if not self.coverage:
            return None
        days = set.intersection(*self.coverage.values())
        return {d for d in days if first <= d <= last}

    def buckets(
        self, page: dict[str, Any], report: str, start: str, day_of: Callable[[Any], dt.date]
    ) -> Iterator[tuple[dt.date, dict[str, Any]]]:
        """The results of a page of daily buckets (OpenAI, Anthropic: `data` is a list of
        buckets, each with a start field and `results`), noting each bucket's day as
        covered by `report`."""
        covered = self.coverage.setdefault(report, set())
        data = page.get("data")
        if not isinstance(data, list):
            raise ProviderResponseError(f"{self.provider}: a {report} page has no data list")
        for bucket in data:
            if not isinstance(bucket, dict):
                raise ProviderResponseError(f"{self.provider}: a {report} bucket is not an object")
            day = day_of(bucket.get(start))
            covered.add(day)
            for result in bucket.get("results") or []:
                if isinstance(result, dict):
                    yield day, result

    def fetch_balance(self) -> Balance | None:
        """Return the prepaid balance where the provider reports one."""
        return None

    def organization_key(self) -> str | None:
        """What identifies the provider organisation the key reads (None: cannot tell).

        Two accounts with one key here would count the same spend twice."""
        return None

    def get(self, path: str, params: Any = None, post: Any = None) -> requests.Response:
        """GET base_url + path (or POST the JSON query `post`, for APIs that read reports by
        POST); map failures to the project's errors; record rate limits."""
        url = f"{self.base_url}{path}"
        deadline: Deadline | None = getattr(self.http, "deadline", None)
        left = math.inf if deadline is None else deadline.remaining()
        if left <= 0:
            raise self._out_of_time(deadline)
        read = min(self.timeout, left)
        try:
            response = self.http.request(
                "GET" if post is None else "POST",
                url,
                params=params,
                json=post,
                headers=self.auth_headers(),
                timeout=(min(CONNECT_TIMEOUT, read), read),
            )
        except requests.exceptions.RequestException as exc:
            if deadline is not None and deadline.expired:
                raise self._out_of_time(deadline) from None
            raise self._request_failed(exc) from None
        self.rate_limits.update(response.headers)
        self.raise_for_status(response)
        return response

    def _out_of_time(self, deadline: Deadline | None) -> ProviderUnavailable:
        seconds = deadline.seconds if deadline is not None and deadline.seconds else 0
        return ProviderUnavailable(
            f"{self.provider} did not finish within this account's {seconds:g} s sync budget "
            "(it kept answering 429/5xx or did not answer); the next sync tries again"
        )

    def _request_failed(self, exc: requests.exceptions.RequestException) -> ProviderError:
        try:
            raise exc
        except requests.exceptions.RetryError:
            return ProviderRateLimited(
                f"{self.provider} kept answering 429/5xx after retries; try again later"
            )
        except requests.exceptions.Timeout:
            return ProviderUnavailable(
                f"{self.provider} did not answer within {self.timeout:g} s; try again later"
            )
        except requests.exceptions.ConnectionError:
            return ProviderUnavailable(
                f"cannot connect to {self.provider} at {self.base_url}; check the network "
                "and the account's base URL"
            )
        except requests.exceptions.RequestException as other:
            return ProviderUnavailable(f"{self.provider}: {type(other).__name__}; try later")

    def get_json(self, path: str, params: Any = None, post: Any = None) -> Any:
        """GET base_url + path and return the decoded JSON body."""
        response = self.get(path, params, post)
        try:
            return response.json()
        except ValueError:
            raise ProviderResponseError(
                f"{self.provider} answered {path} with something that is not JSON"
            ) from None

    def get_object(self, path: str, params: Any = None, post: Any = None) -> dict[str, Any]:
        """GET a JSON object (not a list or scalar); anything else is a ProviderResponseError."""
        body = self.get_json(path, params, post)
        if not isinstance(body, dict):
            raise ProviderResponseError(
                f"{self.provider} answered {path} with {type(body).__name__}, not an object"
            )
        return body

    def iter_cursor_pages(
        self, path: str, params: dict[str, Any], *, max_pages: int = 10_000
    ) -> Iterator[dict[str, Any]]:
        """Yield each page of a `has_more`/`next_page` cursor listing (OpenAI, Anthropic).

        The same query is repeated with `page=<next_page>` until `has_more` is false or the
        cursor is empty; a cursor seen twice means the provider is looping, which is an error
        rather than a reason to fetch forever.
        """
        seen: set[str] = set()
        query = dict(params)
        for _ in range(max_pages):
            page = self.get_object(path, query)
            yield page
            cursor = page.get("next_page")
            if not page.get("has_more") or not cursor:
                return
            cursor = str(cursor)
            if cursor in seen:
                raise ProviderResponseError(
                    f"{self.provider} returned the same page cursor twice for {path}"
                )
            seen.add(cursor)
            query = {**params, "page": cursor}
        raise ProviderResponseError(f"{self.provider} returned more than {max_pages} pages")

    def raise_for_status(self, response: requests.Response) -> None:
        """Turn an error status into the matching ProviderError, with the provider's reason."""
        status = response.status_code
        if status < 400:
            return
        reason = redact(_error_text(response), self.credential)
        name = self.provider
        if status == 401:
            raise ProviderAuthError(
                f"{name} rejected the key (401: {reason}); check or replace it", status=status
            )
        if status == 403:
            raise ProviderPermissionError(
                f"{name} refused access (403: {reason}); the key lacks the needed scope or role",
                status=status,
            )
        if status == 429:
            raise ProviderRateLimited(
                f"{name} is rate limiting us (429: {reason}); try later", status=status
            )
        if status >= 500:
            raise ProviderUnavailable(
                f"{name} had a server error ({status}: {reason}); try later", status=status
            )
        raise ProviderResponseError(
            f"{name} refused the request ({status}: {reason})", status=status
        )


def redact(text: str, credential: Secret | None = None) -> str:
    """Remove the credential and anything that looks like an API key from a message."""
    if credential:
        text = text.replace(credential.reveal(), "[key]")
    return KEY_LIKE.sub("[key]", text)


def _error_text(response: requests.Response) -> str:
    """The provider's error message, short, without echoing anything we sent."""
    try:
        body = response.json()
    except ValueError:
        return (response.reason or "error").strip()[:200]
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("type")
        elif isinstance(error, str):
            message = error
        message = message or body.get("message") or body.get("detail")
    return str(message or response.reason or "error").strip()[:200]


# --- helpers for connectors -------------------------------------------------------------


def to_decimal(value: Any, what: str = "amount") -> Decimal:
    """A provider amount (number or numeric string) as an exact Decimal; None counts as 0.

    Floats go through `str()` so that 0.1 stays 0.1 rather than its binary expansion.
    """
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise ProviderResponseError(f"the provider sent a boolean as the {what}")
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ProviderResponseError(f"the provider sent {value!r} as the {what}") from None
    if not result.is_finite():
        raise ProviderResponseError(f"the provider sent {value!r} as the {what}")
    return result


def to_int(value: Any, what: str = "count") -> int:
    """A provider count (int, float or numeric string) as an int; None or missing counts as 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ProviderResponseError(f"the provider sent a boolean as the {what}")
    number = to_decimal(value, what)
    if number != number.to_integral_value():
        raise ProviderResponseError(f"the provider sent {value!r} as the {what}")
    return int(number)


def required_int(record: Mapping[str, Any], key: str) -> int:
    """A count the provider must send: missing or null is an error, not a silent 0."""
    if record.get(key) is None:
        raise ProviderResponseError(f"the provider sent a usage row without {key!r}")
    return to_int(record[key], key)


# The ceilings a single daily row may reach; beyond them the provider sent nonsense (1e30).
MAX_ROW_COUNT = 10**15  # tokens, requests or other units in one day
MAX_ROW_AMOUNT = Decimal(10**9)  # dollars in one day


def check_row(row: UsageRow, provider: str) -> None:
    """Refuse a row no real provider sends: negative or huge counts, a negative, huge or
    non-finite amount. Raises ProviderResponseError naming the field and the value."""
    columns = {name: getattr(row, name) for name in (*TOKEN_COLUMNS, "requests")}
    for name, value in columns.items():
        if not 0 <= value <= MAX_ROW_COUNT:
            raise ProviderResponseError(
                f"{provider} sent {name} = {value} for {row.model or 'a row'} on {row.day}; "
                f"a count must be between 0 and {MAX_ROW_COUNT:,}"
            )
    if not row.other_units.is_finite() or not 0 <= row.other_units <= MAX_ROW_COUNT:
        raise ProviderResponseError(
            f"{provider} sent {row.other_units} {row.other_unit_name or 'units'} on {row.day}; "
            f"a quantity must be between 0 and {MAX_ROW_COUNT:,}"
        )
    if problems := part_problems(dict(row.details), columns, ceiling=MAX_ROW_COUNT):
        what = f"{row.model or 'a row'} on {row.day}: {'; '.join(problems)}"
        raise ProviderResponseError(f"{provider} sent usage details that cannot be for {what}")
    cost = row.billed_cost
    if cost is not None and (not cost.is_finite() or not 0 <= cost <= MAX_ROW_AMOUNT):
        raise ProviderResponseError(
            f"{provider} sent a cost of {cost} for {row.model or row.usage_type or 'a row'} on "
            f"{row.day}; a daily cost must be between 0 and {MAX_ROW_AMOUNT:,}"
        )


def dim(value: Any) -> str:
    """A grouping dimension as stored: '' for null (so the natural key holds), else text."""
    return "" if value is None else str(value)[:255]


def utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def epoch_seconds(day: dt.date) -> int:
    """Unix seconds of 00:00 UTC on a day."""
    return int(utc_midnight(day).timestamp())


def day_of_epoch(value: Any) -> dt.date:
    """The UTC day a Unix-seconds bucket start falls on."""
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC).date()
    except (TypeError, ValueError, OverflowError):
        raise ProviderResponseError(f"the provider sent {value!r} as a bucket time") from None


def day_of_iso(value: Any) -> dt.date:
    """The UTC day of an RFC 3339 timestamp or a bare YYYY-MM-DD date."""
    if not isinstance(value, str) or not value:
        raise ProviderResponseError(f"the provider sent {value!r} as a date")
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProviderResponseError(f"the provider sent {value!r} as a date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).date()
