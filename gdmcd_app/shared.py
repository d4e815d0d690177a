"""Streamlit glue shared by the pages: the cached model, the job registry, cached run folders, the Design
form's session values.

Only caching and session state live here (no widgets: those are in components/ and views/); what is
computed comes from gdmcd_core.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from gdmcd_app import data
from gdmcd_app.form import form_defaults
from gdmcd_app.jobs import JobRegistry, warm_up
from gdmcd_core.data import paths
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs.meta import META_FILE
from gdmcd_core.model.checkpoint import CheckpointError, load_checkpoint

# Design-page widget values and their defaults: the form's (DesignConfig fields, sized for a CPU) plus the page's own.
DESIGN_DEFAULTS = {
    **form_defaults(),
    **{"ptable_ver": 0, "pin_ver": 0, "color_by": "block", "long_form": False, "run_name": "", "run_tags": ""},
}


def persist_widget_state() -> None:
    """Keep the Design page's widget values while another page is shown (Streamlit drops the
    state of widgets that are not drawn; re-assigning a key makes it plain session state)."""
    for k in DESIGN_DEFAULTS:
        if k in st.session_state:
            st.session_state[k] = st.session_state[k]


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _device() -> str:
    """Where this server's models live: CUDA when present (a run's config.device may move its copy)."""
    from gdmcd_core.util import resolve_device

    return str(resolve_device("auto"))


@st.cache_resource(show_spinner="Loading the Tc model…", max_entries=4)
def _load_model(path: str, device: str):
    # load_checkpoint returns the model in eval mode with requires_grad_(False): concurrent design
    # runs backpropagate into their own compositions only, never into these shared weights.
    data.configure_torch_threads()
    return load_checkpoint(path, device)


def checkpoint_path() -> Path:
    """The checkpoint this session uses (sidebar choice, else $GDMCD_CHECKPOINT / the default)."""
    chosen = st.session_state.get("checkpoint")
    options = [str(p) for p in data.available_checkpoints()]
    return Path(chosen) if chosen in options else Path(options[0])


def get_model():
    """(model, None) or (None, error message). One copy per process and device, shared."""
    try:
        return _load_model(str(checkpoint_path()), _device()), None
    except CheckpointError as exc:
        return None, str(exc)


@st.cache_resource(show_spinner=False)
def _beside(path: str, kind: str):
    """What is saved beside the checkpoint at `path` for its data and split: its trees (kind "trees",
    model/trees.py) or its P(superconductor) classifier (kind "classifier", model/sc_classifier.py); None if absent."""
    from gdmcd_core.model.checkpoint import read_card
    from gdmcd_core.model.sc_classifier import classifier_beside
    from gdmcd_core.model.trees import trees_beside

    load = {"trees": trees_beside, "classifier": classifier_beside}[kind]
    return load(path, read_card(path))


def _beside_active(kind: str):
    """(`_beside` the active checkpoint or None, None) or (None, error message); loaded once per checkpoint."""
    try:
        return _beside(str(checkpoint_path()), kind), None
    except CheckpointError as exc:
        return None, str(exc)


def get_trees():
    """(trees beside the active checkpoint or None, None) or (None, error message); loaded once per checkpoint."""
    return _beside_active("trees")


def get_classifier():
    """(the P(superconductor) classifier beside the active checkpoint or None, None) or (None, error message);
    loaded once per checkpoint (model/sc_classifier.py)."""
    return _beside_active("classifier")


@st.cache_resource(show_spinner="Reading the model's training set…", max_entries=4)
def _training_set(path: str, data_dir: str):
    from gdmcd_core.model.checkpoint import read_card
    from gdmcd_core.training.evaluate import training_reference_for

    return training_reference_for(read_card(path), data_dir or None)


def get_training_set():
    """(the active checkpoint's training compositions or None, why not): what Predict checks formulas against,
    as `gdmcd predict` does; loaded once per checkpoint and data folder."""
    try:
        return _training_set(str(checkpoint_path()), os.environ.get(paths.ENV_VAR, ""))
    except CheckpointError as exc:
        return None, str(exc)


def get_reference():
    """(the reference data design runs compare against: SuperCon + COD of the data folder, loaded once per
    process (session.open_reference), None) or (None, why not, in one line)."""
    from gdmcd_core.design.session import DesignOpenError, open_reference

    try:
        return open_reference(), None
    except DesignOpenError as exc:
        return None, str(exc)


@st.cache_resource(show_spinner=False)
def _formation_energy_model(device: str):
    from gdmcd_core.model.formation_energy import load_formation_energy_model

    try:
        return load_formation_energy_model(device=device)
    except (CheckpointError, OSError):
        return None


def get_formation_energy_model():
    """The formation-energy surrogate (checkpoints/formation_energy.pt), or None when absent or unreadable."""
    return _formation_energy_model(_device())


@st.cache_resource(show_spinner=False)
def _registry(root: str) -> JobRegistry:
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()  # once per server process
    return JobRegistry(root)


def get_registry() -> JobRegistry:
    """The process-wide job registry for this runs folder ($GDMCD_RUNS_DIR or ./runs). A bad
    $GDMCD_MAX_JOBS stops the page with its one-line message (never a traceback)."""
    try:
        return _registry(str(runs.runs_root()))
    except ValueError as exc:
        st.error(f"The server setting is invalid: {exc}")
        st.stop()
        raise  # st.stop() raises; keeps type checkers content


def registry_or_none() -> JobRegistry | None:
    """The registry, or None when a server setting is invalid (for what only shows status: the sidebar,
    listings; what starts or stops a run uses get_registry, which says what is wrong)."""
    try:
        return _registry(str(runs.runs_root()))
    except ValueError:
        return None


def csv_download_bytes(table) -> bytes:
    """A table as CSV bytes for a download button, with spreadsheet formulas neutralized (util_io.csv_bytes)."""
    from gdmcd_core.util_io import csv_bytes

    return csv_bytes(table)


def _stamp(path: Path) -> tuple[float, ...]:
    names = (runs.STATUS_FILE, runs.CANDIDATES_FILE, runs.TRAJECTORY_FILE, runs.CONFIG_FILE, runs.STATE_FILE, META_FILE)
    stamp = tuple((path / n).stat().st_mtime if (path / n).is_file() else 0.0 for n in names)
    lock = path / "run.lock"  # a writer that died changes the status shown without touching a file
    return (*stamp, float(lock.is_file() and runs.is_alive(runs.read_lock(path))))


# The candidates.csv columns every page reads: a table without one is left out and named among the run's problems.
CANDIDATE_KEY_COLUMNS = ("integer_formula", "integer_tc_k")
UNUSABLE_CANDIDATES = "its candidates cannot be shown"  # ends that problem's line (the Runs page shows it as an error)


def with_usable_candidates(run: runs.LoadedRun) -> runs.LoadedRun:
    """The run, or, when its candidates.csv lacks a column of CANDIDATE_KEY_COLUMNS (or holds text in
    integer_tc_k), the run without that table and with a problem naming the file and the column (in place of
    the bare KeyError line the run list gives)."""
    table = run.candidates
    if table is None:
        return run
    missing = [c for c in CANDIDATE_KEY_COLUMNS if c not in table.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        why = f"has no column{'s' if len(missing) > 1 else ''} {names}"
    elif not pd.api.types.is_numeric_dtype(table["integer_tc_k"]):
        why = "has text in its column 'integer_tc_k' (Tc in K)"
    else:
        return run
    problem = f"{run.info.path / runs.CANDIDATES_FILE} {why}: {UNUSABLE_CANDIDATES}"
    kept = tuple(p for p in run.problems if not p.startswith(f"{runs.CANDIDATES_FILE}: "))
    return dataclasses.replace(run, candidates=None, problems=(*kept, problem))


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_run(root: str, run_id: str, stamp: tuple[float, ...]) -> runs.LoadedRun:
    return with_usable_candidates(runs.load_run(run_id, root))


def load_run(run_id: str) -> tuple[runs.LoadedRun | None, str | None]:
    """(run, None) or (None, message). The id is validated; it never leaves the runs folder."""
    root = runs.runs_root()
    try:
        path = runs.run_path(run_id, root)
        return _load_run(str(root), run_id, _stamp(path)), None
    except ValueError as exc:
        return None, str(exc)
    except FileNotFoundError:
        return None, f"no run {run_id!r} in {root}"
    except OSError as exc:  # an unreadable folder (permissions): one line, not a traceback
        return None, f"run {run_id!r} cannot be read: {exc}"


def load_run_or_stop(run_id: str) -> runs.LoadedRun:
    """The run (`load_run`), else its one-line error and st.stop(): for a page that has nothing to show without it."""
    run, err = load_run(run_id)
    if err:
        st.error(err)
        st.stop()
    return run


def run_options() -> dict[str, str]:
    """{run id: label} of every run folder, newest first."""
    out = {}
    for r in runs.list_runs():
        best = f" · best {r.best_integer_formula} {r.best_integer_tc_k:.1f} K" if r.best_integer_formula else ""
        why = f" · {r.problem[:80]}" if r.status == runs.UNREADABLE else ""
        out[r.run_id] = f"{r.run_id} · {r.status}{best}{why}"
    return out


def run_options_or_stop() -> dict[str, str]:
    """`run_options`, else a note that there are no runs yet and st.stop(): for a page that shows one run."""
    options = run_options()
    if not options:
        st.info("No runs yet — start one on the Design page.")
        st.stop()
    return options
