"""Trajectories: how candidates moved during a run — composition, Tc and integer loss over the steps,
where stage 3 began, and the run-wide Tc change and element-count change (paper Fig. 4)."""

from __future__ import annotations

import streamlit as st

from gdmcd_app import data, figures, models
from gdmcd_app.inputs import pretty_formula
from gdmcd_app.shared import load_run, run_options


def _pick_run() -> str:
    """The run shown: the address's (`run` query parameter) when it is in the runs folder, else the newest."""
    options = run_options()
    if not options:
        st.info("No runs yet — start one on the Design page.")
        st.stop()
    wanted = st.query_params.get("run")
    if wanted and wanted not in options:
        st.error(f"Run {wanted!r} from the address bar is not in the runs folder; showing the newest run.")
        wanted = None
    ids = list(options)
    run_id = st.selectbox("Run", ids, index=ids.index(wanted) if wanted else 0, format_func=options.get, key="traj_run")
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
    return run_id


def _start_formula(table, candidate: int) -> str | None:
    """The start formula of a candidate, from the run's table (None when the table does not have it)."""
    if table is None or "candidate" not in table.columns or not (table["candidate"] == candidate).any():
        return None
    return pretty_formula(str(table[table["candidate"] == candidate].iloc[0]["initial_formula"]))


def _candidates(traj, table, stage3: int | None, run_id: str) -> None:
    """The picked candidates: the composition of one, the Tc and integer loss of all."""
    labels = data.candidate_labels(table, traj.snap_tc_k.shape[1])
    order = list(labels)
    picked = st.multiselect(
        "Candidates (ranked; overlay several)",
        order,
        default=order[:3],
        format_func=labels.get,
        key=f"traj_pick-{run_id}",
    )
    if not picked:
        st.info("Pick at least one candidate.")
        return
    focus = st.selectbox("Composition of", picked, format_func=labels.get, key=f"traj_focus-{run_id}")
    steps, fractions = data.candidate_composition(traj, focus)
    start = _start_formula(table, focus)
    title = labels[focus] + (f" — started from {start}" if start is not None else "")
    st.plotly_chart(
        figures.composition_area(steps, fractions, stage3, title=title), key="traj_area", config=figures.PLOT_CONFIG
    )
    c1, c2 = st.columns(2)
    short = {i: labels[i].split(" (")[0] for i in picked}
    tc = {short[i]: v for i, v in data.candidate_series(traj, picked, "tc_k").items()}
    il = {short[i]: v for i, v in data.candidate_series(traj, picked, "int_loss").items()}
    c1.plotly_chart(
        figures.candidate_lines(tc, figures.TC_LABEL, stage3, title="Predicted Tc"),
        key="traj_tc",
        config=figures.PLOT_CONFIG,
    )
    c2.plotly_chart(
        figures.candidate_lines(il, figures.INT_LOSS_LABEL.replace(" (median)", ""), stage3, title="Integer loss"),
        key="traj_il",
        config=figures.PLOT_CONFIG,
    )


def _whole_run(traj, cfg: dict, stage3: int | None) -> None:
    st.subheader("Whole run")
    series = data.series_from_trajectory(traj)
    w1, w2 = st.columns(2)
    w1.plotly_chart(figures.tc_trace(series, stage3, cfg.get("target_tc")), key="run_tc", config=figures.PLOT_CONFIG)
    w2.plotly_chart(figures.loss_alpha_trace(series, stage3), key="run_loss", config=figures.PLOT_CONFIG)
    change = data.stage2_change(traj, int(cfg.get("steps2", 0) or 0))
    f1, f2 = st.columns(2)
    f1.plotly_chart(
        figures.tc_before_after(change["tc_before_k"], change["tc_after_k"]), key="fig4a", config=figures.PLOT_CONFIG
    )
    f2.plotly_chart(figures.element_count_change(change["element_decrease"]), key="fig4b", config=figures.PLOT_CONFIG)
    st.caption(
        "Left: paper Fig. 4a (Tc before vs after stage 2). Right: Fig. 4b (positive = fewer element types after stage 2)."
    )


def render() -> None:
    st.title("Trajectories")
    run_id = _pick_run()
    run, err = load_run(run_id)
    if err:
        st.error(err)
        st.stop()
    traj, cfg = run.trajectory, run.config.get("design", {})
    stage3 = data.stage3_start(cfg)
    st.caption(run.info.summary or "")
    st.caption(models.model_caption(models.run_model_ref(run.config)))
    if traj is None or len(traj.snap_step) == 0:
        st.info("This run has no trajectory yet (it is written every few seconds while a run goes).")
        st.stop()
    _candidates(traj, run.candidates, stage3, run_id)
    _whole_run(traj, cfg, stage3)
