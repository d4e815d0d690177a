"""Site repair: misfit ions swapped for ions that fit, and clean variants of known superconductors.

The optimizer climbs the model, not a crystal: it often reaches a known phase with an ion on a site far too
small or too large for it (Be2+ or Mg2+ on the Ca2+ site of Hg-1234; site_fit.py measures it), or a known
superconductor itself. A solid-state chemist reading such a row keeps the idea (this parent, this kind of edit)
and writes the formula she would make. `site_repairs(table, ...)` does the same after the candidate table is
built (evidence/candidates.py, `DesignConfig.site_repair`):

* **Repair** of a row whose largest substitution mismatch exceeds `site_fit.SITE_MISMATCH_MAX`: for each
  substitution "new for old" past the threshold (largest mismatch first) whose new element is not in the parent
  (a host element moved to another site is left alone: swapping it would swap the host too), the replacement
  ions are the elements the run allows (not excluded, not pinned; metals on a cation site, anion formers on an
  anion site) whose ion, at the charge the site-fit rules give it on the old ion's site (`site_fit.ion_states`),
  has the new ion's charge (the formula stays as charge-balanced as it was) and a Shannon radius within
  SITE_MISMATCH_MAX of the old ion's there. Every atom of `new` becomes the replacement; several misfit
  substitutions are repaired one at a time, each keeping the replacement the model scores best.
* **Variant** of a row that is a known superconductor (never a discovery): one atom of one of its cations, in
  its formula unit or in the doubled cell (a site held once is then half substituted), swapped for an allowed
  ion of the same charge whose radius is within SITE_MISMATCH_MAX of it: the classic doping route.
* Of each row's options, only those with a cell size the run allows (`allowed_ns`) and a predicted Tc of at
  least `MIN_TC_SHARE` of the source row's are considered; in the model's order, the first `REPAIRS_PER_ROW`
  that `clean` accepts (phases.analyse: not known, not a mixture, every ion on a site it fits; `OPTIONS_TRIED`
  analysed at most) become new rows. Their start and stage columns are their source row's, their path says
  "site repair of candidate C (Sr for Be)" or "site variant of candidate C (Sr for 1 of 2 Ba)", and their
  integer_loss is empty (no optimized composition was rounded to them).

A pinned element is never swapped out (the user asked for it). The new rows then go through the whole table
(phase analysis, checks, ranking) like every other row. Rows with a new cation and no site for it (`unsited`)
are not repaired: there is no site to fit.

>>> parent = {"Hg": 1, "Ba": 2, "Ca": 3, "Cu": 4, "O": 10}
>>> sorted(replacements("Mg", "Ca", parent, ["Mg", "Sr", "Cd", "Na", "La", "Ba", "Zn"]))
['Cd', 'Sr']
>>> swap("Ba2Ca2MgCu4HgO10", "Mg", "Sr")
'Ba2SrCa2Cu4HgO10'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from pymatgen.core import Element

from gdmcd_core.chem.composition import format_amounts, parse_formula, to_vector
from gdmcd_core.chem.elements import symbols
from gdmcd_core.chem.valence import ANION_FORMERS
from gdmcd_core.design.evidence.known import KnownCompounds
from gdmcd_core.design.evidence.phases import PhaseAnalysis, analyse
from gdmcd_core.design.evidence.site_fit import SITE_MISMATCH_MAX, ion_states, radius_mismatch
from gdmcd_core.design.objective.integer_loss import Integerized

Scorer = Callable[[np.ndarray], np.ndarray]  # x (B, 118) -> the ranking score (B,)
Model = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # x (B, 118) -> (score (B,), predicted Tc (B,)) in K

# Repairs or variants kept per row (the model's best first).
REPAIRS_PER_ROW = 5
# A repair or variant whose predicted Tc is below this share of its source row's is not kept: the swap lost what
# the search found.
MIN_TC_SHARE = 0.5
# Repairs or variants of one row analysed (the model's best first) to find REPAIRS_PER_ROW that are `clean`.
OPTIONS_TRIED = 30


@dataclass(frozen=True)
class Repair:
    """A repaired formula: `formula` from the table row of candidate `candidate` by the swaps in `note`."""

    candidate: int
    formula: str
    note: str
    kind: str = "repair"  # "repair" (of a misfit row) or "variant" (of a known superconductor)

    @property
    def path(self) -> str:
        return f"site {self.kind} of candidate {self.candidate} ({self.note})"


def replacements(new: str, old: str, parent: dict[str, float], allowed: Sequence[str]) -> list[str]:
    """The allowed elements that can take the site of `old` in `parent` in place of `new` (module docstring):
    the new ion's charge, a radius within SITE_MISMATCH_MAX of the old ion's; never `new` or `old` itself."""
    charge, _ = ion_states(new, old)
    if charge is None:
        return []
    anion_site = old in ANION_FORMERS
    out = []
    for alt in allowed:
        if alt in (new, old) or (alt in ANION_FORMERS) != anion_site or not (anion_site or _is_metal(alt)):
            continue
        if ion_states(alt, old)[0] != charge:
            continue
        mismatch = radius_mismatch(alt, old, parent)
        if mismatch == mismatch and mismatch <= SITE_MISMATCH_MAX:
            out.append(alt)
    return out


@cache
def _is_metal(symbol: str) -> bool:
    return bool(Element(symbol).is_metal)


def swap(formula: str, new: str, alt: str) -> str:
    """The formula with every atom of `new` replaced by `alt`."""
    amounts = parse_formula(formula)
    n = amounts.pop(new)
    amounts[alt] = amounts.get(alt, 0.0) + n
    return format_amounts(amounts)


def _misfits(formula: str, known: KnownCompounds) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """(parent amounts, misfit substitutions (new, old), largest mismatch first) of one formula."""
    a = analyse(formula, known)
    if not a.substitutions or not a.parent_formula:
        return {}, []
    parent = parse_formula(a.parent_formula)
    # a host element moved onto another site ("La for Cu" in a La cuprate) is not repaired: swapping it would
    # swap the host too
    scored = [(radius_mismatch(new, old, parent), new, old) for new, old, _ in a.substitutions if new not in parent]
    bad = sorted((m, new, old) for m, new, old in scored if m == m and m > SITE_MISMATCH_MAX)
    return parent, [(new, old) for _, new, old in reversed(bad)]


def _repairs_of(
    formula: str, known: KnownCompounds, model: Model, allowed: Sequence[str], pinned: tuple[str, ...]
) -> list[tuple[str, str]]:
    """(formula, note) repairs of one misfit formula (module docstring); pinned ions stay."""
    parent, bad = _misfits(formula, known)
    bad = [(new, old) for new, old in bad if new not in pinned]
    if not bad:
        return []
    new, old = bad[0]
    options = []
    for alt in replacements(new, old, parent, allowed):
        f, note = swap(formula, new, alt), f"{alt} for {new}"
        for new2, old2 in bad[1:]:  # the remaining misfit substitutions, one at a time, the best replacement each
            alts = replacements(new2, old2, parent, allowed) if new2 in parse_formula(f) else []
            if alts:
                tries = [swap(f, new2, a) for a in alts]
                best = int(np.argmax(model(np.stack([to_vector(t) for t in tries]))[0]))
                f, note = tries[best], f"{note}, {alts[best]} for {new2}"
        if f != formula:
            options.append((f, note))
    return options


def _swaps(amounts: dict[str, float], allowed: Sequence[str], pinned: tuple[str, ...]) -> list[tuple[str, str]]:
    """(formula, note) for every one-atom swap of a cation of `amounts` for an allowed ion that fits its site."""
    out = []
    for host, n in amounts.items():
        if host in ANION_FORMERS or host in pinned or n < 1 - 1e-9:
            continue
        for alt in replacements(host, host, amounts, allowed):
            new = dict(amounts)
            new[host] -= 1.0
            new[alt] = new.get(alt, 0.0) + 1.0
            whole = new[host] < 1e-9
            new = {e: v for e, v in new.items() if v > 1e-9}
            out.append((format_amounts(new), f"{alt} for {'' if whole else f'1 of {n:g} '}{host}"))
    return out


def _variants_of(formula: str, allowed: Sequence[str], pinned: tuple[str, ...]) -> list[tuple[str, str]]:
    """(formula, note): one atom of a cation of `formula`, or of its doubled cell (a site held once in the formula
    unit is then half substituted), swapped for an allowed ion that fits its site."""
    amounts = parse_formula(formula)
    options = _swaps(amounts, allowed, pinned)
    if any(abs(v - 1) < 1e-9 for v in amounts.values()):
        options += _swaps({e: 2 * v for e, v in amounts.items()}, allowed, pinned)
    return options


def clean(a: PhaseAnalysis) -> bool:
    """A phase a chemist would try: not a known superconductor, not a mixture, every ion on a site it fits."""
    return not (a.is_known or a.is_mixture or a.site_mismatch > SITE_MISMATCH_MAX or a.unsited)


def _best_clean(
    options: list[tuple[str, str]],
    known: KnownCompounds,
    model: Model,
    floor: float,
    per_row: int,
    allowed_ns: Sequence[int] | None,
) -> list[tuple[str, str]]:
    """Of (formula, note) options with a cell size in allowed_ns (None: any) and a predicted Tc of at least
    `floor`, up to per_row that `clean` accepts, the best score first (OPTIONS_TRIED analysed at most)."""
    options = list(dict(options).items())  # one note per formula
    if allowed_ns is not None:
        ns = set(allowed_ns)
        options = [(f, note) for f, note in options if round(sum(parse_formula(f).values()), 6) in ns]
    if not options:
        return []
    x = np.stack([to_vector(f) for f, _ in options])
    s, t = model(x)
    out = []
    for i in np.argsort(-s, kind="stable")[:OPTIONS_TRIED]:
        if t[i] < floor:
            continue
        if clean(analyse(options[i][0], known)):
            out.append(options[i])
            if len(out) == per_row:
                break
    return out


def site_repairs(
    table: pd.DataFrame,
    known: KnownCompounds,
    score: Scorer,
    allowed: Sequence[str],
    pinned: Sequence[str] = (),
    per_row: int = REPAIRS_PER_ROW,
    allowed_ns: Sequence[int] | None = None,
    tc: Scorer | None = None,
) -> list[Repair]:
    """The repairs of the table's misfit rows and the variants of its known rows (module docstring), formulas
    already in the table left out. table: the candidate table (integer_formula, candidate, site_mismatch,
    is_known); score: x (B, 118) -> the ranking score (B,); allowed: elements a replacement may be; pinned:
    elements never swapped out; allowed_ns: the run's cell sizes (None: any); tc: x -> the predicted Tc (B,) for
    MIN_TC_SHARE (default: score)."""

    def model(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = score(x)
        return s, s if tc is None else tc(x)

    return _site_repairs(table, known, model, allowed, tuple(pinned), per_row, allowed_ns)


def _site_repairs(
    table: pd.DataFrame,
    known: KnownCompounds,
    model: Model,
    allowed: Sequence[str],
    pinned: tuple[str, ...],
    per_row: int,
    allowed_ns: Sequence[int] | None,
) -> list[Repair]:
    """site_repairs with one model call per batch for both the score and the predicted Tc."""
    if not len(table) or "site_mismatch" not in table.columns:
        return []
    allowed = [e for e in allowed if e not in set(pinned)]
    seen = set(table["integer_formula"])
    out: list[Repair] = []
    misfit = pd.to_numeric(table["site_mismatch"], errors="coerce").to_numpy() > SITE_MISMATCH_MAX
    is_known = table["is_known"].to_numpy(bool) if "is_known" in table.columns else np.zeros(len(table), bool)
    rows = np.flatnonzero(misfit | is_known)
    if not len(rows):
        return []
    formulas = [str(table["integer_formula"].iloc[r]) for r in rows]
    floors = MIN_TC_SHARE * np.maximum(model(np.stack([to_vector(f) for f in formulas]))[1], 0.0)
    for row, formula, floor in zip(rows, formulas, floors, strict=True):
        if is_known[row]:
            options, kind = _variants_of(formula, allowed, pinned), "variant"
        else:
            options, kind = _repairs_of(formula, known, model, allowed, pinned), "repair"
        for f, note in _best_clean(options, known, model, float(floor), per_row, allowed_ns):
            if f not in seen:
                seen.add(f)
                out.append(Repair(int(table["candidate"].iloc[row]), f, note, kind))
    return out


def repairs_of_table(
    table: pd.DataFrame,
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    kappa: float,
    known: KnownCompounds,
    allowed: Sequence[str],
    pinned_mask: np.ndarray,
    allowed_ns: Sequence[int],
) -> list[Repair]:
    """`site_repairs` of a candidate table, ranked by its score (Tc - kappa * sd; predict: x -> (Tc, sd)), each
    batch predicted once."""

    def model(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, sd = (np.asarray(v) for v in predict(x))
        return mean - kappa * sd, mean

    pinned = tuple(s for s, p in zip(symbols(), pinned_mask, strict=True) if p)
    return _site_repairs(table, known, model, allowed, pinned, REPAIRS_PER_ROW, allowed_ns)


def integers_of(repairs: list[Repair]) -> Integerized:
    """The repaired formulas as integer formulas (their cell size; integer_loss NaN: nothing was rounded)."""
    n = np.rint([sum(parse_formula(r.formula).values()) for r in repairs]).astype(np.int64)
    x = np.stack([to_vector(r.formula) for r in repairs])
    return Integerized(
        n_atoms=n, amounts=x * n[:, None], formulas=[r.formula for r in repairs], loss=np.full(len(n), np.nan)
    )


__all__ = [
    "MIN_TC_SHARE",
    "REPAIRS_PER_ROW",
    "Repair",
    "replacements",
    "repairs_of_table",
    "site_repairs",
    "swap",
    "integers_of",
]
