"""The data model: SQLAlchemy 2.0 typed models shared by app, worker and CLI.

Money is `Decimal` in `NUMERIC(18, 6)`; token counts are `BIGINT`; timestamps are UTC and
timezone-aware on both PostgreSQL and SQLite. Every natural key has a named unique constraint
so that re-syncs upsert instead of duplicating. Schema changes go through Alembic
(`tracker/migrations/`), never `create_all` in the product.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

# Re-exported: tables elsewhere and the migrations name them as tracker.models.*.
from tracker.models.base import ID as ID
from tracker.models.base import MONEY as MONEY
from tracker.models.base import UNIT_PRICE as UNIT_PRICE
from tracker.models.base import Base as Base
from tracker.models.base import UTCDateTime as UTCDateTime
from tracker.models.base import utcnow as utcnow
from tracker.models.usage_kinds import TOKEN_COLUMNS as TOKEN_COLUMNS
from tracker.models.usage_kinds import all_tokens as all_tokens

# What makes a usage row one row: the unique constraint, the bulk writer's ON CONFLICT and
# the merging of rows within one sync all read this.
USAGE_NATURAL_KEY = (
    "account_id",
    "day",
    "model",
    "project_id",
    "api_key_id",
    "user_id",
    "usage_type",
    "service_tier",
)


# `usage_type` of rows that came from a CSV import: a sync never deletes them, and a synced
# bill never covers them (`tracker.costs.spend`).
IMPORT_USAGE_TYPE = "import"
# `usage_type` (and `focus:` prefix) of the rows a cloud bill's FOCUS export brings in.
FOCUS_USAGE_TYPE = "focus"

# The `usage_type` prefix of a provider's billed line item (`cost:<line item>`): written by the
# connectors, split over usage by `tracker.costs.allocate`, exported as its own FOCUS charge.
LINE_ITEM = "cost:"


class Role(StrEnum):
    """A dashboard user's role; what each may do is `tracker.ui.roles`."""

    ADMIN = "admin"
    FINANCE = "finance"
    VIEWER = "viewer"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    ERROR = "error"  # the last sync or test was refused (401/403, unreadable key)
    DISABLED = "disabled"


class CostSource(StrEnum):
    """Which amount of a usage row counts; the rule and its meanings: `tracker.costs.spend`."""

    BILLED = "billed"
    ESTIMATED = "estimated"
    COVERED = "covered"
    NONE = "none"


class AllocationMethod(StrEnum):
    """How a row's allocated cost was found (`tracker.costs.allocate`)."""

    EXACT = "exact"  # the bill named this row alone
    PROPORTIONAL_ESTIMATE = "proportional_estimate"  # split by list-price estimates
    PROPORTIONAL_TOKENS = "proportional_tokens"  # split by tokens (no estimate to go by)
    UNALLOCATED = "unallocated"  # a billed line no usage row matched: it counts itself


class PricingStatus(StrEnum):
    PENDING = "pending"
    PRICED = "priced"
    APPROXIMATE = "approximate"
    UNPRICED = "unpriced"
    NOT_APPLICABLE = "not_applicable"


class SyncStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # its process died mid-run; nothing of it was committed


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The single-sign-on identity linked at the first sign-on ("issuer|subject"); later
    # sign-ons must come from it, not merely from the same email.
    sso_subject: Mapped[str | None] = mapped_column(String(512), unique=True)

    __table_args__ = (CheckConstraint("role IN ('admin', 'finance', 'viewer')", name="role"),)


class Service(Base):
    """One row per provider, made from the registry (`tracker.providers.registry`)."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    monthly_budget: Mapped[Decimal | None]

    accounts: Mapped[list[Account]] = relationship(back_populates="service")

    def __repr__(self) -> str:
        return f"Service({self.name!r})"


class Account(Base):
    """A connected provider account; the credential is stored encrypted only."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    credential_encrypted: Mapped[str] = mapped_column(Text)
    credential_last4: Mapped[str] = mapped_column(String(4))
    organization_id: Mapped[str | None]
    # Which provider organisation the key reads (`Connector.organization_key`); one account
    # per organisation, or its spend would count twice.
    organization_key: Mapped[str | None] = mapped_column(String(255), index=True)
    base_url: Mapped[str | None] = mapped_column(String(512))
    monthly_budget: Mapped[Decimal | None]
    token_quota: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default="active")
    last_sync_at: Mapped[dt.datetime | None]
    last_complete_day: Mapped[dt.date | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None]
    rate_limit_snapshot: Mapped[dict[str, Any] | None]
    rate_limit_updated_at: Mapped[dt.datetime | None]
    balance_remaining: Mapped[Decimal | None]
    balance_currency: Mapped[str | None] = mapped_column(String(8))
    balance_updated_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    service: Mapped[Service] = relationship(back_populates="accounts", lazy="joined")

    __table_args__ = (
        CheckConstraint("status IN ('active', 'error', 'disabled')", name="status"),
        CheckConstraint("monthly_budget IS NULL OR monthly_budget >= 0", name="budget"),
        CheckConstraint("token_quota IS NULL OR token_quota >= 0", name="quota"),
    )

    @property
    def provider(self) -> str:
        return self.service.name

    @property
    def masked_key(self) -> str:
        if not self.credential_encrypted:
            return "no key"  # a CSV-only account (tracker.providers.registry)
        return f"…{self.credential_last4}" if self.credential_last4 else "…"

    @property
    def has_key(self) -> bool:
        return bool(self.credential_encrypted)

    def __repr__(self) -> str:
        return f"Account(id={self.id}, name={self.name!r}, key={self.masked_key!r})"


class UsageRecord(Base):
    """Daily grain: one row per account, UTC day, model, project, key, user, line item and tier.

    Dimension columns are '' rather than NULL when a provider does not report them, so the
    natural-key unique constraint holds (NULLs never collide in a unique index).
    Token columns: `input_tokens` is uncached input only; cache reads and writes are apart;
    `usage_details` holds their audio and image parts and the units priced per unit.
    """

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    day: Mapped[dt.date]
    model: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), default="")
    api_key_id: Mapped[str] = mapped_column(String(255), default="")
    # The provider's user (OpenAI's `user_id`); '' where the provider reports none.
    user_id: Mapped[str] = mapped_column(String(255), default="")
    usage_type: Mapped[str] = mapped_column(String(255), default="")
    service_tier: Mapped[str] = mapped_column(String(64), default="")
    project_name: Mapped[str | None]
    api_key_name: Mapped[str | None]
    user_name: Mapped[str | None]
    input_tokens: Mapped[int] = mapped_column(default=0)
    cached_input_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_1h_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    requests: Mapped[int] = mapped_column(default=0)
    other_units: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    other_unit_name: Mapped[str | None] = mapped_column(String(64))
    # Token parts and units beside the columns (`tracker.models.usage_kinds`); NULL: none.
    usage_details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    billed_cost: Mapped[Decimal | None]
    # The provider's own list-price amount (before negotiated discounts) for a billed row,
    # where it reports one (Anthropic's analytics `list_amount`); NULL otherwise.
    list_cost: Mapped[Decimal | None]
    estimated_cost: Mapped[Decimal | None]
    # A covered row's share of the day's billed line items (`tracker.costs.allocate`), and how
    # it was worked out (`AllocationMethod`).
    allocated_cost: Mapped[Decimal | None]
    allocation_method: Mapped[str | None] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    cost_source: Mapped[str] = mapped_column(String(16), default="none")
    pricing_status: Mapped[str] = mapped_column(String(16), default="pending")
    synced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(lazy="raise")

    __table_args__ = (
        UniqueConstraint(*USAGE_NATURAL_KEY, name="uq_usage_records_natural_key"),
        # On PostgreSQL the table's pages are filled to 70 % (migration 0007): re-synced rows
        # then update in place (HOT) instead of adding an entry to every index.
        Index("ix_usage_records_account_id_day", "account_id", "day"),
        Index("ix_usage_records_day_model", "day", "model"),
        CheckConstraint(
            "cost_source IN ('billed', 'estimated', 'covered', 'none')", name="cost_source"
        ),
        CheckConstraint(
            "pricing_status IN ('pending', 'priced', 'approximate', 'unpriced', 'not_applicable')",
            name="pricing_status",
        ),
    )

    def __repr__(self) -> str:
        return (
            f"UsageRecord(account_id={self.account_id}, day={self.day}, model={self.model!r}, "
            f"billed={self.billed_cost}, estimated={self.estimated_cost})"
        )


class RollupSums:
    """The sums every rollup table holds for its group of `usage_records` rows."""

    row_count: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(default=0)
    cached_input_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_1h_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    requests: Mapped[int] = mapped_column(default=0)
    cost_micros: Mapped[int] = mapped_column(default=0)
    billed_micros: Mapped[int] = mapped_column(default=0)
    estimated_micros: Mapped[int] = mapped_column(default=0)
    none_rows: Mapped[int] = mapped_column(default=0)  # rows with cost_source 'none'


class UsageDaily(RollupSums, Base):
    """The daily rollup of `usage_records` the dashboard's coarse queries read.

    One row per account, UTC day, model, usage type, service tier and whether the rows are
    unpriced; projects and API keys are summed away. Money is whole micro-dollars, each row's
    spend by the rule of `tracker.costs.spend` (ROW_SPEND_MICROS) summed, so totals are the same
    to the micro-dollar as grouping the detail. Maintained by database triggers on
    `usage_records` (migration 0003) in the writer's own transaction: every insert, update
    and delete (sync, import, re-pricing, account removal) moves it; never write it directly.
    No foreign key: rows leave when their count reaches zero, whatever deletes the detail.
    """

    __tablename__ = "usage_daily"

    account_id: Mapped[int] = mapped_column(ID, primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    usage_type: Mapped[str] = mapped_column(String(255), primary_key=True)
    service_tier: Mapped[str] = mapped_column(String(64), primary_key=True)
    unpriced: Mapped[bool] = mapped_column(Boolean, primary_key=True)

    __table_args__ = (Index("ix_usage_daily_day", "day"),)


class _LabelSums(RollupSums):
    """Usage per project or API key and account over one period (a day, or a month).

    `kind` is 'project', 'api_key' or 'user'; `label` is what the explorer shows (the name, else the
    id; `tracker.reporting.sources` labels the detail the same way) and `ident` the id. The sums are
    `UsageDaily`'s, so questions by project or by API key (without model or usage type) read
    these tables. Kept by triggers on `usage_records` (migrations 0006 and, for users, 0016)
    in the writer's transaction; never write them directly.
    """

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    label: Mapped[str] = mapped_column(String(255), primary_key=True)
    ident: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_id: Mapped[int] = mapped_column(ID, primary_key=True)


class UsageLabel(_LabelSums, Base):
    """Per project or API key, account and UTC day; the explorer's filter lists read its
    labels."""

    __tablename__ = "usage_labels"

    day: Mapped[dt.date] = mapped_column(primary_key=True)

    __table_args__ = (
        # (kind, label) first for the filter lists' walk over distinct labels, then the day.
        PrimaryKeyConstraint("kind", "label", "day", "ident", "account_id"),
        Index("ix_usage_labels_kind_day", "kind", "day"),
    )


class UsageLabelMonthly(_LabelSums, Base):
    """Per project or API key, account and UTC calendar month (`month`: its first day), for
    long windows: whole months read from here, the days at the ends from `UsageLabel`."""

    __tablename__ = "usage_labels_monthly"

    month: Mapped[dt.date] = mapped_column(primary_key=True)

    __table_args__ = (
        PrimaryKeyConstraint("kind", "label", "month", "ident", "account_id"),
        Index("ix_usage_labels_monthly_kind_month", "kind", "month"),
    )


class UsageAttributionMonthly(Base):
    """Spend per account, UTC calendar month, project, API key, user and model: what the
    monthly chargeback (`tracker.attribution.chargeback`) resolves to teams, without reading
    a month of detail. Each row's spend is the rule of `tracker.costs.spend` in whole
    micro-dollars. Kept by triggers on `usage_records` (migration 0016) in the writer's
    transaction; never write it directly.
    """

    __tablename__ = "usage_attribution_monthly"

    account_id: Mapped[int] = mapped_column(ID, primary_key=True)
    month: Mapped[dt.date] = mapped_column(primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    row_count: Mapped[int] = mapped_column(default=0)
    cost_micros: Mapped[int] = mapped_column(default=0)

    __table_args__ = (Index("ix_usage_attribution_monthly_month", "month"),)


class SyncRun(Base):
    """One sync pass of one account over one date range."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16), default="worker")
    range_start: Mapped[dt.date]
    range_end: Mapped[dt.date]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    duration_ms: Mapped[int | None]
    rows_written: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_sync_runs_account_id_started_at", "account_id", "started_at"),
        CheckConstraint(
            "status IN ('running', 'success', 'failed', 'skipped', 'interrupted')", name="status"
        ),
    )


class PriceOverride(Base):
    """An organisation's own price or discount, effective-dated (valid_to exclusive).

    Prices are USD per million tokens (per request for `request_price`); `model` NULL means
    every model of the provider. Precedence: explicit price > discount > list price.
    """

    __tablename__ = "price_overrides"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None]
    kind: Mapped[str] = mapped_column(String(16))
    input_price: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    cached_input_price: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    cache_write_price: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    cache_write_1h_price: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    output_price: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    request_price: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    # Prices of the other kinds (`tracker.costs.prices.UNIT_FIELDS`: audio, image, tool
    # calls...) as decimal strings by kind; NULL: none.
    extra_prices: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    discount_pct: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    valid_from: Mapped[dt.date]
    valid_to: Mapped[dt.date | None]
    note: Mapped[str | None] = mapped_column(Text)
    # Where the price comes from (a contract, an invoice, a URL) and when it was checked.
    source: Mapped[str | None] = mapped_column(Text)
    checked_on: Mapped[dt.date | None]
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('price', 'discount')", name="kind"),
        CheckConstraint(
            "discount_pct IS NULL OR (discount_pct >= 0 AND discount_pct <= 100)",
            name="discount_range",
        ),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_range"),
        Index("ix_price_overrides_provider_model", "provider", "model"),
    )


class Setting(Base):
    """Organisation-wide values set in the app (e.g. the organisation's monthly budget)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertRule(Base):
    """An alert rule: what to watch (kind, scope, threshold) and where to send it."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(160), default="org")
    threshold: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "kind IN ('budget', 'projected', 'quota', 'unpriced', 'variance', 'sync', "
            "'anomaly', 'ratelimit', 'spendlimit')",
            name="kind",
        ),
    )


class AlertEvent(Base):
    """A fired alert: at most one per rule, period and threshold; delivery tracked."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(160))
    fired_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None]
    delivery_status: Mapped[str] = mapped_column(String(16), default="pending")
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_delivery_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("alert_id", "period", "dedupe_key", name="uq_alert_events_once"),
        Index("ix_alert_events_delivery_status", "delivery_status"),
    )


class CostProjection(Base):
    """Month-end projection for a scope ('org', 'service:NAME', 'account:NAME')."""

    __tablename__ = "cost_projections"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    scope: Mapped[str] = mapped_column(String(160))
    month: Mapped[dt.date]
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actual_to_date: Mapped[Decimal]
    projected_total: Mapped[Decimal]
    lower_bound: Mapped[Decimal]
    upper_bound: Mapped[Decimal]
    budget: Mapped[Decimal | None]
    budget_exhausted_on: Mapped[dt.date | None]
    backtest_mape: Mapped[Decimal | None] = mapped_column(Numeric(10, 6))
    method: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None]

    __table_args__ = (UniqueConstraint("scope", "month", name="uq_cost_projections_scope_month"),)


class Anomaly(Base):
    """An unusual daily cost, explained as volume, mix and rate effects in dollars."""

    __tablename__ = "anomalies"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(255), default="")
    day: Mapped[dt.date]
    actual_cost: Mapped[Decimal]
    baseline_cost: Mapped[Decimal]
    score: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    volume_effect: Mapped[Decimal | None]
    mix_effect: Mapped[Decimal | None]
    rate_effect: Mapped[Decimal | None]
    explanation: Mapped[str | None] = mapped_column(Text)
    detected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("account_id", "model", "day", name="uq_anomalies_account_model_day"),
        Index("ix_anomalies_day", "day"),
    )


class AuditLog(Base):
    """Who changed what, when; never holds a secret."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None]
    details: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_audit_log_at", "at"),)


# Sign-in, attribution, close (`closing`), invoice, credit and spend-limit tables live in
# modules of their own; importing them here registers them with `Base.metadata` wherever
# models are imported.
from tracker.models import closing as closing  # noqa: E402
from tracker.models.attribution import SharedCostRule as SharedCostRule  # noqa: E402
from tracker.models.attribution import Team as Team  # noqa: E402
from tracker.models.attribution import TeamMapping as TeamMapping  # noqa: E402
from tracker.models.credits import CreditGrant as CreditGrant  # noqa: E402
from tracker.models.identity import SignInSession as SignInSession  # noqa: E402
from tracker.models.identity import SsoRoleMapping as SsoRoleMapping  # noqa: E402
from tracker.models.identity import UserToken as UserToken  # noqa: E402
from tracker.models.invoices import Invoice as Invoice  # noqa: E402
from tracker.models.invoices import InvoiceSource as InvoiceSource  # noqa: E402
from tracker.models.limits import LimitKind as LimitKind  # noqa: E402
from tracker.models.limits import ProviderSpendLimit as ProviderSpendLimit  # noqa: E402
