"""Candidate: everything about one candidate of a run — its Tc with σ and the trees' opinion, where it comes from,
the nearest known superconductors, the chemistry checks and the hull energy, its path from the start through
stage 2 and stage 3 to the integer formula, links out and downloads.

The address names it: `?run=<run id>&formula=<integer formula>` (every candidate table links here). A run id is
only looked up among the run folders of the runs folder; a bad run or formula gets one error line.
"""

from __future__ import annotations

import streamlit as st

from gdmcd_app import candidate_story as story
from gdmcd_app import data, figures, models, results_table
from gdmcd_app.components.downloads import PATH_CSV_HELP, csv_download
from gdmcd_app.inputs import pretty_formula
from gdmcd_app.navigation import keep_in_address
from gdmcd_app.shared import get_reference, load_run_or_stop, run_options_or_stop
from gdmcd_core.chem.composition import FormulaError

ss = st.session_state
RUN_KEY, FORMULA_KEY = "cand_run", "cand_formula"
MAX_SHOWN = 80  # characters of an address-bar value quoted in an error line


def _quoted(text: str) -> str:
    """repr() of a value from the address bar (control characters escaped), cut to MAX_SHOWN characters."""
    return repr(text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}…")


def _on_run() -> None:
    st.query_params["run"] = ss[RUN_KEY]
    st.query_params.pop("formula", None)  # the new run's best candidate


def _on_formula() -> None:
    if ss[FORMULA_KEY] is not None:
        st.query_params["formula"] = ss[FORMULA_KEY]


def _address_select(label: str, options: dict, key: str, param: str, on_change, placeholder: str) -> str:
    """A selectbox over `options` ({value: label}) whose choice the address's query parameter `param` shows;
    stops the page while nothing is chosen."""
    picked = st.selectbox(
        label, list(options), key=key, format_func=options.get, on_change=on_change, placeholder=placeholder
    )
    if picked is None:
        st.stop()
    keep_in_address(param, picked)
    return picked


def _pick_run() -> str:
    """The run of the address (`run`), else the one picked before, else the newest; stops on a bad one."""
    options = run_options_or_stop()
    wanted = st.query_params.get("run")
    if wanted is not None and wanted not in options:
        st.error(f"Run {_quoted(wanted)} from the address bar is not in the runs folder.")
        ss[RUN_KEY] = None
    else:
        ss[RUN_KEY] = wanted or (ss.get(RUN_KEY) if ss.get(RUN_KEY) in options else next(iter(options)))
    return _address_select("Run", options, RUN_KEY, "run", _on_run, "Choose a run")


def _pick_row(run, run_id: str):
    """The candidate-table row of the address (`formula`), else the best-ranked one; stops on a bad formula."""
    wanted, table = st.query_params.get("formula"), run.candidates
    if table is None or not len(table):
        why = next((p for p in run.problems if "candidates" in p), "it has no candidate table yet")
        (st.error if wanted else st.info)(f"Run {run_id}: {why}.")
        st.stop()
    row = story.find_candidate(table, wanted) if wanted is not None else table.iloc[0]
    if row is None:
        st.error(f"Formula {_quoted(wanted)} is not among the {len(table)} candidates of run {run_id}.")
    ss[FORMULA_KEY] = None if row is None else str(row["integer_formula"])
    labels = story.candidate_options(table)
    _address_select("Candidate", labels, FORMULA_KEY, "formula", _on_formula, "Choose")
    return row


def _header(run, run_id: str, row, specs: dict) -> None:
    formula = str(row["integer_formula"])
    st.header(pretty_formula(formula))
    reduced = results_table.safe_reduced_formula(formula) or formula
    n = f" · N = {story.format_value(row['n_atoms'], specs['n_atoms'])} atoms" if "n_atoms" in row else ""
    name = f" ({run.info.name})" if run.info.name else ""
    st.markdown(
        f"Reduced formula **{pretty_formula(reduced)}**{n} · rank {row.get('rank', '?')} in run `{run_id}`{name}"
    )
    st.caption(models.model_caption(models.run_model_ref(run.config)))
    reasons = story.speculative_reasons(row)
    if reasons:
        st.warning(
            f"Speculative: {'; '.join(reasons)}. Its Tc is an extrapolation or disputed.", icon=":material/warning:"
        )
    tc = story.tc_facts(row, specs)
    for col, r in zip(st.columns(len(tc)), tc.itertuples(), strict=True):
        col.metric(r.quantity, r.value, help=r.about or None)
    if not any(c in row for c in story.TREES_COLUMNS):
        st.caption("The trees' second opinion: not in this run's table (no trees beside its model).")


def _facts_table(table, key: str) -> None:
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key=key,
        column_config={"about": st.column_config.TextColumn("about", width="large")},
    )


def _origin(row, specs: dict) -> None:
    st.subheader("Parent phase and edit")
    if story.has_parent(row):
        _facts_table(story.facts(row, story.PARENT_COLUMNS, specs), "cand_parent")
    else:
        st.caption("Parent phase and edit: not computed for this run.")


def _nearest(row):
    """The nearest-SuperCon table (returned for the JSON), or None when the reference data is not available."""
    st.subheader("Nearest known superconductors")
    ref, why = get_reference()
    if ref is None:
        st.warning(f"Not available: {why}")
        return None
    try:
        near = story.nearest_supercon(str(row["integer_formula"]), ref)
    except FormulaError as exc:
        st.warning(f"Not available: {exc}")
        return None
    shown = near.assign(formula=near["formula"].map(pretty_formula))
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        key="cand_nearest",
        column_config={
            "formula": st.column_config.TextColumn("formula"),
            "tc_k": st.column_config.NumberColumn("Tc (K)", format="%.1f", help="measured Tc (SuperCon)"),
            "year": st.column_config.NumberColumn("year", format="%d", help="first reported (SuperCon's references)"),
            "distance_l1": st.column_config.NumberColumn(
                "distance (L1)", format="%.3f", help="sum of |fraction differences|: 0 = same composition, 2 = none"
            ),
        },
    )
    st.caption(
        f"The {len(near)} SuperCon entries nearest in atomic fractions, from the reference data of this server's "
        "data folder (what design runs compare against: the first is normally the results table's nearest known SC)."
    )
    return near


def _checks(row, specs: dict) -> None:
    c1, c2 = st.columns([3, 2])
    with c1:
        st.subheader("Chemistry checks")
        _facts_table(story.facts(row, story.CHEMISTRY_COLUMNS, specs), "cand_chemistry")
    with c2:
        st.subheader("Stability")
        hull = story.facts(row, story.STABILITY_COLUMNS, specs)
        if len(hull):
            _facts_table(hull, "cand_hull")
        else:
            st.caption("No formation energy or hull energy in this run's table.")


def _path(run, row):
    """The path figure and table; returns data.candidate_path's table (None without a trajectory)."""
    st.subheader("Path: start → stage 2 → stage 3 → integer formula")
    traj, cfg = run.trajectory, run.config.get("design", {})
    i = story.trajectory_column(row)
    recorded = traj is not None and len(traj.snap_step) > 0 and i is not None and i < traj.snap_tc_k.shape[1]
    summary = story.path_summary(row, data.last_composition(traj, i) if recorded else None)
    st.dataframe(
        summary.assign(composition=summary["composition"].map(pretty_formula)),
        hide_index=True,
        width="stretch",
        key="cand_path_steps",
        column_config={"tc_k": st.column_config.NumberColumn("Tc (K)", format="%.1f")},
    )
    if not recorded:
        st.info("This run recorded no trajectory for this candidate.")
        return None
    path = data.candidate_path(traj, row, int(cfg.get("steps2", 0) or 0))
    final = data.integer_point(traj, row)
    steps, fractions = data.candidate_composition(traj, i, final=final)
    integer_tc = (float(row["integer_tc_k"]), float(row.get("integer_tc_std_k", float("nan")))) if final else None
    fig = figures.candidate_path(steps, fractions, path["tc_k"], integer_tc, data.stage3_start(cfg))
    st.plotly_chart(fig, key="cand_path_fig", config=figures.PLOT_CONFIG)
    st.caption(
        f"The integer formula (last point) was {story.integer_origin(row, int(traj.snap_step[-1]))}. Elements "
        "only the rounding or the refinement added start at zero there."
    )
    return path


def _links_and_downloads(run_id: str, row, near, path) -> None:
    formula = str(row["integer_formula"])
    st.subheader("Links and downloads")
    cols = st.columns(5)
    for col, (name, url) in zip(cols, story.links(formula).items(), strict=False):
        col.link_button(name, url, width="stretch")
    cols[3].download_button(
        "Candidate (JSON)",
        story.candidate_json(run_id, row, near, path),
        file_name=f"candidate-{run_id}-{formula}.json",
        mime="application/json",
        key="cand_json",
        on_click="ignore",
        help="its candidate-table row, the nearest known superconductors and its path",
    )
    if path is not None:
        csv_download(
            cols[4],
            "Trajectory (CSV)",
            path,
            f"trajectory-{run_id}-{formula}.csv",
            key="cand_csv",
            help=PATH_CSV_HELP,
        )


def render() -> None:
    st.title("Candidate")
    run_id = _pick_run()
    run = load_run_or_stop(run_id)
    row = _pick_row(run, run_id)
    ref = models.run_model_ref(run.config)
    card = models.read_card(run.config.get("checkpoint_path", "")) if ref else {}
    specs = results_table.column_specs(card, ref is not None and ref.high_pressure)
    _header(run, run_id, row, specs)
    _origin(row, specs)
    near = _nearest(row)
    _checks(row, specs)
    path = _path(run, row)
    _links_and_downloads(run_id, row, near, path)
