"""OpenRouter: credit balance and per-day, per-model spend, with a management key.

- `test`: `GET /key` (works with any key) says whose key it is; a regular inference key is
  refused with a hint, because `/credits` and `/activity` need a **management key**.
- `fetch_balance`: `GET /credits` -> `total_credits - total_usage` in USD.
- `fetch_usage`: `GET /activity`, the last 30 completed UTC days by model and provider
  endpoint. Rows: `usage_type = "activity"`, prompt/completion tokens, requests and the spend
  in `billed_cost` (USD, what OpenRouter deducts from the credits). Several provider endpoints
  of one model on one day share a natural key, so sync adds them up. OpenRouter reports no
  cache split here, so cached input is not separated. Older days are not available, so sync
  never replaces days older than `max_history_days`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from tracker.providers.base import (
    Balance,
    Connector,
    ProviderPermissionError,
    ProviderResponseError,
    UsageRow,
    day_of_iso,
    dim,
    to_decimal,
    to_int,
)

MANAGEMENT_KEY_HINT = (
    "spend history and credits need an OpenRouter management key (Settings > Management keys)"
)


class OpenRouterConnector(Connector):
    provider: ClassVar[str] = "openrouter"
    default_base_url: ClassVar[str] = "https://openrouter.ai/api/v1"
    max_history_days: ClassVar[int | None] = 30

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.reveal()}"}

    def test(self) -> str:
        """Check the key with `/key` and require a management key."""
        data = self.get_object("/key").get("data")
        if not isinstance(data, dict):
            raise ProviderResponseError("openrouter: /key answered without a data object")
        if not (data.get("is_management_key") or data.get("is_provisioning_key")):
            raise ProviderPermissionError(
                f"openrouter: this is a regular API key; {MANAGEMENT_KEY_HINT}", status=403
            )
        label = data.get("label") or "unlabelled key"
        return f"management key {label} accepted"

    def fetch_balance(self) -> Balance:
        """Credits remaining: total credits bought minus total usage, USD."""
        data = self._management("/credits").get("data")
        if not isinstance(data, dict):
            raise ProviderResponseError("openrouter: /credits answered without a data object")
        remaining = to_decimal(data.get("total_credits"), "total_credits") - to_decimal(
            data.get("total_usage"), "total_usage"
        )
        return Balance(remaining=remaining, currency="USD")

    def fetch_usage(self, start: dt.date, end: dt.date) -> Iterator[UsageRow]:
        """Yield per-day, per-model spend for days in [start, end) that OpenRouter still has."""
        data = self._management("/activity").get("data")
        if not isinstance(data, list):
            raise ProviderResponseError("openrouter: /activity answered without a data list")
        for item in data:
            if not isinstance(item, dict):
                continue
            day = day_of_iso(item.get("date"))
            if not start <= day < end:
                continue
            yield UsageRow(
                day=day,
                model=dim(item.get("model")),
                project_id=dim(item.get("workspace_id")),
                usage_type="activity",
                input_tokens=to_int(item.get("prompt_tokens")),
                output_tokens=to_int(item.get("completion_tokens")),
                requests=to_int(item.get("requests")),
                billed_cost=to_decimal(item.get("usage"), "usage"),
            )

    def _management(self, path: str) -> dict[str, Any]:
        try:
            return self.get_object(path)
        except ProviderPermissionError as exc:
            raise ProviderPermissionError(
                f"{exc}; {MANAGEMENT_KEY_HINT}", status=exc.status
            ) from None
