"""The Design page's results: a finished, stopped, failed or interrupted run's traces, ranked candidates and downloads."""

from __future__ import annotations

import json

import streamlit as st

from gdmcd_app import callbacks, figures, job_view
from gdmcd_app import series as app_data
from gdmcd_app.shared import candidate_columns, csv_download_bytes, get_registry, load_run
from gdmcd_core.design import filters


def results_panel(job_id: str) -> None:
    run, err = load_run(job_id)
    job = get_registry().get(job_id)
    snap = job.snapshot() if job is not None else None
    if err:
        st.error(f"Run {job_id} failed: {snap.error}" if snap is not None and snap.error else err)
        return
    info = run.info
    status = job_view.run_status(snap, info)  # the status every page shows
    head = f"Run `{info.run_id}`" + (f" · {info.name}" if info.name else "") + f" — **{status}**"
    if info.total_steps:
        head += f" after {info.steps_done:,}/{info.total_steps:,} steps"
    st.markdown(head)
    if status == "failed":
        st.error((snap.error if snap else "") or run.status.get("message") or "the run failed")
    elif status == "interrupted":
        st.warning(f"This run {job_view.STATUS_NOTES['interrupted']}")
    for problem in run.problems:
        st.warning(f"Part of this run folder cannot be read: {problem}")
    cfg = run.config.get("design", {})
    stage3 = app_data.stage3_start(cfg)
    if run.trajectory is not None and len(run.trajectory.step):
        series = app_data.series_from_trajectory(run.trajectory)
    else:
        series = app_data.series_from_rows(snap.history if snap else [])
    if len(series["step"]):
        c1, c2 = st.columns(2)
        c1.plotly_chart(figures.tc_trace(series, stage3, cfg.get("target_tc")), key="result_tc")
        c2.plotly_chart(figures.loss_alpha_trace(series, stage3), key="result_loss")
    table = run.candidates
    if table is None:
        st.info("No candidate table yet.")
    else:
        st.markdown(f"**{len(table)} distinct candidates**, ranked by predicted Tc of the integer formula")
        f1, f2 = st.columns([3, 1])
        chosen = f1.multiselect(
            "Show only",
            list(filters.available_filters(table)),
            format_func=lambda k: filters.CANDIDATE_FILTERS[k][0],
            key="result_filters",
        )
        all_cols = f2.toggle("All columns", key="result_all_columns")
        shown = filters.filter_candidates(table, chosen)
        st.dataframe(
            app_data.display_candidates(shown, all_columns=all_cols),
            hide_index=True,
            width="stretch",
            column_config=candidate_columns(),
            key="result_table",
        )
        if filters:
            st.caption(f"{len(shown)} of {len(table)} candidates pass the filters.")
    d1, d2, d3, d4 = st.columns(4)
    if table is not None:  # read through load_run: never a file outside the run folder
        d1.download_button(
            "Download CSV",
            csv_download_bytes(table),
            file_name=f"candidates-{info.run_id}.csv",
            mime="text/csv",
            key="download_csv",
            on_click="ignore",
        )
    d2.download_button(
        "Download config (JSON)",
        json.dumps(run.config, indent=2),
        file_name=f"config-{info.run_id}.json",
        mime="application/json",
        key="download_config",
        on_click="ignore",
    )
    if cfg:
        d3.button("Reuse these settings", key="reuse_settings", on_click=callbacks.on_reuse, args=(cfg,))
    d4.button("New run", key="new_run", on_click=callbacks.on_new_run)
    with st.expander("Run configuration (JSON)"):
        st.json(run.config, expanded=False)
