"""Provider accounts: add, list, edit, remove, test; credentials encrypted, shown as last 4."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.crypto import CredentialCipher, last4
from tracker.core.errors import CredentialError, InvalidInput, NotFound
from tracker.core.units import parse_money
from tracker.models import Account, AccountStatus, utcnow
from tracker.providers.base import Connector, ProviderError
from tracker.providers.registry import connector_class, ensure_service, provider_info


@dataclass(frozen=True)
class AccountView:
    """What may be shown of an account: never the credential, only its last 4 characters."""

    id: int
    name: str
    provider: str
    provider_display_name: str
    masked_key: str
    organization_id: str | None
    base_url: str | None
    monthly_budget: Decimal | None
    token_quota: int | None
    status: str
    last_sync_at: dt.datetime | None
    last_error: str | None
    balance_remaining: Decimal | None
    balance_currency: str | None
    # The host the key goes to when it is not the provider's own (a gateway, a proxy).
    custom_host: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "key": self.masked_key,
            "organization": self.organization_id,
            "base_url": self.base_url,
            "monthly_budget": None if self.monthly_budget is None else str(self.monthly_budget),
            "token_quota": self.token_quota,
            "status": self.status,
            "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
            "last_error": self.last_error,
            "balance_remaining": (
                None if self.balance_remaining is None else str(self.balance_remaining)
            ),
            "balance_currency": self.balance_currency,
        }


def view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        name=account.name,
        provider=account.service.name,
        provider_display_name=account.service.display_name,
        masked_key=account.masked_key,
        organization_id=account.organization_id,
        base_url=account.base_url,
        monthly_budget=account.monthly_budget,
        token_quota=account.token_quota,
        status=account.status,
        last_sync_at=account.last_sync_at,
        last_error=account.last_error,
        balance_remaining=account.balance_remaining,
        balance_currency=account.balance_currency,
        custom_host=custom_host(account.service.name, account.base_url),
    )


def clean_api_key(raw: str) -> str:
    key = raw.strip()
    if not key:
        raise InvalidInput("the API key is empty; paste the account's API key")
    if any(ch.isspace() for ch in key):
        raise InvalidInput("the API key contains whitespace; paste the key alone")
    return key


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def official_host(provider: str) -> str:
    """The host of the provider's own API (its connector's default base URL)."""
    return urlparse(connector_class(provider).default_base_url).hostname or ""


def custom_host(provider: str, base_url: str | None) -> str | None:
    """The host a custom base URL sends the key to, when it is not the provider's own."""
    host = urlparse(base_url).hostname if base_url else None
    return host if host and host != official_host(provider) else None


def _clean_base_url(raw: str | None, provider: str, *, allow_custom: bool) -> str | None:
    """A base URL the key may be sent to: https (http only on this machine), and the
    provider's own host unless custom hosts are allowed (ALLOW_CUSTOM_BASE_URLS)."""
    if raw is None or raw.strip() == "":
        return None
    url = raw.strip().rstrip("/")
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if parsed.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"base URL {raw!r} must be a full address starting with https://")
    if parsed.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise InvalidInput(
            f"base URL {url!r} is plain http: the key would cross the network unencrypted; "
            "use https:// (http:// only for this machine)"
        )
    if parsed.username or parsed.password:
        raise InvalidInput("the base URL must not hold a user name or password")
    if custom_host(provider, url) and host not in LOOPBACK_HOSTS and not allow_custom:
        raise InvalidInput(
            f"base URL {url!r} would send this account's key to {host}, not "
            f"{official_host(provider)}; set ALLOW_CUSTOM_BASE_URLS=true to allow gateways"
        )
    return url


_NO_KEY = (
    "{provider} accounts take no key: their usage comes from the cloud bill's FOCUS export; "
    "leave the key empty"
)


MAX_NAMED_ACCOUNTS = 12  # an unknown name's message lists at most this many


def get_account(*, session: Session, name: str) -> Account:
    """The account named `name`; unknown: NotFound naming the accounts there are (the app
    and the CLI show the message alike, so it names no command and no page)."""
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None:
        raise NotFound(f"no account named {name!r} ({known_accounts(session)})")
    return account


def known_accounts(session: Session) -> str:
    """The account names, for a message about a name that is not one: "accounts: A, B"."""
    names = list(
        session.scalars(select(Account.name).order_by(Account.name).limit(MAX_NAMED_ACCOUNTS + 1))
    )
    if not names:
        return "no account is connected yet"
    if len(names) > MAX_NAMED_ACCOUNTS:
        total = session.scalar(select(func.count()).select_from(Account)) or 0
        more = total - MAX_NAMED_ACCOUNTS
        return f"accounts: {', '.join(names[:MAX_NAMED_ACCOUNTS])} and {more} more"
    return f"accounts: {', '.join(names)}"


def add_account(
    *,
    session: Session,
    cipher: CredentialCipher,
    provider: str,
    name: str,
    api_key: str,
    organization: str | None = None,
    base_url: str | None = None,
    monthly_budget: str | Decimal | None = None,
    token_quota: int | None = None,
    actor: str = "cli",
    allow_custom_base_url: bool = False,
) -> Account:
    """Store a new account with its key encrypted; refuse bad input without writing."""
    service = ensure_service(session, provider)
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("the account name must have 1-128 characters")
    if session.scalar(select(Account.id).where(Account.name == name)):
        raise InvalidInput(f"an account named {name!r} already exists; choose another name")
    info = provider_info(provider)
    if info.focus_import and api_key.strip():
        raise InvalidInput(_NO_KEY.format(provider=info.display_name))
    key = "" if info.csv_only and not api_key.strip() else clean_api_key(api_key)
    organization = (organization or "").strip() or None
    if info.needs_organization and not organization:
        raise InvalidInput(
            f"{info.display_name} accounts need the organization (its login on the provider)"
        )
    if token_quota is not None and token_quota < 0:
        raise InvalidInput("the token quota must be zero or more")
    account = Account(
        service=service,
        name=name,
        credential_encrypted=cipher.encrypt(key) if key else "",
        credential_last4=last4(key) if key else "",
        organization_id=organization,
        base_url=_clean_base_url(base_url, provider, allow_custom=allow_custom_base_url),
        monthly_budget=parse_money(monthly_budget, what="the monthly budget"),
        token_quota=token_quota,
        status=AccountStatus.ACTIVE,
    )
    session.add(account)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="account.add",
        target=name,
        provider=provider,
        key=account.masked_key,
    )
    return account


def update_account(
    *,
    session: Session,
    cipher: CredentialCipher,
    name: str,
    actor: str,
    new_name: str | None = None,
    api_key: str | None = None,
    organization: str | None = None,
    base_url: str | None = None,
    monthly_budget: str | Decimal | None = None,
    token_quota: int | None = None,
    status: str | None = None,
    allow_custom_base_url: bool = False,
) -> Account:
    """Change an account; arguments left None keep their value. The key is re-encrypted."""
    account = get_account(session=session, name=name)
    changed: list[str] = []
    if new_name is not None and new_name.strip() != account.name:
        new_name = new_name.strip()
        if not new_name or len(new_name) > 128:
            raise InvalidInput("the account name must have 1-128 characters")
        if session.scalar(select(Account.id).where(Account.name == new_name)):
            raise InvalidInput(f"an account named {new_name!r} already exists")
        account.name = new_name
        changed.append("name")
    if api_key is not None:
        if provider_info(account.provider).focus_import:
            raise InvalidInput(_NO_KEY.format(provider=account.service.display_name))
        key = clean_api_key(api_key)
        account.credential_encrypted = cipher.encrypt(key)
        account.credential_last4 = last4(key)
        account.status, account.last_error = AccountStatus.ACTIVE, None
        account.organization_key = None  # a new key may read another organisation
        changed.append("key")
    if organization is not None:
        account.organization_id = organization.strip() or None
        account.organization_key = None
        changed.append("organization")
    if base_url is not None:
        cleaned = _clean_base_url(base_url, account.provider, allow_custom=allow_custom_base_url)
        if cleaned != account.base_url:
            if api_key is None:
                raise InvalidInput(
                    "a new base URL needs the key entered again, so a stored key is never "
                    "sent to an address it was not given for"
                )
            account.base_url = cleaned
            changed.append("base_url")
    if monthly_budget is not None:
        account.monthly_budget = parse_money(monthly_budget, what="the monthly budget")
        changed.append("monthly_budget")
    if token_quota is not None:
        if token_quota < 0:
            raise InvalidInput("the token quota must be zero or more")
        account.token_quota = token_quota or None
        changed.append("token_quota")
    if status is not None:
        if status not in (AccountStatus.ACTIVE, AccountStatus.DISABLED):
            raise InvalidInput("status must be active or disabled")
        account.status = status
        changed.append("status")
    session.flush()
    audit.record(session=session, actor=actor, action="account.update", target=name, fields=changed)
    return account


def list_accounts(*, session: Session) -> list[AccountView]:
    return [view(a) for a in session.scalars(select(Account).order_by(Account.name))]


def remove_account(*, session: Session, name: str, actor: str = "cli") -> None:
    """Delete an account and its usage history (the audit log keeps the removal)."""
    account = get_account(session=session, name=name)
    provider = account.service.name
    session.delete(account)
    session.flush()
    audit.record(
        session=session, actor=actor, action="account.remove", target=name, provider=provider
    )


def connector_for(
    account: Account, *, cipher: CredentialCipher, http: requests.Session, timeout: float
) -> Connector:
    """A ready connector for an account, with its credential decrypted."""
    cls = connector_class(account.service.name)
    return cls(
        credential=cipher.decrypt(account.credential_encrypted),
        http=http,
        base_url=account.base_url,
        organization=account.organization_id,
        timeout=timeout,
    )


def record_rate_limits(account: Account, connector: Connector) -> None:
    """Keep the connector's latest rate-limit headers as the account's snapshot."""
    if connector.rate_limits.headers:
        account.rate_limit_snapshot = dict(connector.rate_limits.headers)
        account.rate_limit_updated_at = connector.rate_limits.observed_at


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    message: str


def check_account(
    *,
    session: Session,
    cipher: CredentialCipher,
    name: str,
    http: requests.Session,
    timeout: float,
) -> CheckOutcome:
    """Check the account's credential against its provider; store the outcome on the account.

    The outcome (and the error, if any) is written to the account in the caller's
    transaction, so the caller should commit even when `ok` is False.
    """
    account = get_account(session=session, name=name)
    if not account.has_key:
        return CheckOutcome(False, "this account has no key: its usage comes by CSV import")
    try:
        connector = connector_for(account, cipher=cipher, http=http, timeout=timeout)
    except CredentialError as exc:
        return CheckOutcome(False, str(exc))
    try:
        message = connector.test()
        claim_organization(session=session, account=account, connector=connector)
        balance = connector.fetch_balance()
    except ProviderError as exc:
        account.status, account.last_error, account.last_error_at = (
            AccountStatus.ERROR,
            str(exc),
            utcnow(),
        )
        record_rate_limits(account, connector)
        return CheckOutcome(False, str(exc))
    if balance is not None:
        account.balance_remaining = balance.remaining
        account.balance_currency = balance.currency
        account.balance_updated_at = utcnow()
    if account.status == AccountStatus.ERROR:
        account.status = AccountStatus.ACTIVE
    account.last_error = None
    record_rate_limits(account, connector)
    return CheckOutcome(True, message)


class DuplicateOrganization(ProviderError):
    """The key reads an organisation another account already covers."""


def claim_organization(*, session: Session, account: Account, connector: Connector) -> None:
    """Record which organisation the account's key reads; refuse one another account has.

    Asked of the provider once per account (the connection test, or the first sync)."""
    if account.organization_key is not None:
        return
    key = connector.organization_key()
    if key is None:
        return
    first = session.scalar(
        select(Account.name).where(Account.organization_key == key, Account.id != account.id)
    )
    if first is not None:
        raise DuplicateOrganization(
            f"this key reads the same {account.service.display_name} organisation as the "
            f"account {first!r}; its spend would count twice. Remove one of the two accounts"
        )
    account.organization_key = key


def rotate_keys(*, session: Session, cipher: CredentialCipher, actor: str = "cli") -> int:
    """Re-encrypt every credential not under the current key; return how many changed.

    Runs in the caller's transaction: if any value cannot be decrypted, nothing is changed.
    """
    rotated = 0
    for account in session.scalars(select(Account).order_by(Account.id)):
        if account.has_key and cipher.needs_rotation(account.credential_encrypted):
            account.credential_encrypted = cipher.rotate(account.credential_encrypted)
            rotated += 1
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="keys.rotate",
        target=cipher.current_key_id,
        rotated=rotated,
    )
    return rotated
