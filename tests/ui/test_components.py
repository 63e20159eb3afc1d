"""Small pieces of the app that need no running page."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tracker.ui.components import amount_text, csv_bytes, duration


def test_a_table_download_neutralises_formulas_and_keeps_numbers_exact():
    frame = pd.DataFrame(
        [
            {"model": '=HYPERLINK("http://evil.example","x")', "cost": Decimal("-0.000001")},
            {"model": "@cmd", "cost": Decimal("12.345678")},
            {"model": "gpt-4o", "cost": Decimal("0.3")},
        ]
    )
    rows = list(csv.DictReader(io.StringIO(csv_bytes(frame).decode("utf-8"))))
    assert [r["model"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'@cmd",
        "gpt-4o",
    ]
    assert [r["cost"] for r in rows] == ["-0.000001", "12.345678", "0.3"]


def _refused_then_flashed() -> None:
    import streamlit as st

    from tracker.core.errors import TrackerError
    from tracker.ui import components as ui

    def refused() -> None:
        raise TrackerError("org [click](http://evil.example) ![x](http://evil.example/x.png)")

    ui.show_flash()
    ui.attempt(refused, failed="Not saved: {reason}.")
    if not st.session_state.get("flashed"):
        st.session_state["flashed"] = True
        ui.attempt(lambda: "**bold** [link](http://evil.example)", failed="{reason}", done=str)


def test_provider_and_user_text_is_shown_as_text_not_markup():
    at = AppTest.from_function(_refused_then_flashed).run()
    assert not at.exception
    shown = [e.value for e in at.error] + [s.value for s in at.success]
    # Escaped: Streamlit shows the brackets and parentheses, and builds no link or image.
    assert any("\\[click\\]\\(http" in text for text in shown), shown
    assert any("\\*\\*bold\\*\\* \\[link\\]" in text for text in shown), shown


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (None, ""),
        (Decimal("50.000000"), "50.00"),
        (Decimal("0.100000"), "0.10"),
        (Decimal("12.345678"), "12.345678"),
        (Decimal("1500"), "1500.00"),
    ],
)
def test_amounts_read_as_money_in_forms(stored: Decimal | None, shown: str) -> None:
    assert amount_text(stored) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (1.2, "2 seconds"),  # a bound: rounded up, never down
        (60, "1 minute"),
        (61, "2 minutes"),
        (3 * 3600, "3 hours"),
        (2.5 * 86_400, "3 days"),
    ],
)
def test_a_duration_reads_in_its_largest_unit_rounded_up(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown
