"""AI bought through a cloud (Amazon Bedrock, Azure OpenAI, Google Vertex AI): no API to call.

Their spend is in the cloud bill, which the tracker reads from the bill's FOCUS export
(`tracker.ingest.focus_import`, `python -m tracker import-focus`). These accounts take no key,
so the sync skips them; the connectors exist so that the registry, the Accounts page and the
CLI treat them like every other provider, and say what to do if asked to test one.
"""

from __future__ import annotations

from typing import ClassVar

from tracker.providers.base import Connector, ProviderNotSupported
from tracker.providers.registry import display_name


class CloudBillConnector(Connector):
    """A provider whose usage comes only from its cloud's FOCUS export."""

    def auth_headers(self) -> dict[str, str]:
        return {}

    def test(self) -> str:
        raise ProviderNotSupported(
            f"{display_name(self.provider)} has no API for the tracker to call: import the "
            "cloud bill's FOCUS export into this account instead"
        )


class BedrockBill(CloudBillConnector):
    provider: ClassVar[str] = "aws_bedrock"
    default_base_url: ClassVar[str] = "https://bedrock.us-east-1.amazonaws.com"


class AzureOpenAIBill(CloudBillConnector):
    provider: ClassVar[str] = "azure_openai"
    default_base_url: ClassVar[str] = "https://management.azure.com"


class VertexBill(CloudBillConnector):
    provider: ClassVar[str] = "google_vertex"
    default_base_url: ClassVar[str] = "https://aiplatform.googleapis.com"
