"""Read-only frames for the app: one module per page, over `sources` (rollup or detail).
Never imports Streamlit.
"""
