"""DeepSeek: remaining balance only (`GET /user/balance`), in the currency DeepSeek reports.

DeepSeek has no usage or cost history API; its usage is not synced (import a CSV instead).
The balance comes as decimal strings per currency (CNY or USD). When several currencies are
listed, the first one with money left is kept (else the first one), as given, unconverted.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tracker.providers.base import Balance, Connector, ProviderResponseError, to_decimal


class DeepSeekConnector(Connector):
    provider: ClassVar[str] = "deepseek"
    default_base_url: ClassVar[str] = "https://api.deepseek.com"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.reveal()}"}

    def _balances(self) -> tuple[bool, list[dict[str, Any]]]:
        body = self.get_object("/user/balance")
        infos = body.get("balance_infos")
        if not isinstance(infos, list) or not all(isinstance(i, dict) for i in infos):
            raise ProviderResponseError("deepseek: /user/balance has no balance_infos list")
        return bool(body.get("is_available", True)), infos

    def test(self) -> str:
        """Check the key by reading the balance."""
        available, infos = self._balances()
        shown = ", ".join(
            f"{to_decimal(i.get('total_balance'))} {i.get('currency') or '?'}" for i in infos
        )
        note = "" if available else " (DeepSeek says the balance is not enough to call the API)"
        return f"key accepted; balance {shown or 'none'}{note}"

    def fetch_balance(self) -> Balance | None:
        """The remaining balance, in the currency DeepSeek reports it in."""
        _, infos = self._balances()
        if not infos:
            return None
        parsed = [
            (to_decimal(i.get("total_balance"), "total_balance"), str(i.get("currency") or ""))
            for i in infos
        ]
        remaining, currency = next((p for p in parsed if p[0] > 0), parsed[0])
        if not currency:
            raise ProviderResponseError("deepseek: the balance has no currency")
        return Balance(remaining=remaining, currency=currency.upper()[:8])
