"""AI cost tracker: the library behind app, worker and CLI (no Streamlit outside ui/)."""
