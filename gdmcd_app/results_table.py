"""The ranked candidate table as a chemist reads it: named columns with units and tooltips, the reduced
formula, links to the chemical system in Materials Project and OQMD, a mark on speculative candidates,
notes, and an export of exactly the rows and columns on screen. No Streamlit here
(components/results.py turns `column_specs` into st.column_config).

Three steps, all on plain DataFrames:

* `results_view(table, filters, all_columns)` — the filtered rows and the shown columns, internal column
  keys and plain (ASCII) formulas, with the derived columns added (`derive_columns`);
* `for_screen(view)` — formulas with subscripts, for st.dataframe;
* `export_frame(view)` / `export_csv` / `export_json` — the same rows and columns, headed by the labels
  the screen shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import numpy as np
import pandas as pd

from gdmcd_app.inputs import pretty_formula
from gdmcd_core.chem.composition import FormulaError, parse_formula, reduced_formula
from gdmcd_core.design.evidence import filters
from gdmcd_core.model.trees import DISAGREEMENT_RATIO, TC_FLOOR_K, disagrees

# A candidate is "speculative" when its σ is large against its Tc, or its composition lies far from every
# known superconductor (the model then extrapolates; the ensemble spread alone under-reports that).
SPECULATIVE_SIGMA_RATIO = 0.5  # σ / Tc above this (Tc floored at TC_FLOOR_K)
SPECULATIVE_DISTANCE_L1 = 0.2  # L1 distance in atomic fractions to the nearest SuperCon entry (evaluate.FAR_L1)
SPECULATIVE_TREES_RATIO = DISAGREEMENT_RATIO  # |Tc - Tc_trees| / Tc above this: the second opinion disagrees
TOP_RANKS_CHECKED = 5  # the warning looks at this many top-ranked rows
SPECULATIVE_MARK = "⚠ yes"
MP_URL = "https://next-gen.materialsproject.org/materials?chemsys={}"
OQMD_URL = "https://oqmd.org/materials/composition/{}"
SCHOLAR_URL = "https://scholar.google.com/scholar?q={}"
DERIVED_COLUMNS = ("speculative", "reduced_formula", "notes", "materials_project", "oqmd", "parent_literature")
FORMULA_COLUMNS = tuple(
    "integer_formula reduced_formula initial_formula optimized_formula rounded_formula nearest_supercon_formula "
    "parent_formula mixture_of family".split()
)

DEFAULT_COLUMNS = tuple(
    "rank speculative integer_formula reduced_formula n_atoms integer_tc_k integer_tc_std_k "
    "parent_formula edit is_mixture is_known site_mismatch parent_tc_k parent_year parent_source parent_literature "
    "mixture_of family path "
    "integer_tc_trees_k integer_tc_consensus_k p_superconductor tc_if_sc_k high_pressure nearest_supercon_formula "
    "nearest_supercon_tc_k "
    "nearest_supercon_distance charge_neutral electronegativity_ok cu_valence_plausible flagged_elements "
    "e_hull_ev_atom formation_energy_ev_atom notes materials_project oqmd delta_tc_k initial_formula "
    "initial_tc_k optimized_tc_k rounded_formula rounded_tc_k in_supercon elements_seen_in_training "
    "n_duplicates source".split()
)


@dataclass(frozen=True)
class ColumnSpec:
    """How one column is shown: label (with units), tooltip, kind (text, number, flag, link), number format."""

    label: str
    help: str = ""
    kind: str = "text"
    fmt: str | None = None
    link_text: str | None = None  # LinkColumn display_text (a regex on the URL, or fixed text)


_SMACT = (
    "SMACT (smact_validity, ICSD-2024 oxidation states); fractional formulas are first scaled to whole atoms. "
    "Intermetallics (all elements metals) pass, as in CDVAE/DiffCSP's 'composition validity'. Empty: not tested "
    "(more than 24 elements)."
)
_COLUMNS: dict[str, ColumnSpec] = {
    "rank": ColumnSpec("rank", "1 = best; see the line above the table for how the run ranks", "number"),
    "speculative": ColumnSpec(
        "⚠ speculative",
        f"marked when σ > {SPECULATIVE_SIGMA_RATIO:g} × Tc, or when the nearest known superconductor is more than "
        f"L1 = {SPECULATIVE_DISTANCE_L1:g} away (at least {SPECULATIVE_DISTANCE_L1 * 50:g} % of the atoms differ), "
        f"or when the trees' Tc differs from it by more than {SPECULATIVE_TREES_RATIO:g} × Tc: "
        "the model extrapolates there and its Tc is a guess",
        "mark",
    ),
    "integer_formula": ColumnSpec("formula (N atoms)", "the integer formula for a cell of N atoms"),
    "reduced_formula": ColumnSpec("reduced formula", "the integer formula divided by the gcd of its amounts"),
    "n_atoms": ColumnSpec("N", "atoms in the formula unit (cell size)", "number"),
    "integer_tc_k": ColumnSpec("Tc (K)", "predicted for the integer formula", "number", "%.1f"),
    "integer_tc_std_k": ColumnSpec("σ (K)", "", "number", "%.1f"),
    "integer_tc_trees_k": ColumnSpec(
        "Tc trees (K)",
        "second opinion: gradient-boosted trees on element statistics (not used for ranking; far "
        "below Tc: the network may be exploited)",
        "number",
        "%.1f",
    ),
    "integer_tc_consensus_k": ColumnSpec(
        "Tc consensus (K)",
        "weighted mean of the network and the trees where the network says Tc > 0 (the network's weight fitted "
        "on the model's validation rows, shown on the Model page; docs/model-card.md)",
        "number",
        "%.1f",
    ),
    "p_superconductor": ColumnSpec(
        "P(superconductor)",
        "the two-part model's probability that Tc > 0 K: gradient-boosted trees on element statistics fitted on "
        "the checkpoint's training rows (COD and hand-built non-superconductors as weaker evidence); not used for "
        "ranking",
        "number",
        "%.2f",
    ),
    "tc_if_sc_k": ColumnSpec(
        "Tc if superconducting (K)",
        "the two-part model's Tc given Tc > 0: the consensus where the network says Tc > 0, the trees' Tc "
        "where it says 0 K; expected Tc = P(superconductor) × this",
        "number",
        "%.1f",
    ),
    "high_pressure": ColumnSpec(
        "high pressure",
        "a hydride, or a run at a pressure above 0: the model has no pressure input, so this Tc is a "
        "high-pressure value, out of the model's scope",
        "flag",
    ),
    "delta_tc_k": ColumnSpec("ΔTc (K)", "Tc of the integer formula minus Tc of the start", "number", "%+.1f"),
    "initial_formula": ColumnSpec("start", "the start composition (after pins and exclusions), fractions"),
    "initial_tc_k": ColumnSpec("Tc start (K)", "predicted Tc of the start composition", "number", "%.1f"),
    "optimized_formula": ColumnSpec("stage-2 composition", "the continuous composition after stage 2, fractions"),
    "optimized_tc_k": ColumnSpec("Tc stage 2 (K)", "predicted Tc of the stage-2 composition", "number", "%.1f"),
    "final_tc_k": ColumnSpec(
        "Tc stage 3 (K)", "predicted Tc of the continuous composition after stage 3", "number", "%.1f"
    ),
    "rounded_formula": ColumnSpec("rounded (baseline)", "rule-based baseline: the stage-2 composition rounded"),
    "rounded_n_atoms": ColumnSpec("N rounded", "cell size of the rounded baseline", "number"),
    "rounded_tc_k": ColumnSpec("Tc rounded (K)", "predicted Tc of the rounded baseline", "number", "%.1f"),
    "in_supercon": ColumnSpec("in SuperCon", "this composition is a SuperCon entry (fractions to 4 decimals)", "flag"),
    "elements_seen_in_training": ColumnSpec(
        "element set known", "some training composition has exactly this set of elements", "flag"
    ),
    "nearest_supercon_formula": ColumnSpec("nearest known SC", "the closest SuperCon entry by L1 distance"),
    "nearest_supercon_tc_k": ColumnSpec(
        "nearest SC Tc (K)", "measured Tc of the nearest SuperCon entry", "number", "%.1f"
    ),
    "nearest_supercon_distance": ColumnSpec(
        "nearest SC distance (L1)",
        "sum of |fraction differences| (0 = same composition, 2 = no element in common); 0.2 means 10 % of the "
        "atoms differ",
        "number",
        "%.2f",
    ),
    "charge_neutral": ColumnSpec(
        "charge-neutral",
        "some choice of one common oxidation state per element makes the formula neutral. " + _SMACT,
        "flag",
    ),
    "electronegativity_ok": ColumnSpec(
        "electronegativity ok",
        "a neutral assignment exists in which every cation is less electronegative (Pauling) than every anion; "
        "implies charge-neutral. " + _SMACT,
        "flag",
    ),
    "all_metal": ColumnSpec("all metals", "every element is a metal: passes the charge tests as an alloy", "flag"),
    "radioactive": ColumnSpec("radioactive", "contains Po or a heavier element, Tc or Pm", "flag"),
    "toxic": ColumnSpec("toxic", "contains Hg, Tl, Cd, As, Pb or Be", "flag"),
    "flagged_elements": ColumnSpec("radioactive/toxic elements", "the radioactive or toxic elements present"),
    "nearest_training_distance": ColumnSpec(
        "distance to training (L1)", "L1 distance to the nearest training composition (any Tc)", "number", "%.2f"
    ),
    "new_element_set": ColumnSpec("new element set", "no training composition has exactly these elements", "flag"),
    "cu_valence": ColumnSpec(
        "Cu valence", "formal Cu oxidation state, other elements at their usual valence", "number", "%.2f"
    ),
    "cu_valence_plausible": ColumnSpec(
        "Cu valence ok", "Cu valence within 1.8–2.6 (superconducting cuprates); empty without Cu", "flag"
    ),
    "passes_chemistry_checks": ColumnSpec(
        "passes checks", "neither charge neutrality nor the Cu valence failed", "flag"
    ),
    "formation_energy_ev_atom": ColumnSpec(
        "E_f (eV/atom)", "formation energy from the surrogate model (trained on JARVIS-DFT)", "number", "%.2f"
    ),
    "e_hull_ev_atom": ColumnSpec(
        "E above hull (eV/atom)",
        "energy above the JARVIS convex hull of this chemical system (surrogate E_f); ≤ 0.1 counts as stable",
        "number",
        "%.3f",
    ),
    "e_hull_sigma_ev_atom": ColumnSpec(
        "± E hull (eV/atom)", "uncertainty from the surrogate's error", "number", "%.3f"
    ),
    "notes": ColumnSpec("notes", "why a row is speculative; elements the rounding added"),
    "materials_project": ColumnSpec(
        "Materials Project",
        "this chemical system in Materials Project (opens in your browser)",
        "link",
        link_text=r"chemsys=(.*)",
    ),
    "oqmd": ColumnSpec(
        "OQMD", "this chemical system in OQMD (opens in your browser)", "link", link_text=r"composition/(.*)"
    ),
    "n_duplicates": ColumnSpec("copies", "candidates that ended at this formula", "number"),
    "source": ColumnSpec("start from", "where the start composition came from"),
    "score_k": ColumnSpec("score (K)", "the ranking score: Tc, or Tc − κσ", "number", "%.1f"),
    "only_pinned_elements": ColumnSpec("pinned elements only", "made of pinned elements alone (ranked last)", "flag"),
    "integer_loss": ColumnSpec("L_integer", "integer loss of the composition the formula came from", "number", "%.3f"),
    "integer_step": ColumnSpec(
        "step", "the step whose composition gave the formula (last step + 1: found by the integer refinement)", "number"
    ),
    "candidate": ColumnSpec(
        "candidate #",
        "index of the candidate whose trajectory led to this formula (for a refined row: the one it was refined from)",
        "number",
    ),
    "path": ColumnSpec(
        "path",
        "how the formula was reached: its candidate's best stage-3 integer formula, a method's generation, or "
        "'refined from candidate C' (the integer refinement, from C's formula: the start columns are C's)",
    ),
    "parent_formula": ColumnSpec(
        "parent",
        "the known compound it is made from (SuperCon, COD or JARVIS): the known phase of its mixture or series, "
        "else of the 10 nearest (L1 ≤ 0.4) the one with the simplest edit",
    ),
    "parent_source": ColumnSpec("parent from", "where the parent is listed: supercon, cod or jarvis (DFT)"),
    "parent_tc_k": ColumnSpec("parent Tc (K)", "measured Tc of the parent (SuperCon entries)", "number", "%.1f"),
    "parent_year": ColumnSpec("parent year", "year the parent was first reported (SuperCon entries)", "number", "%d"),
    "parent_distance": ColumnSpec("parent distance (L1)", "L1 in atomic fractions to the parent", "number", "%.2f"),
    "parent_literature": ColumnSpec(
        "literature",
        "Google Scholar: the parent and superconductivity (opens in your browser)",
        "link",
        None,
        "search ↗",
    ),
    "edit": ColumnSpec(
        "edit",
        "the candidate in the parent's formula unit as the parent plus substitutions ('Sr for Ba (1 of 2)'), "
        "excess ('+1 O'), deficit or vacancies ('-1 Ca'), a series block ('+ CaCuO2 block') or binaries ('+ MgO')",
    ),
    "is_mixture": ColumnSpec(
        "mixture", "a known compound plus binaries (MgO, BaO, ...): making it gives both; ranked last", "flag"
    ),
    "mixture_of": ColumnSpec("mixture of", "the known compound and the binaries a mixture is made of"),
    "is_known": ColumnSpec(
        "known SC", "a SuperCon entry (oxygen within 0.5 per formula unit): never a discovery; ranked after new", "flag"
    ),
    "site_mismatch": ColumnSpec(
        "site mismatch",
        "largest relative ionic-radius difference of a substituted ion and the one it replaces (Shannon radii at "
        "the site's coordination), 0.15 = 15 %; past 15 % (Goldschmidt, Hume-Rothery) it ranks after rows that fit",
        "number",
        "%.2f",
    ),
    "site_misfit": ColumnSpec("site misfit", "a substitution past 15 %, or a new cation without a site", "flag"),
    "family": ColumnSpec(
        "family",
        "the parent phase (oxygen variants together: HgBa2Ca3Cu4Ox), else the element set; at most 3 per "
        "family rank before the other families' candidates",
    ),
    "family_rank": ColumnSpec("# in family", "1 = the family's best-ranked candidate", "number"),
}


def sigma_help(card: Mapping[str, Any] | None) -> str:
    """What σ is for the model with this card: the calibrated ensemble spread, from the card's calibration."""
    card = card or {}
    members = int(card.get("n_members", 1) or 1)
    if members <= 1:
        return "single model: no ensemble spread, so no uncertainty: σ is unknown (n/a), not 0"
    cal = card.get("calibration") if isinstance(card.get("calibration"), Mapping) else {}
    scale = cal.get("sigma_scale", card.get("sigma_scale"))
    text = f"σ = calibrated ensemble spread: the standard deviation of the {members} members' predictions"
    if isinstance(scale, (int, float)) and scale != 1.0:
        text += f" × {scale:.2f}"
        if cal.get("fitted_on"):
            text += f", a factor fitted on {cal['fitted_on']}"
            text += f" (n = {cal['n']})" if cal.get("n") else ""
        method = str(cal.get("method", ""))  # calibration.py: ±1σ and ±2σ sized together, or ":one" / ":two" alone
        rule = next((r for r in (":two", ":one") if r in method), "both" if "1and2sigma" in method else ":one")
        text += {":two": " so that 95 % fall within ±2σ", ":one": " so that 68 % fall within ±1σ"}.get(
            rule, " so that ±1σ / ±2σ hold near 68 % / 95 %"
        )
    else:
        text += " (not calibrated)"
    if cal.get("tc_scale"):
        text += f", combined with {cal['tc_scale']:.2f} × the predicted Tc (errors grow with Tc)"
    if cal.get("distance_scale_k") or cal.get("neighbor_scale") or cal.get("band_factors"):
        text += "; its distance terms are not applied here: see 'speculative' and the nearest SuperCon"
    return text


def column_specs(card: Mapping[str, Any] | None = None, high_pressure: bool = False) -> dict[str, ColumnSpec]:
    """Label, tooltip and format of every column a candidate table may hold (frac_<El> too, via `spec_for`)."""
    specs = dict(_COLUMNS)
    specs["integer_tc_std_k"] = ColumnSpec("σ (K)", sigma_help(card), "number", "%.1f")
    if high_pressure:
        tc = specs["integer_tc_k"]
        specs["integer_tc_k"] = ColumnSpec(
            "Tc, high-P est. (K)", tc.help + " by the hydride model: a high-pressure estimate", "number", tc.fmt
        )
    return specs


def spec_for(column: str, specs: Mapping[str, ColumnSpec]) -> ColumnSpec:
    if column in specs:
        return specs[column]
    if column.startswith("frac_"):
        el = column[5:]
        return ColumnSpec(f"x({el}) stage 2", f"atomic fraction of {el} in the stage-2 composition", "number", "%.3f")
    return ColumnSpec(column.replace("_", " "))


# -- derived columns -------------------------------------------------------------------------------


def chemical_system(formula: str) -> str:
    """'YBa2Cu3O7' -> 'Ba-Cu-O-Y' (elements sorted alphabetically, as Materials Project writes it); '' if bad."""
    try:
        return "-".join(sorted(parse_formula(str(formula))))
    except (FormulaError, ValueError):
        return ""


def database_links(formula: str) -> tuple[str, str]:
    """(Materials Project URL, OQMD URL) of the formula's chemical system; ('', '') for a bad formula."""
    sys_ = chemical_system(formula)
    return (MP_URL.format(sys_), OQMD_URL.format(sys_)) if sys_ else ("", "")


def literature_link(parent_formula: Any) -> str:
    """A Google Scholar search for the parent formula and superconductivity; '' without a parent."""
    text = "" if parent_formula is None or parent_formula != parent_formula else str(parent_formula).strip()
    return SCHOLAR_URL.format(quote_plus(f"{text} superconductivity")) if text else ""


def safe_reduced_formula(formula: Any) -> str:
    try:
        return reduced_formula(str(formula))
    except (FormulaError, ValueError, ZeroDivisionError):
        return ""


def added_elements(integer_formula: Any, stage2_formula: Any) -> list[str]:
    """Elements of the integer formula that the stage-2 composition does not contain ([] if either is bad)."""
    try:
        a, b = parse_formula(str(integer_formula)), parse_formula(str(stage2_formula))
    except (FormulaError, ValueError):
        return []
    return [s for s in a if s not in b]


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def speculative_reasons(tc_k: Any, sigma_k: Any, distance_l1: Any, tc_trees_k: Any = None) -> list[str]:
    """Why a candidate is speculative ([] if it is not): σ large against Tc, far from known superconductors,
    or the trees' Tc far from the network's (where the error is largest: docs/model-card.md)."""
    out = []
    tc, sd, d, tr = _num(tc_k), _num(sigma_k), _num(distance_l1), _num(tc_trees_k)
    if np.isfinite(sd) and sd > 0 and np.isfinite(tc) and sd > SPECULATIVE_SIGMA_RATIO * max(tc, TC_FLOOR_K):
        out.append(f"σ {sd:.0f} K vs Tc {tc:.0f} K")
    if np.isfinite(d) and d > SPECULATIVE_DISTANCE_L1:
        out.append(f"far from known superconductors (L1 {d:.2f})")
    if np.isfinite(tr) and np.isfinite(tc) and disagrees(tc, tr):
        out.append(f"the trees give {tr:.0f} K")
    return out


def derive_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table plus speculative, reduced_formula, notes, materials_project, oqmd, parent_literature (per row)."""
    out = table.copy()
    n = len(out)
    col = lambda c: out[c] if c in out.columns else pd.Series([None] * n, index=out.index)  # noqa: E731
    formulas = col("integer_formula").fillna("").astype(str)
    dist = col("nearest_supercon_distance")
    cols = (col("integer_tc_k"), col("integer_tc_std_k"), dist, col("integer_tc_trees_k"))
    reasons = [speculative_reasons(*row) for row in zip(*cols, strict=True)]
    notes = []
    for r, f, f2 in zip(reasons, formulas, col("optimized_formula"), strict=True):
        parts = [f"speculative: {'; '.join(r)}"] if r else []
        extra = added_elements(f, f2) if f2 is not None and f2 == f2 else []
        if extra:
            parts.append(f"{', '.join(extra)} not in the stage-2 composition (added by rounding)")
        notes.append(" · ".join(parts))
    links = [database_links(f) for f in formulas]
    out["parent_literature"] = [literature_link(p) for p in col("parent_formula")]
    out["speculative"] = [bool(r) for r in reasons]
    out["reduced_formula"] = [safe_reduced_formula(f) if f else "" for f in formulas]
    out["notes"] = notes
    out["materials_project"] = [a for a, _ in links]
    out["oqmd"] = [b for _, b in links]
    return out


# -- the view, the screen and the export ------------------------------------------------------------


def results_view(table: pd.DataFrame, chosen_filters: Iterable[str] = (), all_columns: bool = False) -> pd.DataFrame:
    """The rows passing `chosen_filters` (design.filters keys) and the columns shown, with derived columns.

    Internal column keys, plain formulas; the index is reset. Default columns: DEFAULT_COLUMNS present in
    the table; all_columns: those first, then every other column of the table.
    """
    rows = filters.filter_candidates(table, list(chosen_filters))
    full = derive_columns(rows.reset_index(drop=True))
    cols = [c for c in DEFAULT_COLUMNS if c in full.columns]
    if all_columns:
        cols += [c for c in full.columns if c not in cols]
    return full[cols]


def for_screen(view: pd.DataFrame) -> pd.DataFrame:
    """Formulas with subscripts, the speculative mark as text; empty text cells as ''."""
    out = view.copy()
    for c in FORMULA_COLUMNS:
        if c in out.columns:
            out[c] = _text(out[c]).map(pretty_formula)
    if "speculative" in out.columns:  # a mark that stands out, not a checkbox
        out["speculative"] = out["speculative"].map(lambda v: SPECULATIVE_MARK if v is True or v == 1 else "")
    for c in ("notes", "flagged_elements", "source", "materials_project", "oqmd", "edit", "path", "parent_literature"):
        if c in out.columns:
            out[c] = _text(out[c])
    return out


def _text(s: pd.Series) -> pd.Series:
    """Strings, with missing cells (None, NaN, pd.NA) as ''."""
    return s.astype(object).map(
        lambda v: "" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
    )


def export_frame(view: pd.DataFrame, specs: Mapping[str, ColumnSpec] | None = None) -> pd.DataFrame:
    """The rows and columns of `view`, headed by the screen's labels (plain formulas, links as URLs)."""
    specs = specs if specs is not None else column_specs()
    labels = [spec_for(c, specs).label for c in view.columns]
    seen: dict[str, int] = {}
    unique = []
    for lab in labels:  # two columns with one label would collide in CSV/JSON
        seen[lab] = seen.get(lab, 0) + 1
        unique.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    out = view.copy()
    out.columns = unique
    return out


def export_csv(view: pd.DataFrame, specs: Mapping[str, ColumnSpec] | None = None) -> bytes:
    """CSV bytes of `export_frame`, with spreadsheet formulas neutralized (util_io.csv_bytes)."""
    from gdmcd_core.util_io import csv_bytes

    return csv_bytes(export_frame(view, specs))


def export_json(view: pd.DataFrame, specs: Mapping[str, ColumnSpec] | None = None) -> str:
    """A JSON array of row objects of `export_frame`; empty cells are null."""
    frame = export_frame(view, specs).astype(object)
    rows = frame.where(frame.notna(), None).to_dict(orient="records")
    return json.dumps(
        [{k: _plain(v) for k, v in r.items()} for r in rows], indent=1, allow_nan=False, ensure_ascii=False
    )


def _plain(v: Any) -> Any:
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    return v if v is None or isinstance(v, (str, int)) else str(v)


def speculative_warning(view: pd.DataFrame, top: int = TOP_RANKS_CHECKED) -> str | None:
    """The results page's warning when speculative rows are among the first `top` of a view (None when none
    are), naming every reason a row is marked (speculative_reasons): σ, distance, and the trees' disagreement."""
    found = speculative_in_top(view, top)
    if not found:
        return None
    return (
        f"{len(found)} of the top {min(top, len(view))} shown are speculative ({', '.join(found)}): σ above "
        f"{SPECULATIVE_SIGMA_RATIO:g} × Tc, more than L1 = {SPECULATIVE_DISTANCE_L1:g} from every known "
        f"superconductor, or the trees' Tc more than {SPECULATIVE_TREES_RATIO:g} × Tc away from the network's "
        "(the notes column says which), so their Tc is an extrapolation or disputed."
    )


def speculative_in_top(view: pd.DataFrame, top: int = TOP_RANKS_CHECKED) -> list[str]:
    """Formulas of the speculative rows among the first `top` rows of a view (rank order)."""
    if "speculative" not in view.columns or not len(view):
        return []
    head = view.sort_values("rank").head(top) if "rank" in view.columns else view.head(top)
    return [str(f) for f, s in zip(head.get("integer_formula", head.index), head["speculative"], strict=True) if s]
