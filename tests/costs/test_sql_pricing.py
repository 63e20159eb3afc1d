"""The price book's rule in SQL (`outcome_sql`) gives exactly what `PriceBook.outcome` gives.

Several hundred rows (priced, tiered, batch, discounted, unknown models; billed-only line
items, fees, empty buckets, request-only rows, other units) go through both, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.costs.test_pricing_properties import BOOK, MODELS
from tracker.costs.sql_pricing import UNIT_PRICES, outcome_sql, stage_unit_prices
from tracker.models import TOKEN_COLUMNS

COLUMNS = (
    "provider",
    "model",
    "day",
    "tier",
    "usage_type",
    *TOKEN_COLUMNS,
    "requests",
    "other_units",
    "billed_cost",
)


def sample_rows(n: int = 400) -> list[tuple]:
    pick = random.Random(20261203)
    models = [*MODELS, ("openai", "no-such-model", ""), ("groq", "", "")]
    usage_types = ["completions", "completions", "messages", "cost:web search", "seats"]
    rows = []
    for _ in range(n):
        provider, model, tier = pick.choice(models)
        day = dt.date(2025, 1, 1) + dt.timedelta(days=pick.randrange(900))
        zero = pick.random() < 0.2
        # Large days pass any price tier; small ones (a tier's threshold is 100k tokens and up)
        # may not, depending on their requests.
        scale = pick.choice([10**10, 10**5])
        counts = [0 if zero or pick.random() < 0.3 else pick.randrange(scale) for _ in range(5)]
        requests = pick.choice([0, 0, 1, pick.randrange(10**6)])
        other = pick.choice([Decimal(0), Decimal(0), Decimal("3.5")])
        billed = pick.choice([None, None, Decimal("1.234567")])
        rows.append(
            (provider, model, day, tier, pick.choice(usage_types), *counts, requests, other, billed)
        )
    return rows


def test_sql_pricing_matches_the_python_rule(postgresql_engine: Engine) -> None:
    rows = sample_rows()
    keys = sorted({(r[0], r[1], r[2], r[3]) for r in rows})
    with postgresql_engine.connect() as connection, connection.begin():
        stage_unit_prices(connection, BOOK, keys)
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE sample (n int, provider text, model text, day date, "
            "tier text, usage_type text, input_tokens bigint, cached_input_tokens bigint, "
            "cache_write_tokens bigint, cache_write_1h_tokens bigint, output_tokens bigint, "
            "requests bigint, other_units numeric, billed_cost numeric) ON COMMIT DROP"
        )
        connection.execute(
            text(f"INSERT INTO sample VALUES (:n, {', '.join(':' + c for c in COLUMNS)})"),
            [dict(zip(("n", *COLUMNS), (n, *row), strict=True)) for n, row in enumerate(rows)],
        )
        cost, status = outcome_sql({c: f"s.{c}" for c in COLUMNS})
        found = connection.execute(
            text(
                f"SELECT s.n, {cost}, {status} FROM sample AS s LEFT JOIN {UNIT_PRICES} AS p "
                "ON p.provider = s.provider AND p.model = s.model AND p.day = s.day "
                "AND p.tier = s.tier ORDER BY s.n"
            )
        ).all()
    statuses = set()
    for n, sql_cost, sql_status in found:
        provider, model, day, tier, usage_type, i, c, w, w1, o, req, other, billed = rows[n]
        expected = BOOK.outcome(
            provider, model, day, usage_type, tier, i, c, w, w1, o, req, other, billed
        )
        assert (sql_cost, sql_status) == expected, rows[n]
        statuses.add(sql_status)
    # The sample reaches every outcome.
    assert statuses == {"priced", "approximate", "unpriced", "not_applicable"}
