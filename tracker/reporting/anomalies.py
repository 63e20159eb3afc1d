"""The Anomalies page's read model: detected anomalies with their context."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy.orm import Session

from tracker.planning import anomalies

ALL_MODELS_LABEL = "all models"  # how list_anomalies names an account-level row


def anomaly_frame(*, session: Session, since: dt.date, include_acknowledged: bool) -> pd.DataFrame:
    """Anomalies from `since` on, newest first (see tracker.planning.anomalies.list_anomalies)."""
    return anomalies.list_anomalies(
        session=session, since=since, include_acknowledged=include_acknowledged
    )
