"""Your account: change your own password, end your sessions on other devices."""

from tracker.ui import router

router.gate()

import streamlit as st

from tracker.identity import users
from tracker.ui import actions, data
from tracker.ui import components as ui
from tracker.ui.auth import current_user

runtime = data.get_runtime()
user = current_user()
assert user is not None  # the router only runs pages for a signed-in user

st.title("Your account")
ui.show_flash()
st.caption(f"Signed in as {ui.plain_text(user.username)} ({user.role}).")

with st.form("change_password", clear_on_submit=True):
    st.markdown("**Change your password**")
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    new = st.text_input(
        f"New password ({users.PASSWORD_RULE})", type="password", autocomplete="new-password"
    )
    repeat = st.text_input("Repeat the new password", type="password")
    if st.form_submit_button("Change password", type="primary"):
        if new != repeat:
            st.error("The two new passwords differ; type the same password twice.")
        else:
            ui.attempt(
                lambda: actions.change_password(
                    runtime, current=current, new=new, session_id=user.session_id
                ),
                failed="Not changed: {reason}.",
                done="Password changed. Your sessions on other devices have ended.",
            )

st.markdown("**Other devices**")
st.caption(
    f"A sign-in ends after {runtime.settings.session_idle_minutes} minutes without activity "
    f"and after {runtime.settings.session_max_hours} hours at most."
)
if st.button("Sign out everywhere else", key="end_other_sessions"):
    ui.attempt(
        lambda: actions.end_other_sessions(runtime, session_id=user.session_id),
        failed="Not done: {reason}.",
        done=lambda n: f"Ended {n} other session{'s' if n != 1 else ''}.",
    )
