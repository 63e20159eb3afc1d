"""Initial schema: every table of the data model, and the seeded list of services.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 22:11:28.634471
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=160), nullable=False),
        sa.Column("threshold", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('budget', 'projected', 'quota', 'unpriced', 'variance', 'sync', 'anomaly', 'ratelimit')",
            name=op.f("ck_alerts_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "at",
            tracker.models.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)

    op.create_table(
        "cost_projections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scope", sa.String(length=160), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("computed_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actual_to_date", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("projected_total", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("lower_bound", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("upper_bound", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("budget", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("budget_exhausted_on", sa.Date(), nullable=True),
        sa.Column("backtest_mape", sa.Numeric(precision=10, scale=6), nullable=True),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_projections")),
        sa.UniqueConstraint("scope", "month", name="uq_cost_projections_scope_month"),
    )
    op.create_table(
        "preauthorized_emails",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preauthorized_emails")),
        sa.UniqueConstraint("email", name=op.f("uq_preauthorized_emails_email")),
    )
    op.create_table(
        "price_overrides",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("input_price", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("cached_input_price", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("cache_write_price", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("cache_write_1h_price", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("output_price", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("request_price", sa.Numeric(precision=24, scale=12), nullable=True),
        sa.Column("discount_pct", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('price', 'discount')", name=op.f("ck_price_overrides_kind")),
        sa.CheckConstraint(
            "discount_pct IS NULL OR (discount_pct >= 0 AND discount_pct <= 100)",
            name=op.f("ck_price_overrides_discount_range"),
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_price_overrides_valid_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_overrides")),
    )
    with op.batch_alter_table("price_overrides", schema=None) as batch_op:
        batch_op.create_index(
            "ix_price_overrides_provider_model", ["provider", "model"], unique=False
        )

    op.create_table(
        "services",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("has_usage_api", sa.Boolean(), nullable=False),
        sa.Column("monthly_budget", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint("name", name=op.f("uq_services_name")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("failed_login_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'finance', 'viewer')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "service_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("credential_encrypted", sa.Text(), nullable=False),
        sa.Column("credential_last4", sa.String(length=4), nullable=False),
        sa.Column("organization_id", sa.String(length=255), nullable=True),
        sa.Column("base_url", sa.String(length=512), nullable=True),
        sa.Column("monthly_budget", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("token_quota", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_sync_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_complete_day", sa.Date(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rate_limit_snapshot", sa.JSON(), nullable=True),
        sa.Column(
            "rate_limit_updated_at", tracker.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("balance_remaining", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("balance_currency", sa.String(length=8), nullable=True),
        sa.Column("balance_updated_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'error', 'disabled')", name=op.f("ck_accounts_status")
        ),
        sa.CheckConstraint(
            "monthly_budget IS NULL OR monthly_budget >= 0", name=op.f("ck_accounts_budget")
        ),
        sa.CheckConstraint(
            "token_quota IS NULL OR token_quota >= 0", name=op.f("ck_accounts_quota")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_accounts_service_id_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_service_id"), ["service_id"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("fired_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.Column("last_delivery_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_events_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("alert_id", "period", "dedupe_key", name="uq_alert_events_once"),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index("ix_alert_events_delivery_status", ["delivery_status"], unique=False)

    op.create_table(
        "anomalies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("actual_cost", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("baseline_cost", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("score", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("volume_effect", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("mix_effect", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("rate_effect", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("detected_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_anomalies_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint("account_id", "model", "day", name="uq_anomalies_account_model_day"),
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.create_index("ix_anomalies_day", ["day"], unique=False)

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("range_start", sa.Date(), nullable=False),
        sa.Column("range_end", sa.Date(), nullable=False),
        sa.Column("started_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", tracker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("rows_written", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'success', 'failed', 'skipped')",
            name=op.f("ck_sync_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sync_runs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_runs_account_id_started_at", ["account_id", "started_at"], unique=False
        )

    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("api_key_id", sa.String(length=255), nullable=False),
        sa.Column("usage_type", sa.String(length=255), nullable=False),
        sa.Column("service_tier", sa.String(length=64), nullable=False),
        sa.Column("project_name", sa.String(length=255), nullable=True),
        sa.Column("api_key_name", sa.String(length=255), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_1h_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("other_units", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("other_unit_name", sa.String(length=64), nullable=True),
        sa.Column("billed_cost", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("estimated_cost", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cost_source", sa.String(length=16), nullable=False),
        sa.Column("pricing_status", sa.String(length=16), nullable=False),
        sa.Column("synced_at", tracker.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cost_source IN ('billed', 'estimated', 'none')",
            name=op.f("ck_usage_records_cost_source"),
        ),
        sa.CheckConstraint(
            "pricing_status IN ('pending', 'priced', 'approximate', 'unpriced', 'not_applicable')",
            name=op.f("ck_usage_records_pricing_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_usage_records_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint(
            "account_id",
            "day",
            "model",
            "project_id",
            "api_key_id",
            "usage_type",
            "service_tier",
            name="uq_usage_records_natural_key",
        ),
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_records_account_id_day", ["account_id", "day"], unique=False
        )
        batch_op.create_index("ix_usage_records_day", ["day"], unique=False)
        batch_op.create_index("ix_usage_records_day_model", ["day", "model"], unique=False)

    services = sa.table(
        "services",
        sa.column("name", sa.String),
        sa.column("display_name", sa.String),
        sa.column("has_usage_api", sa.Boolean),
    )
    # A frozen copy, not tracker.models.PROVIDERS: a migration must not change when code does.
    op.bulk_insert(
        services,
        [
            {"name": "openai", "display_name": "OpenAI", "has_usage_api": True},
            {"name": "anthropic", "display_name": "Anthropic", "has_usage_api": True},
            {"name": "github_copilot", "display_name": "GitHub Copilot", "has_usage_api": True},
            {"name": "groq", "display_name": "Groq", "has_usage_api": False},
            {"name": "perplexity", "display_name": "Perplexity", "has_usage_api": False},
            {"name": "openrouter", "display_name": "OpenRouter", "has_usage_api": True},
            {"name": "deepseek", "display_name": "DeepSeek", "has_usage_api": True},
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_day_model")
        batch_op.drop_index("ix_usage_records_day")
        batch_op.drop_index("ix_usage_records_account_id_day")

    op.drop_table("usage_records")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_runs_account_id_started_at")

    op.drop_table("sync_runs")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index("ix_anomalies_day")

    op.drop_table("anomalies")
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_events_delivery_status")

    op.drop_table("alert_events")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_service_id"))

    op.drop_table("accounts")
    op.drop_table("users")
    op.drop_table("settings")
    op.drop_table("services")
    with op.batch_alter_table("price_overrides", schema=None) as batch_op:
        batch_op.drop_index("ix_price_overrides_provider_model")

    op.drop_table("price_overrides")
    op.drop_table("preauthorized_emails")
    op.drop_table("cost_projections")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_at")

    op.drop_table("audit_log")
    op.drop_table("alerts")
