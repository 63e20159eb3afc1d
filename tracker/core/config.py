"""Settings: the one object app, worker and CLI read from the environment (and `.env`).

Read once at the edge (`load_settings()`), then passed down; nothing in `tracker/` reads
`os.environ` on its own. In development, missing secrets are generated once into the data
folder; in production a missing or placeholder secret stops start-up.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tracker.core.errors import ConfigError

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "production")
SMTP_SECURITY = ("starttls", "ssl", "none")
MIN_SECRET_KEY_BYTES = 32
# Values people leave in from .env.example or tutorials; never acceptable as a real secret.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "replace-me", "placeholder", "example", "xxxx")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
Getter = Callable[[str], "str | None"]
GENERATE_KEY_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Secrets are excluded from repr."""

    env: str
    data_dir: Path
    database_url: str = field(repr=False)
    encryption_key: bytes = field(repr=False)
    encryption_key_previous: bytes | None = field(repr=False)
    secret_key: str = field(repr=False)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_security: str = "starttls"
    smtp_timeout_seconds: float = 20.0
    sync_interval_minutes: int = 60
    resync_window_days: int = 3
    backfill_days: int = 90
    http_timeout_seconds: float = 30.0
    # The largest usage CSV the app accepts (the CLI streams files of any size).
    import_max_megabytes: int = 200
    # What one account's sync pass may take, retries and waits included.
    sync_account_budget_seconds: float = 60.0
    http_max_retries: int = 5
    http_backoff_factor: float = 1.0
    http_backoff_max_seconds: float = 60.0
    status_warning_pct: Decimal = Decimal("75")
    status_critical_pct: Decimal = Decimal("90")
    log_level: str = "INFO"
    # Sign-in (tracker.identity): a session ends after this long idle, or this long at most.
    session_idle_minutes: int = 60
    session_max_hours: int = 12
    # Where people reach the app; invitation, reset and setup links start with it. Unset:
    # the app uses its own port on localhost (`tracker.ui.web.public_url`), the CLI 8501.
    public_url: str | None = None
    password_sign_in: bool = True
    # Base URLs off a provider's own host (gateways, proxies) receive its key: opt in.
    allow_custom_base_urls: bool = False
    # Budgets and alert rules: set by admin and finance, or (true) by admins only.
    budgets_admin_only: bool = False
    # How far (percent of the invoice) an invoice may be from the synced billed total and
    # still count as "within tolerance" (`tracker.costs.invoices`).
    invoice_tolerance_pct: Decimal = Decimal("1")
    invite_valid_days: int = 7
    reset_valid_hours: int = 24
    # Single sign-on over OpenID Connect; off unless the discovery URL and client are set.
    oidc_metadata_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_label: str = "single sign-on"
    oidc_groups_claim: str = "groups"
    # A streaming standby of DATABASE_URL for the app's cached, read-only figures
    # (`tracker.core.replica`); past this lag the page says how far behind they may be.
    database_replica_url: str | None = field(default=None, repr=False)
    replica_max_lag_seconds: int = 60

    @property
    def link_base(self) -> str:
        return self.public_url or "http://localhost:8501"

    @property
    def sso_enabled(self) -> bool:
        return bool(self.oidc_metadata_url and self.oidc_client_id)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def database_url_safe(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return safe_url(self.database_url)


def safe_url(url: str) -> str:
    """Render a database URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def load_settings(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Read and validate settings; the process environment wins over the `.env` file."""
    values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        try:
            found = dotenv_values(dotenv_path)
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{dotenv_path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                f"position {exc.start}); save it as UTF-8"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {dotenv_path}: {exc.strerror or exc}") from None
        values.update({k: v for k, v in found.items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        raw = values.get(name)
        return raw.strip() if raw is not None and raw.strip() != "" else None

    env = (get("TRACKER_ENV") or "development").lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"TRACKER_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    production = env == "production"

    data_dir = Path(get("DATA_DIR") or "data").resolve()
    database_url = get("DATABASE_URL") or f"sqlite:///{data_dir / 'tracker.db'}"
    _validate_database_url(database_url)
    database_replica_url = _replica_url(get("DATABASE_REPLICA_URL"), database_url)

    encryption_key = _decode_encryption_key(
        "ENCRYPTION_KEY",
        get("ENCRYPTION_KEY") or _dev_secret(production, data_dir, "ENCRYPTION_KEY"),
    )
    previous_raw = get("ENCRYPTION_KEY_PREVIOUS")
    encryption_key_previous = (
        _decode_encryption_key("ENCRYPTION_KEY_PREVIOUS", previous_raw) if previous_raw else None
    )
    secret_key = get("SECRET_KEY") or _dev_secret(production, data_dir, "SECRET_KEY")
    _check_not_placeholder("SECRET_KEY", secret_key)
    if len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(
            f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes; generate one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )

    smtp_security = (get("SMTP_SECURITY") or "starttls").lower()
    if smtp_security not in SMTP_SECURITY:
        raise ConfigError(f"SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY)}")

    status_warning = _decimal(get, "STATUS_WARNING_PCT", "75")
    status_critical = _decimal(get, "STATUS_CRITICAL_PCT", "90")
    if not Decimal(0) < status_warning < status_critical:
        raise ConfigError("STATUS_WARNING_PCT must be above 0 and below STATUS_CRITICAL_PCT")
    invoice_tolerance = _decimal(get, "INVOICE_TOLERANCE_PCT", "1")
    if invoice_tolerance > 100:
        raise ConfigError("INVOICE_TOLERANCE_PCT must be a percentage from 0 to 100")

    return Settings(
        env=env,
        data_dir=data_dir,
        database_url=database_url,
        encryption_key=encryption_key,
        encryption_key_previous=encryption_key_previous,
        secret_key=secret_key,
        smtp_host=get("SMTP_HOST"),
        smtp_port=_int(get, "SMTP_PORT", 587, minimum=1),
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=get("SMTP_PASSWORD"),
        smtp_from=get("SMTP_FROM"),
        smtp_security=smtp_security,
        smtp_timeout_seconds=float(_int(get, "SMTP_TIMEOUT_SECONDS", 20, minimum=1)),
        sync_interval_minutes=_int(get, "SYNC_INTERVAL_MINUTES", 60, minimum=1),
        resync_window_days=_int(get, "RESYNC_WINDOW_DAYS", 3, minimum=0),
        backfill_days=_int(get, "BACKFILL_DAYS", 90, minimum=1),
        http_timeout_seconds=float(_int(get, "HTTP_TIMEOUT_SECONDS", 30, minimum=1)),
        import_max_megabytes=_int(get, "IMPORT_MAX_MEGABYTES", 200, minimum=1),
        sync_account_budget_seconds=float(_int(get, "SYNC_ACCOUNT_BUDGET_SECONDS", 60, minimum=1)),
        http_max_retries=_int(get, "HTTP_MAX_RETRIES", 5, minimum=0),
        http_backoff_factor=float(_decimal(get, "HTTP_BACKOFF_FACTOR", "1.0")),
        http_backoff_max_seconds=float(_int(get, "HTTP_BACKOFF_MAX_SECONDS", 60, minimum=1)),
        status_warning_pct=status_warning,
        status_critical_pct=status_critical,
        log_level=_log_level(get("LOG_LEVEL")),
        session_idle_minutes=_int(get, "SESSION_IDLE_MINUTES", 60, minimum=1),
        session_max_hours=_int(get, "SESSION_MAX_HOURS", 12, minimum=1),
        public_url=_public_url(get("PUBLIC_URL")),
        password_sign_in=_bool(get, "PASSWORD_SIGN_IN", default=True),
        allow_custom_base_urls=_bool(get, "ALLOW_CUSTOM_BASE_URLS", default=False),
        budgets_admin_only=_bool(get, "BUDGETS_ADMIN_ONLY", default=False),
        invoice_tolerance_pct=invoice_tolerance,
        invite_valid_days=_int(get, "INVITE_VALID_DAYS", 7, minimum=1),
        reset_valid_hours=_int(get, "RESET_VALID_HOURS", 24, minimum=1),
        oidc_metadata_url=_check_oidc(get),
        oidc_client_id=get("OIDC_CLIENT_ID"),
        oidc_client_secret=get("OIDC_CLIENT_SECRET"),
        oidc_label=get("OIDC_LABEL") or "single sign-on",
        oidc_groups_claim=get("OIDC_GROUPS_CLAIM") or "groups",
        database_replica_url=database_replica_url,
        replica_max_lag_seconds=_int(get, "REPLICA_MAX_LAG_SECONDS", 60, minimum=1),
    )


def _public_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"PUBLIC_URL must be the address people open, like https://costs.example.com, "
            f"not {raw!r}"
        )
    return raw.rstrip("/")


def _check_oidc(get: Getter) -> str | None:
    """Single sign-on needs all of discovery URL, client id and secret, or none; the URL."""
    fields = {
        "oidc_metadata_url": get("OIDC_METADATA_URL"),
        "oidc_client_id": get("OIDC_CLIENT_ID"),
        "oidc_client_secret": get("OIDC_CLIENT_SECRET"),
    }
    given = [name for name, value in fields.items() if value]
    if given and len(given) < len(fields):
        missing = ", ".join(n.upper() for n, v in fields.items() if not v)
        raise ConfigError(f"single sign-on is half configured: set {missing} as well")
    url = fields["oidc_metadata_url"]
    if url and urlparse(url).scheme != "https" and urlparse(url).hostname not in LOOPBACK:
        raise ConfigError("OIDC_METADATA_URL must use https:// (http:// only on this machine)")
    return url


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str | None) -> str:
    level = (raw or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}")
    return level


def _bool(get: Getter, name: str, *, default: bool) -> bool:
    raw = get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _validate_database_url(url: str, name: str = "DATABASE_URL") -> str:
    """Check a database URL; return its backend's name."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"{name} is not a valid database URL; expected sqlite:///path/to/file.db "
            "or postgresql+psycopg2://user:password@host:5432/dbname"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"{name} uses {parsed.get_backend_name()!r}; only sqlite and postgresql are supported"
        )
    return parsed.get_backend_name()


def _replica_url(raw: str | None, database_url: str) -> str | None:
    """DATABASE_REPLICA_URL: a PostgreSQL standby of a PostgreSQL DATABASE_URL, or unset."""
    if raw is None:
        return None
    if _validate_database_url(raw, "DATABASE_REPLICA_URL") != "postgresql":
        raise ConfigError(
            "DATABASE_REPLICA_URL must be a PostgreSQL standby "
            "(postgresql+psycopg2://user:password@replica-host:5432/dbname)"
        )
    if make_url(database_url).get_backend_name() != "postgresql":
        raise ConfigError(
            "DATABASE_REPLICA_URL needs DATABASE_URL to be PostgreSQL (the standby's primary); "
            "unset it with SQLite"
        )
    if make_url(raw) == make_url(database_url):
        raise ConfigError(
            "DATABASE_REPLICA_URL is DATABASE_URL itself; point it at a streaming standby of "
            "that database, or leave it unset"
        )
    return raw


def _decode_encryption_key(name: str, raw: str) -> bytes:
    _check_not_placeholder(name, raw)
    try:
        key = base64.urlsafe_b64decode(raw.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != 32:
        raise ConfigError(
            f"{name} must be 32 random bytes in url-safe base64 (44 characters); "
            + GENERATE_KEY_HINT
        )
    return key


def _check_not_placeholder(name: str, value: str) -> None:
    lowered = value.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        raise ConfigError(f"{name} still holds a placeholder value; set a real secret")


def _dev_secret(production: bool, data_dir: Path, name: str) -> str:
    """Return a secret generated once into the data folder (development only)."""
    if production:
        raise ConfigError(
            f"{name} is not set; TRACKER_ENV=production requires it "
            + ("(" + GENERATE_KEY_HINT + ")" if name == "ENCRYPTION_KEY" else "(48+ random chars)")
        )
    path = data_dir / f"{name.lower()}.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets and the database live here
    if name == "ENCRYPTION_KEY":
        value = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    else:
        value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (app or worker) generated it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    log.warning(
        "%s was not set: generated one into %s (development only%s)",
        name,
        path,
        "; back it up: stored credentials cannot be read without it"
        if name == "ENCRYPTION_KEY"
        else "",
    )
    return value


def _int(get: Getter, name: str, default: int, *, minimum: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _decimal(get: Getter, name: str, default: str) -> Decimal:
    raw = get(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{name} must be a non-negative number")
    return value
