"""Runs: every design run in the runs folder — reopen, compare, download, delete."""

import streamlit as st

from gdmcd_app import figures
from gdmcd_app import series as app_data
from gdmcd_app.main import page
from gdmcd_app.shared import candidate_columns, get_registry, load_run
from gdmcd_core.design import runs

st.title("Runs")
st.caption(f"Run folders in `{runs.runs_root()}`")

infos = runs.list_runs()
if not infos:
    st.info("No runs yet — start one on the Design page.")
    st.stop()

rows = [
    {
        "run": r.run_id,
        "status": r.status,
        "candidates": r.n_candidates,
        "steps": f"{r.steps_done:,}/{r.total_steps:,}" if r.total_steps else "",
        "best formula": r.best_integer_formula,
        "best Tc (K)": r.best_integer_tc_k,
        "settings": r.summary,
    }
    for r in infos
]
st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    column_config={"best Tc (K)": st.column_config.NumberColumn(format="%.1f")},
    key="runs_table",
)

ids = [r.run_id for r in infos]
run_id = st.selectbox("Run", ids, key="runs_pick")
run, err = load_run(run_id)
if err:
    st.error(err)
    st.stop()

a, b, c, d = st.columns(4)
if a.button("Open results", key="open_design", help="show it on the Design page"):
    st.switch_page(page("design.py"), query_params={"job": run_id})
if b.button("Open trajectories", key="open_traj"):
    st.switch_page(page("trajectories.py"), query_params={"run": run_id})
cand = run.info.path / runs.CANDIDATES_FILE
if cand.is_file():
    c.download_button(
        "Download CSV",
        cand.read_bytes(),
        file_name=f"candidates-{run_id}.csv",
        mime="text/csv",
        key="runs_download",
        on_click="ignore",
    )
with d.popover("Delete…"):
    active = get_registry().is_active(run_id)
    st.write(f"Delete run `{run_id}` and its folder? This cannot be undone.")
    if st.button(
        "Delete this run", key="runs_delete", type="primary", disabled=active, help="stop it first" if active else None
    ):
        try:
            runs.delete_run(run_id)
        except (ValueError, FileNotFoundError) as exc:
            st.error(str(exc))
        else:
            st.session_state.pop("runs_pick", None)
            st.rerun()

if run.candidates is not None:
    st.dataframe(
        app_data.display_candidates(run.candidates.head(20)),
        hide_index=True,
        width="stretch",
        column_config=candidate_columns(),
        key="runs_top",
    )

st.subheader("Compare runs")
compare = st.multiselect("Runs to compare", ids, default=ids[: min(2, len(ids))], key="runs_compare")
best_lines, tops = {}, []
for rid in compare:
    other, other_err = load_run(rid)
    if other_err:
        st.error(other_err)
        continue
    if other.trajectory is not None and len(other.trajectory.step):
        s = app_data.series_from_trajectory(other.trajectory)
        best_lines[rid] = (s["step"], s["tc_best_k"])
    if other.candidates is not None and len(other.candidates):
        top = other.candidates.iloc[0]
        tops.append(
            {
                "run": rid,
                "best formula": top["integer_formula"],
                "Tc (K)": float(top["integer_tc_k"]),
                "candidates": len(other.candidates),
            }
        )
if best_lines:
    st.plotly_chart(
        figures.candidate_lines(best_lines, figures.TC_LABEL, title="Best Tc over the steps"), key="runs_compare_fig"
    )
if tops:
    st.dataframe(tops, hide_index=True, width="stretch", key="runs_compare_table")
