"""The Design form ⇄ DesignConfig, derived from the dataclass's fields.

Widget keys in the session are DesignConfig field names, plus five keys for the fields with widgets of
their own: "pins" (rows {symbol, fraction, mode}), "excluded" (symbols), "init_formulas" (text, one formula
per line), "n_range" ((lo, hi) of the slider) and "exclude_unseen". A new DesignConfig field needs no edit
here: `generic_widget` offers it under "More options" from its type and metadata (label, help, range,
choices), and `build_design_config` / `form_from_config` carry it both ways.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import Field
from typing import Any

from gdmcd_app.state import check_constraints, parse_formula_lines, validate_n_range, validate_pins
from gdmcd_core.design.config import DesignConfig, config_fields, field_label
from gdmcd_core.design.constraints import expand_exclude

# Interactive sizes for a CPU (the CLI keeps the paper-sized defaults of DesignConfig).
FORM_OVERRIDES: dict[str, Any] = {"n_candidates": 64, "steps2": 500, "steps3": 500}
SPECIAL_DEFAULTS: dict[str, Any] = {
    "pins": [],
    "excluded": [],
    "init_formulas": "YBa2Cu3O7\nHgBa2Ca2Cu3O8",
    "n_range": (4, 24),
    "exclude_unseen": True,
}
N_SLIDER_MIN, N_SLIDER_MAX = 1, 60  # allowed cell sizes N offered by the N-range slider
LR_OPTIONS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)  # the learning-rate slider's stops


def generic_fields() -> list[Field]:
    return config_fields(generic_only=True)


def form_defaults() -> dict[str, Any]:
    """Every widget's starting value."""
    values = {f.name: FORM_OVERRIDES.get(f.name, f.default) for f in generic_fields()}
    return {**values, **{k: (list(v) if isinstance(v, list) else v) for k, v in SPECIAL_DEFAULTS.items()}}


def limits(f: Field) -> tuple[Any, Any]:
    """(lo, hi) a number widget offers for a field (None: unbounded)."""
    return f.metadata.get("lo"), f.metadata.get("hi")


def build_design_config(values: Mapping[str, Any]) -> tuple[DesignConfig | None, dict[str, str]]:
    """Widget values -> (DesignConfig, {}) or (None, {widget: message}).

    Error keys: "pins" (pin table and exclusions), "formulas", "n_range", "general".
    """
    errors: dict[str, str] = {}
    pins, pin_errors = validate_pins(values.get("pins", ()))
    excluded = tuple(values.get("excluded", ()))
    generic = {f.name: values[f.name] for f in generic_fields() if f.name in values}
    if pin_errors:
        errors["pins"] = "; ".join(pin_errors)
    elif msg := check_constraints(pins, excluded, int(generic.get("max_elements", 0))):
        errors["pins"] = msg
    formulas: list[str] = []
    if generic.get("init_mode") == "formulas":
        formulas, f_errors = parse_formula_lines(values.get("init_formulas", ""))
        if f_errors:
            errors["formulas"] = "; ".join(f_errors)
        elif not formulas:
            errors["formulas"] = "type at least one start formula (one per line), or pick another start"
    n_lo, n_hi = values.get("n_range", SPECIAL_DEFAULTS["n_range"])
    if msg := validate_n_range(n_lo, n_hi):
        errors["n_range"] = msg
    if errors:
        return None, errors
    try:
        cfg = DesignConfig(
            **{f.name: type(f.default)(generic[f.name]) for f in generic_fields() if f.name in generic},
            init_formulas=tuple(formulas),
            pins=tuple(pins),
            exclude=excluded,
            exclude_unseen=bool(values.get("exclude_unseen", True)),
            n_min=int(n_lo),
            n_max=int(n_hi),
        )
    except (ValueError, TypeError) as exc:
        key = "n_range" if "cell size N" in str(exc) or "N range" in str(exc) else "general"
        return None, {key: str(exc)}
    return cfg, {}


def _clamp(f: Field, v: Any) -> Any:
    lo, hi = limits(f)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    out = min(max(v, lo if lo is not None else v), hi if hi is not None else v)
    return type(f.default)(out)


def form_from_config(cfg: DesignConfig) -> dict[str, Any]:
    """A run's DesignConfig -> widget values, clamped to the widgets' ranges (the learning rate snapped to the
    nearest offered stop), so that a run made elsewhere (the CLI) can always be shown."""
    values = {f.name: _clamp(f, getattr(cfg, f.name)) for f in generic_fields()}
    values["lr"] = min(LR_OPTIONS, key=lambda v: abs(math.log(v / cfg.lr)))
    ns = cfg.ns
    lo_n = min(max(min(ns), N_SLIDER_MIN), N_SLIDER_MAX)
    hi_n = min(max(max(ns), lo_n), N_SLIDER_MAX)
    return {
        **values,
        "pins": [{"symbol": p.symbol, "fraction": p.fraction, "mode": p.mode or cfg.pin_mode} for p in cfg.pins],
        "excluded": list(expand_exclude(cfg.exclude)),
        "init_formulas": "\n".join(cfg.init_formulas),
        "n_range": (lo_n, hi_n),
        "exclude_unseen": bool(cfg.exclude_unseen),
    }


def generic_widget(container: Any, f: Field) -> None:
    """The widget of one field, chosen by its type and metadata; its key is the field name."""
    label, help_text = field_label(f), f.metadata.get("help")
    choices = f.metadata.get("choices")
    if isinstance(f.default, bool):
        container.checkbox(label, key=f.name, help=help_text)
    elif choices:
        container.selectbox(label, list(choices), key=f.name, help=help_text)
    elif isinstance(f.default, (int, float)):
        lo, hi = limits(f)
        container.number_input(label, min_value=lo, max_value=hi, key=f.name, help=help_text)
    else:
        container.text_input(label, key=f.name, help=help_text)


def restore_dropped(
    session: MutableMapping[str, Any], kept: Mapping[str, Any], keys: Iterable[str], entering: bool = False
) -> list[str]:
    """Put back the form values Streamlit dropped or reset while another page was shown (a widget's
    value goes when the widget is not drawn), from `kept`, the copy the Design page took after its
    last run. A value still in the session is left alone unless `entering` (the first run of the page
    after another page: no widget of this page can have been changed by the user in it). Returns the
    keys restored."""
    back = [k for k in keys if k in kept and (k not in session or (entering and session[k] != kept[k]))]
    for k in back:
        session[k] = kept[k]
    return back
