"""The daily rollups (`usage_daily`, `usage_labels`) always equal the detail grouped, on both
backends.

Rows go through the real writers (the sync's upsert, pruning, pricing with cost sources,
direct updates, account removal); after each step the rollup table is compared with a fresh
GROUP BY of `usage_records`, and every dashboard query is run twice, from the rollup and from
the detail (`sources.USE_ROLLUP = False`), and must answer the same to the micro-dollar.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import MetaData, Table, delete, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from tracker.core import migrate
from tracker.core.db import make_engine
from tracker.costs import reconcile
from tracker.costs.estimate import estimate_range
from tracker.costs.pricebook import PriceBook
from tracker.costs.spend import assign_cost_sources, cost_source_of
from tracker.ingest.writer import merge_rows, upsert_rows
from tracker.models import (
    IMPORT_USAGE_TYPE,
    TOKEN_COLUMNS,
    Account,
    Service,
    UsageAttributionMonthly,
    UsageDaily,
    UsageLabel,
    UsageLabelMonthly,
    UsageRecord,
    utcnow,
)
from tracker.planning import budgets
from tracker.providers.base import UsageRow
from tracker.reporting import overview, sources, usage

TODAY = dt.date(2026, 6, 20)
FIRST = TODAY - dt.timedelta(days=70)
MODELS = ["gpt-4o", "gpt-4o-mini", "no-such-model-xyz", ""]
COLUMNS = [c.name for c in UsageDaily.__table__.columns]
KEY = ["account_id", "day", "model", "usage_type", "service_tier", "unpriced"]


def _account(session: Session, name: str, provider: str) -> SimpleNamespace:
    """An account row by Core insert: the upgrade test writes to older schemas than the ORM's."""
    service_id = session.scalar(select(Service.id).where(Service.name == provider))
    now = utcnow()
    account_id = session.execute(
        insert(Account.__table__)
        .values(
            service_id=service_id,
            name=name,
            credential_encrypted="x",
            credential_last4="1234",
            status="active",
            created_at=now,
            updated_at=now,
        )
        .returning(Account.__table__.c.id)
    ).scalar_one()
    return SimpleNamespace(id=account_id, name=name)


def _rows(rng: random.Random, n: int) -> list[UsageRow]:
    rows = []
    for _ in range(n):
        line_item = rng.random() < 0.2
        rows.append(
            UsageRow(
                day=FIRST + dt.timedelta(days=rng.randrange(71)),
                model="" if line_item else rng.choice(MODELS),
                project_id=rng.choice(["", "proj_a", "proj_b", "proj_c"]),
                project_name=rng.choice([None, "", "Project A"]),
                api_key_id=rng.choice(["", "key_1", "key_2"]),
                api_key_name=rng.choice([None, "Key one"]),
                user_id="" if line_item else rng.choice(["", "user_x", "user_y"]),
                user_name=rng.choice([None, "Ada"]),
                usage_type="cost:completions" if line_item else rng.choice(["", "completions"]),
                service_tier=rng.choice(["", "batch"]),
                input_tokens=rng.randrange(10**7),
                cached_input_tokens=rng.randrange(10**6),
                output_tokens=rng.randrange(10**6),
                requests=rng.randrange(100),
                billed_cost=Decimal(rng.randrange(10**9)) / 10**6 if line_item else None,
            )
        )
    return rows


def _grouped_detail(session: Session) -> pd.DataFrame:
    """What the rollup must hold, computed from the detail with the spend rule of the queries."""
    u = UsageRecord
    src = sources._DETAIL
    stmt = select(
        u.account_id,
        u.day,
        u.model,
        u.usage_type,
        u.service_tier,
        (u.pricing_status == "unpriced").label("unpriced"),
        src.sums["_rows"].label("row_count"),
        *[src.sums[k].label(k) for k in (*usage.TOKEN_KINDS, "requests")],
        src.sums["cost"].label("cost_micros"),
        src.sums["billed_cost"].label("billed_micros"),
        src.sums["estimated_cost"].label("estimated_micros"),
        src.sums["unpriced_rows"].label("none_rows"),
    ).group_by(
        u.account_id, u.day, u.model, u.usage_type, u.service_tier, u.pricing_status == "unpriced"
    )
    return _frame(session.execute(stmt).all())


def _frame(rows: Any) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(r) for r in rows], columns=COLUMNS)
    frame["unpriced"] = frame["unpriced"].astype(bool)
    for c in COLUMNS[6:]:
        frame[c] = frame[c].astype("int64")
    frame["day"] = frame["day"].astype(str)
    return frame.sort_values(KEY).reset_index(drop=True)


LABEL_KEY = ["kind", "label", "ident", "day", "account_id"]
LABEL_COLUMNS = [*LABEL_KEY, *COLUMNS[len(KEY) :]]  # usage_daily's sums


def _labels_from_detail(session: Session) -> pd.DataFrame:
    """What usage_labels must hold: the rollup's sums per project, and per API key."""
    u = UsageRecord
    src = sources._DETAIL
    rows: list[Any] = []
    for kind, label, ident in (
        ("project", sources.project_label(), u.project_id),
        ("api_key", sources.api_key_label(), u.api_key_id),
        ("user", sources.user_label(), u.user_id),
    ):
        rows += session.execute(
            select(
                literal(kind),
                label,
                ident,
                u.day,
                u.account_id,
                src.sums["_rows"],
                *[src.sums[k] for k in (*usage.TOKEN_KINDS, "requests")],
                *[src.sums[k] for k in ("cost", "billed_cost", "estimated_cost", "unpriced_rows")],
            ).group_by(label, ident, u.day, u.account_id)
        ).all()
    return _label_frame(rows)


def _label_frame(rows: Any) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(r) for r in rows], columns=LABEL_COLUMNS)
    for c in LABEL_COLUMNS[len(LABEL_KEY) :]:
        frame[c] = frame[c].astype("int64")
    frame["day"] = frame["day"].astype(str)
    return frame.sort_values(LABEL_KEY).reset_index(drop=True)


def _answers(session: Session) -> list[Any]:
    """Every dashboard question the rollup serves, over several windows and filters."""
    out: list[Any] = []
    windows = [(FIRST, TODAY), (TODAY - dt.timedelta(days=29), TODAY), (TODAY, TODAY)]
    for start, end in windows:
        flt = sources.UsageFilter(start=start, end=end)
        out.append(overview.cost_totals(session=session, start=start, end=end))
        out.append(overview.top_models(session=session, start=start, end=end, limit=50))
        out.append(usage.filter_options(session=session, start=start, end=end))
        out.append(usage.tokens_by_kind(session=session, flt=flt))
        for group_by in ([], ["day", "provider"], ["account", "model"], ["usage_type"], ["day"]):
            out.append(usage.usage_table(session=session, flt=flt, group_by=group_by))
        narrowed = sources.UsageFilter(
            start=start, end=end, providers=("openai",), models=("gpt-4o", "")
        )
        out.append(usage.usage_table(session=session, flt=narrowed, group_by=["model"]))
        out.append(usage.tokens_by_kind(session=session, flt=narrowed))
        # By project or API key (usage_labels), and with a model too (the detail).
        for group_by in (
            ["project"],
            ["api_key"],
            ["day", "project"],
            ["account", "api_key"],
            ["project", "api_key"],
            ["project", "model"],
        ):
            out.append(usage.usage_table(session=session, flt=flt, group_by=group_by))
        # Filters match the label shown or the id ("proj_a" is named "Project A" on some rows).
        for projects, api_keys in (
            (("Project A", "proj_b"), ()),
            (("proj_a",), ()),
            ((), ("Key one", "key_2")),
            (("proj_c",), ("key_1",)),
        ):
            scoped = sources.UsageFilter(
                start=start, end=end, providers=("openai",), projects=projects, api_keys=api_keys
            )
            out.append(usage.tokens_by_kind(session=session, flt=scoped))
            for group_by in ([], ["day"], ["project"], ["api_key"], ["provider", "account"]):
                out.append(usage.usage_table(session=session, flt=scoped, group_by=group_by))
    out.append(overview.daily_cost_by_provider(session=session, end=TODAY, days=71))
    out.append(
        overview.account_cards(
            session=session, today=TODAY, warning_pct=Decimal(80), critical_pct=Decimal(100)
        )
    )
    out.append(overview.spend_summary(session=session, today=TODAY))
    return out


def _unpriced_from_detail(session: Session, start: dt.date, end: dt.date) -> list[Any]:
    u = UsageRecord
    stmt = (
        select(
            Service.name,
            u.model,
            func.count(),
            func.sum(u.input_tokens),
            func.sum(u.cached_input_tokens),
            func.sum(u.cache_write_tokens + u.cache_write_1h_tokens),
            func.sum(u.output_tokens),
            func.min(u.day),
            func.max(u.day),
        )
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(u.day >= start, u.day <= end, u.pricing_status == "unpriced")
        .group_by(Service.name, u.model)
    )
    return sorted(tuple(r) for r in session.execute(stmt))


def _unpriced_from_rollup(session: Session, start: dt.date, end: dt.date) -> list[Any]:
    return sorted(
        (
            m.provider,
            m.model,
            m.rows,
            m.input_tokens,
            m.cached_input_tokens,
            m.cache_write_tokens,
            m.output_tokens,
            m.first_day,
            m.last_day,
        )
        for m in reconcile.unpriced_models(session=session, start=start, end=end)
    )


def _daily_usage_from_detail(session: Session) -> pd.DataFrame:
    u = UsageRecord
    src = sources._DETAIL
    rows = session.execute(
        select(
            u.day,
            Account.id,
            Account.name,
            Service.name,
            u.model,
            u.service_tier,
            src.sums["tokens"],
            src.sums["requests"],
            src.sums["cost"],
        )
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(u.day >= FIRST, u.day <= TODAY)
        .group_by(u.day, Account.id, Account.name, Service.name, u.model, u.service_tier)
    ).all()
    frame = pd.DataFrame(
        [tuple(r) for r in rows],
        columns=[
            "day",
            "account_id",
            "account",
            "service",
            "model",
            "service_tier",
            "tokens",
            "requests",
            "cost_micros",
        ],
    )
    frame["tokens"] = frame["tokens"].astype("int64")
    frame["requests"] = frame["requests"].astype("int64")
    frame["cost"] = frame.pop("cost_micros").astype("float64") / 1_000_000
    return frame.sort_values(["day", "account_id", "model", "service_tier"]).reset_index(drop=True)


def _same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        assert a == b


def _attribution_from_detail(session: Session) -> list[tuple[Any, ...]]:
    """What usage_attribution_monthly must hold: spend per account, month, project, key,
    user and model (months as 'YYYY-MM-01')."""
    u, src = UsageRecord, sources._DETAIL
    rows = session.execute(
        select(
            u.account_id, u.day, u.project_id, u.api_key_id, u.user_id, u.model,
            src.sums["_rows"], src.sums["cost"],
        ).group_by(u.account_id, u.day, u.project_id, u.api_key_id, u.user_id, u.model)
    )  # fmt: skip
    sums: dict[tuple[Any, ...], list[int]] = {}
    for account_id, day, project, key, user, model, count, cost in rows:
        group = (account_id, str(day)[:8] + "01", project, key, user, model)
        total = sums.setdefault(group, [0, 0])
        total[0] += int(count)
        total[1] += int(cost)
    return sorted((*k, *v) for k, v in sums.items())


def _check(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    session.flush()
    a = UsageAttributionMonthly
    stored_attribution = sorted(
        (r[0], str(r[1]), *r[2:6], int(r[6]), int(r[7]))
        for r in session.execute(
            select(
                a.account_id,
                a.month,
                a.project_id,
                a.api_key_id,
                a.user_id,
                a.model,
                a.row_count,
                a.cost_micros,
            )  # fmt: skip
        )
    )
    assert stored_attribution == _attribution_from_detail(session)
    stored = _frame(session.execute(select(*UsageDaily.__table__.columns)).all())
    pd.testing.assert_frame_equal(stored, _grouped_detail(session))
    labels = _label_frame(
        session.execute(select(*[UsageLabel.__table__.c[c] for c in LABEL_COLUMNS])).all()
    )
    expected = _labels_from_detail(session)
    pd.testing.assert_frame_equal(labels, expected)
    monthly = _label_frame(
        session.execute(
            select(
                *[
                    UsageLabelMonthly.__table__.c["month" if c == "day" else c]
                    for c in LABEL_COLUMNS
                ]
            )
        ).all()
    )
    expected["day"] = expected["day"].str[:8] + "01"
    by_month = expected.groupby(LABEL_KEY, as_index=False).sum()
    pd.testing.assert_frame_equal(monthly, _label_frame(by_month.itertuples(index=False)))
    rollup = _answers(session)
    with monkeypatch.context() as m:
        m.setattr(sources, "USE_ROLLUP", False)
        detail = _answers(session)
    for start, end in ((FIRST, TODAY), (TODAY - dt.timedelta(days=5), TODAY)):
        assert _unpriced_from_rollup(session, start, end) == _unpriced_from_detail(
            session, start, end
        )
    frame = budgets.daily_usage(session=session, start=FIRST, end=TODAY)
    by_key = ["day", "account_id", "model", "service_tier"]
    got = frame.sort_values(by_key).reset_index(drop=True)
    assert got.to_dict("records") == _daily_usage_from_detail(session).to_dict("records")
    assert len(rollup) == len(detail)
    for a, b in zip(rollup, detail, strict=True):
        _same(a, b)


def test_rollup_follows_every_writer_and_answers_like_the_detail(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20261123)
    openai = _account(session, "rollup-openai", "openai")
    other = _account(session, "rollup-deepseek", "deepseek")
    _check(session, monkeypatch)  # empty

    # A sync pass each (inserts; one key several times in a pass adds up).
    stamp = utcnow()
    upsert_rows(session, openai.id, _rows(rng, 300), stamp=stamp, batch_size=40)
    upsert_rows(session, other.id, _rows(rng, 150), stamp=stamp)
    _check(session, monkeypatch)

    # Pricing and cost sources (UPDATEs of many rows at once).
    estimate_range(session=session, start=FIRST, end=TODAY)
    assert _unpriced_from_detail(session, FIRST, TODAY), "the data should hold unpriced rows"
    _check(session, monkeypatch)

    # A re-sync: conflicting keys are replaced, new ones inserted, then priced again.
    upsert_rows(session, openai.id, _rows(rng, 200), stamp=stamp + dt.timedelta(seconds=1))
    estimate_range(session=session, start=FIRST, end=TODAY, account_ids=[openai.id])
    _check(session, monkeypatch)

    # Pruning, a hand update, a cost-source pass, then an account removed (cascade).
    session.execute(
        delete(UsageRecord).where(
            UsageRecord.account_id == openai.id, UsageRecord.day < FIRST + dt.timedelta(days=10)
        )
    )
    session.execute(
        update(UsageRecord)
        .where(UsageRecord.model == "gpt-4o")
        .values(estimated_cost=Decimal("0.3333335"), cost_source="estimated", billed_cost=None)
    )
    assign_cost_sources(session=session, start=FIRST, end=TODAY)
    _check(session, monkeypatch)

    session.execute(delete(Account).where(Account.id == other.id))
    if session.get_bind().dialect.name == "sqlite":
        # SQLite enforces the cascade only with the foreign_keys pragma; do what it would.
        session.execute(delete(UsageRecord).where(UsageRecord.account_id == other.id))
    session.expire_all()
    _check(session, monkeypatch)
    assert (
        session.scalar(select(UsageDaily.account_id).where(UsageDaily.account_id == other.id))
        is None
    )

    session.execute(delete(UsageRecord))
    assert session.execute(text("SELECT count(*) FROM usage_daily")).scalar_one() == 0
    for table in ("usage_labels", "usage_labels_monthly", "usage_attribution_monthly"):
        assert session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def _write_old_schema(session: Session, account_id: int, rows: list[UsageRow]) -> None:
    """Rows as a sync before 0016 wrote them: no user (their key had none), repeated keys
    added up, through the columns the schema of the day has."""
    table = Table("usage_records", MetaData(), autoload_with=session.connection())
    merged: dict[tuple[Any, ...], UsageRow] = {}
    for row in rows:
        row = replace(row, user_id="", user_name=None)
        key = row.natural_key
        merged[key] = merge_rows(merged[key], row) if key in merged else row
    values = []
    for row in merged.values():
        value = {c: getattr(row, c) for c in table.c.keys() if hasattr(row, c)}
        source = "none" if row.billed_cost is None else "billed"
        values.append({**value, "account_id": account_id, "estimated_cost": None,
                       "cost_source": source, "pricing_status": "pending",
                       "synced_at": utcnow()})  # fmt: skip
    session.execute(insert(table), values)


def _price_old_schema(session: Session) -> None:
    """Price the rows by the book's row rule and the spend rule, through the columns the
    schema of the day has (the pricing pass reads columns added later: usage details,
    allocations)."""
    table = Table("usage_records", MetaData(), autoload_with=session.connection())
    accounts = Account.__table__.c
    provider_of = dict(
        session.execute(
            select(accounts.id, Service.name).join(Service, Service.id == accounts.service_id)
        ).all()
    )
    c = table.c
    billed_days = set(
        session.execute(
            select(c.account_id, c.day).where(
                c.billed_cost.is_not(None), c.usage_type != IMPORT_USAGE_TYPE
            )
        ).all()
    )
    book = PriceBook()
    for r in session.execute(select(table)).mappings().all():
        tokens = [r[name] for name in TOKEN_COLUMNS]
        cost, status = book.outcome(
            provider_of[r["account_id"]], r["model"], r["day"], r["usage_type"],
            r["service_tier"], *tokens, r["requests"], r["other_units"], r["billed_cost"],
            r["other_unit_name"],
        )  # fmt: skip
        source = cost_source_of(
            r["billed_cost"],
            cost,
            (r["account_id"], r["day"]) in billed_days,
            imported=r["usage_type"] == IMPORT_USAGE_TYPE,
        )
        session.execute(
            update(table)
            .where(c.id == r["id"])
            .values(estimated_cost=cost, pricing_status=status, cost_source=source)
        )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_an_install_builds_the_rollups_from_its_usage(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollup migrations fill their tables from the usage already there (0002: none yet)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'before-rollups.db'}"
    else:
        url = request.getfixturevalue("pg_databases").create()
    engine = make_engine(url)
    migrate.upgrade(engine, "0002")
    rng = random.Random(20261124)
    with Session(engine) as session, session.begin():
        openai = _account(session, "upgrade-openai", "openai")
        other = _account(session, "upgrade-deepseek", "deepseek")
        _write_old_schema(session, openai.id, _rows(rng, 250))
        _write_old_schema(session, other.id, _rows(rng, 120))
        _price_old_schema(session)
    migrate.upgrade(engine)
    try:
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(UsageLabelMonthly))
            _check(session, monkeypatch)
    finally:
        engine.dispose()
