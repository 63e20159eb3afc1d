"""A fake of xAI's Management API billing paths (docs.x.ai/developers/rest-api-reference/
management/billing), on the provider server's machinery: scripted replies, storms and
recorded requests work the same. The shapes are the ones `payloads/xai/README.md` describes.

It checks the bearer management key and the team id in the path, filters the usage series
by the query's `timeRange` (UTC days, end exclusive) and, when a query spans more days than
`series_cap_days`, answers `limitReached` with a truncated series, as xAI does when a query
asks for more than its cardinality cap.

Routes (base URL of the account = `server.url`), under /v1/billing/teams/{team}:
GET /prepaid/balance, GET /invoices, GET /postpaid/spending-limits,
GET /postpaid/invoice/preview, POST /usage.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.cursor_server import _CursorHandler
from tests.fakes.provider_server import ProviderServer, Recorded, Reply, load

XAI_KEY = "xai-fake0management0key0000000000000000000000000011"
XAI_TEAM = "4f1c3b1e-0000-4000-8000-00000000a11c"
PREFIX = f"/v1/billing/teams/{XAI_TEAM}"


class XAIServer(ProviderServer):
    """`with XAIServer() as server:`; `server.url` is the Management API's base URL."""

    def __init__(self) -> None:
        super().__init__()
        self.httpd.RequestHandlerClass = _XAIHandler
        self.balance = load("xai/prepaid_balance.json")
        self.series: list[dict[str, Any]] = load("xai/usage_daily.json")["timeSeries"]
        self.invoices = load("xai/invoices.json")
        self.limits: dict[str, Any] = load("xai/spending_limits.json")
        self.preview = load("xai/invoice_preview.json")
        self.series_cap_days = 31  # a query spanning more days is cut short (limitReached)
        self.bodies: list[dict[str, Any]] = []

    def handle_team(self, method: str, raw_path: str, headers: dict[str, str], body: Any) -> Reply:
        path = urlsplit(raw_path).path
        with self.lock:
            self.requests.append(Recorded(method, path, {}, headers))
            self.bodies.append(body if isinstance(body, dict) else {})
            storm = self.storms.get(path)
            queued = self.scripted.get(path)
            scripted = queued.popleft() if queued else None
        if storm is not None:
            return storm
        if scripted is not None:
            return scripted
        if headers.get("authorization") != f"Bearer {XAI_KEY}":
            return Reply(401, load("xai/error_401_invented.json"))
        if not path.startswith(PREFIX + "/"):
            return Reply(404, {"code": "NotFound", "error": "Team not found"})
        route = (method, path[len(PREFIX) :])
        if route == ("GET", "/prepaid/balance"):
            return Reply(200, copy.deepcopy(self.balance))
        if route == ("GET", "/invoices"):
            return Reply(200, copy.deepcopy(self.invoices))
        if route == ("GET", "/postpaid/spending-limits"):
            return Reply(200, copy.deepcopy(self.limits))
        if route == ("GET", "/postpaid/invoice/preview"):
            return Reply(200, copy.deepcopy(self.preview))
        if route == ("POST", "/usage"):
            return self._usage(body)
        return Reply(404, {"code": "NotFound", "error": f"no route {method} {path}"})

    def _usage(self, body: Any) -> Reply:
        try:
            query = body["analyticsRequest"]
            span = query["timeRange"]
            start = dt.datetime.fromisoformat(span["startTime"]).date()
            end = dt.datetime.fromisoformat(span["endTime"]).date()
        except (KeyError, TypeError, ValueError):
            return Reply(400, {"code": "InvalidArgument", "error": "bad analyticsRequest"})
        if query.get("timeUnit") != "TIME_UNIT_DAY" or span.get("timezone") != "Etc/GMT":
            return Reply(400, {"code": "InvalidArgument", "error": "unexpected time unit"})
        cut = (end - start).days > self.series_cap_days
        series = []
        for entry in self.series:
            points = [
                p
                for p in entry["dataPoints"]
                if start <= dt.date.fromisoformat(p["timestamp"][:10]) < end
            ]
            if cut:
                points = points[:1]  # a truncated answer: some points are missing
            if points:
                series.append({**copy.deepcopy(entry), "dataPoints": copy.deepcopy(points)})
        return Reply(200, {"timeSeries": series, "limitReached": cut})


class _XAIHandler(_CursorHandler):
    """Cursor's handler, which reads JSON bodies and calls `handle_team`, for every GET too."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._team("GET")
