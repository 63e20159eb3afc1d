"""What usage costs: the spend rule, the price catalog and corrections, the price book,
overrides, estimates, re-pricing and reconciliation.
"""
