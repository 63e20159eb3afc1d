"""A fake of Mistral's Admin API (docs.mistral.ai/admin/admin-api/usage-metrics,
docs.mistral.ai/api/endpoint/beta/admin/{billing,workspaces}), on the provider server's
machinery: scripted replies, storms and recorded requests work the same. The shapes are
the ones `payloads/mistral/README.md` describes (the usage nesting is a guess).

It checks the `x-api-key` header, answers `GET /usage?month&year[&workspace_id]` from
`usage` (keyed by year, month and workspace, None for the organisation; a month it does not
hold has no usage), pages the workspace list with `page`/`page_size` (at most
`page_size_cap` a page, so the two examples span two pages) and serves the spend limit.

Routes (base URL of the account = `server.url + "/api/admin"`): GET /usage,
GET /workspaces, GET /spend-limit.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.provider_server import ProviderServer, Recorded, Reply, load

MISTRAL_KEY = "mst-fake0admin0key00000000000000000012"
BASE = "/api/admin"
DEFAULT = "019b2bd7-96e7-7219-8c0b-45a73da50088"
RESEARCH = "019b2bd7-aaaa-7219-8c0b-45a73da500aa"


class MistralServer(ProviderServer):
    """`with MistralServer() as server:`; the account's base URL is `server.admin_url`."""

    def __init__(self) -> None:
        super().__init__()
        self.usage: dict[tuple[int, int, str | None], dict[str, Any]] = {
            (2026, 7, None): load("mistral/usage_2026_07_organization.json"),
            (2026, 7, DEFAULT): load("mistral/usage_2026_07_workspace_default.json"),
            (2026, 7, RESEARCH): load("mistral/usage_2026_07_workspace_research.json"),
            (2026, 8, None): load("mistral/usage_2026_08_organization.json"),
            (2026, 8, DEFAULT): load("mistral/usage_2026_08_workspace_default.json"),
        }
        self.workspaces: list[dict[str, Any]] = load("mistral/workspaces.json")["items"]
        self.spend_limit = load("mistral/spend_limit.json")
        self.page_size_cap = 1

    @property
    def admin_url(self) -> str:
        return self.url + BASE

    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.requests.append(Recorded(method, path, query, headers))
            storm = self.storms.get(path)
            queued = self.scripted.get(path)
            scripted = queued.popleft() if queued else None
        if storm is not None:
            return storm
        if scripted is not None:
            return scripted
        if headers.get("x-api-key") != MISTRAL_KEY:
            return Reply(401, load("mistral/error_401_invented.json"))
        if path == f"{BASE}/usage":
            return self._usage(query)
        if path == f"{BASE}/workspaces":
            return self._workspaces(query)
        if path == f"{BASE}/spend-limit":
            return Reply(200, copy.deepcopy(self.spend_limit))
        return Reply(404, {"detail": "Not Found"})

    def _usage(self, query: dict[str, list[str]]) -> Reply:
        try:
            year, month = int(query["year"][0]), int(query["month"][0])
        except (KeyError, ValueError):
            return Reply(422, {"detail": "month and year are whole numbers"})
        workspace = query.get("workspace_id", [None])[0]
        body = self.usage.get((year, month, workspace))
        if body is None:
            body = {"currency": "USD", "currency_symbol": "$", "completion": None}
        return Reply(200, copy.deepcopy(body))

    def _workspaces(self, query: dict[str, list[str]]) -> Reply:
        page = int(query.get("page", ["1"])[0])
        size = min(int(query.get("page_size", ["50"])[0]), self.page_size_cap)
        items = self.workspaces[(page - 1) * size : page * size]
        return Reply(
            200,
            {
                "items": copy.deepcopy(items),
                "page": str(page),
                "page_size": str(size),
                "total": len(self.workspaces),
            },  # fmt: skip
        )
