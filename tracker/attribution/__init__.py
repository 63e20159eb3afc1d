"""Attribution: teams, what maps to them, shared-cost rules and the monthly chargeback."""
