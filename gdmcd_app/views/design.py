"""Design: choose elements on the periodic table, set up a run, watch it live, get the ranked candidates.

Session state holds only the user's choices (`pins`, `excluded` and the widget values). A run
lives in the process-wide job registry and in its run folder; the page finds it through the
`job` query parameter, so it survives a reload, a second tab and other clicks.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from gdmcd_app import callbacks, data, figures, form, job_view
from gdmcd_app.components.elements import element_picker
from gdmcd_app.components.live import folder_panel, live_panel
from gdmcd_app.components.results import results_panel
from gdmcd_app.jobs import JobLimitError
from gdmcd_app.shared import (
    DESIGN_DEFAULTS,
    cuda_available,
    get_formation_energy_model,
    get_model,
    get_registry,
    load_run,
)
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs import meta as run_meta

FIELDS = {f.name: f for f in form.generic_fields()}
# Fields laid out by hand above the fold; every other field appears under "More options".
CUSTOM_WIDGETS = {
    "max_elements",
    "init_mode",
    "init_min_tc",
    "n_candidates",
    "integer_loss",
    "target_tc",
    "steps2",
    "steps3",
    "lr",
    "alpha_max",
    "device",
    "seed",
    "objective",
    "kappa",
}
ss = st.session_state


# -- the session ---------------------------------------------------------------------------------


def _prepare_session() -> bool:
    """Put back the form values Streamlit dropped, fill in the defaults; True for a fresh session."""
    fresh = "pins" not in ss
    # Widget values Streamlit dropped or reset while another page was shown come back from the page's own copy.
    entering = ss.get("_prev_page") != ss.get("_page")
    form.restore_dropped(ss, ss.get("_form_keep", {}), DESIGN_DEFAULTS, entering=entering)
    for k, v in DESIGN_DEFAULTS.items():
        ss.setdefault(k, v)
    return fresh


def _open_run_from_url(registry) -> None:
    """A fresh tab at the root URL shows the run under way (this server's, or one in another process);
    a fresh session (a reload, a second tab, a link) opened on a run shows that run's settings."""
    if not st.query_params.get("job"):
        open_id = job_view.open_run_id([j.job_id for j in registry.active_jobs()], runs.runs_root())
        if open_id:
            st.query_params["job"] = open_id
    if st.query_params.get("job"):
        run, _ = load_run(st.query_params["job"])
        if run is not None and run.config.get("design"):
            try:
                callbacks.on_reuse(run.config["design"])
            except (ValueError, TypeError):
                pass  # a run written by another version: keep the defaults


def _form_config() -> tuple[Any, dict[str, str]]:
    """(DesignConfig, {}) or (None, {widget: message}) from the form's values in the session."""
    values = {k: ss[k] for k in form.form_defaults() if k in ss}
    if get_formation_energy_model() is None:
        values["formation_energy_weight"] = 0.0
    return form.build_design_config(values)


# -- the form ------------------------------------------------------------------------------------


def _number(name: str, label: str, **kwargs: Any) -> None:
    """A number input for a DesignConfig field, its range from the field's metadata."""
    st.number_input(label, *form.limits(FIELDS[name], ss.get(name)), key=name, **kwargs)


def _choice(name: str, label: str) -> str:
    """A radio for a DesignConfig field with choices, worded by form.choice_labels; returns its value."""
    labels = form.choice_labels(FIELDS[name])
    return st.radio(label, list(labels), key=name, format_func=labels.get)


def _starts(formula_error: str | None) -> None:
    s1, s2, s3 = st.columns([2, 2, 1])
    with s1:
        init_mode = _choice("init_mode", "Start from")
    with s2:
        if init_mode == "formulas":
            st.text_area("Start formulas (one per line)", key="init_formulas", height=120)
        elif init_mode in ("mixed", "dataset", "interpolate"):
            _number("init_min_tc", "SuperCon compositions with Tc above (K)", step=5.0)
        else:
            st.caption("Binary H(n−1)A and ternary H2AB grids over the allowed elements (paper S5).")
        if formula_error:
            st.error(formula_error)
    with s3:
        _number("n_candidates", "Candidates", step=16)


def _cell_sizes_and_loss(n_error: str | None) -> None:
    st.slider(
        "Cell size N range",
        form.N_SLIDER_MIN,
        form.n_slider_max(ss.n_range),
        key="n_range",
        help="allowed atoms per formula unit (eq. 8)",
    )
    st.text_input(
        "Explicit cell sizes N (optional)",
        key="n_values",
        placeholder="e.g. 4, 8, 12",
        help="a set of N instead of the range above, comma-separated; empty: the range",
    )
    if n_error:
        st.error(n_error)
    _choice("integer_loss", "Integer loss")
    _number("target_tc", "Target Tc y_t (K)", step=10.0)


def _schedule() -> None:
    _number("steps2", "Stage-2 steps (Tc only)", step=100)
    _number("steps3", "Stage-3 steps (Tc + α·L_integer)", step=100)
    st.select_slider("Learning rate", form.lr_options(ss.lr), key="lr")
    _number("alpha_max", "α_max", step=100.0)
    steps, alpha = data.alpha_schedule(ss.steps2, ss.steps3, ss.alpha_max)
    st.plotly_chart(
        figures.alpha_ramp(steps, alpha, data.stage3_start(ss)), key="alpha_preview", config={"displayModeBar": False}
    )


def _run_settings() -> None:
    devices = ["auto", "cpu"] + (["cuda"] if cuda_available() else [])
    st.selectbox("Device", list(dict.fromkeys([*devices, ss.device])), key="device", help="auto: CUDA when present")
    st.caption("CUDA present: " + ("yes" if cuda_available() else "no — runs on the CPU"))
    _number("seed", "Seed")
    if _choice("objective", "Objective") == "lcb":
        _number("kappa", "κ", step=0.5)
    with st.expander("More options"):  # every DesignConfig field without a widget above, from its metadata
        for name in (n for n in FIELDS if n not in CUSTOM_WIDGETS):  # in the order DesignConfig lists them
            if name != "formation_energy_weight" or get_formation_energy_model() is not None:
                form.generic_widget(st, FIELDS[name], ss.get(name))
        form.generic_widget(st, form.config_field("keep_element_count"))


def _optimization(n_error: str | None) -> None:
    o1, o2, o3 = st.columns(3)
    with o1:
        _cell_sizes_and_loss(n_error)
    with o2:
        _schedule()
    with o3:
        _run_settings()


# -- the run -------------------------------------------------------------------------------------


def _job_on_screen() -> tuple[str | None, str | None]:
    """(id of the run the page shows, or None; a message when the address holds a bad id)."""
    job_id = st.query_params.get("job") or ss.get("job_id")
    if not job_id:
        return None, None
    try:
        runs.validate_run_id(job_id)
    except ValueError as exc:
        return None, str(exc)
    if st.query_params.get("job") != job_id:
        st.query_params["job"] = job_id  # back from another page: keep the run in the address (reload-safe)
    return job_id, None


def _run_meta() -> tuple[run_meta.RunMeta | None, str | None]:
    """The optional run name and tags: (RunMeta, None) or (None, message)."""
    st.text_input(
        "Run name (optional)", key="run_name", max_chars=run_meta.MAX_NAME, placeholder="e.g. hydrides N ≤ 12"
    )
    st.text_input("Tags (optional, comma-separated)", key="run_tags", placeholder="e.g. hydride, paper")
    try:
        return run_meta.RunMeta(run_meta.clean_name(ss.run_name), run_meta.parse_tags(ss.run_tags)), None
    except ValueError as exc:
        return None, str(exc)


def _start_run(registry, model, config, meta) -> str | None:
    """Start the run in the registry and show it; returns the message when it cannot start."""
    try:
        with st.spinner("Building the start compositions (the first run also loads the reference data)…"):
            job = registry.start(model, config, get_formation_energy_model())
        if meta is not None and (meta.name or meta.tags):
            run_meta.write_meta(job.run_dir, meta.name, meta.tags)
    except (ValueError, MemoryError, JobLimitError) as exc:  # InsufficientMemoryError says how much it needs
        return str(exc)
    except Exception as exc:  # never a traceback on the page; the message says what broke
        return f"The run could not start: {type(exc).__name__}: {exc}"
    ss.job_id = job.job_id
    st.query_params["job"] = job.job_id
    st.rerun()
    return None


def _run_controls(registry, model, config, errors: dict[str, str], busy: bool, url_error: str | None) -> None:
    """Name and tags, the Run button and the one message under it."""
    meta, meta_error = _run_meta()
    run_clicked = st.button("Run design", type="primary", disabled=busy or model is None, key="run_design")
    run_error = st.empty()
    if busy:
        st.caption("A run is on screen and still going: stop it, or wait for it, to start another.")
    if meta_error:
        errors = {**errors, "meta": meta_error}
    messages = [
        f"The run in the address bar is not valid: {url_error}" if url_error else None,
        errors.get("general"),
        meta_error,
    ]
    if run_clicked:
        messages.append("Fix the problems marked above first." if errors else _start_run(registry, model, config, meta))
    shown = [m for m in messages if m]
    if shown:
        run_error.error(shown[-1])


def _draft_note(slot, config, job, job_id: str | None) -> None:
    """Say in `slot` when the form no longer holds the settings of the run on screen."""
    run_design = job.config.to_dict() if job is not None else None
    if job_id and run_design is None:
        shown, _ = load_run(job_id)
        run_design = (shown.config.get("design") if shown is not None else None) or None
    draft = job_view.form_vs_run(config, run_design) if run_design else []
    if not draft:
        return
    with slot.container():
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


def _beside_run_button(job_id: str | None, busy: bool, live: bool) -> None:
    """The column beside the Run button: the live progress and charts while the run on screen goes."""
    if busy and live:
        live_panel(job_id)
    elif busy:
        folder_panel(job_id)
    elif job_id:
        st.caption("The results of the run on screen are below. A new run's progress and charts appear here.")
    else:
        st.caption(
            "A run's progress and live charts appear here, its results below. A run keeps going if you switch pages "
            "or reload; its folder is under Runs."
        )


def render() -> None:
    fresh = _prepare_session()
    registry = get_registry()
    if fresh:
        _open_run_from_url(registry)
    st.title("Design superconductor compositions")
    draft_slot = st.empty()  # says when the form no longer holds the settings of the run on screen
    model, model_error = get_model()
    if model_error:
        st.error(f"No Tc model available: {model_error}")
    config, errors = _form_config()
    st.subheader("1 · Elements")
    element_picker(errors.get("pins"))
    st.subheader("2 · Start compositions")
    _starts(errors.get("formulas"))
    st.subheader("3 · Optimization")
    _optimization(errors.get("n_range"))
    st.subheader("4 · Run")
    job_id, url_error = _job_on_screen()
    job = registry.get(job_id)
    snap = job.snapshot() if job is not None else None
    busy = job_view.run_status(snap, job_view.folder_info(job_id) if job_id and snap is None else None) == "running"
    controls, beside = st.columns([1, 2], gap="large")  # the live charts in view, next to the Run button
    with controls:
        _run_controls(registry, model, config, errors, busy, url_error)
    _draft_note(draft_slot, config, job, job_id)
    ss["_form_keep"] = {k: ss[k] for k in DESIGN_DEFAULTS if k in ss}
    with beside:
        _beside_run_button(job_id, busy, snap is not None)
    if job_id and not busy:
        results_panel(job_id)  # the whole width: the ranked table
