"""The month-end close: billing periods signed off by two people, the snapshot of a closed
month's figures, the corrections found after a close, accruals and their journal entry.

- `periods`: a month's figures (from the chargeback), prepare, approve, reopen, the views.
- `corrections`: what changed in a closed month since its close, posted to the next open one.
- `ledger`: the chart of accounts and the default GL accounts (settings finance edits).
- `journal`: the accruals of a closed month and their balanced journal entry and reversal.

Callers own the transaction; every sign-off and setting change is audited.
"""
