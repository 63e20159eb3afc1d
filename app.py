"""The Streamlit entry point (`streamlit run app.py`): the router does everything.

It signs the user in, registers only the pages their role may open and runs the chosen one;
see `tracker/ui/router.py`.
"""

from tracker.ui import router

router.run()
