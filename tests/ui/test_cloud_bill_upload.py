"""AppTest of the Accounts page's Cloud bill tab: upload a cloud bill's FOCUS export into an
Amazon Bedrock account; a bad file is refused with its line and nothing is imported."""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.ingest.focus_samples import AWS, ai_total, csv_bytes, sample
from tracker.core.crypto import CredentialCipher
from tracker.models import Account, UsageRecord
from tracker.providers import accounts

AppAs = Callable[[str, str], AppTest]


def tab(at: AppTest, label: str) -> Any:
    return next(t for t in at.tabs if t.label == label)


def add_bedrock_account(engine: Engine) -> None:
    cipher = CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))
    with Session(engine) as session, session.begin():
        accounts.add_account(
            session=session, cipher=cipher, provider="aws_bedrock", name="AWS bill", api_key=""
        )


def billed(engine: Engine) -> Decimal:
    with Session(engine) as session:
        total = session.scalar(
            select(func.sum(UsageRecord.billed_cost))
            .join(Account, Account.id == UsageRecord.account_id)
            .where(Account.name == "AWS bill")
        )
    return Decimal(str(total or 0)).quantize(Decimal("0.01"))


def cloud_tab(app_as: AppAs) -> AppTest:
    at = app_as("alice", "admin")
    at.switch_page("pages/accounts.py").run()
    at.session_state["accounts_tab"] = "Cloud bill"
    at.run()
    assert not at.exception
    return at


def test_an_uploaded_focus_export_lands_in_the_cloud_account(
    app_as: AppAs, seeded_db: Engine
) -> None:
    add_bedrock_account(seeded_db)
    header, rows = sample(AWS)
    at = cloud_tab(app_as)
    assert at.selectbox(key="focus_account").options == ["AWS bill"]  # cloud accounts only
    good = csv_bytes(header, rows)
    bad = csv_bytes(header, [{**rows[0], "BilledCost": "n/a"}, *rows[1:]])

    at.file_uploader(key="focus_files").set_value(("focus-00001.csv", bad, "text/csv"))
    at.run()
    at.button(key="focus_go").click()
    at.run()
    assert not at.exception
    [error] = [e.value.replace("\\", "") for e in tab(at, "Cloud bill").error]
    assert error.startswith("Nothing imported:") and "line 2: BilledCost 'n/a'" in error, error
    assert billed(seeded_db) == 0

    at.file_uploader(key="focus_files").set_value(("focus-00001.csv", good, "text/csv"))
    at.run()
    at.button(key="focus_go").click()
    at.run()
    assert not at.exception
    [done] = [s.value.replace("\\", "") for s in tab(at, "Cloud bill").success]
    assert "Imported 9 AI charge(s) of billing period(s) 2026-08 into AWS bill" in done, done
    assert "2 row(s) of other services left out" in done
    assert at.session_state["accounts_tab"] == "Cloud bill"
    assert billed(seeded_db) == ai_total(rows).quantize(Decimal("0.01"))
