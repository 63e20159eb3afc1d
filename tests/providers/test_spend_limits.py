"""Each provider's spend limits as its connector reads them from the fake server: OpenAI's hard
limits (organisation and projects) and spend alerts (paged), Anthropic's spend limits (beta,
paged) and its members' effective limits (paged by member), GitHub's Copilot budgets (paged)
and Mistral's monthly limit; a key that may not read them is recorded as such, a malformed
answer is an error. xAI's: tests/providers/test_xai.py."""

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
from tracker.models import LimitKind
from tracker.providers.anthropic import AnthropicConnector
from tracker.providers.base import ProviderResponseError, ProviderUnavailable
from tracker.providers.billing import SpendLimit
from tracker.providers.github_copilot import CopilotConnector
from tracker.providers.mistral import MistralConnector
from tracker.providers.openai import OpenAIConnector

ANTHROPIC_LIMITS = "/v1/organizations/spend_limits"
ANTHROPIC_EFFECTIVE = "/v1/organizations/spend_limits/effective"
OPENAI_ALERTS = "/v1/organization/spend_alerts"
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


def caps(limits: list[SpendLimit]) -> list[SpendLimit]:
    return [limit for limit in limits if limit.kind == LimitKind.CAP]


def test_openai_organisation_and_project_hard_limits(server, http):
    limits = caps(openai(server, http).fetch_spend_limits())
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
    assert shown(caps(openai(server, http).fetch_spend_limits())) == [("", None, True)]
    server.script(
        "/v1/organization/spend_limit",
        Reply(403, {"error": {"message": "Missing scopes: api.spend_limits.read"}}),
    )
    (org,) = caps(openai(server, http).fetch_spend_limits())
    assert (org.readable, org.amount) == (False, None) and "403" in (org.note or "")


def test_openai_spend_alerts_across_pages_are_alerts_not_caps(server, http):
    limits = openai(server, http).fetch_spend_limits()  # three alerts, two a page
    assert server.count(OPENAI_ALERTS) == 2
    assert server.last(OPENAI_ALERTS).query == {"after": ["alert_def456"]}
    alerts = [limit for limit in limits if limit.kind == LimitKind.ALERT]
    assert shown(alerts) == [
        ("alert:alert_abc123", Decimal(1000), True),
        ("alert:alert_def456", Decimal(1750), True),
        ("alert:alert_ghi789", Decimal(500), True),
    ]
    assert {(a.currency, a.period, a.enforcement) for a in alerts} == {
        ("USD", "month", "alert only")
    }
    assert not any("example.com" in str(a) for a in alerts)  # recipients are not kept


def test_openai_without_alerts_or_the_right_to_list_them(server, http):
    server.openai_spend_alerts = []
    (none,) = [lim for lim in openai(server, http).fetch_spend_limits() if lim.kind == "alert"]
    assert (none.scope, none.amount, none.readable) == ("alerts", None, True)
    server.openai_spend_alerts = None  # 403: the key may not list them
    (unread,) = [lim for lim in openai(server, http).fetch_spend_limits() if lim.kind == "alert"]
    assert (unread.amount, unread.readable) == (None, False)
    assert "api.spend_alerts.read" in (unread.note or "")
    assert caps(openai(server, http).fetch_spend_limits())[0].amount == Decimal(1500)
    server.script(OPENAI_ALERTS, Reply(200, {"object": "list", "data": [{"id": "a"}]}))
    with pytest.raises(ProviderResponseError, match="no threshold_amount"):
        openai(server, http).fetch_spend_limits()
    server.storm(OPENAI_ALERTS, Reply(500, {"error": {"message": "down"}}))
    with pytest.raises(ProviderUnavailable):
        openai(server, http).fetch_spend_limits()


def test_anthropic_limits_of_every_scope_across_pages(server, http):
    limits = caps(anthropic(server, http).fetch_spend_limits())  # three limits, two a page
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
    (limit,) = caps(anthropic(server, http).fetch_spend_limits())
    assert (limit.readable, limit.account_wide) == (False, True)
    assert "Enterprise only" in (limit.note or "")
    server.storm(ANTHROPIC_LIMITS, Reply(500, {"type": "error"}))
    with pytest.raises(ProviderUnavailable):
        anthropic(server, http).fetch_spend_limits()


def members(limits: list[SpendLimit]) -> list[SpendLimit]:
    return [limit for limit in limits if limit.kind == LimitKind.MEMBER]


def test_anthropic_members_effective_limits_paged_by_member(server, http):
    limits = members(anthropic(server, http).fetch_spend_limits())  # 3 members, 2 a page
    assert server.count(ANTHROPIC_EFFECTIVE) == 2
    assert "anthropic-beta" not in server.last(ANTHROPIC_EFFECTIVE).headers  # none documented
    assert [(m.scope, m.amount, m.spent, m.period) for m in limits] == [
        ("member:user_01WCz1FkmYMm4gnmykNKUu3Q:month", Decimal(500), Decimal("120.505"), "month"),
        ("member:user_01WCz1FkmYMm4gnmykNKUu3Q:day", Decimal(50), Decimal("3.10"), "day"),
        ("member:user_01Bob00000000000000000005:month", Decimal(200), Decimal("19.99125"),
         "month"),
        ("member:user_01Gone0000000000000000008:month", None, Decimal(0), "month"),
    ]  # fmt: skip
    alice, alice_daily, bob, gone = limits
    assert (alice.scope_name, alice.email) == ("Alice Example", "alice@example.com")
    assert (alice.note, alice_daily.note) == (
        "from the member's own limit",
        "from seat tier premium",
    )
    assert bob.note == "from group rbac_grp_01Eng000000000000000006"
    assert (gone.scope_name, gone.email, gone.note) == (
        "user_01Gone0000000000000000008 (deleted)",
        None,
        "no limit for this period",
    )
    assert not any(m.account_wide for m in limits)


@pytest.mark.parametrize(
    ("status", "said"),
    [(400, "organization_type_not_supported"), (403, "not allowed"), (404, "Not found")],
)
def test_anthropic_members_limits_not_readable_are_never_no_limit(server, http, status, said):
    error = {"type": "error", "error": {"type": "x", "message": said}}
    server.script(ANTHROPIC_EFFECTIVE, Reply(status, error))
    limits = anthropic(server, http).fetch_spend_limits()
    assert caps(limits)[0].amount == Decimal(2000)  # the organisation's are still read
    (unread,) = members(limits)
    assert (unread.scope, unread.readable, unread.amount) == ("members", False, None)
    assert said in (unread.note or "") and str(status) in (unread.note or "")


def test_anthropic_malformed_effective_limits_are_errors(server, http):
    row = {"actor": {"type": "user_actor"}, "amount": "100", "period": "monthly"}
    server.script(ANTHROPIC_EFFECTIVE, Reply(200, {"data": [row], "next_page": None}))
    with pytest.raises(ProviderResponseError, match="actor has no id"):
        anthropic(server, http).fetch_spend_limits()
    server.script(ANTHROPIC_EFFECTIVE, Reply(200, {"data": "none"}))
    with pytest.raises(ProviderResponseError, match="effective limits have no data"):
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
