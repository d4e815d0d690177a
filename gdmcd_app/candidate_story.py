"""One candidate of a run, everything about it for the candidate page (views/candidate.py). No Streamlit.

* its address: `candidate_url` (the page's `?run=<run id>&formula=<integer formula>`), the link every candidate
  table carries (`open_links`), and the row it names (`find_candidate`);
* its facts as (quantity, value, about) tables, labelled as the results table labels its columns
  (results_table.column_specs): Tc with σ (and the two-part model's columns when the table has them), the
  trees' opinion, the parent phase and the edit, the chemistry checks, the hull energy;
* the nearest known superconductors: the k SuperCon entries nearest by L1 distance in atomic fractions
  (chem.distance.nearest_k_l1 on the reference data the design runs compare against), with Tc (K) and the
  year first reported;
* its path in words (`path_summary`: start, stage 2, stage 3, the rounded baseline, the integer formula) and
  links out (Materials Project, OQMD, a literature search); its JSON export.

The path as numbers (one row per snapshot, the integer formula last) is data.candidate_path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus, urlencode

import numpy as np
import pandas as pd

from gdmcd_app import results_table
from gdmcd_app.results_table import ColumnSpec, spec_for
from gdmcd_core.chem.composition import FormulaError, composition_key, parse_formula, to_vector
from gdmcd_core.chem.distance import nearest_k_l1
from gdmcd_core.model.hurdle import plus_minus

CANDIDATE_PAGE = "candidate"  # the page's url path (navigation.PAGES)
OPEN_COLUMN = "open"  # the link column every candidate table gets on screen
NEAREST_K = 5
SCHOLAR_URL = "https://scholar.google.com/scholar?q={}"
TWO_PART_COLUMNS = ("p_superconductor", "tc_if_sc_k")
TREES_COLUMNS = ("integer_tc_trees_k", "integer_tc_consensus_k")
PARENT_COLUMNS = (
    "parent_formula",
    "edit",
    "path",
    "is_mixture",
    "mixture_of",
    "is_known",
    "site_mismatch",
    "parent_tc_k",
    "parent_year",
)
CHEMISTRY_COLUMNS = (
    "passes_chemistry_checks",
    "charge_neutral",
    "electronegativity_ok",
    "all_metal",
    "cu_valence",
    "cu_valence_plausible",
    "radioactive",
    "toxic",
    "flagged_elements",
    "in_supercon",
    "elements_seen_in_training",
    "new_element_set",
    "nearest_training_distance",
)
STABILITY_COLUMNS = ("formation_energy_ev_atom", "e_hull_ev_atom", "e_hull_sigma_ev_atom")
# What an empty cell means, per column (validity.py, chem.valence, stability/energy.py leave these empty).
EMPTY_MEANS = {
    "charge_neutral": "not tested",
    "electronegativity_ok": "not tested",
    "cu_valence": "not defined (no Cu, an intermetallic or an ambiguous valence)",
    "cu_valence_plausible": "not defined",
    "flagged_elements": "none",
    "e_hull_ev_atom": "not computed (no formation-energy model or JARVIS data)",
    "e_hull_sigma_ev_atom": "not computed",
}
_EXTRA_SPECS = {
    "p_superconductor": ColumnSpec("P(superconductor)", "the two-part model's probability of Tc > 0", "number", "%.2f"),
    "tc_if_sc_k": ColumnSpec("Tc if superconducting (K)", "the two-part model's Tc given Tc > 0", "number", "%.1f"),
}


# -- its address --------------------------------------------------------------------------------------


def candidate_url(run_id: str, formula: str) -> str:
    """The candidate page of `formula` in run `run_id`, relative to the app's address ('candidate?run=…&formula=…')."""
    return f"{CANDIDATE_PAGE}?{urlencode({'run': str(run_id), 'formula': str(formula)})}"


def open_links(formulas: Iterable[Any], run_id: str) -> list[str]:
    """The candidate-page link of each integer formula of a table ('' for an empty cell)."""
    return [candidate_url(run_id, str(f)) if _present(f) and str(f) else "" for f in formulas]


def _key(formula: str) -> str | None:
    try:
        return composition_key(parse_formula(formula))
    except (FormulaError, ValueError):
        return None


def find_candidate(table: pd.DataFrame, formula: str) -> pd.Series | None:
    """The row of `table` whose integer_formula is `formula`, else the best-ranked row with the same composition
    (scaled copies and other spellings); None when none has it or the text is not a formula."""
    if "integer_formula" not in table.columns:
        return None
    formulas = table["integer_formula"].astype(str)
    hit = table[formulas == str(formula)]
    if len(hit):
        return hit.iloc[0]
    key = _key(str(formula))
    if key is None:
        return None
    same = [i for i, f in enumerate(formulas) if _key(f) == key]
    return table.iloc[same[0]] if same else None


def candidate_options(table: pd.DataFrame) -> dict[str, str]:
    """{integer formula: '#1 Nb₃Sn (23.1 K)'} of a candidate table in its order (the row's place when it has no
    rank column)."""
    from gdmcd_app.inputs import pretty_formula

    ranks = table["rank"] if "rank" in table.columns else pd.Series(range(1, len(table) + 1), index=table.index)
    tcs = table["integer_tc_k"] if "integer_tc_k" in table.columns else pd.Series(math.nan, index=table.index)
    out = {}
    for f, r, tc in zip(table["integer_formula"].astype(str), ranks, tcs, strict=True):
        tc_k = _float(tc)
        out.setdefault(f, f"#{r} {pretty_formula(f)}" + (f" ({tc_k:.1f} K)" if math.isfinite(tc_k) else ""))
    return out


def trajectory_column(row: Mapping[str, Any]) -> int | None:
    """The row's trajectory column (its `candidate`), or None when it has none."""
    v = _float(row.get("candidate"))
    return int(v) if math.isfinite(v) and v >= 0 else None


# -- its facts ---------------------------------------------------------------------------------------------


def _present(v: Any) -> bool:
    """False for None, NaN, pd.NA and ''."""
    if v is None or v is pd.NA or (isinstance(v, str) and not v.strip()):
        return False
    return not (isinstance(v, (float, np.floating)) and math.isnan(v))


def _flag(v: Any) -> bool | None:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    text = str(v).strip().lower()
    return True if text in ("true", "1", "1.0", "yes") else False if text in ("false", "0", "0.0", "no") else None


def format_value(v: Any, spec: ColumnSpec, empty: str = "—") -> str:
    """A cell as the page shows it: numbers by the column's format, flags as yes/no, `empty` for an empty cell."""
    if not _present(v):
        return empty
    if spec.kind == "flag":
        flag = _flag(v)
        return str(v) if flag is None else "yes" if flag else "no"
    if spec.kind == "number":
        try:
            number = float(v)
        except (TypeError, ValueError):
            return str(v)
        if not math.isfinite(number):
            return empty
        return (spec.fmt % number) if spec.fmt else f"{number:g}"
    return str(v)


def _specs(specs: Mapping[str, ColumnSpec] | None) -> dict[str, ColumnSpec]:
    return {**_EXTRA_SPECS, **(specs if specs is not None else results_table.column_specs())}


def facts(
    row: Mapping[str, Any], columns: Sequence[str], specs: Mapping[str, ColumnSpec] | None = None
) -> pd.DataFrame:
    """(quantity, value, about) for each of `columns` the row has: the results table's label (with units), the
    formatted value (EMPTY_MEANS says what an empty cell means), the column's tooltip."""
    specs = _specs(specs)
    rows = []
    for c in columns:
        if c in row:
            s = spec_for(c, specs)
            rows.append(
                {"quantity": s.label, "value": format_value(row[c], s, EMPTY_MEANS.get(c, "—")), "about": s.help}
            )
    return pd.DataFrame(rows, columns=["quantity", "value", "about"])


def tc_text(row: Mapping[str, Any]) -> str:
    """'23.1 ± 4.0 K' (the integer formula's Tc and σ; σ unknown or from one member: '± n/a', never '± 0.0',
    model/hurdle.plus_minus); '—' without a Tc."""
    tc, sd = _float(row.get("integer_tc_k")), _float(row.get("integer_tc_std_k"))
    if not math.isfinite(tc):
        return "—"
    return plus_minus(tc, sd)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def tc_facts(row: Mapping[str, Any], specs: Mapping[str, ColumnSpec] | None = None) -> pd.DataFrame:
    """Tc ± σ, the two-part model's columns (when the table has them), the trees' Tc and the consensus."""
    specs = _specs(specs)
    head = pd.DataFrame(
        [{"quantity": f"{specs['integer_tc_k'].label} ± σ", "value": tc_text(row), "about": specs["integer_tc_k"].help}]
    )
    return pd.concat([head, facts(row, (*TWO_PART_COLUMNS, *TREES_COLUMNS), specs)], ignore_index=True)


def has_parent(row: Mapping[str, Any]) -> bool:
    """Whether the run's table says where the candidate comes from (some PARENT_COLUMNS column)."""
    return any(c in row for c in PARENT_COLUMNS)


def speculative_reasons(row: Mapping[str, Any]) -> list[str]:
    """Why the results table marks this candidate speculative ([] when it does not)."""
    return results_table.speculative_reasons(
        row.get("integer_tc_k"),
        row.get("integer_tc_std_k"),
        row.get("nearest_supercon_distance"),
        row.get("integer_tc_trees_k"),
    )


# -- the nearest known superconductors ----------------------------------------------------------------------


def nearest_supercon(formula: str, reference: Any, k: int = NEAREST_K) -> pd.DataFrame:
    """The k SuperCon entries of `reference` (data.reference.ReferenceData) nearest to `formula` by L1 distance
    in atomic fractions (0 = same composition, 2 = no element in common), nearest first.

    Columns: formula, tc_k (measured Tc, K), year (first reported: the reference's sc_year, from the SuperCon
    file's first_year; NaN when unknown), distance_l1. Raises FormulaError for a formula that does not parse."""
    idx, dist = nearest_k_l1(to_vector(str(formula)), reference.sc_x, k)
    years = getattr(reference, "sc_year", None)
    return pd.DataFrame(
        {
            "formula": np.asarray(reference.sc_formula).astype(str)[idx],
            "tc_k": np.asarray(reference.sc_tc_k, dtype=float)[idx],
            "year": np.asarray(years, dtype=float)[idx] if years is not None else np.full(len(idx), np.nan),
            "distance_l1": dist,
        }
    )


# -- its path in words, links, export ---------------------------------------------------------------------


def path_summary(row: Mapping[str, Any], stage3_composition: str | None = None) -> pd.DataFrame:
    """(step, composition, tc_k) from start to integer formula, as the candidate table records them: start,
    stage 2 (continuous), stage 3 (continuous: its composition when given, e.g. the trajectory's last snapshot),
    the integer formula and the rounded stage-2 composition (the rule-based baseline, not on the path). Rows
    whose columns the table lacks are left out."""
    steps = (
        ("start", "initial_formula", "initial_tc_k"),
        ("after stage 2", "optimized_formula", "optimized_tc_k"),
        ("after stage 3", None, "final_tc_k"),
        ("integer formula", "integer_formula", "integer_tc_k"),
        ("rounded stage 2 (baseline)", "rounded_formula", "rounded_tc_k"),
    )
    rows = []
    for label, formula_col, tc_col in steps:
        if (formula_col is None or formula_col in row) and tc_col in row:
            cell = row[formula_col] if formula_col else stage3_composition
            text = str(cell) if _present(cell) else "—"
            rows.append({"step": label, "composition": text, "tc_k": _float(row[tc_col])})
    return pd.DataFrame(rows, columns=["step", "composition", "tc_k"])


def integer_origin(row: Mapping[str, Any], last_step: int | None) -> str:
    """Where the integer formula comes from, in words: the step whose composition it was rounded from, or the
    integer refinement after the loop (integer_step beyond the last step recorded), or the site repair or variant
    added after the search (site_repair.py: not rounded from any composition)."""
    path = str(row.get("path") or "")
    if path.startswith(("site repair", "site variant")):
        return f"added after the search: {path} (not rounded from any composition of the run)"
    step = _float(row.get("integer_step"))
    if not math.isfinite(step) or step < 0:
        return "rounded from the composition the run ended on"
    if last_step is not None and step > last_step:
        return f"found by the integer refinement after step {last_step:,}"
    return f"rounded from the composition at step {int(step):,}"


def links(formula: str) -> dict[str, str]:
    """{name: URL}: the chemical system in Materials Project and OQMD, and a literature search for the reduced
    formula with 'superconductivity' (Google Scholar); {} for a formula that does not parse."""
    mp, oqmd = results_table.database_links(formula)
    if not mp:
        return {}
    reduced = results_table.safe_reduced_formula(formula) or str(formula)
    return {
        "Materials Project": mp,
        "OQMD": oqmd,
        "Google Scholar": SCHOLAR_URL.format(quote_plus(f'"{reduced}" superconductivity')),
    }


def _plain(v: Any) -> Any:
    if not _present(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return str(v)


def _records(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    if table is None:
        return []
    return [{str(k): _plain(v) for k, v in r.items()} for r in table.to_dict(orient="records")]


def candidate_json(run_id: str, row: Mapping[str, Any], nearest: pd.DataFrame | None, path: pd.DataFrame | None) -> str:
    """The candidate as JSON: the run, its candidate-table row (the run folder's column names), the nearest known
    superconductors and its path (data.candidate_path); empty cells are null."""
    doc = {
        "run": run_id,
        "candidate": {str(k): _plain(v) for k, v in dict(row).items()},
        "nearest_supercon": _records(nearest),
        "path": _records(path),
    }
    return json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False)
