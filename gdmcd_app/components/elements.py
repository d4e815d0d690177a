"""The Design page's element picker: the clickable periodic table, the presets, the typed pins and
exclusions, the pin table, and the element caps beside it.

Session state holds the choices (`pins`, `excluded`); every change goes through gdmcd_app.callbacks.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from gdmcd_app import callbacks, data, form, inputs, ptable
from gdmcd_core.chem.elements import symbols

ss = st.session_state
COLOR_BY = {"block": "block", "frequency": "SuperCon frequency"}
FIELDS = {f.name: f for f in form.generic_fields()}


def _table_options() -> tuple[str, bool]:
    """(tile colouring, whether the 32-column table is shown)."""
    color_by = st.radio("Colour tiles by", list(COLOR_BY), key="color_by", format_func=COLOR_BY.get)
    long_form = st.toggle(
        "32 columns", key="long_form", help="the long-form table, as the model's composition image lays it out"
    )
    return color_by, long_form


def _periodic_table(color_by: str, long_form: bool) -> None:
    chart_key = f"ptable-{ss.ptable_ver}"
    fig = ptable.periodic_table(
        states=inputs.element_states(ss.pins, ss.excluded),
        color_by=color_by,
        values=data.supercon_element_counts() if color_by == "frequency" else None,
        layout="long" if long_form else "standard",
        notes=inputs.pin_notes(ss.pins),
    )
    st.plotly_chart(
        fig,
        key=chart_key,
        on_select=partial(callbacks.on_table_click, chart_key),
        selection_mode=("points",),
        config={"displayModeBar": False, "scrollZoom": False},
    )


def _presets() -> None:
    preset_cols = st.columns([1, 1.1, 1.5, 0.6])
    for col, (name, label) in zip(preset_cols, inputs.PRESETS.items(), strict=False):
        col.button(
            label,
            key=f"preset_{name}",
            on_click=callbacks.on_preset,
            args=(name,),
            help=inputs.PRESET_HELP[name],
            width="stretch",
        )
    preset_cols[-1].button("Clear all", key="clear_elements", on_click=callbacks.on_clear, width="stretch")
    if ss.get("preset_note"):
        st.caption(ss.pop("preset_note"))


def _typed_selections() -> None:
    """The typed alternative to clicking the table: pinned and excluded elements by symbol or name."""
    typed = (
        (
            "Pinned elements",
            "ms_pinned",
            callbacks.on_pinned_typed,
            "typed alternative to clicking the table: symbol or name",
        ),
        ("Excluded elements", "ms_excluded", callbacks.on_excluded_typed, None),
    )
    for col, (label, key, on_change, help_text) in zip(st.columns(2), typed, strict=True):
        col.multiselect(
            label,
            symbols(),
            key=key,
            on_change=on_change,
            format_func=inputs.element_label,
            filter_mode="contains",
            select_all=False,
            help=help_text,
        )


def _pin_table() -> None:
    if not ss.pins:
        st.caption("No pinned elements: click a tile once to pin it (twice to exclude it).")
        return
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


def _element_caps() -> None:
    st.number_input(
        "Max. distinct elements (0 = no cap)", *form.limits(FIELDS["max_elements"], ss.max_elements), key="max_elements"
    )
    st.checkbox("Exclude elements the model never saw", key="exclude_unseen", help="At, Rn, Fr, Es–Lr, Z ≥ 104")


def element_picker(pin_error: str | None) -> None:
    """The whole "Elements" section; `pin_error` is shown under the pin table."""
    # Widget state is dropped while another page is shown; re-derive the typed selections each run.
    ss.ms_pinned = [p["symbol"] for p in ss.pins]
    ss.ms_excluded = list(ss.excluded)
    table_col, side_col = st.columns([5, 1])
    with side_col:
        color_by, long_form = _table_options()
    with table_col:
        _periodic_table(color_by, long_form)
    _presets()
    _typed_selections()
    pin_col, opt_col = st.columns([2, 1])
    with pin_col:
        _pin_table()
        if pin_error:
            st.error(pin_error)
    with opt_col:
        _element_caps()
