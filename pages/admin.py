"""Admin: users and roles, invitations, single-sign-on mappings, price overrides, the audit log.

Every change re-checks the admin role against the database in its own transaction; the
tracker functions it calls write the audit log.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.core import units
from tracker.costs.overrides import OTHER_PRICE_KINDS
from tracker.costs.prices import PRICE_UNIT
from tracker.models import Role
from tracker.providers.registry import PROVIDERS, display_name
from tracker.ui import actions, data
from tracker.ui import components as ui

runtime = data.get_runtime()


NEW_INVITATION = "admin_new_invitation"  # the link of the invitation just made, shown once

st.title("Admin")

users_tab, invite_tab, sso_tab, prices_tab, audit_tab = ui.page_tabs(
    ["Users and roles", "Invitations", "Single sign-on", "Price overrides", "Audit log"],
    key="admin_tab",
)
roles = [r.value for r in Role]


def show_link(label: str, url: str) -> None:
    """A single-use link for the admin to copy; shown once, never stored."""
    data.clear_frames()  # the invitation list and the audit log changed
    st.success(ui.plain_text(label))
    st.code(url, language=None)


def invitation_made(issued: actions.IssuedLink) -> str:
    """Keep the new link for the rerun that shows it (once, under this message)."""
    st.session_state[NEW_INVITATION] = issued.url
    if issued.emailed_to:
        return f"Invitation emailed to {issued.emailed_to}. The link, to share yourself:"
    if issued.mail_problem:
        return f"Not emailed ({issued.mail_problem}). Send this link yourself:"
    return "SMTP is not configured, so nothing was emailed. Send this link yourself:"


with users_tab:
    people = data.users_frame()
    ui.table(
        people,
        {
            "username": st.column_config.TextColumn("Username"),
            "name": st.column_config.TextColumn("Name"),
            "email": st.column_config.TextColumn("Email"),
            "role": st.column_config.TextColumn("Role"),
            "active": st.column_config.CheckboxColumn("Active"),
            "locked_until": ui.datetime_column("Locked until (UTC)"),
            "last_login_at": ui.datetime_column("Last sign-in (UTC)"),
        },
    )
    with st.container(border=True):
        st.markdown("**Change a user**")
        # Picked outside the form, so the form below starts from this user's own role and
        # state (keyed per user) and a save changes only what was changed.
        who = str(st.selectbox("User", list(people["username"]), key="change_user"))
        current = people[people["username"] == who].iloc[0]
        with st.form(f"user_change_{who}"):
            role = st.selectbox(
                "Role", roles, index=roles.index(current["role"]), key=f"change_role_{who}"
            )
            active = st.checkbox(
                "Active", value=bool(current["active"]), key=f"change_active_{who}"
            )
            unlock = st.checkbox("Lift a login lockout", key=f"change_unlock_{who}")
            confirm = st.checkbox(
                "I confirm the change of role (their open sessions end)",
                key=f"change_confirm_{who}",
            )
            if st.form_submit_button("Save"):
                new_role = role if role != current["role"] else None
                if new_role is not None and not confirm:
                    st.warning(
                        f"Changing {who} from {current['role']} to {role} needs the "
                        "confirmation box ticked. Nothing was saved."
                    )
                else:
                    ui.attempt(
                        lambda: actions.update_user(
                            runtime,
                            username=who,
                            role=new_role,
                            is_active=active if active != bool(current["active"]) else None,
                            unlock=unlock,
                        ),
                        failed="Not saved: {reason}.",
                        done=f"Saved {who}.",
                    )
        if st.button(f"Make a password-reset link for {who}", key=f"reset_{who}"):
            reset_url = ui.attempt(
                lambda: actions.reset_link(runtime, username=who),
                failed="No link made: {reason}.",
            )
            if reset_url:
                show_link(
                    f"Give this link to {who} yourself; it works once and ends their sessions.",
                    reset_url,
                )

with invite_tab:
    if new_link := st.session_state.pop(NEW_INVITATION, None):
        st.code(new_link, language=None)  # under the flashed message, at the tab's top
    st.caption(
        "An invitation is a single-use link that expires. The invitee chooses a username and "
        "password through it and gets the role you pick; nobody can sign up without one."
    )
    ui.form_state("invite_add")
    with st.form("invite_add"):
        email = st.text_input("Email", key="invite_email")
        invite_role = st.selectbox("Role", roles, index=2, key="invite_role")
        if st.form_submit_button("Invite", type="primary"):
            ui.attempt_form(
                "invite_add",
                lambda: actions.invite_user(runtime, email=email, role=str(invite_role)),
                failed="Not invited: {reason}.",
                done=invitation_made,
                reset={"invite_email": ""},
            )
    invites = data.invitations_frame()
    if invites.empty:
        st.info("No open invitation.")
    else:
        ui.table(
            invites.drop(columns=["id"]),
            {
                "email": st.column_config.TextColumn("Email"),
                "role": st.column_config.TextColumn("Role"),
                "created_by": st.column_config.TextColumn("Invited by"),
                "created_at": ui.datetime_column("Invited (UTC)"),
                "expires_at": ui.datetime_column("Expires (UTC)"),
            },
        )
        ui.remove_picker(
            {int(i.id): f"{i.email} ({i.role})" for i in invites.itertuples()},
            pick="Withdraw",
            button="Withdraw invitation",
            key="invite_remove",
            remove=lambda chosen: actions.withdraw_invitation(runtime, invitation_id=chosen),
            failed="Not withdrawn: {reason}.",
            done=lambda label: f"Withdrew the invitation of {label}.",
        )

with sso_tab:
    if runtime.settings.sso_enabled:
        st.caption(
            "Single sign-on lets in existing users by email, invited emails, and the emails "
            "and groups mapped here. An email mapping beats groups; among groups the most "
            "privileged role wins."
        )
    else:
        st.info(
            "Single sign-on is off. Set OIDC_METADATA_URL, OIDC_CLIENT_ID and "
            "OIDC_CLIENT_SECRET (see docs/operations.md) to turn it on; mappings made now "
            "apply then."
        )
    mappings = data.sso_mappings_frame()
    if not mappings.empty:
        ui.table(
            mappings.drop(columns=["id"]),
            {
                "claim": st.column_config.TextColumn("Maps"),
                "value": st.column_config.TextColumn("Group or email"),
                "role": st.column_config.TextColumn("Role"),
                "created_by": st.column_config.TextColumn("Added by"),
            },
        )
    ui.form_state("sso_map")
    with st.form("sso_map"):
        c1, c2, c3 = st.columns(3)
        claim = c1.selectbox("Map", ["group", "email"], key="sso_claim")
        value = c2.text_input("Group name or email", key="sso_value")
        mapped_role = c3.selectbox("Role", roles, index=2, key="sso_role")
        if st.form_submit_button("Add mapping", type="primary"):
            ui.attempt_form(
                "sso_map",
                lambda: actions.add_sso_mapping(
                    runtime, claim=str(claim), value=value, role=str(mapped_role)
                ),
                failed="Not mapped: {reason}.",
                done=f"Mapped the {claim} {value.strip()} to {mapped_role}.",
                reset={"sso_value": ""},
            )
    if not mappings.empty:
        ui.remove_picker(
            {int(m.id): f"{m.claim} {m.value} → {m.role}" for m in mappings.itertuples()},
            pick="Remove mapping",
            button="Remove mapping",
            key="sso_remove",
            remove=lambda chosen: actions.remove_sso_mapping(runtime, mapping_id=chosen),
            failed="Not removed: {reason}.",
            done=lambda _label: "Mapping removed.",
        )

with prices_tab:
    st.caption(
        "Your organisation's own prices (USD per million tokens unless the kind says otherwise) "
        "or discounts, from a date (end date exclusive), with where each comes from. Past usage "
        "keeps its estimate until re-priced on the Reconciliation page."
    )
    current = data.overrides_frame()
    if not current.empty:
        ui.table(
            current,
            {
                "valid_from": ui.date_column("From"),
                "valid_to": ui.date_column("Until (exclusive)"),
            },
        )
    else:
        st.info("No price override: estimates use the public list prices.")
    ui.form_state("override_add")
    with st.form("override_add"):
        c1, c2, c3 = st.columns(3)
        o_provider = c1.selectbox(
            "Provider", list(PROVIDERS), format_func=display_name, key="ov_provider"
        )
        o_model = c2.text_input("Model (empty: every model, discounts only)", key="ov_model")
        o_kind = c3.selectbox("Kind", ["price", "discount"], key="ov_kind")
        c4, c5, c6 = st.columns(3)
        o_input = c4.text_input("Input price / 1M", key="ov_input")
        o_cached = c5.text_input("Cached input price / 1M", key="ov_cached")
        o_output = c6.text_input("Output price / 1M", key="ov_output")
        c4b, c5b, c6b = st.columns(3)
        o_write = c4b.text_input("Cache write price / 1M", key="ov_write")
        o_write_1h = c5b.text_input("1-hour cache write price / 1M", key="ov_write_1h")
        o_request = c6b.text_input("Price per request", key="ov_request")
        c4c, c5c = st.columns([2, 1])
        o_other_kind = c4c.selectbox(
            "Another kind (audio, image, tool calls...)",
            OTHER_PRICE_KINDS,
            index=None,
            format_func=lambda k: f"{k} ({PRICE_UNIT[k]})",
            key="ov_other_kind",
        )
        o_other = c5c.text_input("Its price", key="ov_other")
        c7, c8, c9 = st.columns(3)
        o_discount = c7.text_input("Discount %", key="ov_discount")
        o_from = c8.date_input("Valid from", value=units.month_start(units.today_utc()))
        o_to = c9.date_input("Valid until (exclusive, optional)", value=None)
        c10, c11 = st.columns([2, 1])
        o_source = c10.text_input("Source (contract, invoice, price page)", key="ov_source")
        o_checked = c11.date_input("Checked on (optional)", value=None, key="ov_checked")
        o_note = st.text_input("Note", key="ov_note")
        if st.form_submit_button("Add override", type="primary"):
            ui.attempt_form(
                "override_add",
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
                    cache_write_price=o_write or None,
                    cache_write_1h_price=o_write_1h or None,
                    request_price=o_request or None,
                    extra_prices={str(o_other_kind): o_other} if o_other_kind and o_other else None,
                    discount_pct=o_discount or None,
                    note=o_note or None,
                    source=o_source or None,
                    checked_on=o_checked if isinstance(o_checked, dt.date) else None,
                ),
                failed="Not added: {reason}.",
                done="Override added; re-price past usage to apply it to history.",
                reset=dict.fromkeys(
                    [
                        "ov_model",
                        "ov_input",
                        "ov_cached",
                        "ov_output",
                        "ov_write",
                        "ov_write_1h",
                        "ov_request",
                        "ov_other",
                        "ov_discount",
                        "ov_source",
                        "ov_note",
                    ],
                    "",
                ),  # fmt: skip
            )
    if not current.empty:
        ui.remove_picker(
            {
                int(o.id): f"#{o.id} {o.provider}/{o.model or '*'} {o.kind} from {o.valid_from}"
                for o in current.itertuples()
            },
            pick="Remove override",
            button="Remove override",
            key="ov_remove",
            remove=lambda chosen: actions.remove_override(runtime, override_id=chosen),
            failed="Not removed: {reason}.",
            done=lambda label: f"Removed override {label.split()[0]}.",
        )

with audit_tab:
    audit_frame = data.audit_frame()
    if audit_frame.empty:
        st.info("Nothing audited yet: changes to users, accounts and prices appear here.")
    else:
        ui.table(
            audit_frame,
            {
                "at": ui.datetime_column("When (UTC)"),
                "actor": st.column_config.TextColumn("Who"),
                "action": st.column_config.TextColumn("Action"),
                "target": st.column_config.TextColumn("Target"),
                "details": st.column_config.TextColumn("Details", width="large"),
            },
        )
