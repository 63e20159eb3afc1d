"""What a process needs to work: settings, engine, session factory and credential cipher."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tracker.core.config import Settings
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_engine, make_session_factory


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    cipher: CredentialCipher


def build_runtime(settings: Settings) -> Runtime:
    """Create the engine and cipher from settings; connects lazily."""
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        cipher=CredentialCipher(settings.encryption_key, settings.encryption_key_previous),
    )
