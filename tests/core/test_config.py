"""Settings: defaults, validation, development secrets, production refusals."""

from __future__ import annotations

import base64
import stat
from decimal import Decimal

import pytest

from tracker.core.config import load_settings
from tracker.core.errors import ConfigError

GOOD_KEY = base64.urlsafe_b64encode(b"e" * 32).decode()
GOOD_SECRET = "s" * 40


def settings_from(env: dict[str, str], tmp_path):
    return load_settings({"DATA_DIR": str(tmp_path / "data"), **env}, dotenv_path=None)


def test_development_defaults_to_sqlite_and_generates_secrets_once(tmp_path, caplog):
    first = settings_from({}, tmp_path)
    assert first.env == "development"
    assert first.database_url == f"sqlite:///{tmp_path / 'data' / 'tracker.db'}"
    assert len(first.encryption_key) == 32 and len(first.secret_key) >= 32
    key_file = tmp_path / "data" / "encryption_key.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "secret_key.key").stat().st_mode) == 0o600
    assert "ENCRYPTION_KEY was not set" in caplog.text
    second = settings_from({}, tmp_path)
    assert second.encryption_key == first.encryption_key
    assert second.secret_key == first.secret_key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENCRYPTION_KEY": GOOD_KEY}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": GOOD_SECRET}, "ENCRYPTION_KEY is not set"),
        ({"SECRET_KEY": "change-me-" + "x" * 40, "ENCRYPTION_KEY": GOOD_KEY}, "placeholder"),
        ({"SECRET_KEY": GOOD_SECRET, "ENCRYPTION_KEY": "change-me"}, "placeholder"),
        ({"SECRET_KEY": "short", "ENCRYPTION_KEY": GOOD_KEY}, "at least 32 bytes"),
    ],
)
def test_production_refuses_missing_or_placeholder_secrets(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        settings_from({"TRACKER_ENV": "production", **env}, tmp_path)
    assert not (tmp_path / "data" / "encryption_key.key").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENCRYPTION_KEY": "not-base64!"}, "url-safe base64"),
        ({"ENCRYPTION_KEY": base64.urlsafe_b64encode(b"short").decode()}, "32 random bytes"),
        ({"DATABASE_URL": "nonsense"}, "not a valid database URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "only sqlite and postgresql"),
        ({"TRACKER_ENV": "staging"}, "TRACKER_ENV"),
        ({"SYNC_INTERVAL_MINUTES": "soon"}, "whole number"),
        ({"SMTP_SECURITY": "tls13"}, "SMTP_SECURITY"),
        ({"STATUS_WARNING_PCT": "95"}, "below STATUS_CRITICAL_PCT"),
    ],
)
def test_invalid_values_are_named(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        settings_from({"SECRET_KEY": GOOD_SECRET, **env}, tmp_path)


def test_production_with_real_secrets_and_repr_hides_them(tmp_path):
    settings = settings_from(
        {
            "TRACKER_ENV": "production",
            "ENCRYPTION_KEY": GOOD_KEY,
            "SECRET_KEY": GOOD_SECRET,
            "DATABASE_URL": "postgresql+psycopg2://tracker:hunter22@db:5432/tracker",
            "SMTP_PASSWORD": "smtp-pass-123",
            "STATUS_WARNING_PCT": "60",
        },
        tmp_path,
    )
    assert settings.is_production and settings.status_warning_pct == Decimal("60")
    text = repr(settings)
    for secret in (GOOD_KEY, GOOD_SECRET, "hunter22", "smtp-pass-123"):
        assert secret not in text
    assert "hunter22" not in settings.database_url_safe


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"SECRET_KEY={GOOD_SECRET}\nBACKFILL_DAYS=30\nRESYNC_WINDOW_DAYS=5\n")
    settings = load_settings(
        {"DATA_DIR": str(tmp_path / "d"), "BACKFILL_DAYS": "10"}, dotenv_path=dotenv
    )
    assert settings.secret_key == GOOD_SECRET
    assert settings.backfill_days == 10 and settings.resync_window_days == 5


def test_sign_in_settings_default_and_validate(tmp_path):
    settings = settings_from({}, tmp_path)
    assert (settings.session_idle_minutes, settings.session_max_hours) == (60, 12)
    assert settings.public_url is None and settings.link_base == "http://localhost:8501"
    assert settings.password_sign_in
    assert not settings.sso_enabled
    custom = settings_from(
        {"PUBLIC_URL": "https://costs.example.com/", "PASSWORD_SIGN_IN": "off"}, tmp_path
    )
    assert custom.public_url == "https://costs.example.com" and not custom.password_sign_in
    with pytest.raises(ConfigError, match="PUBLIC_URL must be the address people open"):
        settings_from({"PUBLIC_URL": "costs.example.com"}, tmp_path)
    with pytest.raises(ConfigError, match="PASSWORD_SIGN_IN must be true or false"):
        settings_from({"PASSWORD_SIGN_IN": "maybe"}, tmp_path)


def test_single_sign_on_needs_all_three_settings_and_https(tmp_path):
    with pytest.raises(ConfigError, match="set OIDC_CLIENT_ID, OIDC_CLIENT_SECRET as well"):
        settings_from({"OIDC_METADATA_URL": "https://idp.example.com/.well-known/x"}, tmp_path)
    full = {"OIDC_CLIENT_ID": "tracker", "OIDC_CLIENT_SECRET": "s3cret-value"}
    with pytest.raises(ConfigError, match="must use https://"):
        settings_from({**full, "OIDC_METADATA_URL": "http://idp.example.com/x"}, tmp_path)
    ok = settings_from({**full, "OIDC_METADATA_URL": "http://127.0.0.1:9000/x"}, tmp_path)
    assert ok.sso_enabled and "s3cret-value" not in repr(ok)


def test_bad_dotenv_and_log_level_are_one_line_errors(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"SECRET_KEY=caf\xe9-not-utf8\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xe9"):
        load_settings({"DATA_DIR": str(tmp_path / "d")}, dotenv_path=dotenv)
    with pytest.raises(ConfigError, match="LOG_LEVEL must be one of DEBUG, INFO"):
        settings_from({"LOG_LEVEL": "verbose"}, tmp_path)


PG = "postgresql+psycopg2://tracker:pw@db:5432/tracker"


def test_a_read_replica_is_a_postgresql_standby_of_a_postgresql_primary(tmp_path):
    plain = settings_from({"DATABASE_URL": PG}, tmp_path)
    assert plain.database_replica_url is None and plain.replica_max_lag_seconds == 60
    replica = "postgresql+psycopg2://tracker:hunter22@standby:5432/tracker"
    settings = settings_from(
        {"DATABASE_URL": PG, "DATABASE_REPLICA_URL": replica, "REPLICA_MAX_LAG_SECONDS": "5"},
        tmp_path,
    )
    assert settings.database_replica_url == replica and settings.replica_max_lag_seconds == 5
    assert "hunter22" not in repr(settings)
    for env, message in [
        ({"DATABASE_REPLICA_URL": "nonsense"}, "DATABASE_REPLICA_URL is not a valid"),
        ({"DATABASE_REPLICA_URL": "sqlite:///copy.db"}, "must be a PostgreSQL standby"),
        ({"DATABASE_REPLICA_URL": PG}, "is DATABASE_URL itself"),
        ({"DATABASE_REPLICA_URL": replica, "REPLICA_MAX_LAG_SECONDS": "0"}, "at least 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            settings_from({"DATABASE_URL": PG, **env}, tmp_path)
    with pytest.raises(ConfigError, match="needs DATABASE_URL to be PostgreSQL"):
        settings_from({"DATABASE_REPLICA_URL": replica}, tmp_path)
