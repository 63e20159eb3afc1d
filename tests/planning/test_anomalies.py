"""Anomaly detection on generated series with injected spikes of known kind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from tests.factories import add_account, add_usage
from tracker.models import Anomaly
from tracker.planning import anomalies

WEEK = np.array([100.0, 110.0, 105.0, 100.0, 95.0, 20.0, 15.0])  # USD, Monday first
START = dt.date(2026, 1, 1)
DAYS = 150
SCORED = 90  # the last 90 days are scored; the first 60 are history only
CHEAP, DEAR = 2e-6, 1e-5  # USD per token of the usual and the expensive model


def generate(seed: int) -> tuple[pd.DataFrame, dict[tuple[str, dt.date], str]]:
    """Four accounts with a weekly pattern and 10 % noise; spikes injected on known days.

    Kinds: volume (tokens × 3 at the usual price), mix (60 % of tokens move to a model five
    times as dear), rate (price per token × 3). Account "tiny" spends cents and jumps from
    $0.02 to $0.10: never an anomaly.
    """
    rng = np.random.default_rng(seed)
    rows = []
    truth: dict[tuple[str, dt.date], str] = {}
    scored_days = [START + dt.timedelta(days=DAYS - SCORED + i) for i in range(SCORED)]
    for account in ("alpha", "beta", "gamma"):
        spike_days = rng.choice(len(scored_days), size=8, replace=False)
        for n, i in enumerate(spike_days):
            truth[(account, scored_days[i])] = ("volume", "mix", "rate")[n % 3]
    for d in range(DAYS):
        day = START + dt.timedelta(days=d)
        for account in ("alpha", "beta", "gamma"):
            cost = WEEK[day.weekday()] * rng.lognormal(0, 0.10)
            tokens, price = cost / CHEAP, CHEAP
            kind = truth.get((account, day))
            if kind == "volume":
                tokens *= 3
            elif kind == "rate":
                price *= 3
            if kind == "mix":
                rows.append(
                    (day, account, "big-model", "", int(tokens * 0.6), 10, tokens * 0.6 * DEAR)
                )
                tokens *= 0.4
            rows.append((day, account, "small-model", "", int(tokens), 50, tokens * price))
        tiny = 0.10 if d == DAYS - 5 else 0.02 * rng.lognormal(0, 0.1)
        rows.append((day, "tiny", "small-model", "", int(tiny / CHEAP), 1, tiny))
    frame = pd.DataFrame(
        rows, columns=["day", "account", "model", "service_tier", "tokens", "requests", "cost"]
    )
    return frame, truth


def naive_detector(frame: pd.DataFrame, days: list[dt.date]) -> set[tuple[str, dt.date]]:
    """The usual first try: mean + 3 standard deviations of the last 28 days, no weekdays."""
    found = set()
    for account, rows in frame.groupby("account"):
        daily = rows.groupby("day")["cost"].sum()
        for day in days:
            window = daily[(daily.index >= day - dt.timedelta(days=28)) & (daily.index < day)]
            if daily.get(day, 0.0) > window.mean() + 3 * window.std():
                found.add((str(account), day))
    return found


def precision_recall(found: set, truth: set) -> tuple[float, float]:  # type: ignore[type-arg]
    hits = len(found & truth)
    return (hits / len(found) if found else 1.0), hits / len(truth)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_injected_spikes_are_found_and_explained(seed, capsys):
    frame, truth = generate(seed)
    days = [START + dt.timedelta(days=DAYS - SCORED + i) for i in range(SCORED)]
    findings = anomalies.find_anomalies(frame, days=days)
    totals = {(f.account, f.day): f for f in findings if f.model == anomalies.ALL_MODELS}
    precision, recall = precision_recall(set(totals), set(truth))
    naive_p, naive_r = precision_recall(naive_detector(frame, days), set(truth))
    with capsys.disabled():
        print(  # noqa: T201 (the issue asks for the figures in the test output)
            f"\n[anomalies seed={seed}] {len(truth)} injected spikes: precision "
            f"{precision:.2f}, recall {recall:.2f}; naive mean+3sd: precision {naive_p:.2f}, "
            f"recall {naive_r:.2f}"
        )
    assert precision >= 0.9 and recall >= 0.9
    assert naive_r < 0.9  # weekend spikes hide under the weekday level without weekdays
    assert all(f.account != "tiny" for f in findings)  # $0.02 -> $0.10 is below the floor
    for key, kind in truth.items():
        if key not in totals:
            continue
        f = totals[key]
        assert f.volume is not None and f.mix is not None and f.rate is not None
        # The three effects add up to the change against the baseline, to the cent.
        assert f.volume + f.mix + f.rate == pytest.approx(f.actual - f.baseline, abs=0.01)
        effects = {"volume": f.volume, "mix": f.mix, "rate": f.rate}
        assert max(effects, key=lambda k: abs(effects[k])) == kind, (key, effects)
        assert kind in f.explanation


def test_a_weekday_after_a_quiet_weekend_is_not_a_spike():
    frame, truth = generate(21)
    frame = frame[frame["account"] == "alpha"]
    mondays = [START + dt.timedelta(days=i) for i in range(60, DAYS)]
    mondays = [d for d in mondays if d.weekday() == 0]
    flagged = {f.day for f in anomalies.find_anomalies(frame, days=mondays)}
    # Mondays cost five times a Sunday, yet only injected spikes are flagged.
    assert flagged <= {d for (a, d) in truth if a == "alpha"}


def test_baseline_needs_history():
    assert anomalies.baseline_for(np.ones(5), np.arange(5) % 7, 0) is None


def test_detect_stores_explains_keeps_acknowledged_and_prunes(session):
    acc = add_account(session, "prod")
    end = dt.date(2026, 5, 19)
    for i in range(50):
        day = end - dt.timedelta(days=49 - i)
        spike = day == end
        cost = Decimal("40") if spike else Decimal("10") + Decimal(i % 3) / 10
        add_usage(session, acc, day, cost, input_tokens=4_000_000 if spike else 1_000_000)
    [row] = [
        a
        for a in anomalies.detect_anomalies(session=session, end=end, days=7)
        if a.model == anomalies.ALL_MODELS
    ]
    assert row.day == end and row.actual_cost == Decimal("40.00")
    assert row.volume_effect is not None and row.volume_effect > Decimal(25)
    assert row.explanation and "volume" in row.explanation
    stored = session.scalars(select(Anomaly)).all()
    assert {a.model for a in stored} == {"*", "gpt-4o"}
    anomalies.acknowledge(session=session, anomaly_id=row.id, actor="fin")
    again = anomalies.detect_anomalies(session=session, end=end, days=7)
    assert {a.id for a in again} >= {row.id}
    assert session.get(Anomaly, row.id).acknowledged_by == "fin"
    frame = anomalies.list_anomalies(session=session, since=end - dt.timedelta(days=7))
    assert set(frame["model"]) == {"all models", "gpt-4o"}
    assert not frame.loc[frame["model"] == "all models", "acknowledged_at"].isna().any()
