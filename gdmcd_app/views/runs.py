"""Runs: every design run in the runs folder — reopen, compare, download, delete; finalize or resume
a run that was stopped or interrupted (its process killed, the server restarted) from its saved state."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from gdmcd_app import data, figures, job_view, run_list
from gdmcd_app.components.results import candidate_columns, open_column_config, with_open_column
from gdmcd_app.jobs import RunBusyError
from gdmcd_app.navigation import page
from gdmcd_app.shared import (
    UNUSABLE_CANDIDATES,
    csv_download_bytes,
    get_formation_energy_model,
    get_model,
    get_registry,
    load_run,
    registry_or_none,
)
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs import meta as run_meta


def _status_getter() -> Callable[[runs.RunInfo], str]:
    """The status every page shows for a run (this server's job, else the run folder's)."""
    registry = registry_or_none()  # None for an invalid server setting: get_registry says so where it is needed

    def status_of(info: runs.RunInfo) -> str:
        job = registry.get(info.run_id) if registry is not None else None
        return job_view.run_status(job.snapshot() if job is not None else None, info)

    return status_of


def _run_table(infos: list[runs.RunInfo], status_of: Callable[[runs.RunInfo], str]) -> list[runs.RunInfo]:
    """The tag filter and the table of runs; returns the runs shown."""
    tags = run_list.all_tags(infos)
    chosen_tags = st.multiselect("Filter by tag", tags, key="runs_tags", disabled=not tags, placeholder="all runs")
    shown = run_list.with_tags(infos, chosen_tags)
    if not shown:
        st.info("No run carries all of these tags.")
        st.stop()
    st.dataframe(
        run_list.run_rows(shown, status_of),
        hide_index=True,
        width="stretch",
        column_config={"candidates": st.column_config.NumberColumn(format="%d")},
        key="runs_table",
    )
    return shown


def _name_and_tags(run, run_id: str) -> None:
    with st.form(f"runs_meta-{run_id}", border=False):
        m1, m2, m3 = st.columns([2, 2, 1], vertical_alignment="bottom")
        new_name = m1.text_input("Name", run.info.name, max_chars=run_meta.MAX_NAME, key=f"runs_name-{run_id}")
        new_tags = m2.text_input("Tags (comma-separated)", ", ".join(run.info.tags), key=f"runs_tagtext-{run_id}")
        if m3.form_submit_button("Save name and tags", key="runs_save_meta"):
            try:
                run_meta.write_meta(run.info.path, new_name, new_tags)
            except (ValueError, OSError) as exc:
                st.error(str(exc))
            else:
                st.rerun()


def _finish(run, run_id: str, action: str) -> None:
    """Finalize (candidate table from state.npz) or resume the selected run; errors in one line."""
    model, model_err = get_model()
    if model is None:
        st.error(f"No Tc model: {model_err}")
        return
    fe = get_formation_energy_model()
    try:
        if action == "finalize":
            n = get_registry().finalize(run_id, model, fe)
            st.success(f"Wrote {n} candidates from the state saved at step {run.info.steps_done}.")
        else:
            get_registry().resume(run_id, model, fe)
            st.switch_page(page("design"), query_params={"job": run_id})
    except RunBusyError as exc:  # a finalize or resume of this run from another tab is under way
        st.warning(f"Cannot {action} run {run_id} now: {exc}.")
    except Exception as exc:  # RunLockedError, StateError, JobLimitError, a changed model: one line
        st.error(f"Could not {action} run {run_id}: {exc}")


def _saved_state(run, run_id: str, status: str) -> None:
    """What an unfinished run left behind, and Finalize / Resume when it saved its state."""
    info = run.info
    registry = registry_or_none()
    busy = registry.busy_with(run_id) if registry is not None else None
    if busy:
        st.info(f"A {busy} is running for this run; Finalize and Resume come back when it ends.")
        return
    at_step = f" at step {info.steps_done:,}/{info.total_steps:,}" if info.total_steps else ""
    if status == "interrupted" and not info.has_state:
        st.warning(
            f"This run is **interrupted**{at_step}: its process is gone (server restarted or killed) and it saved "
            "no state."
        )
    elif status in ("interrupted", "failed", "stopped") and info.has_state and info.status != "finished":
        more = info.total_steps and info.steps_done < info.total_steps
        st.info(
            f"This run is **{status}**{at_step}; its state was saved. "
            + ("Finalize writes its candidate table; resume continues the loop." if more else "")
        )
        f1, f2, _ = st.columns([1, 1, 2])
        if f1.button("Finalize", key="runs_finalize", help="build candidates.csv from the saved state"):
            _finish(run, run_id, "finalize")
        if more and f2.button("Resume", key="runs_resume", help="continue from the saved compositions and step"):
            _finish(run, run_id, "resume")


def _delete(run_id: str, status: str) -> None:
    active = get_registry().is_active(run_id) or status == "running"
    st.write(f"Delete run `{run_id}` and its folder? This cannot be undone.")
    if st.button(
        "Delete this run", key="runs_delete", type="primary", disabled=active, help="stop it first" if active else None
    ):
        try:
            runs.delete_run(run_id)
        except (ValueError, FileNotFoundError, runs.RunLockedError, OSError) as exc:
            st.error(str(exc))
        else:
            st.session_state.pop("runs_pick", None)
            st.rerun()


def _actions(run, run_id: str, status: str) -> None:
    """Open on the Design or Trajectories page, download, delete."""
    a, b, c, d = st.columns(4)
    if a.button("Open results", key="open_design", help="show it on the Design page"):
        st.switch_page(page("design"), query_params={"job": run_id})
    if b.button("Open trajectories", key="open_traj"):
        st.switch_page(page("trajectories"), query_params={"run": run_id})
    if run.candidates is not None:  # read through load_run: never a file outside the run folder
        c.download_button(
            "Download CSV",
            csv_download_bytes(run.candidates),
            file_name=f"candidates-{run_id}.csv",
            mime="text/csv",
            key="runs_download",
            on_click="ignore",
        )
    with d.popover("Delete…"):
        _delete(run_id, status)


def _loaded(run_ids: list[str]) -> dict[str, runs.LoadedRun]:
    """The runs that load, by id; each one that does not gets its one-line error."""
    out = {}
    for rid in run_ids:
        other, other_err = load_run(rid)
        if other_err:
            st.error(other_err)
        else:
            out[rid] = other
    return out


def _compare(ids: list[str], labels: dict[str, str]) -> None:
    """Best Tc over the steps, the settings that differ and the top candidate of the runs picked."""
    st.subheader("Compare runs")
    picked = st.multiselect(
        "Runs to compare", ids, default=ids[: min(2, len(ids))], key="runs_compare", format_func=labels.get
    )
    comparison = run_list.compare_runs(_loaded(picked))
    curves, diff_col = st.columns([3, 2])
    with curves:
        if comparison.best_lines:
            fig = figures.candidate_lines(comparison.best_lines, figures.TC_LABEL, title="Best Tc over the steps")
            st.plotly_chart(fig, key="runs_compare_fig", config=figures.PLOT_CONFIG)
        else:
            st.info("None of these runs recorded a trajectory yet.")
    with diff_col:
        st.markdown("**Settings that differ**")
        if len(comparison.settings) < 2:
            st.caption("Pick two or more runs to see which settings differ.")
        elif diff := job_view.settings_diff(comparison.settings):
            st.dataframe(diff, hide_index=True, width="stretch", key="runs_settings_diff")
        else:
            st.caption("These runs used the same settings.")
    if comparison.tops:
        st.dataframe(
            comparison.tops,
            hide_index=True,
            width="stretch",
            column_config={"Tc": st.column_config.NumberColumn("its Tc", format=run_list.TC_FORMAT)},
            key="runs_compare_table",
        )


def render() -> None:
    st.title("Runs")
    st.caption(f"Run folders in `{runs.runs_root()}`")
    infos = runs.list_runs()
    if not infos:
        st.info("No runs yet — start one on the Design page.")
        st.stop()
    status_of = _status_getter()
    shown = _run_table(infos, status_of)
    ids = [r.run_id for r in shown]
    labels = {r.run_id: run_list.run_label(r) for r in shown}
    run_id = st.selectbox("Run", ids, key="runs_pick", format_func=labels.get)
    run, err = load_run(run_id)
    if err:
        st.error(err)
        st.stop()
    for problem in run.problems:  # a candidates.csv without its formula column is an error: no table to show
        show = st.error if problem.endswith(UNUSABLE_CANDIDATES) else st.warning
        show(f"Part of this run folder cannot be read: {problem}")
    _name_and_tags(run, run_id)
    status = status_of(run.info)
    _saved_state(run, run_id, status)
    _actions(run, run_id, status)
    if run.candidates is not None:
        top = run.candidates.head(20)
        st.dataframe(
            with_open_column(data.display_candidates(top), top, run_id),
            hide_index=True,
            width="stretch",
            column_config={**candidate_columns(), **open_column_config()},
            key="runs_top",
        )
    _compare(ids, labels)
