"""A fake of every provider API the connectors call: a real threaded HTTP server on 127.0.0.1.

It serves the documented example payloads (`payloads/`), filters report buckets by the time
window asked for and pages them like the providers do (cursor `next_page`/`has_more`, GitHub
`page`/`per_page`), checks each provider's auth header, and can be told to fail: scripted
replies for a path (a 429 with Retry-After, a 500, ...), a storm (always 429), data changes
between passes. Every request is recorded so tests can count them.

Routes (base URL of an account -> path):
- OpenAI      `<url>/v1`      /organization/usage/<endpoint>, /organization/costs,
                              /organization/projects, /organization/users,
                              /organization[/projects/<id>]/spend_limit, /spend_alerts
- Anthropic   `<url>`         /v1/organizations/usage_report/messages, /cost_report, /me,
                              /spend_limits[/effective]
- GitHub      `<url>`         /orgs/<org>/copilot/billing[/seats],
                              /organizations/<org>/settings/billing/<report>/usage, /budgets
- OpenRouter  `<url>/api/v1`  /key, /credits, /activity
- DeepSeek    `<url>`         /user/balance
- Groq        `<url>/openai/v1` /models;  Perplexity `<url>` /models
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAYLOADS = Path(__file__).parent / "payloads"

OPENAI_KEY = "sk-admin-fake-openai-key-0001"
ANTHROPIC_KEY = "sk-ant-admin01-fake-anthropic-key-0002"
GITHUB_TOKEN = "ghp_fakegithubtoken0000000000000003"
GITHUB_ORG = "acme-corp"
OPENROUTER_KEY = "sk-or-v1-fake-management-key-0004"
OPENROUTER_INFERENCE_KEY = "sk-or-v1-fake-inference-key-0005"
DEEPSEEK_KEY = "sk-fake-deepseek-key-0006"
GROQ_KEY = "gsk_fake_groq_key_0007"
PERPLEXITY_KEY = "pplx-fake-perplexity-key-0008"

OPENAI_USAGE_ENDPOINTS = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
)
COMPLETIONS_REQUIRED = ("object", "input_tokens", "output_tokens", "num_model_requests")
COMPLETIONS_DIMS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def _buckets(*names: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in names:
        out.extend(load(name)["data"])
    return out


def _every_day(
    buckets: list[dict[str, Any]],
    start: int,
    end: int,
    start_field: str,
    end_field: str,
    stamp: Callable[[int], Any],
) -> list[dict[str, Any]]:
    """The window's daily buckets as OpenAI and Anthropic answer them: one for every day
    from `start` (Unix seconds) to `end`, a day without usage as an empty bucket."""
    have = {int(_seconds(b[start_field])) // 86_400: b for b in buckets}
    out = []
    for t in range(start - start % 86_400, end, 86_400):
        empty = {start_field: stamp(t), end_field: stamp(t + 86_400), "results": []}
        out.append(have.pop(t // 86_400, None) or empty)
    return out + list(have.values())


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else _iso(value).timestamp()


# Which project each key of openai/project_api_keys.json belongs to (the API lists per project).
ANALYTICS_COST = "/v1/organizations/analytics/cost"
ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
OPENAI_KEY_PROJECTS = {"key_sb7Qx2": "proj_9fK2aLx0Qm7Tz1", "key_ra4Lm9": "proj_3bW8cRt5Yp2Nd6"}


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: a provider that hangs


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class ProviderServer:
    """Start with `with ProviderServer() as server:`; `server.url` is its base URL."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.scripted: dict[str, deque[Reply]] = {}
        self.storms: dict[str, Reply] = {}
        self.page_size = 2  # buckets per page at most, so the examples span several pages
        self.redirect_to: str | None = None  # answer everything with a 302 to this origin
        self.old_shape = False  # completions results with only the required fields
        self.enhanced_billing = True
        self.keys: dict[str, set[str]] = {
            "openai": {OPENAI_KEY},
            "anthropic": {ANTHROPIC_KEY},
            "github": {GITHUB_TOKEN},
            "openrouter": {OPENROUTER_KEY, OPENROUTER_INFERENCE_KEY},
            "deepseek": {DEEPSEEK_KEY},
            "groq": {GROQ_KEY},
            "perplexity": {PERPLEXITY_KEY},
        }
        # Mutable data: tests change them between passes to model provider revisions.
        self.openai_usage: dict[str, list[dict[str, Any]]] = {
            name: _buckets(f"openai/usage_{name}.json")
            for name in OPENAI_USAGE_ENDPOINTS
            if name != "completions"
        }
        self.openai_usage["completions"] = _buckets(
            "openai/usage_completions_page1.json", "openai/usage_completions_page2.json"
        )
        self.openai_costs = _buckets("openai/costs_page1.json", "openai/costs_page2.json")
        self.anthropic_usage = _buckets(
            "anthropic/usage_report_messages_page1.json",
            "anthropic/usage_report_messages_page2.json",
        )
        self.anthropic_costs = _buckets("anthropic/cost_report_grouped.json")
        # The Usage and Cost Analytics API's cost rows; None: this key may not use it (403).
        self.anthropic_analytics: list[dict[str, Any]] | None = None
        self.copilot_billing = load("github/copilot_billing.json")
        self.copilot_seat_pages = [
            load("github/copilot_seats_page1.json"),
            load("github/copilot_seats_page2.json"),
        ]
        premium = load("github/billing_premium_request_usage.json")
        credits = load("github/billing_ai_credit_usage.json")
        self.copilot_reports: dict[str, dict[dt.date, dict[str, Any]]] = {
            "premium_request": {dt.date(2026, 8, 2): premium},
            "ai_credit": {dt.date(2026, 8, 3): credits},
        }
        # One user's day of a report (`user=<login>`); a user with none gets no items.
        self.copilot_user_reports: dict[tuple[str, dt.date, str], dict[str, Any]] = {
            ("ai_credit", dt.date(2026, 8, 3), "dlee-acme"): load(
                "github/billing_ai_credit_usage_user_dlee.json"
            ),
            ("ai_credit", dt.date(2026, 8, 3), "rsingh-acme"): load(
                "github/billing_ai_credit_usage_user_rsingh.json"
            ),
        }
        # The billing usage report's line items per (year, month): none (no seat SKUs) unless
        # a test gives them; `seat_links` pages the seat list with Link headers.
        self.github_usage: dict[tuple[int, int], dict[str, Any]] = {}
        self.seat_links = False
        # Spend limits (None: none set, answered 404) and budgets.
        self.openai_spend_limit: dict[str, Any] | None = load("openai/spend_limit.json")
        self.openai_project_limits: dict[str, dict[str, Any]] = {
            "proj_3bW8cRt5Yp2Nd6": load("openai/project_spend_limit.json")
        }
        self.anthropic_spend_limits: list[dict[str, Any]] = load("anthropic/spend_limits.json")[
            "data"
        ]
        # OpenAI's organisation spend alerts (listed `after` an id; None: the key may not,
        # 403) and Anthropic's members' effective limits (paged by member; None: not an
        # Enterprise organisation, 400).
        self.openai_spend_alerts: list[dict[str, Any]] | None = load("openai/spend_alerts.json")[
            "data"
        ]
        self.anthropic_effective_limits: list[dict[str, Any]] | None = load(
            "anthropic/spend_limits_effective.json"
        )["data"]
        self.github_budgets: list[dict[str, Any]] = load("github/budgets.json")["budgets"]
        self.openrouter_activity = load("openrouter/activity.json")
        self.openrouter_credits = load("openrouter/credits.json")
        self.deepseek_balance = load("deepseek/balance.json")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> ProviderServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- programming failures -----------------------------------------------------------

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` with these replies, in order, then normally."""
        with self.lock:
            self.scripted.setdefault(path, deque()).extend(replies)

    def storm(self, path: str, reply: Reply | None = None) -> None:
        """Answer every request to `path` with `reply` (default: 429, Retry-After 0)."""
        with self.lock:
            self.storms[path] = reply or Reply(
                429, load("openai/error_429_rate_limit.json"), {"Retry-After": "0"}
            )

    def calm(self, path: str) -> None:
        with self.lock:
            self.storms.pop(path, None)

    def count(self, path: str | None = None, prefix: bool = False) -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if path is None or r.path == path or (prefix and r.path.startswith(path))
            )

    def last(self, path: str) -> Recorded:
        with self.lock:
            return [r for r in self.requests if r.path == path][-1]

    # --- dispatch -----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.requests.append(Recorded(method, path, query, headers))
            storm = self.storms.get(path)
            queued = self.scripted.get(path)
            scripted = queued.popleft() if queued else None
        if self.redirect_to is not None:
            return Reply(302, None, {"Location": f"{self.redirect_to}{raw_path}"})
        if storm is not None:
            return storm
        if scripted is not None:
            return scripted
        provider = _provider_of(path)
        if provider is None:
            return Reply(404, {"error": {"message": f"no route {path}"}})
        if (denied := self._check_auth(provider, headers)) is not None:
            return denied
        reply = self._route(provider, path, query, headers)
        reply.headers = {**_rate_limit_headers(provider), **reply.headers}
        return reply

    def _check_auth(self, provider: str, headers: dict[str, str]) -> Reply | None:
        if provider == "anthropic":
            key = headers.get("x-api-key", "")
            if headers.get("anthropic-version") != "2023-06-01":
                return Reply(400, {"type": "error", "error": {"message": "no version"}})
        else:
            auth = headers.get("authorization", "")
            key = auth[7:] if auth.startswith("Bearer ") else ""
        if key in self.keys[provider]:
            return None
        bodies = {
            "openai": "openai/error_401_invalid_api_key.json",
            "anthropic": "anthropic/error_401_authentication.json",
            "github": "github/error_401_bad_credentials.json",
            "openrouter": "openrouter/error_401.json",
            "deepseek": "deepseek/error_401_observed.json",
        }
        if provider == "openai" and key.startswith("sk-proj-"):
            return Reply(403, load("openai/error_403_missing_scope_observed.json"))
        body = load(bodies[provider]) if provider in bodies else {"error": {"message": "bad"}}
        return Reply(401, body)

    def _route(
        self, provider: str, path: str, q: dict[str, list[str]], headers: dict[str, str]
    ) -> Reply:
        if provider == "openai":
            return self._openai(path, q)
        if provider == "anthropic":
            return self._anthropic(path, q, headers)
        if provider == "github":
            return self._github(path, q)
        if provider == "openrouter":
            return self._openrouter(path, q, headers)
        if provider == "deepseek":
            return Reply(200, copy.deepcopy(self.deepseek_balance))
        return Reply(200, load("openai/models_list.json"))  # groq, perplexity

    # --- OpenAI ---------------------------------------------------------------------------

    def _openai(self, path: str, q: dict[str, list[str]]) -> Reply:
        not_found = Reply(404, {"error": {"message": "No spend limit", "code": "not_found"}})
        if path == "/v1/organization/spend_limit":
            limit = self.openai_spend_limit
            return not_found if limit is None else Reply(200, copy.deepcopy(limit))
        if path.startswith("/v1/organization/projects/") and path.endswith("/spend_limit"):
            found = self.openai_project_limits.get(path.split("/")[4])
            return not_found if found is None else Reply(200, copy.deepcopy(found))
        if path == "/v1/organization/spend_alerts":
            return self._openai_alerts(q)
        if path == "/v1/organization/projects":
            return Reply(200, load("openai/organization_projects.json"))
        if path == "/v1/organization/users":
            return Reply(200, load("openai/organization_users.json"))
        if path.startswith("/v1/organization/projects/") and path.endswith("/api_keys"):
            project = path.split("/")[4]
            body = load("openai/project_api_keys.json")
            body["data"] = [k for k in body["data"] if OPENAI_KEY_PROJECTS.get(k["id"]) == project]
            return Reply(200, body)
        if path == "/v1/organization/costs":
            data = self.openai_costs
        elif path.startswith("/v1/organization/usage/"):
            endpoint = path.rsplit("/", 1)[1]
            if endpoint not in self.openai_usage:
                return Reply(404, {"error": {"message": "unknown endpoint"}})
            data = self.openai_usage[endpoint]
            if endpoint == "completions" and self.old_shape:
                data = [_old_shape(b) for b in data]
        else:
            return Reply(404, {"error": {"message": f"no route {path}"}})
        if "start_time" not in q:
            return Reply(400, {"error": {"message": "start_time is required"}})
        start = int(q["start_time"][0])
        end = int(q["end_time"][0]) if "end_time" in q else 2**40
        selected = [b for b in data if start <= b["start_time"] < end]
        if "end_time" in q:
            selected = _every_day(selected, start, end, "start_time", "end_time", lambda t: t)
        body = self._page(selected, q, default_limit=7)
        return Reply(200, {"object": "page", **body})

    def _openai_alerts(self, q: dict[str, list[str]]) -> Reply:
        """`GET /organization/spend_alerts` as documented: a list object, `limit` (default
        20) alerts `after` the given id, `first_id`/`last_id`/`has_more`."""
        if self.openai_spend_alerts is None:
            return Reply(403, {"error": {"message": "Missing scopes: api.spend_alerts.read",
                                         "type": "invalid_request_error"}})  # fmt: skip
        alerts = self.openai_spend_alerts
        ids = [a["id"] for a in alerts]
        start = ids.index(q["after"][0]) + 1 if "after" in q else 0
        size = min(int(q.get("limit", ["20"])[0]), self.page_size)
        chunk = copy.deepcopy(alerts[start : start + size])
        return Reply(200, {
            "object": "list",
            "data": chunk,
            "first_id": chunk[0]["id"] if chunk else None,
            "last_id": chunk[-1]["id"] if chunk else None,
            "has_more": start + size < len(alerts),
        })  # fmt: skip

    # --- Anthropic --------------------------------------------------------------------------

    def _anthropic(self, path: str, q: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if path == "/v1/organizations/me":
            return Reply(200, load("anthropic/organization_me.json"))
        if path == "/v1/organizations/workspaces":
            return Reply(200, load("anthropic/workspaces.json"))
        if path == "/v1/organizations/api_keys":
            return Reply(200, load("anthropic/api_keys.json"))
        if path == "/v1/organizations/spend_limits":
            if headers.get("anthropic-beta") != "spend-limit-reads-2026-09-26":
                return Reply(400, {"type": "error", "error": {"message": "beta header needed"}})
            return Reply(200, self._page(self.anthropic_spend_limits, q, default_limit=20))
        if path == "/v1/organizations/spend_limits/effective":
            return self._anthropic_effective(q)
        if path == ANALYTICS_COST:
            return self._anthropic_analytics(q, headers)
        if path == "/v1/organizations/usage_report/messages":
            data = self.anthropic_usage
        elif path == "/v1/organizations/cost_report":
            data = self.anthropic_costs
        else:
            return Reply(404, {"type": "error", "error": {"type": "not_found_error"}})
        if "starting_at" not in q:
            return Reply(400, {"type": "error", "error": {"message": "starting_at required"}})
        start = _iso(q["starting_at"][0])
        end = (
            _iso(q["ending_at"][0]) if "ending_at" in q else dt.datetime.max.replace(tzinfo=dt.UTC)
        )
        selected = [b for b in data if start <= _iso(b["starting_at"]) < end]
        if "ending_at" in q:
            selected = _every_day(
                selected,
                int(start.timestamp()),
                int(end.timestamp()),
                "starting_at",
                "ending_at",
                lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        return Reply(200, self._page(selected, q, default_limit=7))

    def _anthropic_analytics(self, q: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        """`GET /v1/organizations/analytics/cost` as documented: the beta header, at most 31
        days from 2026-01-01, rows filtered by their bucket's start, cursor pages."""
        if headers.get("anthropic-beta") != ANALYTICS_BETA:
            return _anthropic_error(400, "the analytics beta header is needed")
        if self.anthropic_analytics is None:
            return Reply(403, load("anthropic/error_403_permission.json"))
        start, end = _iso(q["starting_at"][0]), _iso(q["ending_at"][0])
        if end - start > dt.timedelta(days=31) or start < dt.datetime(2026, 1, 1, tzinfo=dt.UTC):
            return _anthropic_error(400, "at most 31 days, from 2026-01-01")
        if q.get("time_bucket_width") != ["1d"]:
            return _anthropic_error(400, "time_bucket_width must be 1d")
        rows = [r for r in self.anthropic_analytics if start <= _iso(r["starting_at"]) < end]
        body = self._page(rows, q, default_limit=20)
        body["data_refreshed_at"] = "2026-12-03T09:00:00Z"
        return Reply(200, body)

    def _anthropic_effective(self, q: dict[str, list[str]]) -> Reply:
        """`GET /v1/organizations/spend_limits/effective` as documented: no beta header,
        `limit` members a page (a member's period rows never split across pages), the
        `next_page` cursor; a Console organisation gets 400 (here: None, 400)."""
        if self.anthropic_effective_limits is None:
            return _anthropic_error(400, "organization_type_not_supported: Enterprise only")
        members: dict[str, list[dict[str, Any]]] = {}
        for row in self.anthropic_effective_limits:
            members.setdefault(row["actor"].get("user_id", ""), []).append(row)
        body = self._page(list(members.values()), q, default_limit=20)
        body["data"] = [row for rows in body["data"] for row in rows]
        del body["has_more"]  # the documented page has only `data` and `next_page`
        return Reply(200, body)

    def _page(self, buckets: list[Any], q: dict[str, list[str]], default_limit: int) -> Any:
        offset = int(base64.b64decode(q["page"][0][5:]).decode()) if "page" in q else 0
        limit = min(int(q.get("limit", [default_limit])[0]), self.page_size)
        chunk = copy.deepcopy(buckets[offset : offset + limit])
        more = offset + limit < len(buckets)
        cursor = "page_" + base64.b64encode(str(offset + limit).encode()).decode()
        return {"data": chunk, "has_more": more, "next_page": cursor if more else None}

    # --- GitHub -----------------------------------------------------------------------------

    def _github(self, path: str, q: dict[str, list[str]]) -> Reply:
        not_found = Reply(404, {"message": "Not Found", "status": "404"})
        if path == f"/orgs/{GITHUB_ORG}/copilot/billing":
            return Reply(200, copy.deepcopy(self.copilot_billing))
        if path == f"/orgs/{GITHUB_ORG}/copilot/billing/seats":
            page = int(q.get("page", ["1"])[0])
            if 1 <= page <= len(self.copilot_seat_pages):
                body = copy.deepcopy(self.copilot_seat_pages[page - 1])
            else:
                body = {"total_seats": 3, "seats": []}
            headers: dict[str, str] = {}
            if self.seat_links:
                body["total_seats"] = 0  # the Link header alone must lead
                last = len(self.copilot_seat_pages)
                url = f"{self.url}{path}?per_page=100&page="
                links = [f'<{url}{last}>; rel="last"']
                if page < last:
                    links.insert(0, f'<{url}{page + 1}>; rel="next"')
                headers["Link"] = ", ".join(links)
            return Reply(200, body, headers)
        prefix = f"/organizations/{GITHUB_ORG}/settings/billing/"
        if path == f"{prefix}budgets":
            page, size = int(q.get("page", ["1"])[0]), min(int(q.get("per_page", ["10"])[0]), 3)
            chunk = self.github_budgets[(page - 1) * size : page * size]
            more = page * size < len(self.github_budgets)
            return Reply(200, {"budgets": copy.deepcopy(chunk), "has_next_page": more,
                               "total_count": len(self.github_budgets)})  # fmt: skip
        if path == f"{prefix}usage":
            if not self.enhanced_billing:
                return not_found
            month = (int(q["year"][0]), int(q["month"][0]))
            return Reply(200, copy.deepcopy(self.github_usage.get(month, {"usageItems": []})))
        if path.startswith(prefix) and path.endswith("/usage"):
            report = path[len(prefix) : -len("/usage")]
            if not self.enhanced_billing or report not in self.copilot_reports:
                return not_found
            day = dt.date(int(q["year"][0]), int(q["month"][0]), int(q["day"][0]))
            if "user" in q:
                body = copy.deepcopy(self.copilot_user_reports.get((report, day, q["user"][0])))
            else:
                body = copy.deepcopy(self.copilot_reports[report].get(day))
            if body is None:
                body = {"timePeriod": {"year": day.year}, "organization": GITHUB_ORG}
                body["usageItems"] = []
            return Reply(200, body)
        return not_found

    # --- OpenRouter -------------------------------------------------------------------------

    def _openrouter(self, path: str, q: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        management = headers.get("authorization", "") == f"Bearer {OPENROUTER_KEY}"
        if path == "/api/v1/key":
            body = load("openrouter/key.json")
            body["data"]["is_management_key"] = management
            return Reply(200, body)
        if not management:
            return Reply(403, load("openrouter/error_403_management_key_required.json"))
        if path == "/api/v1/credits":
            return Reply(200, copy.deepcopy(self.openrouter_credits))
        if path == "/api/v1/activity":
            body = copy.deepcopy(self.openrouter_activity)
            if "date" in q:
                body["data"] = [r for r in body["data"] if r["date"] == q["date"][0]]
            return Reply(200, body)
        return Reply(404, {"error": {"code": 404, "message": "Not found"}})


def _anthropic_error(status: int, message: str) -> Reply:
    error = {"type": "invalid_request_error", "message": message}
    return Reply(status, {"type": "error", "error": error})


def _provider_of(path: str) -> str | None:
    if path.startswith("/v1/organization/"):
        return "openai"
    if path.startswith("/v1/organizations/"):
        return "anthropic"
    if path.startswith(("/orgs/", "/organizations/")):
        return "github"
    if path.startswith("/api/v1/"):
        return "openrouter"
    if path == "/user/balance":
        return "deepseek"
    if path == "/openai/v1/models":
        return "groq"
    if path == "/models":
        return "perplexity"
    return None


def _rate_limit_headers(provider: str) -> dict[str, str]:
    if provider == "anthropic":
        return {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2026-08-04T00:00:01Z",
        }
    if provider == "github":
        return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999"}
    return {
        "x-ratelimit-limit-requests": "14400",
        "x-ratelimit-remaining-requests": "14399",
        "x-ratelimit-reset-requests": "6s",
    }


def _old_shape(bucket: dict[str, Any]) -> dict[str, Any]:
    keep = COMPLETIONS_REQUIRED + COMPLETIONS_DIMS
    results = [{k: v for k, v in r.items() if k in keep} for r in bucket["results"]]
    return {**bucket, "results": results}


def _iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every request

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        fake: ProviderServer = self.server.fake  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = fake.handle("GET", self.path, headers)
        if reply.delay:
            time.sleep(reply.delay)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


def iter_rows(buckets: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every result of a bucket list (for computing expected totals in tests)."""
    for bucket in buckets:
        yield from bucket["results"]
