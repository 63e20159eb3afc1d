"""Each provider's spend limits as its connector reads them from the fake server: OpenAI's hard
limits (organisation and projects), Anthropic's spend limits (beta, paged), GitHub's Copilot
budgets (paged) and Mistral's monthly limit; a key that may not read them is recorded as
such, a malformed answer is an error. xAI's: tests/providers/test_xai.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.mistral_server import BASE, MISTRAL_KEY, MistralServer
from tests.fakes.provider_server import (
    ANTHROPIC_KEY,
    GITHUB_ORG,
    GITHUB_TOKEN,
    OPENAI_KEY,
    Reply,
)
from tracker.core.crypto import Secret
from tracker.providers.anthropic import AnthropicConnector
from tracker.providers.base import ProviderResponseError, ProviderUnavailable
from tracker.providers.billing import SpendLimit
from tracker.providers.github_copilot import CopilotConnector
from tracker.providers.mistral import MistralConnector
from tracker.providers.openai import OpenAIConnector

ANTHROPIC_LIMITS = "/v1/organizations/spend_limits"
BUDGETS = f"/organizations/{GITHUB_ORG}/settings/billing/budgets"


def openai(server, http) -> OpenAIConnector:
    return OpenAIConnector(credential=Secret(OPENAI_KEY), http=http, base_url=server.url + "/v1")


def anthropic(server, http) -> AnthropicConnector:
    return AnthropicConnector(credential=Secret(ANTHROPIC_KEY), http=http, base_url=server.url)


def copilot(server, http) -> CopilotConnector:
    return CopilotConnector(
        credential=Secret(GITHUB_TOKEN), http=http, base_url=server.url, organization=GITHUB_ORG
    )


def shown(limits: list[SpendLimit]) -> list[tuple[str, Decimal | None, bool]]:
    return [(limit.scope, limit.amount, limit.account_wide) for limit in limits]


def test_openai_organisation_and_project_hard_limits(server, http):
    limits = openai(server, http).fetch_spend_limits()
    assert shown(limits) == [
        ("", Decimal(1500), True),
        ("project:proj_3bW8cRt5Yp2Nd6", Decimal(200), False),  # the other project has none
    ]
    org, project = limits
    assert (org.currency, org.period, org.enforcement) == ("USD", "month", "hard (inactive)")
    assert project.scope_name == "research-agents"


def test_openai_without_a_limit_or_the_right_to_read_it(server, http):
    server.openai_spend_limit = None  # OpenAI answers 404: none set
    server.openai_project_limits = {}
    assert shown(openai(server, http).fetch_spend_limits()) == [("", None, True)]
    server.script(
        "/v1/organization/spend_limit",
        Reply(403, {"error": {"message": "Missing scopes: api.spend_limits.read"}}),
    )
    (org,) = openai(server, http).fetch_spend_limits()
    assert (org.readable, org.amount) == (False, None) and "403" in (org.note or "")


def test_anthropic_limits_of_every_scope_across_pages(server, http):
    limits = anthropic(server, http).fetch_spend_limits()  # three limits, two a page
    assert server.count(ANTHROPIC_LIMITS) == 2
    assert shown(limits) == [
        ("", Decimal(2000), True),
        ("workspace:wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", Decimal(300), False),
        ("user:user_01WCz1FkmYMm4gnmykNKUu3Q", None, False),  # switched off: caps nothing
    ]
    assert limits[2].enforcement == "switched off" and limits[0].period == "month"
    assert server.last(ANTHROPIC_LIMITS).headers["anthropic-beta"] == (
        "spend-limit-reads-2026-09-26"
    )


def test_anthropic_console_organisation_may_not_list_them(server, http):
    refusal = {"type": "error", "error": {"type": "permission_error", "message": "Enterprise only"}}
    server.script(ANTHROPIC_LIMITS, Reply(403, refusal))
    (limit,) = anthropic(server, http).fetch_spend_limits()
    assert (limit.readable, limit.account_wide) == (False, True)
    assert "Enterprise only" in (limit.note or "")
    server.storm(ANTHROPIC_LIMITS, Reply(500, {"type": "error"}))
    with pytest.raises(ProviderUnavailable):
        anthropic(server, http).fetch_spend_limits()


def test_anthropic_malformed_limits_are_errors(server, http):
    server.script(ANTHROPIC_LIMITS, Reply(200, {"data": [{"amount": "100"}], "next_page": None}))
    with pytest.raises(ProviderResponseError, match="no scope object"):
        anthropic(server, http).fetch_spend_limits()
    bad = {"scope": {"type": "organization"}, "amount": "-5", "currency": "USD"}
    server.script(ANTHROPIC_LIMITS, Reply(200, {"data": [bad], "next_page": None}))
    with pytest.raises(ProviderResponseError, match="negative spend limit"):
        anthropic(server, http).fetch_spend_limits()


def test_github_copilot_budgets_only_across_pages(server, http):
    limits = copilot(server, http).fetch_spend_limits()  # four budgets, three a page
    assert server.count(BUDGETS) == 2
    assert shown(limits) == [
        ("budget:7d3f1a2b-1c4e-4b8a-9e21-5a7c0b9d1e01", Decimal(300), True),
        ("budget:9b2e4c6d-8f10-4a3b-b5c7-d9e1f2a3b4c5", Decimal(30), False),  # one user's
    ]
    assert limits[0].scope_name == "organization acme-corp · copilot_premium_request"
    assert limits[0].enforcement == "stops usage"


def test_github_without_budgets_there(server, http):
    server.script(BUDGETS, Reply(404, {"message": "Not Found", "status": "404"}))
    (limit,) = copilot(server, http).fetch_spend_limits()
    assert limit.readable is False and "404" in (limit.note or "")
    server.script(BUDGETS, Reply(200, {"budgets": "none"}))
    with pytest.raises(ProviderResponseError, match="no budgets list"):
        copilot(server, http).fetch_spend_limits()


@pytest.fixture
def mistral_server():
    with MistralServer() as fake:
        yield fake


def mistral(server: MistralServer, http) -> MistralConnector:
    return MistralConnector(credential=Secret(MISTRAL_KEY), http=http, base_url=server.admin_url)


def test_mistral_monthly_limit(mistral_server, http):
    (limit,) = mistral(mistral_server, http).fetch_spend_limits()
    assert (limit.scope, limit.amount, limit.currency) == ("", Decimal(150), "USD")
    assert limit.enforcement == "suspends the API"
    mistral_server.spend_limit = {"limits": {"no_monthly_limit": True, "currency": "EUR"}}
    (none,) = mistral(mistral_server, http).fetch_spend_limits()
    assert (none.amount, none.readable, none.currency) == (None, True, "EUR")
    mistral_server.spend_limit = {"limits": {"completion": {"monthly_limit_reached": False}}}
    (unread,) = mistral(mistral_server, http).fetch_spend_limits()
    assert unread.readable is False and "completion" in (unread.note or "")
    mistral_server.script(f"{BASE}/spend-limit", Reply(200, {"limit": 5}))
    with pytest.raises(ProviderResponseError, match="without limits"):
        mistral(mistral_server, http).fetch_spend_limits()
