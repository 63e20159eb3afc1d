"""Admin: users and roles, pre-authorised emails, price overrides, and the audit log.

Every change re-checks the admin role against the database in its own transaction; the
tracker functions it calls write the audit log.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.core import units
from tracker.identity import users
from tracker.models import Role
from tracker.providers.registry import PROVIDERS
from tracker.ui import actions, data
from tracker.ui import components as ui

runtime = data.get_runtime()


st.title("Admin")
ui.show_flash()

users_tab, invite_tab, prices_tab, audit_tab = st.tabs(
    ["Users and roles", "Pre-authorised emails", "Price overrides", "Audit log"]
)

with users_tab:
    people = data.users_frame()
    st.dataframe(
        people,
        hide_index=True,
        column_config={
            "username": st.column_config.TextColumn("Username"),
            "name": st.column_config.TextColumn("Name"),
            "email": st.column_config.TextColumn("Email"),
            "role": st.column_config.TextColumn("Role"),
            "active": st.column_config.CheckboxColumn("Active"),
            "locked_until": ui.datetime_column("Locked until (UTC)"),
            "last_login_at": ui.datetime_column("Last sign-in (UTC)"),
        },
    )
    left, right = st.columns(2)
    with left, st.form("user_add", clear_on_submit=True):
        st.markdown("**Add a user**")
        new_username = st.text_input("Username", key="new_user_username")
        new_name = st.text_input("Full name", key="new_user_name")
        new_email = st.text_input("Email", key="new_user_email")
        new_role = st.selectbox("Role", [r.value for r in Role], index=2, key="new_user_role")
        new_password = st.text_input(
            f"Initial password ({users.MIN_PASSWORD_CHARS}+ characters)",
            type="password",
            key="new_user_password",
        )
        if st.form_submit_button("Add user", type="primary"):
            ui.attempt(
                lambda: actions.add_user(
                    runtime,
                    username=new_username,
                    email=new_email,
                    role=str(new_role),
                    password=new_password,
                    name=new_name or None,
                ),
                failed="Not added: {reason}. Correct the field and submit again.",
                done=f"Added {new_username.strip()} as {new_role}.",
            )
    with right, st.container(border=True):
        st.markdown("**Change a user**")
        # Picked outside the form, so the form below starts from this user's own role and
        # state (keyed per user) and a save changes only what was changed.
        who = str(st.selectbox("User", list(people["username"]), key="change_user"))
        current = people[people["username"] == who].iloc[0]
        roles = [r.value for r in Role]
        with st.form(f"user_change_{who}"):
            role = st.selectbox(
                "Role", roles, index=roles.index(current["role"]), key=f"change_role_{who}"
            )
            active = st.checkbox(
                "Active", value=bool(current["active"]), key=f"change_active_{who}"
            )
            unlock = st.checkbox("Lift a login lockout", key=f"change_unlock_{who}")
            if st.form_submit_button("Save"):
                ui.attempt(
                    lambda: actions.update_user(
                        runtime,
                        username=who,
                        role=role if role != current["role"] else None,
                        is_active=active if active != bool(current["active"]) else None,
                        unlock=unlock,
                    ),
                    failed="Not saved: {reason}.",
                    done=f"Saved {who}.",
                )

with invite_tab:
    st.caption(
        "People whose email is listed here may register themselves on the sign-in page and get "
        "the role shown. Nobody else can sign up."
    )
    invites = data.invitations_frame()
    if not invites.empty:
        st.dataframe(
            invites,
            hide_index=True,
            column_config={
                "created_at": ui.datetime_column("Added (UTC)"),
                "registered_at": ui.datetime_column("Registered (UTC)"),
            },
        )
    else:
        st.info("No pre-authorised email yet. Add one below to let a colleague register.")
    with st.form("invite_add", clear_on_submit=True):
        email = st.text_input("Email", key="invite_email")
        invite_role = st.selectbox("Role", [r.value for r in Role], index=2, key="invite_role")
        if st.form_submit_button("Pre-authorise", type="primary"):
            ui.attempt(
                lambda: actions.preauthorize_email(runtime, email=email, role=str(invite_role)),
                failed="Not added: {reason}.",
                done=f"{email.strip().lower()} may now register as {invite_role}.",
            )
    if not invites.empty:
        gone = st.selectbox("Withdraw", list(invites["email"]), key="invite_remove")
        if st.button("Withdraw pre-authorisation", key="invite_remove_go"):
            ui.attempt(
                lambda: actions.remove_preauthorized(runtime, email=str(gone)),
                failed="Not withdrawn: {reason}.",
                done=f"Withdrew {gone}.",
            )

with prices_tab:
    st.caption(
        "Your organisation's own prices (USD per million tokens) or discounts, from a date "
        "(end date exclusive). Past usage keeps its estimate until re-priced "
        "(`python -m tracker reprice`)."
    )
    current = data.overrides_frame()
    if not current.empty:
        st.dataframe(
            current,
            hide_index=True,
            column_config={
                "valid_from": ui.date_column("From"),
                "valid_to": ui.date_column("Until (exclusive)"),
            },
        )
    else:
        st.info("No price override: estimates use the public list prices.")
    with st.form("override_add", clear_on_submit=True):
        c1, c2, c3 = st.columns(3)
        o_provider = c1.selectbox("Provider", list(PROVIDERS), key="ov_provider")
        o_model = c2.text_input("Model (empty: every model, discounts only)", key="ov_model")
        o_kind = c3.selectbox("Kind", ["price", "discount"], key="ov_kind")
        c4, c5, c6 = st.columns(3)
        o_input = c4.text_input("Input price / 1M", key="ov_input")
        o_cached = c5.text_input("Cached input price / 1M", key="ov_cached")
        o_output = c6.text_input("Output price / 1M", key="ov_output")
        c7, c8, c9 = st.columns(3)
        o_discount = c7.text_input("Discount %", key="ov_discount")
        o_from = c8.date_input("Valid from", value=units.month_start(units.today_utc()))
        o_to = c9.date_input("Valid until (exclusive, optional)", value=None)
        o_note = st.text_input("Note", key="ov_note")
        if st.form_submit_button("Add override", type="primary"):
            ui.attempt(
                lambda: actions.add_override(
                    runtime,
                    provider=str(o_provider),
                    model=o_model or None,
                    kind=str(o_kind),
                    valid_from=o_from if isinstance(o_from, dt.date) else units.today_utc(),
                    valid_to=o_to if isinstance(o_to, dt.date) else None,
                    input_price=o_input or None,
                    cached_input_price=o_cached or None,
                    output_price=o_output or None,
                    discount_pct=o_discount or None,
                    note=o_note or None,
                ),
                failed="Not added: {reason}.",
                done="Override added; re-price past usage to apply it to history.",
            )
    if not current.empty:
        labels = {
            int(o.id): f"#{o.id} {o.provider}/{o.model or '*'} {o.kind} from {o.valid_from}"
            for o in current.itertuples()
        }
        drop = st.selectbox(
            "Remove override", list(labels), format_func=labels.__getitem__, key="ov_remove"
        )
        if st.button("Remove override", key="ov_remove_go"):
            ui.attempt(
                lambda: actions.remove_override(runtime, override_id=int(drop)),
                failed="Not removed: {reason}.",
                done=f"Removed override #{drop}.",
            )

with audit_tab:
    audit_frame = data.audit_frame()
    if audit_frame.empty:
        st.info("Nothing audited yet: changes to users, accounts and prices appear here.")
    else:
        st.dataframe(
            audit_frame,
            hide_index=True,
            column_config={
                "at": ui.datetime_column("When (UTC)"),
                "actor": st.column_config.TextColumn("Who"),
                "action": st.column_config.TextColumn("Action"),
                "target": st.column_config.TextColumn("Target"),
                "details": st.column_config.TextColumn("Details", width="large"),
            },
        )
