"""CSV import on SQLite and PostgreSQL: the template, row-level errors, all-or-nothing, CLI."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tracker.core.errors import InvalidInput, NotFound
from tracker.ingest.csv_import import import_csv
from tracker.models import AuditLog, UsageRecord
from tracker.providers import accounts

HEADER = (
    "day,model,input_tokens,output_tokens,requests,cached_input_tokens,cost,project,api_key_id\n"
)
GOOD = (
    HEADER
    + "2026-08-01,llama-3.3-70b-versatile,1200000,300000,850,200000,0.945000,support-bot,\n"
    + "2026-08-01,llama-3.1-8b-instant,400000,90000,1200,,,,\n"
    + "2026-08-02,llama-3.3-70b-versatile,980000,250000,700,,1.25,support-bot,key-ci\n"
)


def add_account(session, cipher, provider="groq", name="groq-prod"):
    return accounts.add_account(
        session=session, cipher=cipher, provider=provider, name=name, api_key="gsk_0123456789abc"
    )


def stored(session, account_id):
    return session.execute(
        select(
            func.count(),
            func.sum(UsageRecord.input_tokens),
            func.sum(UsageRecord.cached_input_tokens),
            func.sum(UsageRecord.output_tokens),
            func.sum(UsageRecord.requests),
            func.sum(UsageRecord.billed_cost),
        ).where(UsageRecord.account_id == account_id)
    ).one()


def test_import_writes_the_template_rows(session, cipher):
    account = add_account(session, cipher)
    result = import_csv(session=session, account_name="groq-prod", stream=io.StringIO(GOOD))
    assert (result.rows_written, result.days) == (3, 2)
    assert (result.first_day, result.last_day) == (dt.date(2026, 8, 1), dt.date(2026, 8, 2))
    count, uncached, cached, output, reqs, billed = stored(session, account.id)
    assert (count, uncached, cached, output, reqs) == (3, 2_380_000, 200_000, 640_000, 2750)
    assert Decimal(billed).quantize(Decimal("0.000001")) == Decimal("2.195000")
    row = session.scalar(
        select(UsageRecord).where(
            UsageRecord.api_key_id == "key-ci", UsageRecord.account_id == account.id
        )
    )
    assert row.project_id == "support-bot" and row.usage_type == "import"
    assert row.cost_source == "billed"
    assert session.scalar(select(AuditLog.action).where(AuditLog.action == "usage.import"))


def test_reimport_replaces_and_repeats_add_up(session, cipher):
    account = add_account(session, cipher, provider="perplexity", name="pplx")
    import_csv(session=session, account_name="pplx", stream=io.StringIO(GOOD))
    again = HEADER + (
        "2026-08-01,llama-3.1-8b-instant,100,10,1,,,,\n"
        "2026-08-01,llama-3.1-8b-instant,200,20,2,,,,\n"
    )
    result = import_csv(session=session, account_name="pplx", stream=io.StringIO(again))
    assert result.rows_written == 1
    count, uncached, _, output, reqs, _ = stored(session, account.id)
    assert count == 3
    assert (uncached, output, reqs) == (1_000_000 + 980_000 + 300, 300_000 + 250_000 + 30, 1553)


@pytest.mark.parametrize("provider", ["groq", "perplexity"])
def test_bad_rows_are_listed_by_line_and_nothing_is_written(session, cipher, provider):
    account = add_account(session, cipher, provider=provider, name="acct")
    bad = (
        HEADER
        + "2026-08-01,llama-3.3-70b-versatile,1200000,300000,850,,,,\n"  # line 2: fine
        + "2026-13-01,m,1,1,1,,,,\n"  # line 3: bad day
        + "2026-08-01,,1,1,1,,,,\n"  # line 4: no model
        + "2026-08-01,m,12k,1,1,,,,\n"  # line 5: bad tokens
        + "2026-08-01,m,10,1,1,20,,,\n"  # line 6: cached > input
        + "2026-08-01,m,10,1,1,,-3,,\n"  # line 7: negative cost
        + "2099-01-01,m,10,1,1,,,,\n"  # line 8: future
        + "2026-08-01,m,10,1\n"  # line 9: short row
    )
    with pytest.raises(InvalidInput) as caught:
        import_csv(session=session, account_name="acct", stream=io.StringIO(bad))
    message = str(caught.value)
    for line, text in [
        (3, "not a date"),
        (4, "model is empty"),
        (5, "'12k' is not a whole number"),
        (6, "larger than input_tokens"),
        (7, "zero or more"),
        (8, "in the future"),
        (9, "4 fields"),
    ]:
        assert re.search(rf"line {line}: [^;]*{re.escape(text)}", message), (line, message)
    assert "line 2" not in message and "7 problem(s)" in message
    assert stored(session, account.id)[0] == 0


def test_header_problems_and_empty_files(session, cipher):
    add_account(session, cipher)
    cases = [
        ("", "empty"),
        ("day,model,input_tokens\n", "missing column(s) output_tokens, requests"),
        (HEADER.strip() + ",colour\n", "unknown column(s) colour"),
        (HEADER, "no data rows"),
    ]
    for text, expected in cases:
        with pytest.raises(InvalidInput, match=expected.replace("(", r"\(").replace(")", r"\)")):
            import_csv(session=session, account_name="groq-prod", stream=io.StringIO(text))
    with pytest.raises(NotFound):
        import_csv(session=session, account_name="nope", stream=io.StringIO(GOOD))


def test_error_list_is_capped(session, cipher):
    add_account(session, cipher)
    text = HEADER + "".join(f"2026-08-01,m,x{i},1,1,,,,\n" for i in range(30))
    with pytest.raises(InvalidInput) as caught:
        import_csv(session=session, account_name="groq-prod", stream=io.StringIO(text))
    assert "30 problem(s)" in str(caught.value) and "(and 10 more)" in str(caught.value)
    assert "line 21:" in str(caught.value) and "line 22:" not in str(caught.value)


def test_cli_import_reports_and_refuses(cli, committed_db, tmp_path):
    key = "gsk_0123456789abcdef"
    assert (
        cli(
            "accounts", "add", "--provider", "groq", "--name", "g", "--api-key-stdin", stdin=key
        ).code
        == 0
    )
    good = tmp_path / "good.csv"
    good.write_text("\ufeff" + GOOD, encoding="utf-8")
    result = cli("import", "--account", "g", str(good))
    assert result.code == 0, result.err
    assert "imported 3 row(s) into g covering 2 day(s) (2026-08-01..2026-08-02)" in result.out

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "2026-08-03,m,1,1,1,,,,\n2026-08-03,m,one,1,1,,,,\n")
    result = cli("import", "--account", "g", str(bad))
    assert result.code == 1 and "line 3: input_tokens 'one'" in result.err
    assert len(result.err.strip().splitlines()) == 1
    with committed_db.connect() as conn:
        days = conn.execute(select(func.count()).select_from(UsageRecord)).scalar_one()
    assert days == 3  # the bad file added nothing

    missing = cli("import", "--account", "g", str(tmp_path / "nope.csv"))
    assert missing.code == 1 and "cannot read" in missing.err


def test_nul_bytes_and_oversized_costs_are_listed_not_crashed_on(session, cipher):
    add_account(session, cipher)
    bad = (
        HEADER
        + "2026-08-01,llama\x00,10,1,1,,,,\n"  # line 2: a NUL byte (PostgreSQL refuses it)
        + "2026-08-01,llama,10,1,1,,99999999999999999999,,\n"  # line 3: beyond NUMERIC(18, 6)
    )
    with pytest.raises(InvalidInput) as caught:
        import_csv(session=session, account_name="groq-prod", stream=io.StringIO(bad))
    message = str(caught.value)
    assert "line 2: a field holds a NUL byte" in message
    assert "line 3: cost '99999999999999999999' is implausibly large" in message


def test_an_imported_row_without_a_cost_is_estimated_even_beside_billed_rows(session, cipher):
    account = add_account(session, cipher)
    text = (
        HEADER
        + "2026-08-01,llama-3.3-70b-versatile,1200000,300000,850,,0.945,,\n"
        + "2026-08-01,llama-3.1-8b-instant,400000,90000,1200,,,,\n"
    )
    import_csv(session=session, account_name="groq-prod", stream=io.StringIO(text))
    rows = {
        r.model: r
        for r in session.scalars(select(UsageRecord).where(UsageRecord.account_id == account.id))
    }
    assert rows["llama-3.3-70b-versatile"].cost_source == "billed"
    small = rows["llama-3.1-8b-instant"]
    assert small.cost_source == "estimated", small.cost_source  # not "covered" ($0)
    assert small.estimated_cost is not None and small.estimated_cost > 0


DETAILED = (
    "day,model,input_tokens,output_tokens,requests,search_context_size,reasoning_tokens,"
    "web_search_calls\n"
    "2026-08-01,sonar,1000000,1000000,600,low,,\n"
    "2026-08-01,sonar,0,0,400,high,,\n"
    "2026-08-02,sonar-deep-research,1000000,1000000,10,,400000,20\n"
)


def test_detail_columns_are_stored_and_priced(session, cipher):
    account = add_account(session, cipher, provider="perplexity", name="pplx")
    import_csv(session=session, account_name="pplx", stream=io.StringIO(DETAILED))
    rows = {
        r.model: r
        for r in session.scalars(select(UsageRecord).where(UsageRecord.account_id == account.id))
    }
    sonar, research = rows["sonar"], rows["sonar-deep-research"]
    # Two rows of one day and model add up, their search context sizes apart.
    assert sonar.requests == 1000
    assert sonar.usage_details == {"requests_high_context": 400, "requests_low_context": 600}
    # 1 + 1 + 600 * 0.005 + 400 * 0.012 (docs.perplexity.ai/getting-started/pricing)
    assert (sonar.estimated_cost, sonar.pricing_status) == (Decimal("9.8"), "priced")
    assert research.usage_details == {"reasoning_tokens": 400_000, "web_search_calls": 20}
    # 2 + 0.6 * 8 + 0.4 * 3 + 20 * 0.005
    assert (research.estimated_cost, research.pricing_status) == (Decimal("8.1"), "priced")


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2026-08-01,m,100,10,1,20,high,5", "search_context_size 'huge'"),
        ("2026-08-01,m,100,10,1,20,,50", "reasoning_tokens (50) is more than output_tokens (10)"),
        ("2026-08-01,m,100,10,1,20,,x", "reasoning_tokens 'x' is not a whole number"),
        (
            "2026-08-01,m,100,10,1,90,low,",
            "input_audio_tokens (90) is more than input_tokens - cached_input_tokens (70)",
        ),
    ],
)
def test_detail_columns_are_checked(session, cipher, row, problem):
    add_account(session, cipher, provider="perplexity", name="pplx")
    header = (
        "day,model,input_tokens,output_tokens,requests,input_audio_tokens,search_context_size,"
        "reasoning_tokens,cached_input_tokens\n"
    )
    text = header + row + ",30\n"
    if "huge" in problem:
        text = text.replace(",high,", ",huge,")
    with pytest.raises(InvalidInput) as caught:
        import_csv(session=session, account_name="pplx", stream=io.StringIO(text))
    assert problem in str(caught.value)
