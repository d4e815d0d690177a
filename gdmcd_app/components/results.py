"""The Design page's results panel: a finished (or stopped, or failed) run's traces, its ranked candidates
with filters, and downloads; and the column configuration of every candidate table (Design, Runs).

The table's columns, tooltips, derived columns and export come from gdmcd_app.results_table.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from gdmcd_app import callbacks, candidate_story, data, figures, job_view, models, results_table
from gdmcd_app.components.downloads import csv_download
from gdmcd_app.inputs import pretty_formula
from gdmcd_app.shared import get_registry, load_run
from gdmcd_core.design.evidence import filters
from gdmcd_core.design.evidence.diversity import families_summary

HIDE_KNOWN = "not_known"  # the filter the "Hide known superconductors" checkbox adds


def candidate_columns(card: dict | None = None, high_pressure: bool = False, columns=None) -> dict:
    """st.column_config for candidate tables (Design results, Runs): label with units, tooltip, format.

    card: the model card (σ's tooltip says how σ was calibrated); columns: also configure these
    (frac_<El> and other columns outside the default set)."""
    specs = results_table.column_specs(card, high_pressure)
    out = {}
    for key in list(specs) + [c for c in (columns or ()) if c not in specs]:
        s = results_table.spec_for(key, specs)
        if s.kind == "number":
            out[key] = st.column_config.NumberColumn(s.label, help=s.help or None, format=s.fmt)
        elif s.kind == "flag":
            out[key] = st.column_config.CheckboxColumn(s.label, help=s.help or None)
        elif s.kind == "link":
            out[key] = st.column_config.LinkColumn(s.label, help=s.help or None, display_text=s.link_text)
        else:
            out[key] = st.column_config.TextColumn(s.label, help=s.help or None)
    return out


def with_open_column(screen: pd.DataFrame, view: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """The screen table with, first, the candidate-page link of each row (from the plain formulas of `view`)."""
    if "integer_formula" not in view.columns:
        return screen
    out = screen.copy()
    out.insert(0, candidate_story.OPEN_COLUMN, candidate_story.open_links(view["integer_formula"], run_id))
    return out


def open_column_config() -> dict:
    """st.column_config of the link column `with_open_column` adds."""
    return {
        candidate_story.OPEN_COLUMN: st.column_config.LinkColumn(
            "candidate page",
            help="everything about this candidate: its path, the nearest known superconductors, checks, downloads",
            display_text="open ↗",
            width="small",
        )
    }


def _status(run, snap, info) -> str:
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
    return status


def _filters(table: pd.DataFrame) -> tuple[list[str], bool]:
    """(the filters chosen, with "not_known" when known superconductors are hidden; whether every column is shown)."""
    f1, f2, f3 = st.columns([3, 1, 1])
    chosen = f1.multiselect(
        "Show only",
        [k for k in filters.available_filters(table) if k != HIDE_KNOWN],
        format_func=lambda k: filters.CANDIDATE_FILTERS[k][0],
        key="result_filters",
    )
    if HIDE_KNOWN in filters.available_filters(table) and f3.checkbox(
        "Hide known superconductors",
        key="result_hide_known",
        help="hide the candidates that are SuperCon entries (up to oxygen stoichiometry): known, not discoveries",
    ):
        chosen = [*chosen, HIDE_KNOWN]
    return chosen, f2.toggle("All columns", key="result_all_columns")


def _families(view: pd.DataFrame) -> None:
    """The families summary above the table: family, count, best Tc of the rows shown (evidence/diversity.py)."""
    fam = families_summary(view)
    if not len(fam):
        return
    st.markdown(f"**{len(fam)} families** among the candidates shown (parent phase, else element set)")
    st.dataframe(
        fam.assign(family=fam["family"].map(pretty_formula), best_formula=fam["best_formula"].map(pretty_formula)),
        hide_index=True,
        height=min(36 * (len(fam) + 1) + 2, 220),
        column_config={
            "family": st.column_config.TextColumn(
                "family", help="parent phase (oxygen variants together), else elements"
            ),
            "count": st.column_config.NumberColumn("candidates", help="candidates of this family shown"),
            "best_tc_k": st.column_config.NumberColumn("best Tc (K)", format="%.1f", help="highest predicted Tc"),
            "best_formula": st.column_config.TextColumn("best-ranked", help="the family's best-ranked candidate"),
            "best_rank": st.column_config.NumberColumn("its rank", help="rank of that candidate"),
        },
        key="result_families",
    )


def _speculative_warning(view: pd.DataFrame) -> None:
    text = results_table.speculative_warning(view)
    if text:
        st.warning(text, icon=":material/warning:")


def _downloads(view: pd.DataFrame, table: pd.DataFrame, specs: dict, run_id: str) -> None:
    e1, e2, e3 = st.columns(3)
    for col, ext, export, mime in (
        (e1, "csv", results_table.export_csv, "text/csv"),
        (e2, "json", results_table.export_json, "application/json"),
    ):
        col.download_button(
            f"Download shown ({ext.upper()})",
            export(view, specs),
            file_name=f"candidates-{run_id}-shown.{ext}",
            mime=mime,
            key=f"download_shown_{ext}",
            on_click="ignore",
            help="exactly the rows and columns on screen, with the filters applied",
        )
    csv_download(  # read through load_run: never a file outside the run folder
        e3,
        "Download full table (CSV)",
        table,
        f"candidates-{run_id}.csv",
        key="download_csv",
        help="every candidate and every column, unfiltered, with the run folder's column names",
    )


def candidates_section(run, run_id: str) -> None:
    """The ranked table with filters, the model that produced it, the speculative warning and the exports."""
    table = run.candidates
    ref = models.run_model_ref(run.config)
    card = models.read_card(run.config.get("checkpoint_path", "")) if ref else {}
    high_pressure = ref is not None and ref.high_pressure
    st.markdown(f"**{len(table)} distinct candidates**, {job_view.ranking_text(run.config.get('design') or {})}")
    st.caption(models.model_caption(ref))
    chosen, all_cols = _filters(table)
    view = results_table.results_view(table, chosen, all_cols)
    _families(view)
    _speculative_warning(view)
    st.dataframe(
        with_open_column(results_table.for_screen(view), view, run_id),
        hide_index=True,
        width="stretch",
        column_config={**candidate_columns(card, high_pressure, list(view.columns)), **open_column_config()},
        placeholder="",
        key="result_table",
    )
    st.caption(
        f"{len(view)} of {len(table)} candidates pass the filters"
        + (f" ({'; '.join(filters.CANDIDATE_FILTERS[k][0] for k in chosen)})" if chosen else "")
    )
    _downloads(view, table, results_table.column_specs(card, high_pressure), run_id)


def _traces(run, snap, cfg: dict) -> None:
    """The run's Tc and loss traces: from its trajectory file, else from the live job's progress rows."""
    stage3 = data.stage3_start(cfg)
    if run.trajectory is not None and len(run.trajectory.step):
        series = data.series_from_trajectory(run.trajectory)
    else:
        series = data.series_from_rows(snap.history if snap else [])
    if len(series["step"]):
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            figures.tc_trace(series, stage3, cfg.get("target_tc")), key="result_tc", config=figures.PLOT_CONFIG
        )
        c2.plotly_chart(figures.loss_alpha_trace(series, stage3), key="result_loss", config=figures.PLOT_CONFIG)


def _run_actions(run, cfg: dict, run_id: str) -> None:
    d2, d3, d4 = st.columns(3)
    d2.download_button(
        "Download config (JSON)",
        json.dumps(run.config, indent=2),
        file_name=f"config-{run_id}.json",
        mime="application/json",
        key="download_config",
        on_click="ignore",
    )
    if cfg:
        d3.button("Reuse these settings", key="reuse_settings", on_click=callbacks.on_reuse, args=(cfg,))
    d4.button("New run", key="new_run", on_click=callbacks.on_new_run)


def results_panel(job_id: str) -> None:
    run, err = load_run(job_id)
    job = get_registry().get(job_id)
    snap = job.snapshot() if job is not None else None
    if err:
        st.error(f"Run {job_id} failed: {snap.error}" if snap is not None and snap.error else err)
        return
    info = run.info
    _status(run, snap, info)
    cfg = run.config.get("design", {})
    _traces(run, snap, cfg)
    if run.candidates is None:
        st.info("No candidate table yet.")
    else:
        candidates_section(run, info.run_id)
    _run_actions(run, cfg, info.run_id)
    with st.expander("Run configuration (JSON)"):
        st.json(run.config, expanded=False)
