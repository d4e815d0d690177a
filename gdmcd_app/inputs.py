"""What a user clicks, types or uploads, turned into data (no Streamlit, no torch): testable alone.

The Design page keeps two plain lists in the session: `pins` (rows {"symbol", "fraction",
"mode"}) and `excluded` (symbols). Everything the page does to them goes through here:

* `cycle_element` — a click on the periodic table moves an element free -> pinned -> excluded
  -> free;
* `apply_preset` — "Hydride search (H >= 0.5)", "Exclude radioactive", "Exclude toxic";
* `validate_pins` / `check_constraints` — the pin table and exclusions as the engine will see
  them, with messages that name the bad row;

Formatting helpers (`pretty_formula`) and the predict-page input readers (`parse_formula_lines`,
`read_formula_csv`) live here too: they turn what a user typed or uploaded into data, never
into code or paths.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gdmcd_core.chem.composition import FormulaError, parse_formula
from gdmcd_core.chem.elements import TOXIC, index_of, radioactive_symbols
from gdmcd_core.design.objective.constraints import PIN_MODES, SUM_TOL, Constraints, Pin

FREE, PINNED, EXCLUDED = "free", "pinned", "excluded"
ELEMENT_STATES = (FREE, PINNED, EXCLUDED)
# Fraction given to a newly pinned element: H starts at the paper's hydride value, others small.
DEFAULT_PIN_FRACTION = 0.1
DEFAULT_PIN_FRACTIONS = {"H": 0.5}
DEFAULT_PIN_MODE = "at-least"

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

_SUBSCRIPT = str.maketrans("0123456789.", "₀₁₂₃₄₅₆₇₈₉.")
# How pretty_formula reads a formula as the grammar does (chem/formula_syntax): an amount follows an element or a
# bracket; a hydrate multiplier follows a separator ("·", "*", ...). An ASCII "." is a separator before "<n>H2O"
# (at the end or before another separator) after an element, a bracket or a nonzero whole amount, and before an
# element or a bracket; elsewhere it is a decimal point.
_AMOUNT = re.compile(r"(?<=[A-Za-z)\]])\d+(?:\.\d+)?")
_WATER_DOT = re.compile(r"(?<=[A-Za-z)\]])(\d*)\.(?=\d+H2O(?:$|[·•∙⋅*.]))")
_ADDUCT_DOT = re.compile(r"\.(?=[A-Z(\[])")
_AS_MIDDLE_DOT = str.maketrans(dict.fromkeys("•∙⋅*", "·"))


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


def pin_notes(pins: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{symbol: "≥ 0.5" or "= 0.25"}: what the periodic table writes on a pinned tile."""
    return {
        p["symbol"]: f"{'≥' if p.get('mode') == 'at-least' else '='} {_shown_fraction(p.get('fraction'))}" for p in pins
    }


def _shown_fraction(value: Any) -> str:
    """A pin's fraction for a tile: '0.5', or '?' while its cell is empty or not a number."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "?"
    return f"{f:g}" if math.isfinite(f) else "?"


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
        f, problem = _pin_fraction(sym, raw_f)
        if problem:
            errors.append(f"{where}: {problem}")
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


def _pin_fraction(symbol: str, raw: Any) -> tuple[float, str | None]:
    """(the pin's fraction, None), or (NaN, what is wrong with it): an empty cell (cleared in the pin table),
    text that is not a number, or a number outside (0, 1]."""
    if raw is None or (isinstance(raw, str) and not raw.strip()) or (isinstance(raw, float) and math.isnan(raw)):
        return math.nan, f"the fraction of {symbol} is empty; give a value in (0, 1]"
    try:
        f = float(raw)
    except (TypeError, ValueError):
        return math.nan, f"fraction {raw!r} is not a number; give a value in (0, 1]"
    if not math.isfinite(f) or not 0.0 < f <= 1.0:
        return math.nan, f"fraction {f:g} must be in (0, 1] (atoms per atom)"
    return f, None


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


def parse_n_values(text: str) -> tuple[tuple[int, ...], str | None]:
    """An explicit set of cell sizes N typed as "4, 8, 12" (spaces also separate; "" = none).
    Returns (sorted distinct N, None) or ((), message)."""
    tokens = (text or "").replace(",", " ").split()
    try:
        ns = tuple(sorted({int(t) for t in tokens}))
    except ValueError:
        return (), f"cell sizes N: write whole numbers separated by commas (e.g. 4, 8, 12), got {text!r}"
    if any(n < 1 for n in ns):
        return (), f"every cell size N must be >= 1, got {min(ns)}"
    return ns, None


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


# -- formatting and uploads ------------------------------------------------------------------


def pretty_formula(formula: str) -> str:
    """Chemical formula with Unicode subscripts on its amounts, hydrates with '·': 'YBa2Cu3O7' -> 'YBa₂Cu₃O₇',
    'La1.85' -> 'La₁.₈₅', 'CuSO4.5H2O' and 'CuSO4*5H2O' -> 'CuSO₄·5H₂O' (a multiplier is no subscript)."""
    text = str(formula).translate(_AS_MIDDLE_DOT)
    text = _WATER_DOT.sub(lambda m: m.group(1) + ("." if m.group(1) and int(m.group(1)) == 0 else "·"), text)
    text = _ADDUCT_DOT.sub("·", text)
    return _AMOUNT.sub(lambda m: m.group().translate(_SUBSCRIPT), text)


def read_formula_csv(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_rows: int = MAX_PREDICT_ROWS) -> list[str]:
    """Formulas from an uploaded CSV, read as plain text data.

    The rule: a header with a column named "formula" (any case) -> that column, below the header. Without
    one, only a single-column file whose first cell parses as a formula is read, as a headerless list
    (every row a formula). Anything else raises ValueError naming the missing column, as do a file that is
    too large, not UTF-8 text, or longer than `max_rows` rows.
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
    if "formula" in header:
        col, body = header.index("formula"), rows[1:]
    elif max(len(r) for r in rows) == 1 and _parses(rows[0][0]):
        col, body = 0, rows
    else:
        shown = ", ".join(repr(c.strip()) for c in rows[0][:5]) + (", …" if len(rows[0]) > 5 else "")
        raise ValueError(
            f"no column named 'formula' (first row: {shown}); add a header 'formula' above the formulas, "
            "or upload a single column of formulas without a header"
        )
    if len(body) > max_rows:
        raise ValueError(f"the file has {len(body)} rows; the limit is {max_rows}")
    return [r[col].strip() if col < len(r) else "" for r in body]


def _parses(text: str) -> bool:
    try:
        parse_formula(text.strip())
    except FormulaError:
        return False
    return True
