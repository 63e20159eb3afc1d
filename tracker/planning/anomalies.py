"""Cost anomalies per (account, model) and per account, explained as volume, mix and rate.

Detection, per daily cost series (UTC days, zero-filled from the series' first day):

- the baseline for day t comes from the 56 days before it (eight of each weekday, so one
  odd day cannot bend a weekday's factor): weekday factors (median cost of
  each weekday / their mean) de-seasonalise those days, their median is the level and their
  median absolute deviation (MAD, × 1.4826 to match a standard deviation) the spread; the
  baseline is level × the factor of t's weekday, so a normal Monday after a quiet weekend is
  not a spike;
- the robust score is (actual − baseline) / spread; a day is an anomaly when the score is
  at least 4 *and* the excess is at least a dollar floor (default $5), so $0.02 → $0.10 never
  counts however large its score. Only increases are flagged: drops cost nothing;
- a series needs 14 days of history before it is scored.

Explanation, against the baseline (cost C0 = baseline, at the history window's composition):
with units V (tokens, or requests where a provider reports no tokens), component shares s_k
(model × service tier for an account, tier within a model) and unit prices p_k,

    volume = (V1 − V0) · P0                      more or fewer tokens at the usual price
    mix    = V1 · Σ (s1_k − s0_k) · p0_k          a shift between models or tiers
    rate   = V1 · Σ s1_k · (p1_k − p0_k)          price per token changed (price, cache hits)

and the three add up exactly to actual − baseline (rate is computed as the remainder).
Account-level series are stored with model '*'.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.errors import NotFound
from tracker.models import Account, Anomaly, utcnow
from tracker.planning.budgets import daily_usage

log = logging.getLogger(__name__)

ALL_MODELS = "*"
WINDOW_DAYS = 56
MIN_HISTORY_DAYS = 14
SCORE_THRESHOLD = 4.0
MIN_EXCESS_USD = 5.0
MAD_TO_SD = 1.4826
# The spread is never taken below 5 % of the baseline: very smooth series would otherwise
# flag ordinary growth, and a flat $0 history would give an infinite score.
MIN_RELATIVE_SPREAD = 0.05
DEFAULT_DETECT_DAYS = 7
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Baseline:
    """What day t is expected to cost, and how far a normal day strays (USD)."""

    expected: float
    spread: float


def baseline_for(history: np.ndarray, weekdays: np.ndarray, weekday: int) -> Baseline | None:
    """Weekday-aware rolling median/MAD baseline from the days before t (oldest first)."""
    history = np.asarray(history, dtype=float)[-WINDOW_DAYS:]
    weekdays = np.asarray(weekdays, dtype=int)[-WINDOW_DAYS:]
    if len(history) < MIN_HISTORY_DAYS:
        return None
    medians = np.array(
        [np.median(history[weekdays == w]) if np.any(weekdays == w) else np.nan for w in range(7)]
    )
    overall = np.nanmean(medians)
    if not np.isfinite(overall) or overall <= 0:
        level, factors = 0.0, np.ones(7)
        mad = float(np.median(np.abs(history)))
    else:
        factors = np.where(np.isfinite(medians), medians / overall, 1.0)
        usable = factors[weekdays] > 1e-9
        deseasonal = history[usable] / factors[weekdays][usable]
        level = float(np.median(deseasonal)) if len(deseasonal) else 0.0
        mad = float(np.median(np.abs(deseasonal - level))) if len(deseasonal) else 0.0
    factor = float(factors[weekday])
    expected = level * factor
    # A weekday that usually costs nothing still gets the spread of an ordinary day's scale.
    scale_factor = max(factor, 0.2)
    spread = max(MAD_TO_SD * mad * scale_factor, MIN_RELATIVE_SPREAD * level * scale_factor, 0.01)
    return Baseline(expected, spread)


@dataclass(frozen=True)
class Finding:
    """One detected anomaly (floats, USD), before it is stored."""

    account: str
    model: str  # '*' for the account's total
    day: dt.date
    actual: float
    baseline: float
    score: float
    volume: float | None
    mix: float | None
    rate: float | None
    explanation: str


def _components(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    grouped = rows.groupby(by, dropna=False)[["tokens", "requests", "cost"]].sum()
    return grouped


def decompose(
    window: pd.DataFrame, today: pd.DataFrame, by: list[str], baseline: float
) -> tuple[float, float, float, str] | None:
    """Split actual − baseline into volume, mix and rate effects (USD); None without units.

    `window` and `today` are usage rows (tokens, requests, cost and the `by` columns) of the
    baseline window and of the day.
    """
    unit = "tokens"
    if window["tokens"].sum() <= 0 and today["tokens"].sum() <= 0:
        unit = "requests"
        if window["requests"].sum() <= 0 and today["requests"].sum() <= 0:
            return None
    before = _components(window, by)
    after = _components(today, by)
    units0, cost0 = float(before[unit].sum()), float(before["cost"].sum())
    if units0 <= 0 or cost0 <= 0:
        return None
    price0 = cost0 / units0
    units1 = float(after[unit].sum())
    actual = float(after["cost"].sum())
    volume = units1 * price0 - baseline
    units_before = {k: float(v) for k, v in before[unit].items()}
    cost_before = {k: float(v) for k, v in before["cost"].items()}
    mix = 0.0
    if units1 > 0:
        blended = 0.0
        for key, units_k, cost_k in zip(after.index, after[unit], after["cost"], strict=True):
            if units_before.get(key, 0.0) > 0:
                p0 = cost_before[key] / units_before[key]
            elif units_k > 0:
                p0 = float(cost_k) / float(units_k)  # a new component: at its own price
            else:
                p0 = price0
            blended += float(units_k) / units1 * p0
        mix = units1 * (blended - price0)
    rate = (actual - baseline) - volume - mix
    price1 = actual / units1 if units1 > 0 else 0.0
    per = 1_000_000 if unit == "tokens" else 1
    per_label = "1M tokens" if unit == "tokens" else "request"
    ratio = units1 / (baseline / price0) if baseline > 0 else float("inf")
    parts = {
        "volume": f"volume {_signed(volume)} ({unit} ×{ratio:.1f} of usual)"
        if np.isfinite(ratio)
        else f"volume {_signed(volume)}",
        "mix": f"mix {_signed(mix)} (largest shift: {_top_shift(before, after, unit)})",
        "rate": f"rate {_signed(rate)} (per {per_label} ${price0 * per:,.4f} → "
        f"${price1 * per:,.4f})",
    }
    ordered = sorted((("volume", volume), ("mix", mix), ("rate", rate)), key=lambda kv: -abs(kv[1]))
    text = "; ".join(parts[name] for name, _ in ordered)
    return volume, mix, rate, text


def _label(key: object) -> str:
    if isinstance(key, tuple):
        return "/".join(str(k) for k in key if str(k)) or "(unnamed)"
    return str(key) or "(unnamed)"


def _top_shift(before: pd.DataFrame, after: pd.DataFrame, unit: str) -> str:
    s0 = before[unit] / max(float(before[unit].sum()), 1e-12)
    s1 = after[unit] / max(float(after[unit].sum()), 1e-12)
    delta = s1.subtract(s0, fill_value=0.0)
    if delta.empty:
        return "none"
    key = delta.abs().idxmax()
    was, now = 100 * float(s0.get(key, 0.0)), 100 * float(s1.get(key, 0.0))
    return f"{_label(key)} {was:.0f} % → {now:.0f} % of {unit}"


def _signed(value: float) -> str:
    return f"{'+' if value >= 0 else '−'}${abs(value):,.2f}"


def find_anomalies(
    frame: pd.DataFrame,
    *,
    days: Iterable[dt.date],
    threshold: float = SCORE_THRESHOLD,
    min_excess: float = MIN_EXCESS_USD,
) -> list[Finding]:
    """Score the given days of every (account, model) and account series in a usage frame.

    `frame` has the columns of `budgets.daily_usage` (day, account, model, service_tier,
    tokens, requests, cost) and must reach back 56 days before the first day scored.
    """
    targets = sorted(set(days))
    if frame.empty or not targets:
        return []
    findings = []
    last = max(targets)
    series_keys: list[tuple[str, str, pd.DataFrame, list[str]]] = []
    for account, rows in frame.groupby("account"):
        series_keys.append((str(account), ALL_MODELS, rows, ["model", "service_tier"]))
        for model, model_rows in rows.groupby("model"):
            series_keys.append((str(account), str(model), model_rows, ["service_tier"]))
    for account, model, rows, by in series_keys:
        daily = rows.groupby("day")["cost"].sum()
        first = min(daily.index)
        index = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        values = daily.reindex(index, fill_value=0.0).to_numpy(dtype=float)
        weekdays = np.array([d.weekday() for d in index])
        for day in targets:
            pos = (day - first).days
            if pos < MIN_HISTORY_DAYS:
                continue
            base = baseline_for(values[:pos], weekdays[:pos], day.weekday())
            if base is None:
                continue
            actual = float(values[pos])
            excess = actual - base.expected
            score = excess / base.spread
            if score < threshold or excess < min_excess:
                continue
            window_start = day - dt.timedelta(days=WINDOW_DAYS)
            in_window = rows[(rows["day"] >= window_start) & (rows["day"] < day)]
            split = decompose(in_window, rows[rows["day"] == day], by, base.expected)
            volume, mix, rate, text = split if split else (None, None, None, "")
            what = "all models" if model == ALL_MODELS else model or "(no model)"
            explanation = (
                f"{what}: ${actual:,.2f} vs usual ${base.expected:,.2f} "
                f"({_signed(excess)}). {text}".strip()
            )
            findings.append(
                Finding(
                    account,
                    model,
                    day,
                    actual,
                    base.expected,
                    score,
                    volume,
                    mix,
                    rate,
                    explanation,
                )
            )
    return findings


def _money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(round(value, 2))).quantize(CENT)


def detect_anomalies(
    *,
    session: Session,
    end: dt.date | None = None,
    days: int = DEFAULT_DETECT_DAYS,
    threshold: float = SCORE_THRESHOLD,
    min_excess: float = MIN_EXCESS_USD,
) -> list[Anomaly]:
    """Score the `days` complete UTC days ending `end` (default yesterday); store the result.

    Re-running is safe: rows are upserted on (account, model, day), an acknowledgement is
    kept, and an unacknowledged anomaly that no longer scores (usage was corrected by a
    later sync) is removed.
    """
    end = end or (utcnow().date() - dt.timedelta(days=1))
    first = end - dt.timedelta(days=days - 1)
    frame = daily_usage(session=session, start=first - dt.timedelta(days=WINDOW_DAYS + 7), end=end)
    targets = [first + dt.timedelta(days=i) for i in range(days)]
    findings = find_anomalies(frame, days=targets, threshold=threshold, min_excess=min_excess)
    ids = dict(zip(frame["account"], frame["account_id"], strict=False)) if not frame.empty else {}
    existing = {
        (a.account_id, a.model, a.day): a
        for a in session.scalars(select(Anomaly).where(Anomaly.day >= first, Anomaly.day <= end))
    }
    kept: list[Anomaly] = []
    seen = set()
    for f in findings:
        key = (int(ids[f.account]), f.model, f.day)
        seen.add(key)
        row = existing.get(key) or Anomaly(account_id=key[0], model=f.model, day=f.day)
        row.actual_cost = _money(f.actual) or Decimal(0)
        row.baseline_cost = _money(f.baseline) or Decimal(0)
        row.score = Decimal(repr(round(min(f.score, 99_999_999.0), 4)))
        row.volume_effect = _money(f.volume)
        row.mix_effect = _money(f.mix)
        row.rate_effect = _money(f.rate)
        row.explanation = f.explanation
        row.detected_at = utcnow()
        session.add(row)
        kept.append(row)
    for key, row in existing.items():
        if key not in seen and row.acknowledged_at is None:
            session.delete(row)
    session.flush()
    log.info("anomalies %s..%s: %d found", first, end, len(kept))
    return kept


def acknowledge(*, session: Session, anomaly_id: int, actor: str) -> Anomaly:
    """Mark an anomaly as seen by `actor` (it stops alerting); audited."""
    from tracker.core import audit

    anomaly = session.get(Anomaly, anomaly_id)
    if anomaly is None:
        raise NotFound(f"no anomaly {anomaly_id}; it may have been corrected by a later sync")
    if anomaly.acknowledged_at is None:
        anomaly.acknowledged_at = utcnow()
        anomaly.acknowledged_by = actor
        audit.record(
            session=session,
            actor=actor,
            action="anomaly.acknowledge",
            target=f"anomaly:{anomaly_id}",
        )
        session.flush()
    return anomaly


def list_anomalies(
    *, session: Session, since: dt.date, include_acknowledged: bool = True
) -> pd.DataFrame:
    """Anomalies from `since` on, newest first, with account names (money as Decimal)."""
    stmt = (
        select(Anomaly, Account.name)
        .join(Account, Account.id == Anomaly.account_id)
        .where(Anomaly.day >= since)
        .order_by(Anomaly.day.desc(), (Anomaly.actual_cost - Anomaly.baseline_cost).desc())
    )
    if not include_acknowledged:
        stmt = stmt.where(Anomaly.acknowledged_at.is_(None))
    columns = [
        "id",
        "day",
        "account",
        "model",
        "actual_cost",
        "baseline_cost",
        "excess",
        "score",
        "volume_effect",
        "mix_effect",
        "rate_effect",
        "explanation",
        "acknowledged_at",
        "acknowledged_by",
    ]
    rows = [
        (
            a.id,
            a.day,
            name,
            "all models" if a.model == ALL_MODELS else a.model,
            a.actual_cost,
            a.baseline_cost,
            a.actual_cost - a.baseline_cost,
            a.score,
            a.volume_effect,
            a.mix_effect,
            a.rate_effect,
            a.explanation,
            a.acknowledged_at,
            a.acknowledged_by,
        )
        for a, name in session.execute(stmt)
    ]
    return pd.DataFrame(rows, columns=columns)
