"""The HTTP session every connector uses: bounded retries on 429 and 5xx that honour
Retry-After within one account's time budget (`Deadline`), and credentials that never follow
a redirect to another host (`CredentialSafeSession`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
# Every header that carries a credential for some provider; none may follow a redirect to
# another host (requests itself drops only Authorization).
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "proxy-authorization", "cookie")


class CredentialSafeSession(requests.Session):
    """A session whose redirects never carry a credential header to another host, with the
    `Deadline` its retries respect."""

    deadline: Deadline | None = None

    def rebuild_auth(self, prepared_request: Any, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        if self.should_strip_auth(response.request.url, prepared_request.url):  # type: ignore[no-untyped-call]
            for name in CREDENTIAL_HEADERS:
                prepared_request.headers.pop(name, None)


class Deadline:
    """How long one account's pass may still take (a monotonic clock); unset: unbounded.

    The sync starts it for each account (`SYNC_ACCOUNT_BUDGET_SECONDS`); every retry, every
    Retry-After wait and every read timeout of the session is cut to what is left, so a
    provider that answers 429 forever, 500s or hangs costs that account its budget and no
    more.
    """

    def __init__(self) -> None:
        self.at: float | None = None
        self.seconds: float | None = None

    def start(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float:
        return math.inf if self.at is None else self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class BudgetedRetry(Retry):
    """urllib3's Retry, cut short by the session's `Deadline`."""

    deadline: Deadline | None = None

    def new(self, **kw: Any) -> BudgetedRetry:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def _left(self) -> float:
        return math.inf if self.deadline is None else max(0.0, self.deadline.remaining())

    def get_backoff_time(self) -> float:
        return min(super().get_backoff_time(), self._left())

    def get_retry_after(self, response: Any) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, self._left())

    def increment(self, *args: Any, **kwargs: Any) -> BudgetedRetry:
        retry = super().increment(*args, **kwargs)
        if self.deadline is not None and self.deadline.expired:
            # Out of time: give up as if the retries were spent (requests raises RetryError
            # or ConnectionError; `Connector.get` says it was the budget).
            pool: Any = kwargs.get("_pool")
            raise MaxRetryError(pool, kwargs.get("url") or "", ResponseError("time budget spent"))
        return retry


def make_http_session(
    *,
    max_retries: int = 5,
    backoff_factor: float = 1.0,
    backoff_max: float = 60.0,
    user_agent: str = "ai-cost-tracker",
) -> CredentialSafeSession:
    """A session that retries 429, 5xx and connection errors with bounded backoff, and drops
    every credential header on a redirect to another host.

    Retry-After is honoured but capped at `backoff_max`, so one pass is bounded by roughly
    `max_retries * backoff_max` seconds per call. 401/403 are never retried.
    """
    deadline = Deadline()
    retry = BudgetedRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        # POST too: connectors POST only read-only report queries (Cursor), safe to repeat.
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "POST"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=min(1.0, backoff_factor),
        respect_retry_after_header=True,
        retry_after_max=int(backoff_max),
        raise_on_status=False,
    )
    retry.deadline = deadline
    session = CredentialSafeSession()
    session.deadline = deadline
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session
