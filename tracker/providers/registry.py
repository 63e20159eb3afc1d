"""The one provider registry: every fact about a provider the rest of the tracker reads.

Adding a provider is this entry plus its connector module (docs/architecture.md); the
`services` table row is created from the entry the first time an account or a budget names
the provider (`ensure_service`), so no migration is needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.models import Service

if TYPE_CHECKING:
    from tracker.providers.base import Connector


@dataclass(frozen=True)
class ProviderInfo:
    id: str  # our name: CLI choices, scopes (service:ID), the services table
    display_name: str
    connector: str  # "module:Class", imported on first use so one broken module stops no other
    # False: the provider has no usage API; usage comes by CSV import and a sync checks the key.
    has_usage_api: bool
    # The organisation (or login) is required to reach the usage API.
    needs_organization: bool = False
    # Usage only by CSV import: an account needs no key, and one without a key is never
    # synced (with a key, the sync checks it and records its rate limits).
    csv_only: bool = False
    # What key to paste, shown beside the key field.
    key_hint: str = "An API key of the account. Stored encrypted."
    # The provider's id in the genai-prices catalog, where it differs from ours.
    catalog_id: str | None = None
    # Usage comes from a cloud bill's FOCUS export (`tracker.ingest.focus_import`): the
    # values of its ProviderName (FOCUS 1.0-1.2) / ServiceProviderName (1.3+) column that
    # belong to this provider. Such an account takes no key.
    focus_provider_names: tuple[str, ...] = ()

    @property
    def focus_import(self) -> bool:
        """Whether the account's usage comes from a cloud bill's FOCUS export."""
        return bool(self.focus_provider_names)


_CLOUD_BILL_HINT = (
    "No key: its usage comes from the {cloud} bill, imported from the bill's FOCUS export."
)

PROVIDERS: dict[str, ProviderInfo] = {
    p.id: p
    for p in (
        ProviderInfo(
            "openai",
            "OpenAI",
            "tracker.providers.openai:OpenAIConnector",
            has_usage_api=True,
            key_hint="An admin key (sk-admin-…): the usage and costs APIs need one.",
        ),
        ProviderInfo(
            "anthropic",
            "Anthropic",
            "tracker.providers.anthropic:AnthropicConnector",
            has_usage_api=True,
            key_hint="An Admin API key (sk-ant-admin…): the usage and cost reports need one.",
        ),
        ProviderInfo(
            "github_copilot",
            "GitHub Copilot",
            "tracker.providers.github_copilot:CopilotConnector",
            has_usage_api=True,
            needs_organization=True,
            key_hint="A token that may read the organisation's Copilot billing.",
            catalog_id="github-copilot",
        ),
        ProviderInfo(
            "groq",
            "Groq",
            "tracker.providers.openai_compatible:GroqConnector",
            has_usage_api=False,
            csv_only=True,
            key_hint="Optional: usage comes by CSV import; a key only adds rate-limit readings.",
        ),
        ProviderInfo(
            "perplexity",
            "Perplexity",
            "tracker.providers.openai_compatible:PerplexityConnector",
            has_usage_api=False,
            csv_only=True,
            key_hint="Optional: usage comes by CSV import; a key only adds rate-limit readings.",
        ),
        ProviderInfo(
            "openrouter",
            "OpenRouter",
            "tracker.providers.openrouter:OpenRouterConnector",
            has_usage_api=True,
        ),
        # The balance only: DeepSeek publishes no usage API.
        ProviderInfo(
            "deepseek",
            "DeepSeek",
            "tracker.providers.deepseek:DeepSeekConnector",
            has_usage_api=False,
        ),
        ProviderInfo(
            "cursor",
            "Cursor",
            "tracker.providers.cursor:CursorConnector",
            has_usage_api=True,
            key_hint="A team Admin API key (key_…): Cursor dashboard > Settings > Advanced > "
            "Admin API Keys.",
        ),
        ProviderInfo(
            "xai",
            "xAI",
            "tracker.providers.xai:XAIConnector",
            has_usage_api=True,
            needs_organization=True,
            key_hint="A management key (xAI Console > Settings > Management Keys) with billing "
            "read access; the organization is the team id.",
        ),
        ProviderInfo(
            "mistral",
            "Mistral",
            "tracker.providers.mistral:MistralConnector",
            has_usage_api=True,
            key_hint="An Admin API key (Mistral Admin Panel, Enterprise plans; a standard API "
            "key does not work).",
        ),
        # AI bought through a cloud: the cloud bill's FOCUS export is the source.
        ProviderInfo(
            "aws_bedrock",
            "Amazon Bedrock",
            "tracker.providers.cloud_bills:BedrockBill",
            has_usage_api=False,
            csv_only=True,
            key_hint=_CLOUD_BILL_HINT.format(cloud="AWS"),
            catalog_id="aws",
            focus_provider_names=("AWS", "Amazon Web Services"),
        ),
        ProviderInfo(
            "azure_openai",
            "Azure OpenAI",
            "tracker.providers.cloud_bills:AzureOpenAIBill",
            has_usage_api=False,
            csv_only=True,
            key_hint=_CLOUD_BILL_HINT.format(cloud="Azure"),
            catalog_id="azure",
            focus_provider_names=("Microsoft", "Microsoft Azure", "Azure"),
        ),
        ProviderInfo(
            "google_vertex",
            "Google Vertex AI",
            "tracker.providers.cloud_bills:VertexBill",
            has_usage_api=False,
            csv_only=True,
            key_hint=_CLOUD_BILL_HINT.format(cloud="Google Cloud"),
            catalog_id="google",
            focus_provider_names=("Google Cloud", "Google", "Google Cloud Platform"),
        ),
    )
}


def provider_info(provider: str) -> ProviderInfo:
    """The registry entry of a provider id; a clear error for an unknown one."""
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise InvalidInput(
            f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}"
        ) from None


def display_name(provider: str) -> str:
    """A provider's display name (the id itself for one the registry does not know)."""
    info = PROVIDERS.get(provider)
    return info.display_name if info else provider


def connector_class(provider: str) -> type[Connector]:
    """The connector class for a provider id."""
    module_name, class_name = provider_info(provider).connector.split(":")
    cls: type[Connector] = getattr(importlib.import_module(module_name), class_name)
    return cls


def ensure_service(session: Session, provider: str) -> Service:
    """The provider's `services` row, created from the registry if it is not there yet."""
    info = provider_info(provider)
    service = session.scalar(select(Service).where(Service.name == info.id))
    if service is None:
        service = Service(name=info.id, display_name=info.display_name)
        session.add(service)
        session.flush()
    elif service.display_name != info.display_name:
        service.display_name = info.display_name
    return service
