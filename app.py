"""The Streamlit entry point (`streamlit run app.py`).

Served, this module is imported and `app` is the ASGI app (`st.App`): Streamlit plus the
sign-in routes that set and delete the HttpOnly session cookie (`tracker/ui/web.py`).
Run as each session's script (`__main__`), it hands over to the router, which signs the
user in, registers only the pages their role may open and runs the chosen one
(`tracker/ui/router.py`).
"""

import streamlit as st

if __name__ == "__main__":
    from tracker.ui import router

    router.run()
else:
    # Only the HTTP side here: the router's page modules need a running Streamlit.
    from tracker.ui import web

    app = st.App(__file__, routes=web.routes(), lifespan=web.lifespan)
