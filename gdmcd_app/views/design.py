"""Design: choose elements on the periodic table, set up a run, watch it live, get the ranked candidates.

Session state holds only the user's choices (`pins`, `excluded` and the widget values). A run
lives in the process-wide job registry and in its run folder; the page finds it through the
`job` query parameter, so it survives a reload, a second tab and other clicks.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from gdmcd_app import callbacks, figures, form, job_view, ptable
from gdmcd_app import series as app_data
from gdmcd_app import state as ui_state
from gdmcd_app.form import generic_fields, generic_widget
from gdmcd_app.jobs import JobLimitError
from gdmcd_app.shared import (
    DESIGN_DEFAULTS,
    cuda_available,
    get_formation_energy_model,
    get_model,
    get_registry,
    load_run,
)
from gdmcd_app.views.live import folder_panel, live_panel
from gdmcd_app.views.results import results_panel
from gdmcd_core.chem.elements import symbols
from gdmcd_core.design import run_meta, runs

INIT_LABELS = {
    "mixed": "SuperCon + interpolations (paper)",
    "dataset": "From SuperCon above T",
    "interpolate": "Interpolations",
    "hydride": "Hydride grid",
    "formulas": "Typed formulas",
}
FIELDS = {f.name: f for f in generic_fields()}
LIM = {name: form.limits(f) for name, f in FIELDS.items()}
LOSS_LABELS = {"int": "L_int (all atoms whole)", "es": "L_int,ES (two elements may stay fractional)"}
# Fields laid out by hand above the fold; every other field appears under "More options".
CUSTOM_WIDGETS = {
    "max_elements", "init_mode", "init_min_tc", "n_candidates", "integer_loss", "target_tc", "steps2", "steps3",
    "lr", "alpha_max", "device", "seed", "objective", "kappa",
}  # fmt: skip
ss = st.session_state
fresh_session = "pins" not in ss
# Widget values Streamlit dropped or reset while another page was shown come back from the page's own copy.
form.restore_dropped(ss, ss.get("_form_keep", {}), DESIGN_DEFAULTS, entering=ss.get("_prev_page") != ss.get("_page"))
for k, v in DESIGN_DEFAULTS.items():
    ss.setdefault(k, v)
registry = get_registry()

# A fresh tab at the root URL shows the run under way (this server's, or one in another process).
if fresh_session and not st.query_params.get("job"):
    _open = job_view.open_run_id([j.job_id for j in registry.active_jobs()], runs.runs_root())
    if _open:
        st.query_params["job"] = _open
# A fresh session (a reload, a second tab, a link) opened on a run shows that run's settings.
if fresh_session and st.query_params.get("job"):
    _run, _err = load_run(st.query_params["job"])
    if _run is not None and _run.config.get("design"):
        try:
            callbacks.on_reuse(_run.config["design"])
        except (ValueError, TypeError):
            pass  # a run written by another version: keep the defaults


# -- page ----------------------------------------------------------------------------------------

st.title("Design superconductor compositions")
draft_note = st.empty()  # says when the form no longer holds the settings of the run on screen
model, model_error = get_model()
if model_error:
    st.error(f"No Tc model available: {model_error}")

# Widget state is dropped while another page is shown; re-derive the typed selections each run.
ss.ms_pinned = [p["symbol"] for p in ss.pins]
ss.ms_excluded = list(ss.excluded)

st.subheader("1 · Elements")
table_col, side_col = st.columns([5, 1])
with side_col:
    color_by = st.radio(
        "Colour tiles by",
        ["block", "frequency"],
        key="color_by",
        format_func=lambda v: {"block": "block", "frequency": "SuperCon frequency"}[v],
    )
    long_form = st.toggle(
        "32 columns", key="long_form", help="the long-form table, as the model's composition image lays it out"
    )
with table_col:
    chart_key = f"ptable-{ss.ptable_ver}"
    fig = ptable.periodic_table(
        states=ui_state.element_states(ss.pins, ss.excluded),
        color_by=color_by,
        values=app_data.supercon_element_counts() if color_by == "frequency" else None,
        layout="long" if long_form else "standard",
        notes={p["symbol"]: f"{'≥' if p['mode'] == 'at-least' else '='} {p['fraction']:g}" for p in ss.pins},
    )
    st.plotly_chart(
        fig,
        key=chart_key,
        on_select=partial(callbacks.on_table_click, chart_key),
        selection_mode=("points",),
        config={"displayModeBar": False, "scrollZoom": False},
    )
preset_cols = st.columns([1, 1.1, 1.5, 0.6])
for col, (name, label) in zip(preset_cols, ui_state.PRESETS.items(), strict=False):
    col.button(
        label,
        key=f"preset_{name}",
        on_click=callbacks.on_preset,
        args=(name,),
        help=ui_state.PRESET_HELP[name],
        width="stretch",
    )
preset_cols[-1].button("Clear all", key="clear_elements", on_click=callbacks.on_clear, width="stretch")
if ss.get("preset_note"):
    st.caption(ss.pop("preset_note"))

typed_a, typed_b = st.columns(2)
typed_a.multiselect(
    "Pinned elements",
    symbols(),
    key="ms_pinned",
    on_change=callbacks.on_pinned_typed,
    format_func=ui_state.element_label,
    filter_mode="contains",
    select_all=False,
    help="typed alternative to clicking the table: symbol or name",
)
typed_b.multiselect(
    "Excluded elements",
    symbols(),
    key="ms_excluded",
    on_change=callbacks.on_excluded_typed,
    format_func=ui_state.element_label,
    filter_mode="contains",
    select_all=False,
)

pin_col, opt_col = st.columns([2, 1])
with pin_col:
    if ss.pins:
        editor_key = f"pin_editor-{ss.pin_ver}"
        st.data_editor(
            [dict(p) for p in ss.pins],
            key=editor_key,
            on_change=callbacks.on_pin_edit,
            args=(editor_key,),
            hide_index=True,
            num_rows="fixed",
            disabled=["symbol"],
            column_config={
                "symbol": st.column_config.TextColumn("element"),
                "fraction": st.column_config.NumberColumn(
                    "fraction", min_value=0.0, max_value=1.0, step=0.01, format="%.3f", help="atoms per atom"
                ),
                "mode": st.column_config.SelectboxColumn(
                    "mode", options=["at-least", "exact"], required=True, help="at least this fraction, or exactly it"
                ),
            },
            width="stretch",
        )
    else:
        st.caption("No pinned elements: click a tile once to pin it (twice to exclude it).")
    pin_error = st.empty()
with opt_col:
    st.number_input("Max. distinct elements (0 = no cap)", *LIM["max_elements"], key="max_elements")
    st.checkbox("Exclude elements the model never saw", key="exclude_unseen", help="At, Rn, Fr, Es–Lr, Z ≥ 104")

st.subheader("2 · Start compositions")
s1, s2, s3 = st.columns([2, 2, 1])
with s1:
    init_mode = st.radio("Start from", list(INIT_LABELS), key="init_mode", format_func=INIT_LABELS.get)
with s2:
    if init_mode == "formulas":
        st.text_area("Start formulas (one per line)", key="init_formulas", height=120)
    elif init_mode in ("mixed", "dataset", "interpolate"):
        st.number_input("SuperCon compositions with Tc above (K)", *LIM["init_min_tc"], step=5.0, key="init_min_tc")
    else:
        st.caption("Binary H(n−1)A and ternary H2AB grids over the allowed elements (paper S5).")
    formula_error = st.empty()
with s3:
    st.number_input("Candidates", *LIM["n_candidates"], step=16, key="n_candidates")

st.subheader("3 · Optimization")
o1, o2, o3 = st.columns(3)
with o1:
    n_lo, n_hi = st.slider(
        "Cell size N range",
        form.N_SLIDER_MIN,
        form.N_SLIDER_MAX,
        key="n_range",
        help="allowed atoms per formula unit (eq. 8)",
    )
    n_error = st.empty()
    st.radio("Integer loss", list(LOSS_LABELS), key="integer_loss", format_func=LOSS_LABELS.get)
    st.number_input("Target Tc y_t (K)", *LIM["target_tc"], step=10.0, key="target_tc")
with o2:
    st.number_input("Stage-2 steps (Tc only)", *LIM["steps2"], step=100, key="steps2")
    st.number_input("Stage-3 steps (Tc + α·L_integer)", *LIM["steps3"], step=100, key="steps3")
    st.select_slider("Learning rate", form.LR_OPTIONS, key="lr")
    st.number_input("α_max", *LIM["alpha_max"], step=100.0, key="alpha_max")
    steps_a, alpha_a = app_data.alpha_schedule(ss.steps2, ss.steps3, ss.alpha_max)
    st.plotly_chart(
        figures.alpha_ramp(steps_a, alpha_a, app_data.stage3_start(ss)),
        key="alpha_preview",
        config={"displayModeBar": False},
    )
with o3:
    devices = ["auto", "cpu"] + (["cuda"] if cuda_available() else [])
    st.selectbox("Device", devices, key="device", help="auto: CUDA when present")
    st.caption("CUDA present: " + ("yes" if cuda_available() else "no — runs on the CPU"))
    st.number_input("Seed", *LIM["seed"], key="seed")
    objective = st.radio(
        "Objective",
        ["mean", "lcb"],
        key="objective",
        format_func=lambda v: {"mean": "ensemble mean Tc", "lcb": "lower confidence bound (mean − κσ)"}[v],
    )
    if objective == "lcb":
        st.number_input("κ", *LIM["kappa"], step=0.5, key="kappa")
    with st.expander("More options"):  # every DesignConfig field without a widget above, from its metadata
        for name in FIELDS.keys() - CUSTOM_WIDGETS:
            if name != "formation_energy_weight" or get_formation_energy_model() is not None:
                generic_widget(st, FIELDS[name])

values = {k: ss[k] for k in form.form_defaults() if k in ss}
if get_formation_energy_model() is None:
    values["formation_energy_weight"] = 0.0
config, errors = form.build_design_config(values)
for placeholder, field in ((pin_error, "pins"), (formula_error, "formulas"), (n_error, "n_range")):
    if field in errors:
        placeholder.error(errors[field])

# -- run -----------------------------------------------------------------------------------------

st.subheader("4 · Run")
job_id = st.query_params.get("job") or ss.get("job_id")
url_error = None
if job_id:
    try:
        runs.validate_run_id(job_id)
    except ValueError as exc:
        url_error, job_id = str(exc), None
if job_id and st.query_params.get("job") != job_id:
    st.query_params["job"] = job_id  # back from another page: keep the run in the address (reload-safe)
job = registry.get(job_id)
snap = job.snapshot() if job is not None else None
status = job_view.run_status(snap, job_view.folder_info(job_id) if job_id and snap is None else None)
busy = status == "running"  # here, or in another process

meta_col, tags_col = st.columns(2)
meta_col.text_input(
    "Run name (optional)", key="run_name", max_chars=run_meta.MAX_NAME, placeholder="e.g. hydrides N ≤ 12"
)
tags_col.text_input("Tags (optional, comma-separated)", key="run_tags", placeholder="e.g. hydride, paper")
run_col, msg_col = st.columns([1, 3])
with run_col:
    run_clicked = st.button("Run design", type="primary", disabled=busy or model is None, key="run_design")
with msg_col:
    run_error = st.empty()
    if busy:
        st.caption("A run is on screen and still going: stop it, or wait for it, to start another.")
if url_error:
    run_error.error(f"The run in the address bar is not valid: {url_error}")
if "general" in errors:
    run_error.error(errors["general"])
try:
    meta = run_meta.RunMeta(run_meta.clean_name(ss.run_name), run_meta.parse_tags(ss.run_tags))
except ValueError as exc:
    meta, errors = None, {**errors, "meta": str(exc)}
    run_error.error(str(exc))
if run_clicked:
    if errors:
        run_error.error("Fix the problems marked above first.")
    else:
        try:
            with st.spinner("Building the start compositions (the first run also loads the reference data)…"):
                job = registry.start(
                    model, config, get_formation_energy_model() if config.formation_energy_weight > 0 else None
                )
            if meta is not None and (meta.name or meta.tags):
                run_meta.write_meta(job.run_dir, meta.name, meta.tags)
        except (ValueError, MemoryError, JobLimitError) as exc:  # InsufficientMemoryError says how much it needs
            run_error.error(str(exc))
        except Exception as exc:  # never a traceback on the page; the message says what broke
            run_error.error(f"The run could not start: {type(exc).__name__}: {exc}")
        else:
            ss.job_id = job.job_id
            st.query_params["job"] = job.job_id
            st.rerun()

# The form shows the settings of the run on screen, or says plainly that it is a new draft.
run_design = job.config.to_dict() if job is not None else None
if job_id and run_design is None:
    _shown, _ = load_run(job_id)
    run_design = (_shown.config.get("design") if _shown is not None else None) or None
if run_design:
    draft = job_view.form_vs_run(config, run_design)
    if draft:
        with draft_note.container():
            a, b = st.columns([4, 1])
            a.info(
                f"**Editing a new run.** The run on screen (`{job_id}`) used other settings: "
                f"{job_view.describe_diff(draft)}."
            )
            b.button(
                "Show the run's settings",
                key="restore_run_settings",
                on_click=callbacks.on_reuse,
                args=(run_design,),
                help="put the settings of the run on screen back into the form",
            )
ss["_form_keep"] = {k: ss[k] for k in DESIGN_DEFAULTS if k in ss}

if job_id:
    if busy and snap is not None:
        live_panel(job_id)
    elif busy:
        folder_panel(job_id)
    else:
        results_panel(job_id)
else:
    st.caption("Results appear here. A run keeps going if you switch pages or reload; its folder is under Runs.")
