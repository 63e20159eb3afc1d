"""AppTests for the Reconciliation page: billed vs estimated as `reconcile` computes it, with
causes; who may open it; and the re-price preview (writes nothing) and apply (audited)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import signed_in
from tests.ui.test_app import AppAs, errors, metrics, today
from tracker.costs.overrides import add_override
from tracker.costs.reconcile import reconcile
from tracker.costs.reprice import reprice
from tracker.models import AuditLog, UsageRecord
from tracker.providers.registry import display_name
from tracker.ui.components import money

PAGE = "pages/reconciliation.py"
CENT = Decimal("0.01")


def days_back(n: int) -> dt.date:
    return today() - dt.timedelta(days=n)


def open_page(app_as: AppAs, start: dt.date, end: dt.date) -> AppTest:
    at = app_as("fin", "finance").run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    at.date_input(key="recon_range").set_value((start, end)).run()
    assert not at.exception, at.exception
    return at


def frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The table whose first columns are `columns`."""
    return next(
        d.value for d in at.dataframe if list(d.value.columns[: len(columns)]) == list(columns)
    )


def cents(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(CENT))


def shown(value: float) -> float | None:
    return None if pd.isna(value) else value


def has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def stored(engine: Engine) -> dict[int, tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.execute(
            select(
                UsageRecord.id,
                UsageRecord.billed_cost,
                UsageRecord.estimated_cost,
                UsageRecord.pricing_status,
            )
        )
        return {r[0]: tuple(r[1:]) for r in rows}


def audited(engine: Engine, action: str) -> list[AuditLog]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_finance_sees_billed_vs_estimated_as_reconcile_computes_it(
    app_as: AppAs, seeded_db: Engine
) -> None:
    start, end = days_back(45), today()
    with Session(seeded_db) as session:
        report = reconcile(session=session, start=start, end=end)
    t = report.totals
    at = open_page(app_as, start, end)

    figures = metrics(at)
    assert figures["Billed"] == money(t.billed) and t.billed > 0
    assert figures["Estimated, same days"] == money(t.estimated_on_billed_days)
    assert figures["Variance"] == money(t.variance)
    assert figures["Estimate only"] == money(t.estimated - t.estimated_on_billed_days)
    assert figures["Unpriced tokens"] == f"{t.unpriced_tokens:,}"

    providers = frame(at, "provider", "billed").set_index("provider")
    # Providers by their names, as on every page.
    assert sorted(providers.index) == sorted(display_name(p.provider) for p in t.providers)
    for p in t.providers:
        row = providers.loc[display_name(p.provider)]
        assert shown(row["billed"]) == cents(p.billed)
        assert shown(row["variance"]) == cents(p.variance)
    assert "reported no billed cost" in providers.loc["Anthropic", "cause"]

    # By model: the models' variances add up to their provider's.
    models = frame(at, "provider", "model", "billed")
    openai = next(p for p in t.providers if p.provider == "openai")
    model_sum = sum(
        (m.variance for m in report.models if m.provider == "openai" and m.variance is not None),
        Decimal(0),
    )
    assert model_sum == openai.variance
    mini = models[models["model"] == "gpt-4o-mini"].iloc[0]
    assert mini["billed"] == 0 and "not billed under its own name" in mini["cause"]

    # By day: each day's cause, and no missing value spelled "None".
    days = frame(at, "day", "provider").set_index(["day", "provider"])
    assert "Unexplained: $0.03" in days.loc[(days_back(3), "OpenAI"), "cause"]
    assert (
        "Unpriced (no list price): gpt-4o (69,000 tokens)"
        in (days.loc[(days_back(1), "OpenAI"), "cause"])
    )
    assert (
        "not billed under its own name: gpt-4o-mini $0.10"
        in (days.loc[(days_back(0), "OpenAI"), "cause"])
    )
    assert not days["cause"].str.contains("None").any()
    assert all(d.proto.placeholder == "—" for d in at.dataframe if "cause" in d.value.columns)

    unpriced = frame(at, "provider", "model", "rows")
    assert [(m.provider, m.model, m.tokens) for m in report.unpriced] == list(
        zip(unpriced["provider"], unpriced["model"], unpriced["tokens"], strict=True)
    )
    assert len(at.get("download_button")) >= 3  # one CSV per table


def test_default_period_is_last_month_and_empty_dates_say_so(app_as: AppAs) -> None:
    at = app_as("fin", "finance").run()
    at.switch_page(PAGE).run()
    assert at.selectbox(key="recon_period").value == "Last month"
    at.date_input(key="recon_range").set_value((days_back(400), days_back(399))).run()
    assert not at.exception
    assert any("No usage from" in i.value for i in at.info)


def test_viewers_get_the_no_access_page(app_as: AppAs) -> None:
    at = app_as("vic", "viewer").run()
    with pytest.raises(ValueError):  # not registered for a viewer
        at.switch_page(PAGE)
    # Its address shows the router's stand-in. AppTest opens pages by file only, so the
    # stand-in (a callable page) is opened by the hash st.navigation registered for its URL.
    stand_in = next(
        h for h, page in at._registered_pages.items() if page["url_pathname"] == "reconciliation"
    )
    at._page_hash = stand_in
    at.run()
    assert not at.exception
    assert at.title[0].value == "Reconciliation"
    assert any("You don't have access to this page" in e for e in errors(at)), errors(at)
    assert not at.metric and not at.dataframe and not has_button(at, "reprice_preview_go")


def test_reprice_preview_writes_nothing_and_apply_is_audited(
    app_as: AppAs, seeded_db: Engine
) -> None:
    start, end = days_back(14), today()
    with Session(seeded_db) as session, session.begin():
        add_override(
            session=session,
            provider="openai",
            model="gpt-4o",
            kind="price",
            valid_from=days_back(60),
            input_price="1",
            cached_input_price="0.5",
            output_price="4",
            actor="alice",
        )
    with Session(seeded_db) as session:
        expected = reprice(session=session, start=start, end=end, dry_run=True, actor="t")
        session.rollback()
    assert expected.rows_changed > 0
    before = stored(seeded_db)

    at = open_page(app_as, start, end)
    assert at.date_input(key="reprice_range").value == (start, end)  # follows the dates above
    at.button(key="reprice_preview_go").click().run()
    assert not at.exception, at.exception
    preview = next(i.value for i in at.info if i.value.startswith("Preview of"))
    assert f"{expected.rows_changed:,} of {expected.rows:,} usage rows would change" in preview
    assert f"to {money(expected.new_total)}" in preview
    changes = at.dataframe[-1].value
    assert list(changes["day"]) == [d.day for d in expected.changed_days]
    assert list(changes["new_estimated"]) == [cents(d.new_estimated) for d in expected.changed_days]
    assert stored(seeded_db) == before  # a preview writes nothing
    assert audited(seeded_db, "pricing.reprice") == []

    # Other dates: the preview is dropped, never applied to them.
    at.date_input(key="reprice_range").set_value((days_back(20), end)).run()
    assert any("The dates changed since the preview" in i.value for i in at.info)
    assert not has_button(at, "reprice_apply")
    at.date_input(key="reprice_range").set_value((start, end)).run()
    assert not has_button(at, "reprice_apply")

    at.button(key="reprice_preview_go").click().run()
    at.button(key="reprice_apply").click().run()
    assert not at.exception, at.exception
    flashed = [s.value.replace("\\", "") for s in at.success]
    assert any(
        f"{expected.rows_changed:,} of {expected.rows:,} usage rows changed" in s for s in flashed
    ), flashed
    after = stored(seeded_db)
    assert {i: row[0] for i, row in after.items()} == {i: row[0] for i, row in before.items()}
    assert after != before  # estimates changed; billed cost did not
    with Session(seeded_db) as session:
        again = reprice(session=session, start=start, end=end, dry_run=True, actor="t")
        session.rollback()
    assert again.rows_changed == 0 and again.new_total == expected.new_total
    (entry,) = audited(seeded_db, "pricing.reprice")
    assert (entry.actor, entry.target) == ("fin", f"{start}..{end}")
    assert entry.details is not None and entry.details["rows_changed"] == expected.rows_changed
    assert "reprice_preview" not in at.session_state


def test_a_year_and_more_is_refused_with_what_to_do(app_as: AppAs, seeded_db: Engine) -> None:
    before = stored(seeded_db)
    at = open_page(app_as, days_back(14), today())
    at.date_input(key="reprice_range").set_value((days_back(400), today())).run()
    at.button(key="reprice_preview_go").click().run()
    assert not at.exception
    assert any("python -m tracker reprice" in e for e in errors(at)), errors(at)
    assert not has_button(at, "reprice_apply") and stored(seeded_db) == before


def _apply_as_signed_in_user() -> None:
    import streamlit as st

    from tests.ui.test_app import today
    from tracker.core.errors import TrackerError
    from tracker.ui import book_actions, data

    try:
        book_actions.apply_reprice(data.get_runtime(), start=today(), end=today())
    except TrackerError as exc:
        st.error(str(exc))
    else:
        st.write("re-priced")


def test_viewers_cannot_reprice_server_side(seeded_db: Engine) -> None:
    before = stored(seeded_db)
    at = signed_in(AppTest.from_function(_apply_as_signed_in_user), "vic", "viewer").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["this action needs the admin or finance role"]
    assert stored(seeded_db) == before and audited(seeded_db, "pricing.reprice") == []
