"""The Design page's callbacks: Streamlit runs them before the script, so they may set widget values.

Each reads and writes only the session state (pins, exclusions, widget values) and the job registry.
"""

from __future__ import annotations

import streamlit as st

from gdmcd_app import data, form, inputs, models
from gdmcd_app.shared import get_registry
from gdmcd_core.chem.elements import symbols
from gdmcd_core.design.config.config import DesignConfig

ss = st.session_state


def set_pins(pins: list, excluded: list) -> None:
    ss.pins, ss.excluded = pins, excluded
    ss.ms_pinned = [p["symbol"] for p in pins]
    ss.ms_excluded = list(excluded)
    ss.ptable_ver += 1  # a fresh chart: a Plotly selection would otherwise stay selected
    ss.pin_ver += 1


def on_table_click(key: str) -> None:
    state = ss.get(key) or {}
    points = (state.get("selection") or {}).get("points") or []
    symbol = next((p.get("customdata") for p in points if p.get("customdata")), None)
    if isinstance(symbol, list):
        symbol = symbol[0] if symbol else None
    if symbol in symbols():
        set_pins(*inputs.cycle_element(ss.pins, ss.excluded, symbol))
    else:
        ss.ptable_ver += 1


def on_pinned_typed() -> None:
    set_pins(*inputs.set_pinned(ss.pins, ss.excluded, ss.ms_pinned))


def on_excluded_typed() -> None:
    set_pins(*inputs.set_excluded(ss.pins, ss.excluded, ss.ms_excluded))


def on_preset(name: str) -> None:
    pins, excluded, note = inputs.apply_preset(name, ss.pins, ss.excluded)
    set_pins(pins, excluded)
    if name == "hydride":
        ss.init_mode = "hydride"
        ss.n_range = (4, 24)
        ss.target_tc = 300.0
        path, model_note = models.hydride_checkpoint(data.available_checkpoints())
        if path is not None:
            ss.checkpoint = path  # the sidebar's "Tc model" choice
        note = f"{note}. {model_note}"
    ss.preset_note = note


def on_pin_edit(key: str) -> None:
    edits = (ss.get(key) or {}).get("edited_rows", {})
    pins = [dict(p) for p in ss.pins]
    for i, change in edits.items():
        i = int(i)
        if 0 <= i < len(pins):
            pins[i].update({k: v for k, v in change.items() if k in ("fraction", "mode")})
    ss.pins = pins
    ss.pin_ver += 1


def on_clear() -> None:
    set_pins([], [])


def on_stop(job_id: str) -> None:
    get_registry().stop(job_id)


def on_new_run() -> None:
    ss.pop("job_id", None)
    st.query_params.pop("job", None)


def on_reuse(cfg_dict: dict) -> None:
    vals = form.form_from_config(DesignConfig.from_dict(cfg_dict))
    set_pins(vals.pop("pins"), vals.pop("excluded"))
    if not vals["init_formulas"]:
        vals.pop("init_formulas")
    ss.update(vals)
