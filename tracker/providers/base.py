"""The seam every provider connector sits behind: rows, errors, and the HTTP session.

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
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tracker.core.crypto import Secret
from tracker.core.errors import TrackerError
from tracker.models import USAGE_NATURAL_KEY
from tracker.providers.registry import provider_info

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
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
    usage_type: str = ""
    service_tier: str = ""
    project_name: str | None = None
    api_key_name: str | None = None
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


def make_http_session(
    *,
    max_retries: int = 5,
    backoff_factor: float = 1.0,
    backoff_max: float = 60.0,
    user_agent: str = "ai-cost-tracker",
) -> requests.Session:
    """A session that retries 429, 5xx and connection errors with bounded backoff.

    Retry-After is honoured but capped at `backoff_max`, so one pass is bounded by roughly
    `max_retries * backoff_max` seconds per call. 401/403 are never retried.
    """
    retry = Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=min(1.0, backoff_factor),
        respect_retry_after_header=True,
        retry_after_max=int(backoff_max),
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


class Connector(ABC):
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

    def fetch_balance(self) -> Balance | None:
        """Return the prepaid balance where the provider reports one."""
        return None

    def get(self, path: str, params: Any = None) -> requests.Response:
        """GET base_url + path; map failures to the project's errors; record rate limits."""
        url = f"{self.base_url}{path}"
        try:
            response = self.http.get(
                url, params=params, headers=self.auth_headers(), timeout=self.timeout
            )
        except requests.exceptions.RetryError:
            raise ProviderRateLimited(
                f"{self.provider} kept answering 429/5xx after retries; try again later"
            ) from None
        except requests.exceptions.Timeout:
            raise ProviderUnavailable(
                f"{self.provider} did not answer within {self.timeout:g} s; try again later"
            ) from None
        except requests.exceptions.ConnectionError:
            raise ProviderUnavailable(
                f"cannot connect to {self.provider} at {self.base_url}; check the network "
                "and the account's base URL"
            ) from None
        self.rate_limits.update(response.headers)
        self.raise_for_status(response)
        return response

    def get_json(self, path: str, params: Any = None) -> Any:
        """GET base_url + path and return the decoded JSON body."""
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError:
            raise ProviderResponseError(
                f"{self.provider} answered {path} with something that is not JSON"
            ) from None

    def get_object(self, path: str, params: Any = None) -> dict[str, Any]:
        """GET a JSON object (not a list or scalar); anything else is a ProviderResponseError."""
        body = self.get_json(path, params)
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
