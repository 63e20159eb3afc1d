"""The only Streamlit-aware part of tracker: sign-in (auth), cached loaders (data), widgets."""
