"""Chargeback (admin, finance): a month's spend by team and provider, to the cent, with the
pieces behind each team (account, project, API key, model, and whether it was charged
directly or shared); and the teams, mappings and shared-cost rules that decide it.

Spend that no mapping reaches is "Unassigned", never hidden. Every change goes through
`tracker.ui.actions`, which re-checks the role against the database and is audited.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.attribution import teams as team_rules
from tracker.core import units
from tracker.reporting.chargeback import recent_months
from tracker.ui import actions, data
from tracker.ui import components as ui

runtime = data.get_runtime()
today = units.today_utc()

st.title("Chargeback")
ui.show_flash()

month = st.selectbox(
    "Month (UTC)", recent_months(today), format_func=lambda m: f"{m:%B %Y}", key="cb_month"
)
grid, pieces = data.chargeback(month)
team_table, mappings, rules = data.team_frames()

if pieces.empty:
    st.info(f"No spend in {month:%B %Y}. Pick another month, or " + router.usage_hint())
else:
    total = sum(pieces["cost"], start=units.to_dollars(0))
    unassigned = sum(
        pieces.loc[pieces["team"] == team_rules.UNASSIGNED, "cost"], start=units.to_dollars(0)
    )
    m1, m2, m3 = st.columns(3)
    m1.metric("Charged back", ui.money(total))
    m2.metric(
        "Unassigned",
        ui.money(unassigned),
        help="Spend no mapping reaches; map its keys, projects or accounts below",
    )
    m3.metric(
        "Teams charged", str(pieces.loc[pieces["team"] != team_rules.UNASSIGNED, "team"].nunique())
    )
    providers = [c for c in grid.columns if c not in ("team", "cost_center", "gl_account")]
    ui.table(
        grid,
        {
            "team": st.column_config.TextColumn("Team"),
            "cost_center": st.column_config.TextColumn("Cost center"),
            "gl_account": st.column_config.TextColumn("GL account"),
            **{p: ui.money_column(p) for p in providers},
        },
        money_columns=providers,
    )
    st.subheader("What each team was charged")
    chosen = st.selectbox("Team", sorted(pieces["team"].unique()), key="cb_team")
    detail = pieces[pieces["team"] == chosen].drop(columns=["team", "cost_center", "gl_account"])
    ui.table(
        detail.sort_values("cost", ascending=False),
        {
            "provider": st.column_config.TextColumn("Provider"),
            "account": st.column_config.TextColumn("Account"),
            "project": st.column_config.TextColumn("Project / workspace"),
            "api_key": st.column_config.TextColumn("API key"),
            "user": st.column_config.TextColumn("User"),
            "model": st.column_config.TextColumn("Model"),
            "method": st.column_config.TextColumn(
                "How", help="Direct: by a mapping; Shared: moved here by a shared-cost rule"
            ),
            "shared_from": st.column_config.TextColumn("Shared from"),
            "cost": ui.money_column("Cost"),
        },
        money_columns=["cost"],
    )
    st.download_button(
        "Download the chargeback (CSV)",
        ui.csv_bytes(pieces),
        file_name=f"chargeback-{month:%Y-%m}.csv",
        mime="text/csv",
    )

st.divider()
tab_teams, tab_mappings, tab_rules = st.tabs(["Teams", "Mappings", "Shared costs"])
team_names = list(team_table["team"])

with tab_teams:
    if team_table.empty:
        st.info("No team yet: add the first one below.")
    else:
        ui.table(
            team_table,
            {
                "team": st.column_config.TextColumn("Team"),
                "cost_center": st.column_config.TextColumn("Cost center"),
                "gl_account": st.column_config.TextColumn("GL account"),
            },
        )
    with st.form("cb_add_team", clear_on_submit=False):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Team name")
        center = c2.text_input("Cost center")
        gl = c3.text_input("GL account")
        if st.form_submit_button("Add team"):
            ui.attempt(
                lambda: actions.add_team(runtime, name=name, cost_center=center, gl_account=gl),
                failed="Could not add the team: {reason}",
                done=lambda added: f"Added team {added}.",
            )
    if team_names:
        ui.remove_picker(
            {i: n for i, n in enumerate(team_names)},
            pick="Team to remove (its spend becomes unassigned)",
            button="Remove team",
            key="cb_remove_team",
            remove=lambda i: actions.remove_team(runtime, name=team_names[i]),
            failed="Could not remove the team: {reason}",
            done=lambda label: f"Removed team {label}.",
        )

with tab_mappings:
    st.caption(
        "The most specific mapping in force on a day wins: API key, then project or "
        "workspace, then account. 'Until' is the first day a mapping no longer holds."
    )
    if not mappings.empty:
        ui.table(
            mappings,
            {
                "id": st.column_config.NumberColumn("#"),
                "kind": st.column_config.TextColumn("Kind"),
                "value": st.column_config.TextColumn("Key, project or account"),
                "team": st.column_config.TextColumn("Team"),
                "valid_from": ui.date_column("From"),
                "valid_to": ui.date_column("Until"),
            },
        )
    if not team_names:
        st.info("Add a team first (Teams tab).")
    else:
        with st.form("cb_add_mapping"):
            c1, c2, c3 = st.columns(3)
            kind = c1.selectbox(
                "Kind", team_rules.KINDS, format_func=team_rules.KIND_LABELS.__getitem__
            )
            value = c2.text_input("API key id, project id or account name")
            team = c3.selectbox("Team", team_names)
            c4, c5 = st.columns(2)
            valid_from = c4.date_input("From", value=units.month_start(today))
            valid_to = c5.date_input("Until (optional)", value=None)
            if st.form_submit_button("Add mapping"):
                ui.attempt(
                    lambda: actions.add_mapping(
                        runtime,
                        kind=kind,
                        value=value,
                        team=team,
                        valid_from=valid_from,
                        valid_to=valid_to if isinstance(valid_to, dt.date) else None,
                    ),
                    failed="Could not add the mapping: {reason}",
                    done=lambda m: f"Mapped {m.kind} {m.value} to {m.team}.",
                )
        upload = st.file_uploader(
            "Or import mappings from CSV (columns: kind, value, team, valid_from, valid_to)",
            type=["csv"],
            key="cb_mappings_csv",
        )
        if upload is not None and st.button("Import mappings"):
            ui.attempt(
                lambda: actions.import_mappings(runtime, upload=upload),
                failed="Nothing was imported: {reason}",
                done=lambda n: f"Imported {n} mapping(s).",
            )
    if not mappings.empty:
        labels = {
            int(r.id): f"#{r.id} {r.kind} {r.value} -> {r.team}" for r in mappings.itertuples()
        }
        with st.form("cb_end_mapping"):
            c1, c2 = st.columns(2)
            ending = c1.selectbox("Mapping to end", list(labels), format_func=labels.__getitem__)
            last = c2.date_input("First day it no longer holds", value=units.month_start(today))
            if st.form_submit_button("End mapping"):
                ui.attempt(
                    lambda: actions.end_mapping(runtime, mapping_id=int(ending), valid_to=last),
                    failed="Could not end the mapping: {reason}",
                    done=f"Mapping {labels[int(ending)]} ends on {last}.",
                )
        ui.remove_picker(
            labels,
            pick="Mapping to remove",
            button="Remove mapping",
            key="cb_remove_mapping",
            remove=lambda i: actions.remove_mapping(runtime, mapping_id=i),
            failed="Could not remove the mapping: {reason}",
            done=lambda label: f"Removed mapping {label}.",
        )

with tab_rules:
    st.caption(
        "A rule moves what a team (say, a platform team) or the unassigned spend was charged "
        "to other teams: evenly, by fixed percentages, or in proportion to their own spend. "
        "Rules in force on a month's first day apply to that month."
    )
    if not rules.empty:
        ui.table(
            rules,
            {
                "id": st.column_config.NumberColumn("#"),
                "rule": st.column_config.TextColumn("Rule"),
                "valid_from": ui.date_column("From"),
                "valid_to": ui.date_column("Until"),
            },
        )
    if len(team_names) < 1:
        st.info("Add teams first (Teams tab).")
    else:
        with st.form("cb_add_rule"):
            c1, c2 = st.columns(2)
            source = c1.selectbox("Share the spend of", [team_rules.UNASSIGNED, *team_names])
            method = c2.selectbox("Method", team_rules.METHODS)
            targets = st.multiselect("Over the teams (none: every other team)", team_names)
            percents = st.text_input(
                "Percentages for a fixed split, in the order above (e.g. 60, 40)"
            )
            rule_from = st.date_input("From", value=units.month_start(today), key="cb_rule_from")
            if st.form_submit_button("Add rule"):
                shares = [p.strip() for p in percents.split(",") if p.strip()]
                pairs = [(t, shares[i] if i < len(shares) else None) for i, t in enumerate(targets)]
                ui.attempt(
                    lambda: actions.add_shared_rule(
                        runtime,
                        source=source,
                        method=method,
                        targets=pairs,
                        valid_from=rule_from,
                    ),
                    failed="Could not add the rule: {reason}",
                    done=lambda r: f"Added rule: {r.describe()}.",
                )
    if not rules.empty:
        ui.remove_picker(
            {int(r.id): f"#{r.id} {r.rule}" for r in rules.itertuples()},
            pick="Rule to remove",
            button="Remove rule",
            key="cb_remove_rule",
            remove=lambda i: actions.remove_shared_rule(runtime, rule_id=i),
            failed="Could not remove the rule: {reason}",
            done=lambda label: f"Removed rule {label}.",
        )
