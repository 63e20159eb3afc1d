"""Provider connectors, one module each, found by provider name."""

from __future__ import annotations

import importlib

from tracker.core.errors import InvalidInput
from tracker.providers.base import Connector

# provider name -> "module:Class"; imported on first use so one broken module cannot stop others.
CONNECTORS: dict[str, str] = {
    "openai": "tracker.providers.openai:OpenAIConnector",
    "anthropic": "tracker.providers.anthropic:AnthropicConnector",
    "github_copilot": "tracker.providers.github_copilot:CopilotConnector",
    "groq": "tracker.providers.openai_compatible:GroqConnector",
    "perplexity": "tracker.providers.openai_compatible:PerplexityConnector",
    "openrouter": "tracker.providers.openrouter:OpenRouterConnector",
    "deepseek": "tracker.providers.deepseek:DeepSeekConnector",
}


def connector_class(provider: str) -> type[Connector]:
    """The connector class for a provider name."""
    try:
        module_name, class_name = CONNECTORS[provider].split(":")
    except KeyError:
        raise InvalidInput(
            f"unknown provider {provider!r}; choose one of {', '.join(CONNECTORS)}"
        ) from None
    cls: type[Connector] = getattr(importlib.import_module(module_name), class_name)
    return cls
