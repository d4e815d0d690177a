"""Pure state helpers behind the web app's widgets (no Streamlit, no torch): testable alone.

The Design page keeps two plain lists in the session: `pins` (rows {"symbol", "fraction",
"mode"}) and `excluded` (symbols). Everything the page does to them goes through here:

* `cycle_element` — a click on the periodic table moves an element free -> pinned -> excluded
  -> free;
* `apply_preset` — "Hydride search (H >= 0.5)", "Exclude radioactive", "Exclude toxic";
* `validate_pins` / `check_constraints` — the pin table and exclusions as the engine will see
  them, with messages that name the bad row;
* `build_design_config` — the form's plain values -> a validated `DesignConfig`, or errors keyed
  by the widget they belong to, so each message can sit next to its widget.

Formatting helpers (`pretty_formula`) and the predict-page input readers (`parse_formula_lines`,
`read_formula_csv`) live here too: they turn what a user typed or uploaded into data, never
into code or paths.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gdmcd_core.chem.composition import FormulaError, parse_formula
from gdmcd_core.chem.elements import TOXIC, index_of, radioactive_symbols
from gdmcd_core.design.constraints import PIN_MODES, SUM_TOL, Constraints, Pin, expand_exclude

FREE, PINNED, EXCLUDED = "free", "pinned", "excluded"
ELEMENT_STATES = (FREE, PINNED, EXCLUDED)
# Fraction given to a newly pinned element: H starts at the paper's hydride value, others small.
DEFAULT_PIN_FRACTION = 0.1
DEFAULT_PIN_FRACTIONS = {"H": 0.5}
DEFAULT_PIN_MODE = "at-least"
PIN_MODE_LABELS = {"at-least": "at least", "exact": "exactly"}

PRESETS = {
    "hydride": "Hydride search (H ≥ 0.5)",
    "radioactive": "Exclude radioactive (Z > 83)",
    "toxic": "Exclude toxic (Hg, Tl, Cd, As, Pb, Be)",
}
PRESET_HELP = {
    "hydride": "pin H at an atomic fraction of at least 0.5, start from the hydride grid, N 4–24, target 300 K (paper S5)",
    "radioactive": "exclude Po and every heavier element (Z ≥ 84) plus Tc and Pm, which have no stable isotope",
    "toxic": f"exclude {', '.join(TOXIC)}",
}
# Uploads on the Predict page: bytes and rows accepted (the file is parsed as text data only).
MAX_UPLOAD_BYTES = 1_000_000
MAX_PREDICT_ROWS = 10_000
# Allowed cell sizes N offered by the N-range slider.
N_SLIDER_MIN, N_SLIDER_MAX = 1, 60
# (min, max) of the Design page's number widgets; values loaded from a run are clamped to these.
LIMITS: dict[str, tuple[float, float]] = {
    "n_candidates": (1, 8192),
    "steps2": (0, 100_000),
    "steps3": (0, 100_000),
    "init_min_tc": (0.0, 300.0),
    "target_tc": (0.0, 1000.0),
    "alpha_max": (0.0, 1e6),
    "max_elements": (0, 20),
    "seed": (0, 2**31 - 1),
    "kappa": (0.0, 10.0),
    "fe_weight": (0.0, 10_000.0),
}
LR_OPTIONS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)

_SUBSCRIPT = str.maketrans("0123456789.", "₀₁₂₃₄₅₆₇₈₉.")


# -- element states ----------------------------------------------------------------------------


def next_state(state: str) -> str:
    """free -> pinned -> excluded -> free."""
    if state not in ELEMENT_STATES:
        raise ValueError(f"element state must be one of {ELEMENT_STATES}, got {state!r}")
    return ELEMENT_STATES[(ELEMENT_STATES.index(state) + 1) % len(ELEMENT_STATES)]


def element_label(symbol: str) -> str:
    """'Fe · Iron' (what the typed element pickers show)."""
    from gdmcd_core.chem.elements import info

    return f"{symbol} · {info(symbol).name}"


def pin_row(symbol: str, fraction: float | None = None, mode: str = DEFAULT_PIN_MODE) -> dict[str, Any]:
    """A pin-table row for `symbol` (validated symbol; fraction defaults per element)."""
    index_of(symbol)
    f = DEFAULT_PIN_FRACTIONS.get(symbol, DEFAULT_PIN_FRACTION) if fraction is None else float(fraction)
    return {"symbol": symbol, "fraction": f, "mode": mode}


def element_states(pins: Iterable[Mapping[str, Any]], excluded: Iterable[str]) -> dict[str, str]:
    """{symbol: "pinned" | "excluded"} for the elements that are not free."""
    out = {str(s): EXCLUDED for s in excluded}
    out.update({str(p["symbol"]): PINNED for p in pins})
    return out


def state_of(symbol: str, pins: Iterable[Mapping[str, Any]], excluded: Iterable[str]) -> str:
    return element_states(pins, excluded).get(symbol, FREE)


def cycle_element(
    pins: list[dict[str, Any]], excluded: list[str], symbol: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """One click on `symbol`: free -> pinned -> excluded -> free. Returns new lists (inputs untouched)."""
    state = state_of(symbol, pins, excluded)
    new_pins = [dict(p) for p in pins if p["symbol"] != symbol]
    new_excluded = [s for s in excluded if s != symbol]
    nxt = next_state(state)
    if nxt == PINNED:
        new_pins.append(pin_row(symbol))
    elif nxt == EXCLUDED:
        new_excluded.append(symbol)
    return new_pins, _z_sorted(new_excluded)


def set_pinned(
    pins: list[dict[str, Any]], excluded: list[str], symbols_: Iterable[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The pinned set becomes `symbols_` (the typed multiselect): keeps fractions of kept pins, new
    pins get defaults, and an element newly pinned leaves the excluded list."""
    wanted = list(dict.fromkeys(symbols_))
    old = {p["symbol"]: p for p in pins}
    new_pins = [dict(old[s]) if s in old else pin_row(s) for s in wanted]
    return new_pins, [s for s in excluded if s not in wanted]


def set_excluded(
    pins: list[dict[str, Any]], excluded: list[str], symbols_: Iterable[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The excluded set becomes `symbols_`; an element newly excluded leaves the pin table."""
    wanted = _z_sorted(dict.fromkeys(symbols_))
    return [dict(p) for p in pins if p["symbol"] not in wanted], wanted


def apply_preset(
    name: str, pins: list[dict[str, Any]], excluded: list[str]
) -> tuple[list[dict[str, Any]], list[str], str]:
    """Apply a preset (a key of PRESETS). Returns (pins, excluded, note for the user).

    Presets never exclude an element the user pinned (the note says which were kept).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    pins = [dict(p) for p in pins]
    if name == "hydride":
        pins = [p for p in pins if p["symbol"] != "H"] + [pin_row("H", 0.5, "at-least")]
        return pins, [s for s in excluded if s != "H"], "H pinned at ≥ 0.5 (paper S5 hydride search)"
    group = radioactive_symbols() if name == "radioactive" else TOXIC
    pinned = {p["symbol"] for p in pins}
    kept = [s for s in group if s in pinned]
    new = _z_sorted(set(excluded) | (set(group) - pinned))
    note = f"excluded {len(set(group) - pinned)} elements"
    if kept:
        note += f"; kept {', '.join(kept)} pinned (unpin to exclude)"
    return pins, new, note


def _z_sorted(syms: Iterable[str]) -> list[str]:
    return sorted(set(syms), key=index_of)


# -- validation ------------------------------------------------------------------------------


def validate_pins(rows: Iterable[Mapping[str, Any]]) -> tuple[list[Pin], list[str]]:
    """Pin-table rows -> (Pins, error messages naming the row). Empty rows are skipped."""
    pins: list[Pin] = []
    errors: list[str] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, start=1):
        sym = str(row.get("symbol") or "").strip()
        raw_f = row.get("fraction")
        mode = str(row.get("mode") or DEFAULT_PIN_MODE)
        if not sym:
            continue
        where = f"pin row {i} ({sym})"
        try:
            index_of(sym)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            continue
        if sym in seen:
            errors.append(f"{where}: {sym} is pinned twice; keep one row per element")
            continue
        seen.add(sym)
        try:
            f = float(raw_f)
        except (TypeError, ValueError):
            errors.append(f"{where}: fraction {raw_f!r} is not a number; give a value in (0, 1]")
            continue
        if not math.isfinite(f) or not 0.0 < f <= 1.0:
            errors.append(f"{where}: fraction {f:g} must be in (0, 1] (atoms per atom)")
            continue
        if mode not in PIN_MODES:
            errors.append(f"{where}: mode {mode!r} must be one of {', '.join(PIN_MODES)}")
            continue
        pins.append(Pin(sym, f, mode))
    total = sum(p.fraction for p in pins)
    if not errors and total > 1.0 + SUM_TOL:
        errors.append(
            f"pinned fractions sum to {total:g} > 1 ({', '.join(str(p) for p in pins)}); they must sum to at most 1"
        )
    return pins, errors


def check_constraints(pins: list[Pin], excluded: Iterable[str], max_elements: int = 0) -> str | None:
    """The engine's own constraint check (pins vs exclusions, sums, caps); None if fine."""
    try:
        Constraints.build(pins, tuple(excluded), pin_mode=DEFAULT_PIN_MODE, max_elements=max_elements)
    except ValueError as exc:
        return str(exc)
    return None


def validate_n_range(n_min: int, n_max: int) -> str | None:
    if int(n_min) < 1:
        return f"the smallest cell size N must be >= 1, got {n_min}"
    if int(n_min) > int(n_max):
        return f"empty N range {n_min}-{n_max}: the lower end must not exceed the upper end"
    return None


def parse_formula_lines(text: str) -> tuple[list[str], list[str]]:
    """Formulas typed one per line (commas also separate). Returns (formulas, errors naming the line)."""
    formulas, errors = [], []
    for i, line in enumerate((text or "").splitlines(), start=1):
        for item in line.split(","):
            f = item.strip()
            if not f:
                continue
            try:
                parse_formula(f)
            except FormulaError as exc:
                errors.append(f"line {i}: {exc}")
            else:
                formulas.append(f)
    return formulas, errors


# -- the design form -> DesignConfig ---------------------------------------------------------


@dataclass(frozen=True)
class DesignForm:
    """The Design page's widget values, as plain Python values."""

    pins: tuple[Mapping[str, Any], ...] = ()
    excluded: tuple[str, ...] = ()
    exclude_unseen: bool = True
    max_elements: int = 0
    init_mode: str = "mixed"
    init_formulas_text: str = ""
    init_min_tc: float = 20.0
    n_candidates: int = 64
    n_min: int = 4
    n_max: int = 24
    integer_loss: str = "int"
    alpha_max: float = 1000.0
    steps2: int = 500
    steps3: int = 500
    lr: float = 0.01
    target_tc: float = 300.0
    seed: int = 0
    device: str = "auto"
    objective: str = "mean"
    kappa: float = 1.0
    constraint_method: str = "project"
    formation_energy_weight: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)


def build_design_config(form: DesignForm) -> tuple[Any | None, dict[str, str]]:
    """Form values -> (DesignConfig, {}) or (None, {widget: message}).

    Widget keys: "pins" (pin table and exclusions), "formulas", "n_range", "general".
    """
    from gdmcd_core.design.config import DesignConfig

    errors: dict[str, str] = {}
    pins, pin_errors = validate_pins(form.pins)
    if pin_errors:
        errors["pins"] = "; ".join(pin_errors)
    else:
        msg = check_constraints(pins, form.excluded, form.max_elements)
        if msg:
            errors["pins"] = msg
    formulas: list[str] = []
    if form.init_mode == "formulas":
        formulas, f_errors = parse_formula_lines(form.init_formulas_text)
        if f_errors:
            errors["formulas"] = "; ".join(f_errors)
        elif not formulas:
            errors["formulas"] = "type at least one start formula (one per line), or pick another start"
    msg = validate_n_range(form.n_min, form.n_max)
    if msg:
        errors["n_range"] = msg
    if errors:
        return None, errors
    try:
        cfg = DesignConfig(
            n_candidates=int(form.n_candidates),
            init_mode=form.init_mode,
            init_formulas=tuple(formulas),
            init_min_tc=float(form.init_min_tc),
            pins=tuple(pins),
            exclude=tuple(form.excluded),
            exclude_unseen=bool(form.exclude_unseen),
            max_elements=int(form.max_elements),
            n_min=int(form.n_min),
            n_max=int(form.n_max),
            integer_loss=form.integer_loss,
            alpha_max=float(form.alpha_max),
            steps2=int(form.steps2),
            steps3=int(form.steps3),
            lr=float(form.lr),
            target_tc=float(form.target_tc),
            seed=int(form.seed),
            device=form.device,
            objective=form.objective,
            kappa=float(form.kappa),
            constraint_method=form.constraint_method,
            formation_energy_weight=float(form.formation_energy_weight),
            **dict(form.extra),
        )
    except (ValueError, TypeError) as exc:
        key = "n_range" if "cell size N" in str(exc) or "N range" in str(exc) else "general"
        return None, {key: str(exc)}
    return cfg, {}


def form_from_config(cfg: Any) -> dict[str, Any]:
    """A run's DesignConfig -> the Design page's values: "pins" rows, "excluded" symbols and every
    widget value, clamped to the widgets' ranges (LIMITS) and the learning rate snapped to the
    nearest offered value, so that a run made elsewhere (CLI) can always be shown."""

    def clamp(key: str, v: float) -> Any:
        lo, hi = LIMITS[key]
        out = min(max(v, lo), hi)
        return int(out) if isinstance(lo, int) and isinstance(hi, int) else float(out)

    pins = [{"symbol": p.symbol, "fraction": p.fraction, "mode": p.mode or cfg.pin_mode} for p in cfg.pins]
    ns = cfg.ns
    lo_n = min(max(min(ns), N_SLIDER_MIN), N_SLIDER_MAX)
    hi_n = min(max(max(ns), lo_n), N_SLIDER_MAX)
    return {
        "pins": pins,
        "excluded": list(expand_exclude(cfg.exclude)),
        "init_mode": cfg.init_mode,
        "init_formulas": "\n".join(cfg.init_formulas),
        "init_min_tc": clamp("init_min_tc", cfg.init_min_tc),
        "n_candidates": clamp("n_candidates", cfg.n_candidates),
        "n_range": (lo_n, hi_n),
        "integer_loss": cfg.integer_loss,
        "alpha_max": clamp("alpha_max", cfg.alpha_max),
        "steps2": clamp("steps2", cfg.steps2),
        "steps3": clamp("steps3", cfg.steps3),
        "lr": min(LR_OPTIONS, key=lambda v: abs(math.log(v / cfg.lr))),
        "target_tc": clamp("target_tc", cfg.target_tc),
        "seed": clamp("seed", cfg.seed),
        "objective": cfg.objective,
        "kappa": clamp("kappa", cfg.kappa),
        "max_elements": clamp("max_elements", cfg.max_elements),
        "exclude_unseen": bool(cfg.exclude_unseen),
        "constraint_method": cfg.constraint_method,
        "fe_weight": clamp("fe_weight", cfg.formation_energy_weight),
    }


# -- formatting and uploads ------------------------------------------------------------------


def pretty_formula(formula: str) -> str:
    """Chemical formula with Unicode subscripts: 'YBa2Cu3O7' -> 'YBa₂Cu₃O₇', 'La1.85' -> 'La₁.₈₅'."""
    out, digits = [], []
    for ch in str(formula):
        if ch.isdigit() or (ch == "." and digits):
            digits.append(ch)
            continue
        if digits:
            out.append("".join(digits).translate(_SUBSCRIPT))
            digits = []
        out.append(ch)
    if digits:
        out.append("".join(digits).translate(_SUBSCRIPT))
    return "".join(out)


def read_formula_csv(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_rows: int = MAX_PREDICT_ROWS) -> list[str]:
    """Formulas from an uploaded CSV, read as plain text data.

    The column named "formula" (any case) is used if the header has one, else the first column
    (then the first row counts as data). Raises ValueError for a file that is too large, not
    UTF-8 text, or has more than `max_rows` rows.
    """
    if len(data) > max_bytes:
        raise ValueError(f"the file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text; upload a CSV with one formula per row") from None
    if "\x00" in text:
        raise ValueError("the file holds binary data; upload a CSV with one formula per row")
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise ValueError(f"the file is not valid CSV: {exc}") from None
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    col = header.index("formula") if "formula" in header else 0
    body = rows[1:] if "formula" in header else rows
    if len(body) > max_rows:
        raise ValueError(f"the file has {len(body)} rows; the limit is {max_rows}")
    return [r[col].strip() if col < len(r) else "" for r in body]
