"""What a process needs to work: settings, engines, session factories and credential cipher."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tracker.core.config import Settings
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_engine, make_session_factory
from tracker.core.replica import CONNECT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine  # the primary: every write, and every read that must see its own write
    session_factory: sessionmaker[Session]
    cipher: CredentialCipher
    # The read replica (DATABASE_REPLICA_URL), when there is one: only the app's cached
    # figures and its exports read from it (`tracker.ui.data`).
    replica_engine: Engine | None = None
    replica_session_factory: sessionmaker[Session] | None = None


def build_runtime(settings: Settings) -> Runtime:
    """Create the engines and cipher from settings; connects lazily."""
    engine = make_engine(settings.database_url)
    replica = (
        make_engine(
            settings.database_replica_url,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        if settings.database_replica_url
        else None
    )
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        cipher=CredentialCipher(settings.encryption_key, settings.encryption_key_previous),
        replica_engine=replica,
        replica_session_factory=make_session_factory(replica) if replica is not None else None,
    )
