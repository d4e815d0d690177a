"""The Design form ⇄ DesignConfig, derived from the dataclass's fields.

Widget keys in the session are DesignConfig field names, plus the keys of the fields with widgets of their
own: "pins" (rows {symbol, fraction, mode}), "excluded" (symbols), "init_formulas" (text, one formula per
line), "n_range" ((lo, hi) of the slider), "n_values" (text: an explicit set of N, "" for the range),
"exclude_unseen", "keep_element_count", and "pin_mode" (kept without a widget: every pin row names its
mode). A new DesignConfig field needs no edit here: `generic_widget` offers it under "More options" from
its type and metadata (label, help, range, choices), and `build_design_config` / `form_from_config` carry
it both ways.

The round trip is exact: `build_design_config(form_from_config(cfg))` gives back `canonical_config(cfg)`,
which is cfg itself up to three spellings of the same run: a pin without a mode of its own gets the
run's pin_mode, exclusion words ("radioactive") become their symbols (the periodic table shows
symbols), and start formulas are kept for init_mode "formulas" only (no other start reads them).
Nothing is clamped or rounded: a widget widens its range to hold a value set elsewhere (the CLI).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import Field
from typing import Any

from gdmcd_app.inputs import check_constraints, parse_formula_lines, parse_n_values, validate_n_range, validate_pins
from gdmcd_core.design.config.config import DesignConfig, config_fields, field_label
from gdmcd_core.design.objective.constraints import expand_exclude

_DEFAULTS = {f.name: f.default for f in config_fields(generic_only=False)}
# Interactive sizes for a CPU (the CLI keeps the paper-sized defaults of DesignConfig).
FORM_OVERRIDES: dict[str, Any] = {"n_candidates": 64, "steps2": 500, "steps3": 500}
SPECIAL_DEFAULTS: dict[str, Any] = {
    "pins": [],
    "excluded": [],
    "init_formulas": "YBa2Cu3O7\nHgBa2Ca2Cu3O8",
    "n_range": (_DEFAULTS["n_min"], _DEFAULTS["n_max"]),
    "n_values": "",
    "exclude_unseen": _DEFAULTS["exclude_unseen"],
    "keep_element_count": _DEFAULTS["keep_element_count"],
    "pin_mode": _DEFAULTS["pin_mode"],
}
N_SLIDER_MIN, N_SLIDER_MAX = 1, 60  # allowed cell sizes N offered by the N-range slider
LR_OPTIONS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)  # the learning-rate slider's stops


def generic_fields() -> list[Field]:
    return config_fields(generic_only=True)


def config_field(name: str) -> Field:
    """A DesignConfig field by name, with a widget of its own or not."""
    return next(f for f in config_fields(generic_only=False) if f.name == name)


def form_defaults() -> dict[str, Any]:
    """Every widget's starting value."""
    values = {f.name: FORM_OVERRIDES.get(f.name, f.default) for f in generic_fields()}
    return {**values, **{k: (list(v) if isinstance(v, list) else v) for k, v in SPECIAL_DEFAULTS.items()}}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def limits(f: Field, value: Any = None) -> tuple[Any, Any]:
    """(lo, hi) a number widget offers for a field (None: unbounded), widened to hold `value`."""
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if _is_number(value):
        lo = lo if lo is None else type(lo)(min(lo, value))
        hi = hi if hi is None else type(hi)(max(hi, value))
    return lo, hi


def lr_options(lr: float) -> tuple[float, ...]:
    """The learning-rate slider's stops, with `lr` among them."""
    return tuple(sorted({*LR_OPTIONS, float(lr)}))


def n_slider_max(n_range: tuple[int, int]) -> int:
    """The N-range slider's upper end, high enough for `n_range`."""
    return max(N_SLIDER_MAX, *(int(n) for n in n_range))


def choice_labels(f: Field) -> dict[Any, str]:
    """{value: label} of a field's choices, in the order a radio or select box offers them."""
    labels = f.metadata.get("choice_labels")
    return dict(labels) if labels else {c: str(c) for c in f.metadata.get("choices") or ()}


def _pins_and_exclusions(values: Mapping[str, Any], max_elements: int) -> tuple[list, tuple[str, ...], str | None]:
    pins, pin_errors = validate_pins(values.get("pins", ()))
    excluded = tuple(values.get("excluded", ()))
    if pin_errors:
        return pins, excluded, "; ".join(pin_errors)
    return pins, excluded, check_constraints(pins, excluded, max_elements)


def _start_formulas(values: Mapping[str, Any], init_mode: Any) -> tuple[list[str], str | None]:
    if init_mode != "formulas":
        return [], None
    formulas, errors = parse_formula_lines(values.get("init_formulas", ""))
    if errors:
        return formulas, "; ".join(errors)
    if not formulas:
        return formulas, "type at least one start formula (one per line), or pick another start"
    return formulas, None


def _cell_sizes(values: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    n_lo, n_hi = values.get("n_range", SPECIAL_DEFAULTS["n_range"])
    n_values, error = parse_n_values(values.get("n_values", ""))
    if error is None and not n_values:
        error = validate_n_range(n_lo, n_hi)
    return {"n_min": int(n_lo), "n_max": int(n_hi), "n_values": n_values}, error


def build_design_config(values: Mapping[str, Any]) -> tuple[DesignConfig | None, dict[str, str]]:
    """Widget values -> (DesignConfig, {}) or (None, {widget: message}).

    Error keys: "pins" (pin table and exclusions), "formulas", "n_range", "general".
    """
    generic = {f.name: values[f.name] for f in generic_fields() if f.name in values}
    pins, excluded, pin_error = _pins_and_exclusions(values, int(generic.get("max_elements", 0)))
    formulas, formula_error = _start_formulas(values, generic.get("init_mode"))
    cell_sizes, n_error = _cell_sizes(values)
    found = {"pins": pin_error, "formulas": formula_error, "n_range": n_error}
    errors = {k: msg for k, msg in found.items() if msg}
    if errors:
        return None, errors
    special = {k: values.get(k, SPECIAL_DEFAULTS[k]) for k in ("exclude_unseen", "keep_element_count", "pin_mode")}
    try:
        cfg = DesignConfig(
            **{f.name: type(f.default)(generic[f.name]) for f in generic_fields() if f.name in generic},
            **cell_sizes,
            init_formulas=tuple(formulas),
            pins=tuple(pins),
            exclude=excluded,
            exclude_unseen=bool(special["exclude_unseen"]),
            keep_element_count=bool(special["keep_element_count"]),
            pin_mode=str(special["pin_mode"]),
        )
    except (ValueError, TypeError) as exc:
        key = "n_range" if "cell size N" in str(exc) or "N range" in str(exc) else "general"
        return None, {key: str(exc)}
    return cfg, {}


def canonical_config(cfg: DesignConfig) -> DesignConfig:
    """The same run as the form writes it: pins with their modes, exclusions as symbols, start formulas
    only for init_mode "formulas" (see the module docstring)."""
    return cfg.replace(
        pins=tuple(p.resolved(cfg.pin_mode) for p in cfg.pins),
        exclude=expand_exclude(cfg.exclude),
        init_formulas=cfg.init_formulas if cfg.init_mode == "formulas" else (),
    )


def _widget_value(f: Field, v: Any) -> Any:
    """A number as its field's type (a TOML `300` for a float field shows as 300.0)."""
    return type(f.default)(v) if _is_number(v) and _is_number(f.default) else v


def form_from_config(cfg: DesignConfig) -> dict[str, Any]:
    """A run's DesignConfig -> widget values, so that a run made elsewhere (the CLI) is shown as it is."""
    values = {f.name: _widget_value(f, getattr(cfg, f.name)) for f in generic_fields()}
    return {
        **values,
        "pins": [{"symbol": p.symbol, "fraction": p.fraction, "mode": p.mode or cfg.pin_mode} for p in cfg.pins],
        "excluded": list(expand_exclude(cfg.exclude)),
        "init_formulas": "\n".join(cfg.init_formulas),
        "n_range": (cfg.n_min, cfg.n_max),
        "n_values": ", ".join(str(n) for n in cfg.n_values),
        "exclude_unseen": bool(cfg.exclude_unseen),
        "keep_element_count": bool(cfg.keep_element_count),
        "pin_mode": cfg.pin_mode,
    }


def generic_widget(container: Any, f: Field, value: Any = None) -> None:
    """The widget of one field, chosen by its type and metadata; its key is the field name, `value` its
    current value (a number widget's range holds it)."""
    label, help_text = field_label(f), f.metadata.get("help")
    if isinstance(f.default, bool):
        container.checkbox(label, key=f.name, help=help_text)
    elif f.metadata.get("choices"):
        labels = choice_labels(f)
        container.selectbox(label, list(labels), key=f.name, help=help_text, format_func=labels.get)
    elif isinstance(f.default, (int, float)):
        lo, hi = limits(f, value)
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
