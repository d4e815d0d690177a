"""The candidate table of a design run: ranked, one row per distinct integer formula.

Columns (K for temperatures, eV/atom for energies, fractions in atoms per atom):

    rank                      1 = best score
    candidate                 index of the (first) candidate with this integer formula (trajectory column)
    n_duplicates              how many candidates ended at this integer formula
    source                    where the start came from (training formula, interpolation, grid, user)
    path                      how the row's formula was reached: "stage 3, best integer (step s)" (the best of
                              the stage-3 checks; "end of stage 2" at the first check, "last step" with
                              integer_select final, "stage 2" for a run stopped in stage 2), "<method>
                              (generation g)", or "refined from candidate C": the integer refinement
                              (loop/refine.py) found it from candidate C's formula, and every start/stage column
                              of the row is C's; "site repair of candidate C (Sr for Be)" or "site variant of
                              candidate C (Sr for 1 of 2 Ba)": site_repair.py swapped a misfit ion of C's row, or
                              one ion of a known superconductor, for an allowed ion that fits its site
    initial_formula           the start composition as optimized (after pins/exclusions), fractions
    initial_tc_k              model Tc of the start
    optimized_formula         stage-2 composition (fractions)
    optimized_tc_k            model Tc of the stage-2 composition
    final_tc_k                model Tc of the continuous composition after stage 3
    integer_formula           the integer formula (ES: two amounts may be fractional)
    reduced_formula           the integer formula divided by the gcd of its amounts (Ba4Y2Cu6O14 -> YBa2Cu3O7)
    n_atoms                   its cell size N (one of the allowed N)
    integer_tc_k              model Tc of the integer formula, re-featurized from the formula text
    integer_tc_std_k          ensemble sd of that Tc (0 for a single model)
    integer_tc_trees_k, integer_tc_consensus_k   a second opinion on that Tc (only when the checkpoint has
                              trees beside it, model/trees.py): gradient-boosted trees on element statistics,
                              and the consensus (their weighted mean where the ensemble says Tc > 0, the
                              ensemble's weight fitted on validation rows: model/trees.py). Not used for
                              ranking; a candidate the trees rate far lower may exploit a blind spot of the
                              network the optimizer climbed
    p_superconductor, tc_if_sc_k   the two-part answer for the integer formula (only when the checkpoint has a
                              classifier beside it, model/sc_classifier.py and model/hurdle.py): P(Tc > 0 K), and
                              the Tc if superconducting (the consensus where the ensemble says Tc > 0, the
                              trees' Tc where it says 0). Not used for ranking
    high_pressure             a hydride (chem.composition.is_hydride) or a run at pressure_gpa > 0: the model has
                              no pressure input, so the Tc is a high-pressure value, out of the model's scope
    delta_tc_k                integer_tc_k - initial_tc_k
    integer_loss              L_int^N (or L_int,ES^N) at n_atoms of the composition the formula came from (empty
                              for a site repair or variant: nothing was rounded to it)
    integer_step              the step whose composition gave the formula (integer_select "best": the
                              stage-3 check with the highest model score; else the last step; last step + 1:
                              found by the integer refinement, design/loop/refine.py)
    rounded_formula           rule-based baseline: the stage-2 composition rounded (integer_loss.round_baseline)
    rounded_n_atoms, rounded_tc_k
    in_supercon               the integer formula's composition is a SuperCon entry (4-decimal key)
    elements_seen_in_training its element set occurs in a training composition (paper Table 4 vs 5)
    nearest_supercon_formula, nearest_supercon_tc_k, nearest_supercon_distance (L1 in fractions, 0..2)
    parent_formula, parent_source, parent_tc_k, parent_year, parent_distance
                              the known compound the candidate is made from (phases.py: SuperCon, COD or JARVIS;
                              Tc in K and first year where it is a SuperCon entry; L1 distance in fractions)
    edit                      the candidate as that parent plus its edit: "Sr for Ba (1 of 2)", "+1 O", "-1 Ca",
                              "+ CaCuO2 block" (homologous series), "+ MgO" (a mixture)
    is_mixture, mixture_of    the candidate is a known compound plus simple binaries: "HgBa2Ca3Cu4O10 + MgO"
    is_known                  the candidate is a SuperCon entry (up to oxygen stoichiometry): never a discovery
    site_mismatch             largest relative ionic-radius mismatch of its substitutions (site_fit.py), empty
                              without one; site_misfit: it exceeds site_fit.SITE_MISMATCH_MAX (0.15), or the edit
                              adds a new cation without a site for it (phases.unsited_elements: '+1 Cs')
    family, family_rank       the parent phase (else the element set) and the row's place in it (diversity.py)
    score_k                   ranking score: integer_tc_k, or integer_tc_k - kappa * integer_tc_std_k for LCB
    only_pinned_elements      the integer formula holds nothing but pinned elements (ranked last)
    passes_chemistry_checks   neither charge_neutral nor cu_valence_plausible is False; with
                              CandidateContext.credible_first, rows that fail rank after those that pass
                              (as the context asks: mixtures after every other row, then site misfits,
                              then failed checks, then known superconductors, then rows past max_per_family
                              of their family, each after the others; `rank_rows`)
    + validity.candidate_flags columns (charge_neutral, electronegativity_ok, all_metal, radioactive,
      toxic, flagged_elements, nearest_training_distance, nearest_training_index, new_element_set);
      the three SMACT columns are left empty for formulas of more than VALIDITY_MAX_ELEMENTS (24) elements
    cu_valence                formal Cu oxidation state of the integer formula, other elements at their typical
                              valence (chem.valence.cu_valence); empty without Cu, for an intermetallic or when
                              an element's valence is ambiguous
    cu_valence_plausible      cu_valence within chem.valence.CU_VALENCE_WINDOW (1.8..2.6, superconducting
                              cuprates); empty where cu_valence is
    + formation_energy_ev_atom when a formation-energy model is given
    e_hull_ev_atom, e_hull_sigma_ev_atom   energy above the JARVIS convex hull of the integer formula's
                              system and its uncertainty from the surrogate's error (design/stability/energy.py);
                              empty without a formation-energy model or the JARVIS data
    + frac_<El>: stage-2 fractions, for every element present in some stage-2 composition

`build_candidates(context, ...)` builds it; `candidate_context(loop)` is what it needs from a design loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import (
    FRACTION_EPS,
    format_vector,
    is_hydride,
    parse_formula,
    reduced_formula,
    reduced_key,
    to_vector,
)
from gdmcd_core.chem.distance import nearest_l1
from gdmcd_core.chem.elements import symbols
from gdmcd_core.chem.valence import CU_VALENCE_WINDOW, cu_valence
from gdmcd_core.data.paths import JARVIS_FILE, find_data_dir
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.design.evidence.known import KnownCompounds, cached_known_compounds
from gdmcd_core.design.evidence.phases import phase_columns
from gdmcd_core.design.evidence.ranking import rank_rows, ranking_of
from gdmcd_core.design.evidence.site_repair import integers_of, repairs_of_table
from gdmcd_core.design.objective.integer_loss import Integerized, round_baseline
from gdmcd_core.design.stability import energy as stability
from gdmcd_core.design.stability.hull import HullReference
from gdmcd_core.model.hurdle import conditional_tc
from gdmcd_core.model.sc_classifier import companion_classifier
from gdmcd_core.model.trees import EVEN_WEIGHT, consensus, second_opinion

if TYPE_CHECKING:
    from gdmcd_core.design.loop.optimize import DesignLoop

# SMACT charge tests only up to this many elements. validity.py decides large formulas with an
# exact dynamic programme in milliseconds; the cap only guards against pathological inputs.
VALIDITY_MAX_ELEMENTS = 24


def novelty_columns(x: np.ndarray, reference: ReferenceData) -> pd.DataFrame:
    """in_supercon, elements_seen_in_training and the nearest SuperCon entry for compositions x (B, 118)."""
    keys = reference.supercon_keys()
    sets = reference.element_sets()
    j, d = nearest_l1(x, reference.sc_x)
    has = j >= 0
    return pd.DataFrame(
        {
            "in_supercon": [reduced_key(r) in keys for r in x],
            "elements_seen_in_training": [frozenset(np.flatnonzero(r > FRACTION_EPS).tolist()) in sets for r in x],
            "nearest_supercon_formula": np.where(has, np.asarray(reference.sc_formula, dtype=object)[j.clip(0)], ""),
            "nearest_supercon_tc_k": np.where(has, np.asarray(reference.sc_tc_k, np.float64)[j.clip(0)], np.nan),
            "nearest_supercon_distance": d,
        }
    )


def _validity(formulas: list[str], train_x: np.ndarray) -> pd.DataFrame | None:
    """validity.candidate_flags for every formula; None if that module is not available.

    Formulas with more than VALIDITY_MAX_ELEMENTS elements get the cheap flags only (radioactive, toxic, distances,
    element-set novelty); their charge_neutral / electronegativity_ok / all_metal are left empty.
    """
    try:
        from gdmcd_core.design.evidence.validity import candidate_flags
    except ImportError:
        return None
    n_el = np.array([len(parse_formula(f)) for f in formulas], dtype=np.int64)
    small = n_el <= VALIDITY_MAX_ELEMENTS
    try:
        parts = []
        if small.any():
            parts.append(candidate_flags([f for f, k in zip(formulas, small, strict=True) if k], train_x))
        if (~small).any():
            big = candidate_flags([], train_x)  # the column layout
            big = _cheap_flags([f for f, k in zip(formulas, small, strict=True) if not k], train_x, list(big.columns))
            parts.append(big)
    except Exception as exc:  # flags are advisory; a failure must not lose the run's results
        warnings.warn(f"validity flags failed: {exc}", stacklevel=2)
        return None
    order = np.concatenate([np.flatnonzero(small), np.flatnonzero(~small)])
    flags = pd.concat(parts, ignore_index=True)
    flags.index = order
    flags = flags.sort_index().reset_index(drop=True)
    return flags.drop(columns=[c for c in ("formula",) if c in flags.columns])


def _cheap_flags(formulas: list[str], train_x: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The flags of validity.candidate_flags that need no SMACT enumeration; the others empty."""
    from gdmcd_core.chem.elements import TOXIC, radioactive_symbols
    from gdmcd_core.design.evidence.validity import training_index

    c = np.stack([to_vector(f) for f in formulas]).astype(np.float32)
    index = training_index(train_x)
    dist, nearest = index.nearest(c)
    radioactive, toxic = set(radioactive_symbols()), set(TOXIC)
    rows = []
    for f in formulas:
        present = list(parse_formula(f))
        rows.append(
            {
                "formula": f,
                "radioactive": any(s in radioactive for s in present),
                "toxic": any(s in toxic for s in present),
                "flagged_elements": " ".join(s for s in present if s in radioactive or s in toxic),
            }
        )
    out = pd.DataFrame(rows)
    out["nearest_training_distance"] = dist
    out["nearest_training_index"] = nearest
    out["new_element_set"] = ~index.has_element_set(c)
    for col in columns:
        if col not in out.columns:
            out[col] = pd.Series([pd.NA] * len(out), dtype="boolean")
    return out[columns]


@dataclass(frozen=True)
class CandidateContext:
    """What the table needs from a run: the model as callables, the reference data and the pin arrays.

    predict: x (B, 118) -> (mean Tc (B,), sd (B,)) in K; formation_energy: x (B, 118) -> E_f (B,) in eV/atom;
    lower_frac / exact_frac: (118,) pinned fractions (None when there are none); pinned_mask: (118,) bool;
    kappa: the LCB weight used for ranking (0 ranks by the mean).
    formation_energy_sigma: its error in eV/atom (default: the callable's `sigma_ev_atom`, see
    stability.FormationEnergyFn); hull_reference: the hull's known compounds (default: JARVIS, loaded once;
    the callable's `hull` False skips the hull).
    """

    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    reference: ReferenceData
    allowed_ns: tuple[int, ...]
    lower_frac: np.ndarray | None
    exact_frac: np.ndarray | None
    pinned_mask: np.ndarray
    kappa: float = 0.0
    formation_energy: Callable[[np.ndarray], np.ndarray] | None = None
    formation_energy_sigma: float | None = None
    hull_reference: HullReference | None = None
    credible_first: bool = False  # rows failing a chemistry check (passes_chemistry_checks) rank after the others
    second_opinion: Callable[[np.ndarray], np.ndarray] | None = None  # x (B, 118) -> trees' Tc (B,) in K
    consensus_weight: float = EVEN_WEIGHT  # the ResNet's weight in its consensus with those trees
    sc_probability: Callable[[np.ndarray], np.ndarray] | None = None  # x (B, 118) -> P(superconductor) (B,)
    pressure_gpa: float = 0.0  # the run's pressure (DesignConfig.pressure_gpa): above 0, every row is high_pressure
    known: KnownCompounds | None = None  # phase analysis reference (default: SuperCon + COD of `reference`)
    mixtures_last: bool = False  # rank mixtures after every other row
    misfits_last: bool = False  # rank rows with a substitution past SITE_MISMATCH_MAX after those that fit
    known_last: bool = False  # rank known superconductors after the new candidates
    max_per_family: int = 0  # rows of a family past this many rank after the others of their tier; 0 = no cap
    site_repair: bool = False  # add site repairs of the misfit rows (site_repair.py)
    allowed: tuple[str, ...] = ()  # elements a site repair may put in (not excluded, not exact-pinned)
    method: str = "gradient"  # the search method, for the path column
    steps2: int | None = None  # stage-2 steps of a gradient run (None: the path names no stage)
    integer_select: str = "best"


def candidate_context(engine: DesignLoop) -> CandidateContext:
    """What the candidate table needs from an engine: callables and arrays, not the engine."""
    c, cfg = engine.constraints, engine.config
    trees = second_opinion(engine.source_model)[0]  # unusable trees: none
    return CandidateContext(
        predict=engine.predict,
        reference=engine.reference,
        allowed_ns=engine.allowed_ns,
        lower_frac=c.lower_frac if c.atleast_mask.any() else None,
        exact_frac=c.exact_frac if c.exact_mask.any() else None,
        pinned_mask=(c.atleast_mask | c.exact_mask).astype(bool),
        kappa=cfg.kappa if cfg.objective == "lcb" else 0.0,
        formation_energy=engine.predict_formation_energy if engine.fe_model is not None else None,
        credible_first=cfg.valence_weight > 0 or cfg.cu_valence_weight > 0,  # the chemistry terms are on
        second_opinion=getattr(trees, "predict", None),
        consensus_weight=getattr(trees, "consensus_weight", EVEN_WEIGHT),
        sc_probability=getattr(companion_classifier(engine.source_model)[0], "probability", None),
        pressure_gpa=cfg.pressure_gpa,
        known=cached_known_compounds(engine.reference, _jarvis_reference()),
        mixtures_last=cfg.mixtures_last,
        misfits_last=cfg.misfits_last,
        known_last=cfg.known_last,
        max_per_family=cfg.max_per_family,
        site_repair=cfg.site_repair,
        allowed=tuple(s for s, ok in zip(symbols(), c.free_mask, strict=True) if ok),
        method=cfg.method,
        steps2=cfg.steps2,
        integer_select=cfg.integer_select,
    )


def _jarvis_reference() -> HullReference | None:
    """The hull's JARVIS compounds for the phase analysis; None (silently: the hull columns say why when they are
    asked for) where the data folder has no JARVIS file."""
    try:
        find_data_dir((JARVIS_FILE,), download=False)
    except OSError:
        return None
    return stability.default_hull_reference()


def cu_valence_columns(formulas: list[str]) -> pd.DataFrame:
    """cu_valence (float, NaN where undefined) and cu_valence_plausible (nullable bool) of formulas."""
    v = [cu_valence(parse_formula(f)) for f in formulas]
    lo, hi = CU_VALENCE_WINDOW
    ok = [pd.NA if x is None else bool(lo <= x <= hi) for x in v]
    return pd.DataFrame(
        {
            "cu_valence": np.array([np.nan if x is None else x for x in v], dtype=np.float64),
            "cu_valence_plausible": pd.array(ok, dtype="boolean"),
        }
    )


def _stability_columns(ctx: CandidateContext, formulas: list[str], xi: np.ndarray) -> pd.DataFrame:
    """formation_energy_ev_atom (with a model) and the e_hull columns (always; empty without a model)."""
    fe = ctx.formation_energy
    e_form = fe(xi) if fe is not None and len(formulas) else None
    sigma = ctx.formation_energy_sigma if ctx.formation_energy_sigma is not None else getattr(fe, "sigma_ev_atom", None)
    want_hull = e_form is not None and getattr(fe, "hull", True)
    ref = (ctx.hull_reference or stability.default_hull_reference()) if want_hull else None
    hull = stability.hull_columns(formulas, e_form if want_hull else None, sigma, ref)
    return hull if e_form is None else pd.concat([pd.DataFrame({"formation_energy_ev_atom": e_form}), hull], axis=1)


def _passes_checks(table: pd.DataFrame) -> np.ndarray:
    """(M,) bool: no check failed: SMACT charge neutrality and the cuprate Cu valence (empty counts as passed)."""
    ok = np.ones(len(table), bool)
    for col in ("charge_neutral", "cu_valence_plausible"):
        if col in table.columns:
            ok &= ~(table[col].astype("boolean") == False).fillna(False).to_numpy(bool)  # noqa: E712
    return ok


def path_labels(ctx: CandidateContext, integer_step: np.ndarray, lineage: np.ndarray) -> list[str]:
    """The path column (module docstring) of B rows: lineage[r] != r where row r was refined from another."""
    return [_path(ctx, step, origin, r) for r, (step, origin) in enumerate(zip(integer_step, lineage, strict=True))]


def _path(ctx: CandidateContext, step: int, origin: int, row: int) -> str:
    if origin != row:
        return f"refined from candidate {origin}"
    if ctx.method != "gradient":
        return f"{ctx.method} (generation {step})"
    if step < 0 or ctx.steps2 is None:
        return ""
    stage = "stage 2" if step < ctx.steps2 else "end of stage 2" if step == ctx.steps2 else "stage 3"
    return f"{stage}, {'best integer' if ctx.integer_select == 'best' else 'last step'} (step {step})"


def _row_table(
    ctx: CandidateContext,
    x: tuple[np.ndarray, np.ndarray, np.ndarray],
    start_labels: list[str],
    integ: Integerized,
    steps: np.ndarray,
    lineage: np.ndarray,
    paths: list[str] | None = None,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
    """One row per candidate before deduplication, each with its lineage's start and stage columns; and the
    distinct formulas' fractions (U, 118) with their positions. x: (x_start, x_stage2, x_final), (B, 118) each."""
    x_start, x_stage2, x_final = x
    rounded = round_baseline(x_stage2, ctx.allowed_ns, ctx.lower_frac, ctx.exact_frac)
    tc0, _ = ctx.predict(x_start)
    tc2, _ = ctx.predict(x_stage2)
    tc3, _ = ctx.predict(x_final)
    # Tc of the integer and rounded formulas, re-featurized from the formula text (once per formula)
    uniq = sorted(set(integ.formulas) | set(rounded.formulas))
    ux = np.stack([to_vector(f) for f in uniq]) if uniq else np.zeros((0, 118))
    u_tc, u_sd = ctx.predict(ux)
    pos = {f: i for i, f in enumerate(uniq)}
    ii = np.array([pos[f] for f in integ.formulas], dtype=np.int64)
    ir = np.array([pos[rounded.formulas[c]] for c in lineage], dtype=np.int64)
    table = pd.DataFrame(
        {
            "candidate": lineage,
            "source": [start_labels[c] for c in lineage],
            "path": paths or path_labels(ctx, steps, lineage),
            "initial_formula": [format_vector(x_start[c]) for c in lineage],
            "initial_tc_k": tc0[lineage],
            "optimized_formula": [format_vector(x_stage2[c]) for c in lineage],
            "optimized_tc_k": tc2[lineage],
            "final_tc_k": tc3[lineage],
            "integer_formula": integ.formulas,
            "n_atoms": integ.n_atoms,
            "integer_tc_k": u_tc[ii],
            "integer_tc_std_k": u_sd[ii],
            "delta_tc_k": u_tc[ii] - tc0[lineage],
            "integer_loss": integ.loss,
            "integer_step": steps,
            "rounded_formula": [rounded.formulas[c] for c in lineage],
            "rounded_n_atoms": np.asarray(rounded.n_atoms)[lineage],
            "rounded_tc_k": u_tc[ir],
        }
    )
    for name, column in _second_opinion_columns(ctx, ux, u_tc).items():
        table[name] = column[ii]
    return table, ux, pos


def _second_opinion_columns(ctx: CandidateContext, ux: np.ndarray, u_tc: np.ndarray) -> dict[str, np.ndarray]:
    """Per distinct formula (ux (U, 118), the ensemble's Tc u_tc (U,) in K): the trees' Tc and the consensus when
    the context has trees; P(superconductor) and the Tc if superconducting (model/hurdle.py) when it has a
    classifier; high_pressure always (a hydride, or a run at a pressure above 0: out of the model's scope)."""
    out = {"high_pressure": is_hydride(ux) | (ctx.pressure_gpa > 0) if len(ux) else np.zeros(0, bool)}
    u_trees = None
    if ctx.second_opinion is not None:
        u_trees = np.asarray(ctx.second_opinion(ux), dtype=np.float64)
        out["integer_tc_trees_k"] = u_trees
        out["integer_tc_consensus_k"] = consensus(u_tc, u_trees, ctx.consensus_weight)
    if ctx.sc_probability is not None:
        out["p_superconductor"] = np.asarray(ctx.sc_probability(ux), dtype=np.float64)
        out["tc_if_sc_k"] = conditional_tc(u_tc, np.zeros(len(u_tc)), u_trees, ctx.consensus_weight)[0]
    return out


def build_candidates(
    ctx: CandidateContext,
    x_start: np.ndarray,
    start_labels: list[str],
    x_stage2: np.ndarray,
    x_final: np.ndarray,
    integer: Integerized,
    integer_step: np.ndarray | None = None,
    refined_from: np.ndarray | None = None,
) -> pd.DataFrame:
    """The ranked, deduplicated table (see module docstring) for B candidates.

    x_start, x_stage2, x_final: (B, 118) full compositions; start_labels: B strings;
    integer: the integer formulas to report; integer_step: (B,) the step each was taken at;
    refined_from: (B,) the candidate whose lineage each row's formula continues (loop/refine.py; None: its own).
    """
    B = len(x_final)
    lineage = np.arange(B) if refined_from is None else np.asarray(refined_from, np.int64)
    steps = np.full(B, -1) if integer_step is None else np.asarray(integer_step)
    xs = (np.asarray(x_start), np.asarray(x_stage2), np.asarray(x_final))
    table = _ranked_table(ctx, xs, start_labels, integer, steps, lineage)
    known = ctx.known if ctx.known is not None else cached_known_compounds(ctx.reference, ctx.hull_reference)
    args = (ctx.predict, ctx.kappa, known, ctx.allowed, ctx.pinned_mask, ctx.allowed_ns)
    repairs = repairs_of_table(table, *args) if ctx.site_repair else []
    if not repairs:
        return table
    # the repaired formulas as rows of their source candidates' lineage, ranked with the others
    src = np.array([r.candidate for r in repairs], dtype=np.int64)
    new = _ranked_table(ctx, xs, start_labels, integers_of(repairs), steps[src], src, [r.path for r in repairs])
    both = pd.concat([table, new], ignore_index=True)[table.columns]
    both = both.sort_values(
        ["only_pinned_elements", "score_k", "candidate"], ascending=[True, False, True], kind="stable"
    )
    return rank_rows(both.assign(rank=np.arange(1, len(both) + 1)).reset_index(drop=True), **ranking_of(ctx))


def _ranked_table(
    ctx: CandidateContext,
    xs: tuple[np.ndarray, np.ndarray, np.ndarray],
    start_labels: list[str],
    integer: Integerized,
    steps: np.ndarray,
    lineage: np.ndarray,
    paths: list[str] | None = None,
) -> pd.DataFrame:
    """build_candidates' table of the rows given (one per integer formula), ranked; paths: the path column."""
    ref = ctx.reference
    table, ux, pos = _row_table(ctx, xs, start_labels, integer, steps, lineage, paths)
    table["score_k"] = table["integer_tc_k"] - ctx.kappa * table["integer_tc_std_k"]
    # A formula made of pinned elements alone (e.g. "H4" in a hydride search, H >= 0.5) is not the
    # compound the user asked for: it stays in the table, flagged, and ranks after the others.
    pinned = ctx.pinned_mask
    only = (ux[[pos[f] for f in integer.formulas]][:, ~pinned] <= 0).all(1) & bool(pinned.any())
    table["only_pinned_elements"] = only
    table = table.sort_values(
        ["only_pinned_elements", "score_k", "candidate"], ascending=[True, False, True], kind="stable"
    )
    counts = table["integer_formula"].value_counts()
    table = table.drop_duplicates("integer_formula", keep="first").reset_index(drop=True)
    table.insert(0, "n_duplicates", table["integer_formula"].map(counts).astype(int).to_numpy())
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    reduced = [reduced_formula(f) for f in table["integer_formula"]]
    table.insert(table.columns.get_loc("integer_formula") + 1, "reduced_formula", reduced)

    xi = ux[[pos[f] for f in table["integer_formula"]]] if len(table) else np.zeros((0, 118))
    formulas = list(table["integer_formula"])
    known = ctx.known if ctx.known is not None else cached_known_compounds(ref, ctx.hull_reference)
    table = pd.concat([table, novelty_columns(xi, ref), phase_columns(formulas, known)], axis=1)
    flags = _validity(formulas, ref.all_x)
    if flags is not None and len(flags) == len(table):
        table = pd.concat([table, flags], axis=1)
    table = pd.concat([table, cu_valence_columns(formulas), _stability_columns(ctx, formulas, xi)], axis=1)
    table = rank_rows(table.assign(passes_chemistry_checks=_passes_checks(table)), **ranking_of(ctx))
    # stage-2 fractions of the kept rows (their lineage's), for the elements that occur in any stage-2 composition
    syms = symbols()
    x2 = xs[1][table["candidate"].to_numpy()] if len(table) else np.zeros((0, 118))
    present = np.flatnonzero((xs[1] > FRACTION_EPS).any(0))
    fr = pd.DataFrame({f"frac_{syms[i]}": np.round(x2[:, i], 6) for i in present})
    return pd.concat([table, fr], axis=1)


__all__ = ["CandidateContext", "build_candidates", "novelty_columns", "rank_rows"]
