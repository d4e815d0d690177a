"""Phase analysis of a candidate formula: its known parent, its edit, and whether it is a mixture or known.

A formula is a hypothesis about a *phase*. A solid-state chemist reading one asks: which known compound is
it made from, and how? Is it just that compound plus an impurity? Is it already known? `analyse(formula,
known)` answers with respect to `KnownCompounds` (SuperCon, COD, JARVIS; known.py):

* **Known** (`is_known`): the candidate has the cations of a SuperCon entry in the same ratio and its anion
  content within `ANION_SLACK` anion atoms per formula unit (SuperCon writes YBa2Cu3O7-d as YBa2Cu3O6.93,
  Hg-1223 as HgBa2Ca2Cu3O8.3). A known superconductor is never a discovery.
* **Decomposition**: the candidate as a*P + residual, where P is a known compound that is not itself a
  simple compound and a is the most of P the candidate's cations hold; P of a mixture or a series member must
  have been made (SuperCon or COD: JARVIS-DFT lists hypothetical structures too). The residual classifies it:
  - nothing but anion (within the slack): the same compound as P (an oxygen variant at most);
  - `k` homologous-series blocks: an infinite-layer ACuO2 (A = Ca, Sr) block, the block that builds the
    cuprate series Bi2Sr2Ca(n-1)Cu(n)O(2n+4), Tl2Ba2Ca(n-1)Cu(n)O(2n+4), TlBa2Ca(n-1)Cu(n)O(2n+3) and
    HgBa2Ca(n-1)Cu(n)O(2n+2) (Hg-1245 = Hg-1234 + CaCuO2), or a perovskite ABO3 block (A = alkaline
    earth, Y or a lanthanide; B = a transition metal) of a Ruddlesden-Popper series A(n+1)B(n)O(3n+1)
    (Sr3Ru2O7 = Sr2RuO4 + SrRuO3). A series member is a phase;
  - simple compounds only (binary oxides, fluorides, chlorides, ... of one metal or metalloid at one of its
    common oxidation states, pymatgen's `common_oxidation_states`: MgO, BaO, CuO, CaO, SrO, Y2O3), of at most
    `MAX_IMPURITY_CATIONS` cations, with P holding at least `MAIN_PHASE_MIN_SHARE` of the cations: a
    **mixture**. Making it gives P and the binaries (Ba2Ca3MgCu4HgO11 = HgBa2Ca3Cu4O10 + MgO).
  Over the candidate parents P (the most specific first: a stoichiometric phase before a doped entry, then
  most elements, then most cations held) the kinds rank known > series member > mixture, so a
  homologous-series member is never called a mixture; a block belongs to the parent's own series (ACuO2 on a
  cuprate, ABO3 on a parent holding A and B). A phase whose extra layer is a single binary (YBa2Cu4O8 =
  YBa2Cu3O7 + CuO: double Cu-O chains) reads as a mixture unless it is a known compound itself.
* **Parent and edit**: the parent is P of the decomposition when there is one, else, of the
  `PARENT_CHOICES` known compounds nearest by L1 distance on atomic fractions (within `PARENT_MAX_L1`), the
  one with the simplest edit. The edit (edits.py) writes the candidate, scaled to the parent's formula
  unit, as that parent plus substitutions ("Sr for Ba (1 of 2)"), excess ("+1 O") and deficit or vacancies
  ("-1 Ca"), or "+ MgO" / "+ CaCuO2 block" for a decomposition.
* **Site fit**: each substitution's ionic-radius mismatch (site_fit.py); `site_mismatch` is the largest. A new
  cation the edit adds without substituting anything (`unsited`) has no site in the parent at all.

`phase_columns(formulas, known)` is this analysis as candidate-table columns (with the family, diversity.py).
Amounts are atoms per formula unit; distances are L1 on atomic fractions (0..2).

>>> ref = known_from_formulas(["HgBa2Ca3Cu4O10", "YBa2Cu4O8"], tc_k=[125.0, 80.0], year=[1993, 1988])
>>> a = analyse("Ba2Ca3MgCu4HgO11", ref)
>>> a.is_mixture, a.mixture_of, a.edit
(True, 'HgBa2Ca3Cu4O10 + MgO', '+ MgO')
>>> analyse("Ba4YCu5O11", ref).mixture_of
'YBa2Cu4O8 + 2 BaO + CuO'
>>> b = analyse("HgBa2Ca4Cu5O12", ref)
>>> b.is_mixture, b.edit
(False, '+ CaCuO2 block')
>>> c = analyse("HgBaSrCa3Cu4O10", ref)
>>> c.parent_formula, c.edit, round(c.site_mismatch, 3)
('HgBa2Ca3Cu4O10', 'Sr for Ba (1 of 2)', 0.113)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import format_amounts, parse_formula, to_vector
from gdmcd_core.chem.elements import symbols
from gdmcd_core.chem.valence import typical_valence
from gdmcd_core.design.evidence.diversity import family_of
from gdmcd_core.design.evidence.edits import (
    AMOUNT_TOL,
    ANIONS,
    amount_text,
    describe_edit,
    display_formula,
    edit_terms,
    split_ions,
    unsited_elements,
)
from gdmcd_core.design.evidence.known import SOURCES, KnownCompounds
from gdmcd_core.design.evidence.site_fit import SITE_MISMATCH_MAX, largest_mismatch

# Anion atoms per parent formula unit by which a candidate may differ from a known compound and still be it:
# oxygen non-stoichiometry (YBa2Cu3O7-d, 0 <= d <= 1; HgBa2CuO4+d) is written in SuperCon to the hundredth.
ANION_SLACK = 0.5
# A mixture's main phase holds most (at least this share) of the candidate's cations, and its impurity is made of
# at most MAX_IMPURITY_CATIONS binaries: "a known phase plus an impurity", not a sum of many small compounds.
MAIN_PHASE_MIN_SHARE = 0.6
MAX_IMPURITY_CATIONS = 2
# The sources whose compounds have been made: only they can be a mixture's or a series' main phase (JARVIS-DFT
# holds hypothetical structures too, e.g. SrCaO3).
EXPERIMENTAL = ("supercon", "cod")
# Parents farther than this (L1 on fractions) are not named: the candidate is then described by its elements.
PARENT_MAX_L1 = 0.4
# Nearest known compounds among which the parent of a candidate that is no decomposition is chosen (simplest edit).
PARENT_CHOICES = 10
# Candidate parents tried for a decomposition, those holding the most cations first.
MAX_PARENTS_TRIED = 64
# Homologous-series blocks: infinite-layer ACuO2 and perovskite ABO3 (module docstring).
INFINITE_LAYER_A = frozenset(("Ca", "Sr"))
PEROVSKITE_A = frozenset(
    ("Ca", "Sr", "Ba", "Y", "La", "Ce", "Pr", "Nd", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")
)
TRANSITION_METALS = frozenset(
    "Sc Ti V Cr Mn Fe Co Ni Cu Zn Y Zr Nb Mo Tc Ru Rh Pd Ag Cd Hf Ta W Re Os Ir Pt Au Hg".split()
)


@dataclass(frozen=True)
class PhaseAnalysis:
    """One candidate's parent, edit and flags (module docstring). NaN / "" where there is no parent."""

    parent_formula: str = ""
    parent_source: str = ""
    parent_tc_k: float = float("nan")
    parent_year: float = float("nan")
    parent_distance: float = float("nan")
    edit: str = ""
    is_mixture: bool = False
    mixture_of: str = ""
    is_known: bool = False
    site_mismatch: float = float("nan")
    substitutions: tuple[tuple[str, str, float], ...] = ()
    unsited: tuple[str, ...] = ()  # new cations added without a site (`unsited_elements`)


@dataclass(frozen=True)
class Decomposition:
    """candidate = amount * parent + parts; kind "same", "block" or "mixture"; parts: ((count, formula), ...)."""

    row: int
    amount: float
    kind: str
    parts: tuple[tuple[float, str], ...] = ()


def known_from_formulas(
    formulas: list[str], tc_k: list[float] | None = None, year: list[float] | None = None, source: str = "supercon"
) -> KnownCompounds:
    """A small `KnownCompounds` from formulas (all from one source): for examples and tests."""
    n = len(formulas)
    return KnownCompounds(
        x=np.asarray([to_vector(f) for f in formulas], np.float32).reshape(n, -1 if n else 118),
        formula=np.asarray(formulas, dtype=str),
        source=np.asarray([source] * n, dtype=str),
        tc_k=np.asarray(tc_k if tc_k is not None else [np.nan] * n, np.float64),
        year=np.asarray(year if year is not None else [np.nan] * n, np.float64),
    )


def is_simple(amounts: dict[str, float]) -> bool:
    """A binary of one cation and one anion of ANIONS (MgO, Y2O3, CaF2)."""
    cations, anions = split_ions(amounts)
    return len(cations) == 1 and len(anions) == 1


def contained_amount(cand: dict[str, float], parent: dict[str, float]) -> float:
    """The most formula units of `parent` the candidate's cations hold (0 if it has none of a parent cation).

    >>> contained_amount({"Ba": 4, "Y": 1, "Cu": 5, "O": 11}, {"Y": 1, "Ba": 2, "Cu": 4, "O": 8})
    1.0
    """
    cations, _ = split_ions(parent)
    if not cations:
        return 0.0
    return float(min(cand.get(s, 0.0) / a for s, a in cations.items()))


def residual(cand: dict[str, float], parent: dict[str, float], amount: float) -> dict[str, float]:
    """cand - amount * parent, element by element (anions may be slightly negative), |r| < AMOUNT_TOL dropped."""
    out = {s: cand.get(s, 0.0) - amount * parent.get(s, 0.0) for s in sorted(set(cand) | set(parent))}
    return {s: v for s, v in out.items() if abs(v) >= AMOUNT_TOL}


def _anions_within(res: dict[str, float], needed: dict[str, float], slack: float) -> bool:
    """Every anion of res (or needed) is within `slack` atoms of what `needed` asks for."""
    _, anions = split_ions(res)
    names = set(anions) | set(needed)
    return all(abs(anions.get(s, 0.0) - needed.get(s, 0.0)) <= slack for s in names)


def block_parts(res: dict[str, float], parent: dict[str, float], slack: float) -> tuple[tuple[float, str], ...] | None:
    """The residual as k homologous-series blocks of the parent's series, or None (module docstring): an
    infinite-layer ACuO2 block needs a cuprate parent, a perovskite ABO3 block a parent holding A and B.

    >>> hg1201 = {"Hg": 1, "Ba": 2, "Cu": 1, "O": 4}
    >>> block_parts({"Ca": 1, "Cu": 1, "O": 2}, hg1201, 0.5), block_parts({"Ba": 2, "Cu": 1, "O": 3}, hg1201, 0.5)
    (((1, 'CaCuO2'),), None)
    """
    cations, _ = split_ions(res)
    if len(cations) != 2:
        return None
    (a, na), (b, nb) = sorted(cations.items(), key=lambda kv: kv[0] not in PEROVSKITE_A)
    if abs(na - nb) >= AMOUNT_TOL or na <= 0:
        return None
    infinite_layer = a in INFINITE_LAYER_A and b == "Cu" and "Cu" in parent
    perovskite = a in PEROVSKITE_A and b in TRANSITION_METALS and a in parent and b in parent
    for oxygen, fits in ((2, infinite_layer), (3, perovskite)):
        if fits and _anions_within(res, {"O": oxygen * na}, slack):
            k = round(na) if abs(na - round(na)) < AMOUNT_TOL else na
            return ((k, format_amounts({a: 1, b: 1, "O": oxygen})),)
    return None


def cation_states(symbol: str) -> tuple[int, ...]:
    """Positive common oxidation states of a metal or metalloid (pymatgen), the states of its simple compounds; ()
    for any other element (H, C, N, ...: their binaries, HF or CO2, are no solid impurity phase).

    >>> cation_states("Cu"), cation_states("Y"), cation_states("H")
    ((2,), (3,), ())
    """
    from pymatgen.core import Element

    el = Element(symbol)
    if not (el.is_metal or el.is_metalloid):
        return ()
    return tuple(s for s in el.common_oxidation_states if s > 0)


def _binary(cation: str, state: int, anion: str) -> tuple[int, str]:
    """(cations per formula, formula) of the binary of `cation` at `state` with `anion`: (2, 'Y2O3')."""
    q = -ANIONS[anion]
    g = int(np.gcd(state, q))
    n_c, n_a = q // g, state // g
    return n_c, format_amounts({cation: n_c, anion: n_a})


def simple_parts(res: dict[str, float], anion: str, slack: float) -> tuple[tuple[float, str], ...] | None:
    """The residual as binaries of `anion` at common oxidation states, or None (module docstring).

    >>> simple_parts({"Ba": 2, "Cu": 1, "O": 3}, "O", 0.5)
    ((2, 'BaO'), (1, 'CuO'))
    """
    cations, anions = split_ions(res)
    if not cations or len(cations) > MAX_IMPURITY_CATIONS or any(v < 0 for v in cations.values()):
        return None
    states = {s: cation_states(s) for s in cations}
    if not all(states.values()) or set(anions) - {anion}:
        return None
    q = -ANIONS[anion]
    lo = sum(n * min(states[s]) for s, n in cations.items()) / q
    hi = sum(n * max(states[s]) for s, n in cations.items()) / q
    have = anions.get(anion, 0.0)
    if not lo - slack <= have <= hi + slack:
        return None
    parts = []
    for s, n in cations.items():
        typical = typical_valence(s)
        per, name = _binary(s, int(typical) if typical in states[s] else states[s][0], anion)
        count = n / per
        parts.append((round(count) if abs(count - round(count)) < AMOUNT_TOL else count, name))
    return tuple(sorted(parts, key=lambda p: (-p[0], p[1])))


def classify(cand: dict[str, float], parent: dict[str, float]) -> tuple[str, float, tuple] | None:
    """(kind, amount, parts) of cand = amount * parent + residual, or None: see `Decomposition`."""
    if is_simple(parent):
        return None
    a = contained_amount(cand, parent)
    if a <= 0:
        return None
    res = residual(cand, parent, a)
    slack = ANION_SLACK * a
    cations, _ = split_ions(res)
    if not cations:
        return ("same", a, ()) if _anions_within(res, {}, slack) else None
    blocks = block_parts(res, parent, slack)
    if blocks is not None:
        return "block", a, blocks
    _, cand_anions = split_ions(cand)
    anion = max(cand_anions, key=cand_anions.get) if cand_anions else None
    parts = simple_parts(res, anion, slack) if anion else None
    return ("mixture", a, parts) if parts is not None else None


KIND_ORDER = {"same": 0, "block": 1, "mixture": 2}


def _subset_rows(x: np.ndarray, known: KnownCompounds) -> np.ndarray:
    """Rows of `known` whose element set lies within that of x (118,)."""
    bits = np.packbits(np.asarray(x) > 0)
    return np.flatnonzero(~(known.element_bits() & ~bits).any(1))


def _integer_cations(amounts: dict[str, float]) -> bool:
    """Every cation amount of a formula is whole (HgBa2Ca3Cu4O10.2 yes, Hg0.75Sr0.5Ba1.5Ca2Cu3O8 no)."""
    cations, _ = split_ions(amounts)
    return all(abs(a - round(a)) < AMOUNT_TOL for a in cations.values())


def parent_candidates(x: np.ndarray, known: KnownCompounds) -> np.ndarray:
    """Rows of `known` that could be a decomposition's main phase (elements within the candidate's, at least
    MAIN_PHASE_MIN_SHARE of its cations), the most specific first: a stoichiometric phase (whole cation amounts)
    before a doped entry, then most elements (YBa2Cu4O8 before BaCuO2), then most cations held, then SuperCon,
    COD, JARVIS, then nearest. x: (118,) fractions of the candidate."""
    rows = _subset_rows(x, known)
    if not len(rows):
        return rows
    cols = np.flatnonzero(np.asarray(x) > 0)
    syms = symbols()
    cation = np.array([syms[i] not in ANIONS for i in cols])
    p, c = np.asarray(known.x[rows][:, cols], np.float64), np.asarray(x, np.float64)[cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((p > 0) & cation, c / p, np.inf).min(1)
    with np.errstate(invalid="ignore"):
        share = np.where(np.isfinite(ratio), ratio * p[:, cation].sum(1) / max(c[cation].sum(), 1e-12), 0.0)
    ok = share >= MAIN_PHASE_MIN_SHARE - 1e-9
    rows, share = rows[ok], share[ok]
    rank = np.array([SOURCES.index(s) for s in known.source[rows]])
    dist = l1_distances(x, known, rows)
    n_elements = (p[ok] > 0).sum(1)
    whole = np.array([_integer_cations(known.amounts(int(r))) for r in rows], dtype=bool)
    order = np.lexsort((dist, rank, -np.round(share, 6), -n_elements, ~whole))
    return rows[order][:MAX_PARENTS_TRIED]


def decompose(cand: dict[str, float], x: np.ndarray, known: KnownCompounds) -> Decomposition | None:
    """The best decomposition of a candidate (module docstring): known > block > mixture, most cations first."""
    best: Decomposition | None = None
    for r in parent_candidates(x, known):
        found = classify(cand, known.amounts(int(r)))
        if found is None or (found[0] != "same" and known.source[r] not in EXPERIMENTAL):
            continue
        kind, a, parts = found
        if best is None or KIND_ORDER[kind] < KIND_ORDER[best.kind]:
            best = Decomposition(int(r), a, kind, parts)
        if kind == "same":
            break
    return best


def l1_distances(x: np.ndarray, known: KnownCompounds, rows: np.ndarray | None = None) -> np.ndarray:
    """L1 distances (fractions, 0..2) from x (118,) to `known` rows (all by default), over x's elements only:
    sum_S |x - r| + (1 - sum_S r) for the support S of x."""
    cols = np.flatnonzero(np.asarray(x) > 0)
    sums = known.row_sums() if rows is None else known.row_sums()[rows]
    sub = np.asarray(known.x[:, cols] if rows is None else known.x[rows][:, cols], np.float64)  # x's columns only
    return np.abs(sub - np.asarray(x, np.float64)[cols]).sum(1) + (sums - sub.sum(1))


def known_superconductor(cand: dict[str, float], x: np.ndarray, known: KnownCompounds) -> int | None:
    """The nearest SuperCon entry the candidate is (same cations in the same ratio, anions within the slack:
    YBa2Cu3O7 is YBa2Cu3O6.93), or None."""
    same_set = np.flatnonzero((known.element_bits() == np.packbits(np.asarray(x) > 0)).all(1))
    rows = same_set[known.source[same_set] == "supercon"]
    rows = rows[np.argsort(l1_distances(x, known, rows), kind="stable")]
    for r in rows:
        found = classify(cand, known.amounts(int(r)))
        if found is not None and found[0] == "same":
            return int(r)
    return None


def _parts_text(parts: tuple[tuple[float, str], ...], per: float = 1.0) -> str:
    return " + ".join(f"{'' if abs(n / per - 1) < AMOUNT_TOL else amount_text(n / per) + ' '}{f}" for n, f in parts)


def _parent_fields(known: KnownCompounds, row: int, x: np.ndarray) -> dict:
    return {
        "parent_formula": display_formula(known.amounts(row)),
        "parent_source": str(known.source[row]),
        "parent_tc_k": float(known.tc_k[row]),
        "parent_year": float(known.year[row]),
        "parent_distance": float(l1_distances(x, known, np.array([row]))[0]),
    }


def _from_decomposition(cand: dict[str, float], x: np.ndarray, known: KnownCompounds, d: Decomposition) -> dict:
    fields = _parent_fields(known, d.row, x)
    parent = known.amounts(d.row)
    if d.kind == "same":
        edit, _ = describe_edit(cand, parent)
        return {**fields, "edit": edit}
    extra = _parts_text(d.parts, d.amount)
    if d.kind == "block":
        return {**fields, "edit": f"+ {extra} block"}
    lead = (
        fields["parent_formula"]
        if abs(d.amount - 1) < AMOUNT_TOL
        else f"{amount_text(d.amount)} {fields['parent_formula']}"
    )
    return {**fields, "edit": f"+ {extra}", "is_mixture": True, "mixture_of": f"{lead} + {_parts_text(d.parts)}"}


def simplest_parent(cand: dict[str, float], x: np.ndarray, known: KnownCompounds) -> int | None:
    """Among the PARENT_CHOICES known compounds nearest to the candidate (L1, within PARENT_MAX_L1), the one its
    edit describes in the fewest terms, then one whose edit puts every ion on a site it fits, then a
    stoichiometric one (whole cation amounts), then the nearest: HgBa2Ca3Cu4O10 with "Sr for Ba (1 of 2)" rather
    than a doped SuperCon entry a little nearer with three terms; HgSr2Ca2Cu3O9 as HgBa2Ca2Cu3O8 with Sr for Ba
    rather than as B-1223 with Hg on the boron site. None when none is within PARENT_MAX_L1."""
    dist = l1_distances(x, known)
    near = np.argsort(dist, kind="stable")[:PARENT_CHOICES]
    near = near[dist[near] <= PARENT_MAX_L1]
    if not len(near):
        return None
    cost = [_edit_cost(cand, known.amounts(int(r))) for r in near]
    return int(near[min(range(len(near)), key=cost.__getitem__)])


def _edit_cost(cand: dict[str, float], parent: dict[str, float]) -> tuple[int, bool, bool]:
    """(terms of the edit but anion changes within ANION_SLACK, an ion off its site (a substitution past SITE_MISMATCH_MAX or a new cation without a
    site), not a stoichiometric parent): lower is the simpler, more plausible explanation of the candidate."""
    words, subs = edit_terms(cand, parent)
    misfit = largest_mismatch(subs, parent) > SITE_MISMATCH_MAX or bool(unsited_elements(cand, parent))
    return sum(not _anion_slack(w) for w in words), misfit, not _integer_cations(parent)


def _anion_slack(word: str) -> bool:
    """An edit term that only moves anion content within ANION_SLACK ("+0.7 O"): the parent's own oxygen
    non-stoichiometry (YBa2Cu3O7-d), not counted as a term when choosing the parent."""
    sign, _, rest = word.partition(" ")
    try:
        amount = abs(float(sign))
    except ValueError:
        return False
    return rest in ANIONS and amount <= ANION_SLACK


def _from_nearest(cand: dict[str, float], x: np.ndarray, known: KnownCompounds) -> dict:
    """Parent = `simplest_parent`, with the edit and its site fit."""
    row = simplest_parent(cand, x, known)
    if row is None:
        return {"edit": f"no known compound within L1 {PARENT_MAX_L1:g}"}
    parent = known.amounts(row)
    edit, subs = describe_edit(cand, parent)
    fields = _parent_fields(known, row, x)
    misfit = {"site_mismatch": largest_mismatch(subs, parent), "unsited": unsited_elements(cand, parent)}
    return {**fields, "edit": edit, **misfit, "substitutions": tuple(subs)}


def analyse(formula: str, known: KnownCompounds) -> PhaseAnalysis:
    """The phase analysis of one candidate formula against `known` (module docstring)."""
    cand = parse_formula(formula)
    x = to_vector(formula)
    d = decompose(cand, x, known) if len(known) else None
    fields = _from_decomposition(cand, x, known, d) if d is not None else _from_nearest(cand, x, known)
    sc = known_superconductor(cand, x, known) if len(known) else None
    if sc is not None:  # the SuperCon entry it is: the parent, whatever else the decomposition found
        fields = {**fields, **_parent_fields(known, sc, x), "edit": describe_edit(cand, known.amounts(sc))[0]}
    return PhaseAnalysis(**fields, is_known=sc is not None)


def phase_columns(formulas: list[str], known: KnownCompounds) -> pd.DataFrame:
    """The phase analysis columns (phases.py, site_fit.py, diversity.py) of integer formulas."""
    rows = []
    for f in formulas:
        a = analyse(f, known)
        rows.append(
            {
                "parent_formula": a.parent_formula,
                "parent_source": a.parent_source,
                "parent_tc_k": a.parent_tc_k,
                "parent_year": a.parent_year,
                "parent_distance": a.parent_distance,
                "edit": a.edit,
                "is_mixture": a.is_mixture,
                "mixture_of": a.mixture_of,
                "is_known": a.is_known,
                "site_mismatch": a.site_mismatch,
                "site_misfit": bool(a.site_mismatch > SITE_MISMATCH_MAX or a.unsited),
                "family": family_of(a.parent_formula, f),
            }
        )
    columns = ["parent_formula", "parent_source", "parent_tc_k", "parent_year", "parent_distance", "edit"]
    columns += ["is_mixture", "mixture_of", "is_known", "site_mismatch", "site_misfit", "family"]
    return pd.DataFrame(rows, columns=columns)


__all__ = [
    "ANIONS",
    "ANION_SLACK",
    "MAIN_PHASE_MIN_SHARE",
    "MAX_IMPURITY_CATIONS",
    "PARENT_MAX_L1",
    "Decomposition",
    "PhaseAnalysis",
    "analyse",
    "block_parts",
    "classify",
    "contained_amount",
    "decompose",
    "known_from_formulas",
    "known_superconductor",
    "phase_columns",
    "simple_parts",
]
