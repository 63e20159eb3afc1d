"""The one map from role to what it may do in the app; pages and actions ask it, nothing else.

A page is registered for a role only if the role has the page's capability (so it cannot be
reached), and every data-changing action checks its capability again against the database
in its own transaction (`tracker.ui.actions.acting_as`). The command line is the server's
operator and is not role-checked.

One setting changes the map: `BUDGETS_ADMIN_ONLY=true` keeps budgets and alert rules to
admins (finance, who usually owns the budget, sets them by default).
"""

from __future__ import annotations

from enum import StrEnum

from tracker.core.config import Settings
from tracker.models import Role


class Capability(StrEnum):
    VIEW_SPEND = "view spend"  # Overview, Usage explorer
    VIEW_PLANNING = "view planning"  # Forecast, Budgets & alerts, Anomalies, Sync health
    EXPORT = "export"  # the Exports page and its files
    EDIT_BUDGETS = "edit budgets"  # budgets (teams' too), alert rules, "check alerts now"
    # Acknowledging an anomaly records that someone looked at it; it changes no cost, budget
    # or rule, so finance (who reads the anomalies) may do it too.
    ACKNOWLEDGE_ANOMALIES = "acknowledge anomalies"
    # The Chargeback page: spend by team, and the teams, mappings and shared-cost rules behind it.
    CHARGE_BACK = "charge back"
    # The Reconciliation page: billed vs estimated, and re-pricing stored estimates with the
    # price book now in force (audited; billed cost is never changed).
    RECONCILE = "reconcile and re-price"
    # The Month-end close page: prepare and approve a month's close (two people; reopening
    # needs an admin, checked by `tracker.closing`), its journal entry, the GL accounts.
    CLOSE_BOOKS = "close books"
    # The Invoices and Credits pages: provider invoices matched against the billed totals,
    # credit grants and prepaid balances. Finance's books, so not a viewer's.
    MANAGE_INVOICES = "record invoices and credits"
    # The Savings page: what cache, batch, flex, off-peak and negotiated prices saved.
    VIEW_SAVINGS = "view savings"
    MANAGE_ACCOUNTS = "manage accounts"  # provider accounts, keys, sync now, CSV imports
    ADMINISTER = "administer"  # users, invitations, price overrides, the audit log
    OWN_ACCOUNT = "own account"  # change one's own password, end one's other sessions


CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.FINANCE: frozenset(
        {
            Capability.VIEW_SPEND,
            Capability.VIEW_PLANNING,
            Capability.EXPORT,
            Capability.EDIT_BUDGETS,
            Capability.ACKNOWLEDGE_ANOMALIES,
            Capability.CHARGE_BACK,
            Capability.RECONCILE,
            Capability.CLOSE_BOOKS,
            Capability.MANAGE_INVOICES,
            Capability.VIEW_SAVINGS,
            Capability.OWN_ACCOUNT,
        }
    ),
    Role.VIEWER: frozenset({Capability.VIEW_SPEND, Capability.OWN_ACCOUNT}),
}


# What `BUDGETS_ADMIN_ONLY` takes from every role but admin.
ADMIN_ONLY_WHEN_RESTRICTED = frozenset({Capability.EDIT_BUDGETS})


def capabilities(role: str, settings: Settings) -> frozenset[Capability]:
    """What `role` may do under these settings (an unknown role: nothing)."""
    if role not in {str(r) for r in Role}:
        return frozenset()
    granted = CAPABILITIES[Role(role)]
    if settings.budgets_admin_only and role != Role.ADMIN:
        granted -= ADMIN_ONLY_WHEN_RESTRICTED
    return granted


def can(role: str, capability: Capability, settings: Settings) -> bool:
    """Whether `role` has `capability` under these settings."""
    return capability in capabilities(role, settings)


def roles_with(capability: Capability, settings: Settings) -> tuple[str, ...]:
    """The roles that have `capability`, in the order of `Role`."""
    return tuple(str(role) for role in Role if can(str(role), capability, settings))
