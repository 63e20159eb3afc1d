"""The sync tests' fake provider server and runtime, for closing a synced month."""

from tests.ingest.conftest import runtime, server  # noqa: F401 (fixtures shared with ingest)
