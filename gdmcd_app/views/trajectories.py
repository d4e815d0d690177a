"""Trajectories: how candidates moved during a run — composition (the integer formula drawn last), Tc and integer
loss over the steps, where stage 3 began, and the run-wide Tc change and element-count change (paper Fig. 4); the
data behind each as CSV."""

from __future__ import annotations

import streamlit as st

from gdmcd_app import candidate_story, data, figures, models
from gdmcd_app.components.downloads import PATH_CSV_HELP, csv_download
from gdmcd_app.inputs import pretty_formula
from gdmcd_app.navigation import keep_in_address, page
from gdmcd_app.shared import load_run_or_stop, run_options_or_stop


def _pick_run() -> str:
    """The run shown: the address's (`run` query parameter) when it is in the runs folder, else the newest."""
    options = run_options_or_stop()
    wanted = st.query_params.get("run")
    if wanted and wanted not in options:
        st.error(f"Run {wanted!r} from the address bar is not in the runs folder; showing the newest run.")
        wanted = None
    ids = list(options)
    run_id = st.selectbox("Run", ids, index=ids.index(wanted) if wanted else 0, format_func=options.get, key="traj_run")
    keep_in_address("run", run_id)
    return run_id


def _row(table, candidate: int):
    """The candidate-table row of a trajectory column (None when the table does not have it)."""
    if table is None or "candidate" not in table.columns or not (table["candidate"] == candidate).any():
        return None
    return table[table["candidate"] == candidate].iloc[0]


def _composition(traj, table, focus: int, labels: dict, stage3: int | None, run_id: str) -> None:
    """The focused candidate's fractions over the steps, its integer formula drawn last, with its downloads."""
    row = _row(table, focus)
    final = data.integer_point(traj, row) if row is not None else None
    steps, fractions = data.candidate_composition(traj, focus, final=final)
    has_start = row is not None and "initial_formula" in row
    start = f" — started from {pretty_formula(str(row['initial_formula']))}" if has_start else ""
    fig = figures.composition_area(
        steps, fractions, stage3, title=labels[focus] + start, integer_step=final[0] if final else None
    )
    st.plotly_chart(fig, key="traj_area", config=figures.PLOT_CONFIG)
    if row is None:
        return
    formula = str(row["integer_formula"])
    # stage 3 begins after steps2 steps; a run without stage 3 is stage 2 to its last snapshot
    path = data.candidate_path(traj, row, stage3 if stage3 is not None else int(traj.snap_step[-1]))
    a, b = st.columns(2)
    csv_download(
        a,
        "Download this composition path (CSV)",
        path,
        f"trajectory-{run_id}-{formula}.csv",
        key="traj_path_csv",
        help=PATH_CSV_HELP,
    )
    b.page_link(
        page(candidate_story.CANDIDATE_PAGE),
        label="Everything about this candidate",
        icon=":material/biotech:",
        query_params={"run": run_id, "formula": formula},
    )


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
    _composition(traj, table, focus, labels, stage3, run_id)
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
    csv_download(
        st,
        "Download Tc and integer loss of these candidates (CSV)",
        data.candidates_over_steps(traj, {i: short[i] for i in picked}),
        f"candidates-over-steps-{run_id}.csv",
        key="traj_picked_csv",
        help="one row per candidate and snapshot: step, Tc (K), integer loss",
    )


def _whole_run(traj, cfg: dict, stage3: int | None, run_id: str) -> None:
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
    csv_download(
        st,
        "Download the run's statistics per step (CSV)",
        data.trajectory_table(traj),
        f"trajectory-{run_id}.csv",
        key="traj_run_csv",
        help="step, stage, α, Tc best / median / q10 / q90 across candidates (K), mean hinge (K), median L_integer",
    )


def render() -> None:
    st.title("Trajectories")
    run_id = _pick_run()
    run = load_run_or_stop(run_id)
    traj, cfg = run.trajectory, run.config.get("design", {})
    stage3 = data.stage3_start(cfg)
    st.caption(run.info.summary or "")
    st.caption(models.model_caption(models.run_model_ref(run.config)))
    if traj is None or len(traj.snap_step) == 0:
        st.info("This run has no trajectory yet (it is written every few seconds while a run goes).")
        st.stop()
    _candidates(traj, run.candidates, stage3, run_id)
    _whole_run(traj, cfg, stage3, run_id)
