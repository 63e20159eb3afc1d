"""Allocated cost: a covered usage row counts its share of the day's billed line items.

Adds `usage_records.allocated_cost` (the row's share, to the micro-dollar) and
`allocation_method` (`exact`, `proportional_estimate`, `proportional_tokens`, `unallocated`),
and teaches the rollup triggers of 0003 (`usage_daily`) and 0006 (`usage_labels`,
`usage_labels_monthly`) the new spend rule: a `covered` row counts its `allocated_cost`
(NULL: $0, as before), in the cost and the billed sums alike (the pieces are billed money).
No stored row has an allocated cost yet, so the rollups stay as they are.

The trigger bodies are 0003's and 0006's own, loaded from their files, with one more WHEN
wherever they read the billed amount.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (migration file, the DECLARE section of its trigger functions)
ROLLUPS = {
    "0003_usage_daily_rollup.py": "emptied bigint;",
    "0006_usage_labels_sums.py": (
        "kinds text[]; labels text[]; idents text[]; days date[]; accounts bigint[];"
    ),
}
# "cost_source = 'billed' THEN <billed amount>", with the row prefix (NEW., OLD. or none).
_BILLED = re.compile(
    r"(?P<p>(?:NEW\.|OLD\.)?)cost_source = 'billed' THEN "
    r"(?P<amount>CAST\(round\((?P=p)billed_cost \* 1000000\) AS BIGINT\)|(?P=p)billed_cost)"
)


def _load(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"rollup_{name[:4]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with_allocation(body: str) -> str:
    def add(match: re.Match[str]) -> str:
        p, amount = match["p"], match["amount"]
        allocated = amount.replace(f"{p}billed_cost", f"{p}allocated_cost")
        return f"{match[0]} WHEN {p}cost_source = 'covered' THEN {allocated}"

    changed, count = _BILLED.subn(add, body)
    assert count or "DELETE FROM" in body, body[:200]  # truncate triggers read no amount
    return changed


def _install(transform: bool) -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    for name, declare in ROLLUPS.items():
        module = _load(name)
        if is_pg:
            for function, body in module.PG_FUNCTIONS.items():
                body = _with_allocation(body) if transform else body
                op.execute(
                    f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
                    f"AS $$ DECLARE {declare} BEGIN {body} RETURN NULL; END $$"
                )
        else:
            for trigger, (when, body) in module.SQLITE_TRIGGERS.items():
                body = _with_allocation(body) if transform else body
                op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
                op.execute(f"CREATE TRIGGER {trigger} {when} ON usage_records BEGIN {body} END")


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("allocated_cost", sa.Numeric(18, 6)))
    op.add_column("usage_records", sa.Column("allocation_method", sa.String(length=24)))
    _install(transform=True)


def downgrade() -> None:
    _install(transform=False)
    with op.batch_alter_table("usage_records") as batch_op:
        batch_op.drop_column("allocation_method")
        batch_op.drop_column("allocated_cost")
    if op.get_bind().dialect.name == "sqlite":
        _install(transform=False)  # the batch copy of the table dropped its triggers
