"""A fake of Cursor's Admin API (cursor.com/docs/account/teams/admin-api), on the provider
server's machinery: scripted replies, storms and recorded requests work the same.

It checks basic auth (the key as user name, empty password), reads the JSON bodies of the
POSTed report queries, filters usage events and daily usage by `startDate`/`endDate` (epoch
milliseconds, inclusive) and pages events with `page`/`pageSize` and a `pagination` object as
documented, and holds only the days from `held_from` on, as Cursor's rolling history does.

Routes (base URL of the account = `server.url`): GET /teams/members, POST /teams/spend,
POST /teams/daily-usage-data, POST /teams/filtered-usage-events.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.provider_server import ProviderServer, Recorded, Reply, _Handler, load

CURSOR_KEY = "key_fake0cursor0admin0key0000000000000000000000000000000000000009"
TEAM_PATHS = ("/teams/",)
MAX_WINDOW_MS = 30 * 86_400_000 + 86_400_000  # 30 days, a little slack for the inclusive end


class CursorServer(ProviderServer):
    """`with CursorServer() as server:`; `server.url` is the Admin API's base URL."""

    def __init__(self) -> None:
        super().__init__()
        self.httpd.RequestHandlerClass = _CursorHandler
        self.keys["cursor"] = {CURSOR_KEY}
        self.members = load("cursor/teams_members.json")
        self.spend = load("cursor/teams_spend.json")
        self.daily_template = load("cursor/teams_daily_usage_data.json")["data"][0]
        self.events: list[dict[str, Any]] = load("cursor/filtered_usage_events.json")["usageEvents"]
        self.held_from = dt.date(2026, 1, 1)  # the oldest day Cursor still answers for
        self.event_page_sizes: list[int] = []  # pageSize of every events query, as asked
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
        expected = "Basic " + base64.b64encode(f"{CURSOR_KEY}:".encode()).decode()
        if headers.get("authorization") != expected:
            return Reply(401, load("cursor/error_401_observed.json"))
        if path == "/teams/members" and method == "GET":
            return Reply(200, copy.deepcopy(self.members))
        if method != "POST" or not isinstance(body, dict):
            return Reply(404, {"error": f"no route {method} {path}"})
        if path == "/teams/spend":
            return Reply(200, self._spend_page(body))
        if path == "/teams/daily-usage-data":
            return self._daily(body)
        if path == "/teams/filtered-usage-events":
            return self._events(body)
        return Reply(404, {"error": f"no route {path}"})

    def _spend_page(self, body: dict[str, Any]) -> dict[str, Any]:
        size, page = int(body.get("pageSize", 100)), int(body.get("page", 1))
        rows = self.spend["teamMemberSpend"]
        answer = copy.deepcopy(self.spend)
        answer["teamMemberSpend"] = rows[(page - 1) * size : page * size]
        answer["totalPages"] = max(1, -(-len(rows) // size))
        return answer

    def _held(self, ms: int) -> bool:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date() >= self.held_from

    def _window(self, body: dict[str, Any]) -> tuple[int, int] | Reply:
        start, end = int(body["startDate"]), int(body["endDate"])
        if end - start > MAX_WINDOW_MS:
            return Reply(400, {"error": "Date range cannot exceed 30 days"})
        return start, end

    def _daily(self, body: dict[str, Any]) -> Reply:
        window = self._window(body)
        if isinstance(window, Reply):
            return window
        start, end = window
        rows = []
        day = start - start % 86_400_000
        while day <= end:
            if self._held(day):
                for member in self.members["teamMembers"]:
                    rows.append({**self.daily_template, "date": day, "email": member["email"]})
            day += 86_400_000
        return Reply(200, {"data": rows, "period": {"startDate": start, "endDate": end}})

    def _events(self, body: dict[str, Any]) -> Reply:
        window = self._window(body)
        if isinstance(window, Reply):
            return window
        start, end = window
        size, page = int(body.get("pageSize", 10)), int(body.get("page", 1))
        self.event_page_sizes.append(size)
        size = min(size, self.page_size)  # small pages, so the examples span several
        chosen = [
            e
            for e in self.events
            if start <= int(e["timestamp"]) <= end and self._held(int(e["timestamp"]))
        ]
        pages = max(1, -(-len(chosen) // size))
        return Reply(
            200,
            {
                "totalUsageEventsCount": len(chosen),
                "pagination": {
                    "numPages": pages,
                    "currentPage": page,
                    "pageSize": size,
                    "hasNextPage": page < pages,
                    "hasPreviousPage": page > 1,
                },
                "usageEvents": copy.deepcopy(chosen[(page - 1) * size : page * size]),
                "period": {"startDate": start, "endDate": end},
            },
        )


class _CursorHandler(_Handler):
    def _answer(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _team(self, method: str) -> None:
        fake: CursorServer = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._answer(fake.handle_team(method, self.path, headers, body))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith(TEAM_PATHS):
            self._team("GET")
        else:
            super().do_GET()

    def do_POST(self) -> None:  # noqa: N802
        self._team("POST")
