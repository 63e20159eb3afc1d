"""Looking ahead: budgets, projections and anomalies."""
