"""`price` with every kind, `prices diff` against the pinned catalog, overrides' provenance.

On SQLite and PostgreSQL: the CLI commits to `committed_db`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tracker.costs.corrections import parse_corrections
from tracker.costs.estimate import estimate_range
from tracker.costs.price_diff import price_diff
from tracker.costs.pricebook import PriceBook
from tracker.models import Account, Service, UsageRecord

M = 1_000_000
D = dt.date


def _account(session: Session, provider: str) -> int:
    service = session.scalar(select(Service).where(Service.name == provider))
    assert service is not None
    account = Account(
        service_id=service.id,
        name=f"{provider}-main",
        credential_encrypted="v1.x.y",
        credential_last4="abcd",
    )
    session.add(account)
    session.flush()
    return account.id


def _seed(engine: Engine) -> None:
    """Usage of models the book prices unlike the catalog, and one the catalog lacks."""
    with Session(engine) as session, session.begin():
        deepseek, openai = _account(session, "deepseek"), _account(session, "openai")
        rows = [
            (deepseek, D(2026, 4, 23), "deepseek-chat", ""),  # V3.2 correction
            (deepseek, D(2026, 4, 24), "deepseek-chat", ""),  # V4-Flash alias
            (deepseek, D(2026, 5, 2), "deepseek-chat", ""),
            (openai, D(2026, 10, 11), "gpt-5", "priority"),  # corrected priority price
            (openai, D(2026, 10, 12), "gpt-5", "priority"),  # the catalog's own
            (openai, D(2026, 11, 2), "gpt-5.4", "flex"),  # flex cached $0.125, not $0.13
            (openai, D(2026, 11, 2), "ft:gpt-4o-mini:acme::x", ""),  # not in the catalog
        ]
        for account_id, day, model, tier in rows:
            session.add(
                UsageRecord(
                    account_id=account_id,
                    day=day,
                    model=model,
                    usage_type="completions",
                    service_tier=tier,
                    input_tokens=M,
                    cached_input_tokens=M,
                    output_tokens=M,
                    requests=10,
                )
            )
        session.flush()
        estimate_range(session=session, start=D(2026, 4, 1), end=D(2026, 11, 30))


def test_prices_diff_against_the_pinned_catalog(cli: Callable[..., Any], committed_db: Engine):
    _seed(committed_db)
    result = cli("prices", "diff", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["catalog_version"] == "0.2.3"
    assert report["models"] == 4
    found = {
        (d["model"], d["tier"], d["first_day"], d["last_day"], d["kind"]): d
        for d in report["differences"]
    }
    # The V3.2 correction on its last day, then the V4-Flash alias (two used days, one run).
    v32 = found[("deepseek-chat", "", "2026-04-23", "2026-04-23", "input")]
    assert (v32["catalog"], v32["book"]) == ("0.27", "0.28")
    assert "news250929" in v32["because"]
    alias = found[("deepseek-chat", "", "2026-04-24", "2026-05-02", "cached_input")]
    assert (alias["catalog"], alias["book"]) == ("0.07", "0.0028")
    assert "priced as deepseek-v4-flash" in alias["because"]
    # 2 days x 1M cached tokens x (0.0028 - 0.07)
    assert Decimal(alias["estimate_change"]) == Decimal("-0.1344")
    # Priority before the catalog's 2026-10-12; nothing the day after.
    priority = found[("gpt-5", "priority", "2026-10-11", "2026-10-11", "output")]
    assert (priority["catalog"], priority["book"]) == ("10", "20")
    assert not [k for k in found if k[0] == "gpt-5" and k[2] == "2026-10-12"]
    flex = found[("gpt-5.4", "flex", "2026-11-02", "2026-11-02", "cached_input")]
    assert (flex["catalog"], flex["book"], flex["estimate_change"]) == ("0.13", "0.125", "-0.005")
    assert [u["model"] for u in report["unknown_models"]] == ["ft:gpt-4o-mini:acme::x"]
    assert "not in the price book" in report["unknown_models"][0]["book"]

    text = cli("prices", "diff")
    assert text.code == 0, text.err
    assert "genai-prices 0.2.3" in text.out and "priced as deepseek-v4-flash" in text.out
    assert "models the catalog does not know" in text.out


def test_a_correction_the_catalog_agrees_with_is_named(session: Session) -> None:
    account_id = _account(session, "openai")
    session.add(
        UsageRecord(
            account_id=account_id,
            day=D(2026, 8, 1),
            model="gpt-4o-mini",
            usage_type="completions",
            input_tokens=M,
        )
    )
    session.flush()
    same = parse_corrections(
        {
            "price_changes": [
                {
                    "provider": "openai",
                    "models": ["gpt-4o-mini"],
                    "overlay": True,
                    "effective_from": "2026-01-01",
                    "prices": {"input": "0.15"},
                    "source": "https://platform.openai.com/docs/pricing",
                    "checked_on": "2026-11-30",
                }
            ]
        }
    )
    report = price_diff(session=session, book=PriceBook(corrections=same))
    assert report.differences == []
    assert report.redundant == [
        "openai gpt-4o-mini from 2026-01-01 (source: https://platform.openai.com/docs/pricing)"
    ]


def test_price_takes_every_kind(cli: Callable[..., Any]) -> None:
    def price(*args: str) -> dict[str, Any]:
        result = cli("price", "--date", "2026-11-01", *args, "--json")
        assert result.code == 0, result.err
        payload: dict[str, Any] = json.loads(result.out)
        return payload

    realtime = price(
        "--provider", "openai", "--model", "gpt-realtime", "--input-tokens", "1000",
        "--input-audio-tokens", "2000", "--cached-audio-tokens", "1000",
        "--output-audio-tokens", "500", "--input-image-tokens", "1000",
    )  # fmt: skip
    # 1000 * 4 + 2000 * 32 + 1000 * 0.40 + 500 * 64 + 1000 * 5, per million
    assert realtime["estimated_cost"] == "0.1054"
    assert realtime["unit_prices"]["output_audio_per_mtok"] == "64"
    image = price(
        "--provider", "openai", "--model", "gpt-image-1", "--cached-image-tokens", "1000000",
        "--output-image-tokens", "1000",
    )  # fmt: skip
    assert image["estimated_cost"] == "2.54"  # 2.50 + 1000 * 40 / 1M
    tools = price(
        "--provider", "openai", "--model", "gpt-4.1", "--web-search-calls", "10",
        "--file-search-calls", "100", "--images", "0",
    )  # fmt: skip
    assert tools["estimated_cost"] == "0.35"
    speech = price("--provider", "openai", "--model", "tts-1", "--characters", "1000")
    assert speech["estimated_cost"] == "0.015"
    transcription = price("--provider", "openai", "--model", "whisper-1", "--audio-seconds", "60")
    assert transcription["estimated_cost"] == "0.006"
    research = price(
        "--provider", "perplexity", "--model", "sonar-deep-research", "--output-tokens",
        "600000", "--reasoning-tokens", "400000",
    )  # fmt: skip
    assert research["estimated_cost"] == "6"  # 0.6 * 8 + 0.4 * 3
    sized = price(
        "--provider", "perplexity", "--model", "sonar-pro", "--requests", "1000",
        "--search-context-size", "low",
    )  # fmt: skip
    assert (sized["estimated_cost"], sized["approximate"]) == ("6", False)
    unsized = price("--provider", "perplexity", "--model", "sonar-pro", "--requests", "1000")
    assert (unsized["estimated_cost"], unsized["approximate"]) == ("14", True)
    sessions = cli(
        "price", "--provider", "openai", "--model", "gpt-4.1", "--date", "2026-11-01",
        "--code-interpreter-sessions", "3",
    )  # fmt: skip
    assert sessions.code == 1 and "no price for code interpreter" in sessions.err


def test_override_with_other_kinds_and_its_source(
    cli: Callable[..., Any], committed_db: Engine
) -> None:
    added = cli(
        "prices", "override", "add", "--provider", "openai", "--model", "gpt-4o-audio-preview",
        "--from", "2026-01-01", "--price", "input_audio", "40", "--price", "output_audio", "80",
        "--source", "MSA 2026-114, schedule B", "--checked-on", "2026-11-20",
    )  # fmt: skip
    assert added.code == 0, added.err
    listed = cli("prices", "override", "list", "--json")
    view = json.loads(listed.out)[0]
    assert view["extra_prices"] == {"input_audio": "40", "output_audio": "80"}
    assert (view["source"], view["checked_on"]) == ("MSA 2026-114, schedule B", "2026-11-20")
    assert "MSA 2026-114" in cli("prices", "override", "list").out
    quote = cli(
        "price", "--provider", "openai", "--model", "gpt-4o-audio-preview", "--date",
        "2026-08-01", "--input-audio-tokens", "1000000", "--json",
    )  # fmt: skip
    assert quote.code == 0, quote.err
    assert json.loads(quote.out)["estimated_cost"] == "40"
    bad = cli(
        "prices", "override", "add", "--provider", "openai", "--model", "gpt-4o",
        "--from", "2026-01-01", "--price", "audio", "1",
    )  # fmt: skip
    assert bad.code == 1 and "unknown price kind(s) audio" in bad.err
