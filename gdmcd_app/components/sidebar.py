"""The sidebar, on every page: the model in use, and the run indicator — the session's run (or, for a
fresh tab or after a server restart, a run under way or just interrupted) with its status, progress and
a link to it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from gdmcd_app import data, job_view
from gdmcd_app.shared import cuda_available, get_model, registry_or_none
from gdmcd_core.design.runs import folder as runs


def model_sidebar() -> None:
    """The sidebar block saying which model is in use (and a choice when several exist)."""
    with st.sidebar:
        options = [str(p) for p in data.available_checkpoints()]
        if len(options) > 1:
            st.selectbox("Tc model", options, key="checkpoint", format_func=lambda p: Path(p).stem)
        model, err = get_model()
        if err:
            st.error(f"No Tc model: {err}")
            return
        info = data.describe_model(model)
        st.caption("**Model in use**")
        st.markdown(f"`{info.name}` — {info.label}")
        st.caption(f"{info.n_parameters:,} parameters per member · SHA-256 {info.sha256[:12]}…")
        if not cuda_available():
            st.caption("CUDA: not available, running on CPU")


def indicated_run() -> str | None:
    """The run the indicator shows: the session's while it runs, else a run under way on this server,
    else the session's (or the address's) last run, else the run written last if it is running in
    another process or was interrupted (after a server restart every page says so)."""
    registry = registry_or_none()
    if registry is None:
        return None
    mine = [rid for rid in (st.session_state.get("job_id"), st.query_params.get("job")) if rid]
    active = [j.job_id for j in registry.active_jobs()]
    for rid in mine:
        if rid in active:
            return rid
    if active:
        return active[-1]
    for rid in mine:
        if registry.get(rid) is not None or job_view.folder_info(rid) is not None:
            return rid
    return job_view.open_run_id([], runs.runs_root(), interrupted=True)


def run_indicator(design_page: st.Page) -> None:
    """Draw the indicator in the sidebar; it refreshes itself every two seconds while its run is active."""
    rid = indicated_run()
    if rid is None:
        return
    job = registry_or_none().get(rid)
    if job is not None:
        active = job.active
    else:  # a run another process writes: follow its folder
        active = getattr(job_view.folder_info(rid), "status", "") == "running"
    with st.sidebar:
        st.fragment(run_every=2.0 if active else None)(_indicator)(rid, design_page, active)


def _indicator(rid: str, design_page: st.Page, was_active: bool) -> None:
    job = registry_or_none().get(rid)
    snap = job.snapshot() if job is not None else None
    info = job_view.folder_info(rid) if snap is None else None
    status = job_view.run_status(snap, info)
    if was_active and status != "running":
        st.rerun(scope="app")  # the run ended: redraw the page once (and stop polling)
    name = info.name if info is not None else job_view.folder_meta_name(rid)
    with st.container(border=True, key="run_indicator"):
        st.markdown(f"**Run** `{rid}`" + (f" — {name}" if name else ""))
        if snap is not None and snap.active:
            view = job_view.progress_view(snap)
            st.progress(view.fraction, text=view.text.removeprefix(f"Run {rid}: "))
        else:
            steps = f" at step {info.steps_done:,}/{info.total_steps:,}" if info and info.total_steps else ""
            icon = {"interrupted": "⚠️", "failed": "❌", "running": "⏳"}.get(status, "")
            st.markdown(f"{icon} **{status}**{steps}".strip())
        st.page_link(design_page, label="Open this run", icon=":material/open_in_new:", query_params={"job": rid})
