"""Providers with an OpenAI-compatible API but no usage API: Groq and Perplexity.

The credential is checked with `GET /models` (costs no tokens); the call's `x-ratelimit-*`
headers become the account's rate-limit snapshot. Usage comes in by CSV import
(`python -m tracker import --account NAME FILE.csv`, see docs/csv-import.md).
"""

from __future__ import annotations

from typing import ClassVar

from tracker.providers.base import Connector, ProviderResponseError


class OpenAICompatibleConnector(Connector):
    """A key check against `/models`; no usage API."""

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.reveal()}"}

    def test(self) -> str:
        """List the models the key may use."""
        try:
            body = self.get_json("/models")
        except ProviderResponseError as exc:
            if exc.status == 404:
                raise ProviderResponseError(
                    f"{self.provider}: no /models at {self.base_url}; check the base URL",
                    status=404,
                ) from None
            raise
        models = body.get("data") if isinstance(body, dict) else body
        count = len(models) if isinstance(models, list) else 0
        return f"key accepted; {count} model(s) available; usage comes in by CSV import"


class GroqConnector(OpenAICompatibleConnector):
    provider: ClassVar[str] = "groq"
    default_base_url: ClassVar[str] = "https://api.groq.com/openai/v1"


class PerplexityConnector(OpenAICompatibleConnector):
    provider: ClassVar[str] = "perplexity"
    default_base_url: ClassVar[str] = "https://api.perplexity.ai"
