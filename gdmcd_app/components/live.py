"""The Design page's live view of a run: its starting phases, then progress, best Tc, ETA and the traces.

`live_panel` follows a job of this server (once a second); `folder_panel` a run that another process
writes (its run folder, every two seconds). Both hand over to the full page when the run ends, so the
page then shows its results, or "interrupted" as soon as its process is gone.
"""

from __future__ import annotations

import streamlit as st

from gdmcd_app import callbacks, data, figures, job_view
from gdmcd_app.shared import get_registry

PHASE_MARKS = {"done": "✓", "now": "▶", "todo": "○"}


def _phases(view: job_view.ProgressView) -> None:
    st.caption(" · ".join(f"{PHASE_MARKS[state]} {label}" for label, state in view.phases))


@st.fragment(run_every=1.0)
def live_panel(job_id: str) -> None:
    """Polls the job about once a second; hands over to the full page when the run ends."""
    job = get_registry().get(job_id)
    snap = job.snapshot() if job is not None else None
    if snap is None or not snap.active:
        st.rerun(scope="app")
        return
    view = job_view.progress_view(snap)
    st.progress(view.fraction, text=view.text)
    _phases(view)
    st.button(
        "Stop this run",
        key="stop_run",
        on_click=callbacks.on_stop,
        args=(snap.job_id,),
        disabled=snap.stop_requested,
        help="keeps what was found so far",
    )
    if not view.has_points:
        st.info("The Tc and loss charts appear after the first optimization steps.")
        return
    series = data.series_from_rows(snap.history)
    stage3 = data.stage3_start(job.config)
    c1, c2 = st.columns(2)
    c1.plotly_chart(figures.tc_trace(series, stage3, job.config.target_tc), key="live_tc", config=figures.PLOT_CONFIG)
    c2.plotly_chart(figures.loss_alpha_trace(series, stage3), key="live_loss", config=figures.PLOT_CONFIG)


@st.fragment(run_every=2.0)
def folder_panel(job_id: str) -> None:
    """A run written by another process (the CLI, another server): its progress from the run folder."""
    info = job_view.folder_info(job_id)
    if info is None or info.status != "running":
        st.rerun(scope="app")
        return
    total = max(info.total_steps, 1)
    st.progress(
        min(info.steps_done / total, 1.0),
        text=f"Run {job_id} is running in another process: step {info.steps_done:,}/{info.total_steps:,}",
    )
    st.caption("This page follows its run folder; its results appear here when it ends.")
