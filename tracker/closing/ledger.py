"""The chart of accounts and the default GL accounts of the month-end close.

The chart (`gl_accounts`) lists the accounts a journal entry may name: expense accounts,
debited with what a month accrues, and liability accounts. Two settings in the `settings`
table (where the organisation's budget is kept too) name the defaults: the expense account
of spend whose team has no GL account of its own (and of unassigned spend), and the
accrued-liabilities account the accruals are credited to. Finance and admins change them
(the Close page, `python -m tracker gl`); every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound
from tracker.models import Setting, utcnow
from tracker.models.closing import GlAccount

EXPENSE_SETTING = "gl_expense_default"
LIABILITY_SETTING = "gl_accrued_liabilities"
KINDS = ("expense", "liability")


@dataclass(frozen=True)
class GlDefaults:
    expense: str | None  # debited for spend whose team names no GL account
    accrued_liabilities: str | None  # credited with the accruals


def list_gl_accounts(*, session: Session) -> list[GlAccount]:
    """The chart of accounts, by code."""
    return list(session.scalars(select(GlAccount).order_by(GlAccount.code)))


def gl_names(*, session: Session) -> dict[str, str]:
    """Code -> name of every account in the chart."""
    return {a.code: a.name for a in list_gl_accounts(session=session)}


def save_gl_account(*, session: Session, code: str, name: str, kind: str, actor: str) -> GlAccount:
    """Add an account to the chart, or rename an existing code (audited)."""
    code, name = _text(code, "the account code", 64), _text(name, "the account name", 120)
    if kind not in KINDS:
        raise InvalidInput(f"the kind of a GL account is expense or liability, not {kind!r}")
    found = session.get(GlAccount, code)
    if found is not None and found.kind != kind and _defaults_naming(session, code):
        raise InvalidInput(
            f"GL account {code} is a default {found.kind} account; choose another default "
            "before changing its kind"
        )
    if found is None:
        found = GlAccount(code=code, name=name, kind=kind)
        session.add(found)
    else:
        found.name, found.kind = name, kind
    audit.record(
        session=session, actor=actor, action="gl.account_save", target=code, name=name, kind=kind
    )
    session.flush()
    return found


def remove_gl_account(*, session: Session, code: str, actor: str) -> None:
    """Remove an account from the chart; refused while a default names it."""
    found = session.get(GlAccount, code)
    if found is None:
        raise NotFound(f"no GL account {code!r} in the chart of accounts")
    if _defaults_naming(session, code):
        raise InvalidInput(
            f"GL account {code} is a default account of the close; choose another default first"
        )
    session.delete(found)
    audit.record(session=session, actor=actor, action="gl.account_remove", target=code)
    session.flush()


def gl_defaults(*, session: Session) -> GlDefaults:
    """The default expense and accrued-liabilities accounts (None: not set)."""
    values = dict(
        session.execute(
            select(Setting.key, Setting.value).where(
                Setting.key.in_((EXPENSE_SETTING, LIABILITY_SETTING))
            )
        ).all()
    )
    return GlDefaults(values.get(EXPENSE_SETTING) or None, values.get(LIABILITY_SETTING) or None)


def set_gl_defaults(
    *, session: Session, expense: str | None, accrued_liabilities: str | None, actor: str
) -> GlDefaults:
    """Name the default expense and accrued-liabilities accounts ('' or None clears one);
    each must be in the chart, of its kind. Audited."""
    wanted = {
        EXPENSE_SETTING: ((expense or "").strip(), "expense"),
        LIABILITY_SETTING: ((accrued_liabilities or "").strip(), "liability"),
    }
    for key, (code, kind) in wanted.items():
        if code:
            found = session.get(GlAccount, code)
            if found is None:
                raise InvalidInput(
                    f"GL account {code!r} is not in the chart of accounts; add it first"
                )
            if found.kind != kind:
                raise InvalidInput(
                    f"GL account {code} is a {found.kind} account; the default "
                    f"{'expense' if kind == 'expense' else 'accrued-liabilities'} account must "
                    f"be a {kind} account"
                )
        row = session.get(Setting, key)
        if not code:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(Setting(key=key, value=code))
        else:
            row.value, row.updated_at = code, utcnow()
    audit.record(
        session=session,
        actor=actor,
        action="gl.defaults",
        target="close",
        expense=wanted[EXPENSE_SETTING][0] or None,
        accrued_liabilities=wanted[LIABILITY_SETTING][0] or None,
    )
    session.flush()
    return gl_defaults(session=session)


def _defaults_naming(session: Session, code: str) -> set[str]:
    defaults = gl_defaults(session=session)
    return {c for c in (defaults.expense, defaults.accrued_liabilities) if c == code}


def _text(value: str | None, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} is empty; type it")
    if len(text) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return text
