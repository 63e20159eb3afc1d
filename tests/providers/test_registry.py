"""The provider registry is the one list of providers: connectors, services rows, choices."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.cli.main import build_parser
from tracker.core.crypto import CredentialCipher
from tracker.core.errors import InvalidInput
from tracker.models import Service
from tracker.providers import accounts
from tracker.providers.registry import PROVIDERS, connector_class, display_name, provider_info


def test_every_entry_names_its_own_connector():
    for provider, info in PROVIDERS.items():
        cls = connector_class(provider)
        assert cls.provider == provider == info.id
        assert cls.default_base_url.startswith("https://")


def test_unknown_provider_is_refused_with_the_choices():
    with pytest.raises(InvalidInput, match="choose one of openai, anthropic"):
        provider_info("acme")
    assert display_name("acme") == "acme"


def test_deepseek_has_no_usage_api_in_the_one_place_that_says_so():
    assert not PROVIDERS["deepseek"].has_usage_api
    assert PROVIDERS["github_copilot"].needs_organization


def test_the_cli_offers_exactly_the_registry():
    parser = build_parser()
    args = parser.parse_args(["accounts", "add", "--provider", "groq", "--name", "g"])
    assert args.provider == "groq"
    with pytest.raises(SystemExit):
        parser.parse_args(["accounts", "add", "--provider", "acme", "--name", "a"])


def test_a_service_row_is_made_from_the_registry_when_first_needed(
    session: Session, cipher: CredentialCipher
) -> None:
    # As for a provider added to the registry after the database was created.
    session.execute(delete(Service).where(Service.name == "perplexity"))
    account = accounts.add_account(
        session=session, cipher=cipher, provider="perplexity", name="pplx", api_key="pplx-1234"
    )
    service = session.scalar(select(Service).where(Service.name == "perplexity"))
    assert service is not None and account.service is service
    assert service.display_name == "Perplexity"
