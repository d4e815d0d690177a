"""Campaign: the loop with the lab — add design runs, propose a batch, import results, update the model, repeat.

Widgets and layout only: the store, selection, import and update are gdmcd_core.campaign's.
"""

from __future__ import annotations

import hashlib
import sqlite3

import pandas as pd
import streamlit as st

from gdmcd_app import figures
from gdmcd_app.shared import checkpoint_path, csv_download_bytes
from gdmcd_core.campaign import lab_csv, propose, report, store, versions
from gdmcd_core.campaign.update import UpdateConfig
from gdmcd_core.design.runs.folder import list_runs
from gdmcd_core.model.checkpoint import CheckpointError

FLASH = "campaign_flash"  # messages of the action just taken, shown after the rerun that redraws the counts


def _done(*messages: str, warnings: tuple[str, ...] = ()) -> None:
    """Keep the messages of an action that changed the campaign and rerun the page, so that the counts and tables
    above the button show the change."""
    st.session_state[FLASH] = (messages, warnings)
    st.rerun()


def _flash() -> None:
    messages, warnings = st.session_state.pop(FLASH, ((), ()))
    for m in messages:
        st.success(m)
    for w in warnings:
        st.warning(w)


def _connect() -> sqlite3.Connection | None:
    try:
        return store.connect()
    except (store.CampaignError, OSError) as exc:
        st.error(f"The campaign database cannot be opened: {exc}")
        return None


def _choose_campaign(conn: sqlite3.Connection) -> str | None:
    names = report.campaign_names(conn)
    left, right = st.columns([2, 1])
    with right.form("new_campaign", clear_on_submit=True):
        new = st.text_input("New campaign", placeholder="e.g. nickelates-2027", key="campaign_new_name")
        if st.form_submit_button("Create", icon=":material/add:"):
            try:
                store.new_campaign(conn, new.strip(), str(checkpoint_path()))
                st.session_state["campaign_name"] = new.strip()
                names = report.campaign_names(conn)
            except store.CampaignError as exc:
                st.error(str(exc))
    if not names:
        left.info("No campaign yet: create one to collect design runs, lab results and model updates.")
        return None
    current = st.session_state.get("campaign_name")
    index = names.index(current) if current in names else 0
    return left.selectbox("Campaign", names, index=index, key="campaign_name")


def _add_run(conn: sqlite3.Connection, name: str) -> None:
    finished = [r for r in list_runs() if r.status == "finished"]
    if not finished:
        st.caption("No finished design run to add yet (start one on the Design page).")
        return
    labels = {f"{r.run_id} · {r.n_candidates} candidates · best {r.best_integer_formula}": r for r in finished}
    col, button = st.columns([3, 1])
    choice = col.selectbox("Add a finished design run's candidates", list(labels), key="campaign_run")
    if button.button("Add run", icon=":material/playlist_add:", key="campaign_add_run"):
        try:
            n = propose.add_run(conn, name, labels[choice].path)
        except store.CampaignError as exc:
            st.error(str(exc))
        else:
            _done(f"Added {n} candidates.")


def _propose(conn: sqlite3.Connection, name: str) -> None:
    st.subheader("Next batch")
    c1, c2, c3 = st.columns(3)
    n = c1.number_input("Batch size", 1, 200, 10, key="campaign_n")
    strategy = c2.selectbox("Strategy", propose.STRATEGIES, key="campaign_strategy")
    kappa = c3.number_input("κ", 0.0, 5.0, 1.0, 0.1, key="campaign_kappa")
    if st.button("Propose", icon=":material/checklist:", type="primary", key="campaign_propose"):
        try:
            cid = store.campaign_id(conn, name)
            scorer = None
            if versions.latest_version(conn, cid) is not None:
                ens, _, _ = versions.current_model(conn, cid, store.campaigns_dir())
                scorer = ens.predict
            batch = propose.propose(conn, name, int(n), propose.Settings(strategy=strategy, kappa=kappa), scorer)
        except (store.CampaignError, CheckpointError) as exc:
            st.error(str(exc))
        else:
            st.session_state["campaign_batch"] = batch
            _done(f"Round recorded: {len(batch)} candidates proposed.")
    batch = st.session_state.get("campaign_batch")
    if batch == []:
        st.info("No open candidates: everything was proposed or measured. Add another design run.")
    if batch:
        table = pd.DataFrame(batch)
        st.dataframe(table, hide_index=True, width="stretch", key="campaign_batch_table")
        st.download_button(
            "Download the batch (CSV)", csv_download_bytes(table), f"{name}-batch.csv", "text/csv", key="campaign_dl"
        )


def _import(conn: sqlite3.Connection, name: str) -> None:
    st.subheader("Lab results")
    st.download_button(
        "Results template (CSV)", ",".join(lab_csv.COLUMNS) + "\n", "results-template.csv", "text/csv", key="tmpl"
    )
    up = st.file_uploader("Import a results file", type=["csv"], key="campaign_upload")
    if up is None:
        return
    data = up.getvalue()
    if len(data) > lab_csv.MAX_FILE_BYTES:
        st.error(f"{up.name} is larger than the {lab_csv.MAX_FILE_BYTES // 2**20} MB limit.")
        return
    digest = hashlib.sha256(data).hexdigest()
    if st.session_state.get("campaign_imported") == digest:
        return
    folder = store.campaigns_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest[:16]}.csv"
    path.write_bytes(data)
    try:
        r = lab_csv.import_results(conn, name, path)
    except store.CampaignError as exc:
        st.error(str(exc))
        return
    st.session_state["campaign_imported"] = digest
    _done(f"{r.stored} rows stored, {r.unchanged} already stored, {len(r.errors)} bad.", warnings=tuple(r.errors))


def _update(conn: sqlite3.Connection, name: str) -> None:
    st.subheader("Model")
    if st.button("Update the model from the measurements", icon=":material/model_training:", key="campaign_update"):
        bar = st.progress(0.0, "Starting the update…")
        try:
            out = versions.update(conn, name, store.campaigns_dir(), UpdateConfig(), lambda f, m: bar.progress(f, m))
        except (store.CampaignError, CheckpointError, OSError, ValueError) as exc:
            st.error(str(exc))
        else:
            _done(f"Model version {out['version']} recorded ({out['seconds']} s).")
    cid = store.campaign_id(conn, name)
    rows = report.versions(conn, cid)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="campaign_versions")
    moves = report.ranking_moves(conn, cid)
    if moves:
        st.caption("What the latest update changed: the top open candidates, their rank and Tc (K) before and after")
        st.dataframe(pd.DataFrame(moves), hide_index=True, width="stretch", key="campaign_moves")
    pvm = report.predicted_vs_measured(conn, cid)
    if pvm:
        fig = figures.measured_before_after(pvm)
        st.plotly_chart(fig, key="campaign_pvm", config=figures.PLOT_CONFIG)
        st.download_button(
            "Its data (CSV)", csv_download_bytes(pd.DataFrame(pvm)), f"{name}-measured.csv", "text/csv", key="pvm_dl"
        )


def render() -> None:
    st.title("Campaign")
    st.caption(f"Campaigns folder: `{store.campaigns_dir()}` · model: `{checkpoint_path().name}`")
    conn = _connect()
    if conn is None:
        return
    try:
        name = _choose_campaign(conn)
        if name is None:
            return
        _flash()
        cid = store.campaign_id(conn, name)
        counts = store.counts(conn, cid)
        cols = st.columns(4)
        for col, key in zip(cols, ("proposals", "rounds", "measurements", "model_versions"), strict=True):
            col.metric(key.replace("_", " ").capitalize(), counts[key])
        _add_run(conn, name)
        timeline = report.timeline(conn, cid)
        if timeline:
            st.subheader("Rounds")
            st.dataframe(pd.DataFrame(timeline), hide_index=True, width="stretch", key="campaign_timeline")
        _propose(conn, name)
        _import(conn, name)
        measured = report.measurements(conn, cid)
        if measured:
            st.dataframe(pd.DataFrame(measured), hide_index=True, width="stretch", key="campaign_measured")
        _update(conn, name)
    finally:
        conn.close()
