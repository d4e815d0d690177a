"""Integer refinement (after stage 3): a deterministic best-first search over integer formulas.

Stage 3 ends with one integer formula per candidate, the best one its trajectory passed through
(best_integer.py), and many candidates end on the same formula. The neighbours of a formula on the integer
lattice are: an atom moved from one element to another, one atom more or fewer (another N of the run's
set), or an element swapped, wholly or one atom of it, for a chemically related one (same group, next
period: Ca <-> Sr <-> Ba, Mg <-> Ca, Y <-> La, Hg <-> Cd, Tl <-> In; neighbouring lanthanides).
`refine_candidates` expands the best-scoring formula not yet expanded, scoring all its neighbours with the
run's objective (the ensemble's mean or lower confidence bound minus the chemistry terms: what ranks the
integer formulas of stage 3), until refine_steps x B model evaluations are spent; the best new formulas
then replace rows that repeat another row's formula (at most KEEP_SHARE of the rows); a neighbour is scored
against the start composition (trust-region centre) of the formula it was found from. Rows with a formula of
their own keep it. A replaced row's own start and trajectory had ended on a repeated formula and did not lead
to its new one: the search returns, for every row, the row whose lineage (start, stages, formula) its formula
continues (`parent`), and the candidate table reports that lineage's start and path ("refined from
candidate C"), never the replaced row's own (design/evidence/candidates.py).

Every move honours the run's conditions: excluded elements are never introduced, exactly pinned elements
keep their fraction, at-least pins their lower bound, the element cap is never exceeded and N stays in the
run's set. The search draws no random numbers. It compares candidates with each other, so a sharded run
(executor.py) refines after its shards are merged.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from gdmcd_core.chem.elements import element_table
from gdmcd_core.design.objective.integer_loss import Integerized

# An integer formula's pinned fractions (amounts / N in float64) must match their pins to this tolerance: rounding
# only (objective/constraints.PIN_TOL bounds the float32 compositions of the loop instead).
FORMULA_PIN_TOL = 1e-9
# At most this share of the rows gets a refined formula. The rest keep their own lineage's formula: the
# lineages are diverse, and in bench/discovery.py the rediscovered superconductors come from them
# (filling every repeated row pushed them out of the top 200 there).
KEEP_SHARE = 0.25


@cache
def related_elements() -> tuple[tuple[int, ...], ...]:
    """For each element index, the indices of its chemical relatives: the same group one period up or down
    (lanthanides: the lanthanides two atomic numbers away or closer)."""
    table = element_table()
    out = []
    for e in table:
        rel = []
        for o in table:
            if o.z == e.z:
                continue
            lanthanides = 57 <= e.z <= 71 and 57 <= o.z <= 71
            if (lanthanides and abs(o.z - e.z) <= 2) or (
                not lanthanides and o.group == e.group and abs(o.period - e.period) == 1
            ):
                rel.append(o.z - 1)
        out.append(tuple(rel))
    return tuple(out)


@dataclass(frozen=True)
class Conditions:
    """What a refined formula must satisfy (from the run's Constraints).

    allowed: (118,) bool, elements a formula may contain; movable: (118,) bool, elements whose count may
    change (allowed and not exactly pinned); ns: allowed cell sizes; max_elements: 0 = no cap;
    lower: (118,) at-least fractions (0 where none); exact: (118,) exact fractions (NaN where none).
    """

    allowed: np.ndarray
    movable: np.ndarray
    ns: frozenset[int]
    max_elements: int
    lower: np.ndarray
    exact: np.ndarray

    def feasible(self, a: np.ndarray) -> bool:
        n = a.sum()
        if n not in self.ns or (a < 0).any() or (a[~self.allowed] > 0).any():
            return False
        if self.max_elements and np.count_nonzero(a) > self.max_elements:
            return False
        frac = a / n
        pinned = ~np.isnan(self.exact)
        if (np.abs(frac[pinned] - self.exact[pinned]) > FORMULA_PIN_TOL).any():
            return False
        return bool((frac >= self.lower - FORMULA_PIN_TOL).all())


def neighbours(a: np.ndarray, cond: Conditions) -> list[np.ndarray]:
    """The feasible integer formulas one move from counts a (118,), without duplicates, in a fixed order."""
    present = np.flatnonzero(a > 0)
    movable = [i for i in present if cond.movable[i]]
    rel = related_elements()
    out, seen = [], {a.tobytes()}

    def add(b: np.ndarray) -> None:
        key = b.tobytes()
        if key not in seen and cond.feasible(b):
            seen.add(key)
            out.append(b)

    for i in movable:
        for j in movable:
            if i != j:  # one atom from i to j (N fixed)
                b = a.copy()
                b[i] -= 1
                b[j] += 1
                add(b)
        for d in (1, -1):  # one atom more or fewer (another N)
            b = a.copy()
            b[i] += d
            add(b)
        for k in rel[i]:  # i replaced by a relative, wholly or one atom of it (a dopant)
            if a[k] == 0 and cond.allowed[k]:
                b = a.copy()
                b[k], b[i] = a[i], 0
                add(b)
                if a[i] > 1:
                    b = a.copy()
                    b[k], b[i] = 1, a[i] - 1
                    add(b)
    return out


def fill_duplicates(
    counts: np.ndarray,
    score: np.ndarray,
    x0: np.ndarray,
    score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    cond: Conditions,
    budget: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Give the rows that repeat another row's formula new formulas, by best-first search around the leaders.

    Candidates often converge to the same formula; such a row adds nothing to the table. Starting from the
    distinct formulas, the best formula not yet expanded has all its neighbours scored (against its own
    lineage's start composition, x0 of the row it came from), until `budget` evaluations are spent; the best
    new formulas then replace the repeated rows, each inheriting the lineage (row) it descends from.

    Args:
        counts: (B, 118) integer amounts; score: (B,) their objective; x0: (B, 118) start compositions.

    Returns:
        (counts, score, parent, evaluations): parent[r] is the row whose lineage row r now continues
        (r itself where unchanged).
    """
    B = len(counts)
    parent = np.arange(B)
    order = np.argsort(-score, kind="stable")
    pool: dict[bytes, tuple[float, int]] = {}  # formula -> (score, lineage row)
    free = []
    for r in order:
        key = counts[r].tobytes()
        if key in pool:
            free.append(r)
        else:
            pool[key] = (float(score[r]), int(r))
    if not free or budget <= 0:
        return counts, score, parent, 0
    found: dict[bytes, tuple[float, int, np.ndarray]] = {}
    heap = [(-v[0], k) for k, v in pool.items()]  # the best formula not yet expanded is on top
    heapq.heapify(heap)
    evaluations = 0
    while evaluations < budget and heap:
        _, key = heapq.heappop(heap)
        row = pool[key][1] if key in pool else found[key][1]
        a = np.frombuffer(key, dtype=counts.dtype)
        nb = [b for b in neighbours(a, cond) if b.tobytes() not in pool and b.tobytes() not in found]
        nb = nb[: budget - evaluations]
        if not nb:
            continue
        cand = np.stack(nb)
        s = score_fn(cand / cand.sum(1, keepdims=True), np.repeat(x0[row][None], len(cand), 0))
        evaluations += len(cand)
        for b, v in zip(cand, s, strict=True):
            found[b.tobytes()] = (float(v), row, b)
            heapq.heappush(heap, (-float(v), b.tobytes()))
    best = sorted(found.values(), key=lambda t: -t[0])[: min(len(free), math.ceil(KEEP_SHARE * B))]
    counts, score = counts.copy(), np.asarray(score, np.float64).copy()
    for r, (v, row, b) in zip(free, best, strict=False):
        counts[r], score[r], parent[r] = b, v, row
    return counts, score, parent, evaluations


def refine_candidates(
    integ: Integerized,
    score: np.ndarray,
    x0: np.ndarray,
    score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    cond: Conditions,
    steps: int,
) -> tuple[Integerized, np.ndarray, np.ndarray]:
    """Refinement within `steps` model evaluations per candidate (`fill_duplicates` on the integer amounts).

    Returns (integ, score, parent): parent[r] is the row whose lineage (start composition) row r now
    follows (r itself where the formula is unchanged). Formulas with fractional (exempt) amounts are left
    as they are.
    """
    B = len(x0)
    counts = np.round(integ.amounts).astype(np.int64)
    if not np.all(np.abs(integ.amounts - counts) < 1e-9):
        return integ, np.asarray(score, np.float64), np.arange(B)
    counts, score, parent, _ = fill_duplicates(counts, score, x0, score_fn, cond, steps * B)
    filled = parent != np.arange(B)
    out = Integerized(
        n_atoms=counts.sum(1),
        amounts=counts.astype(np.asarray(integ.amounts).dtype),
        formulas=[],
        loss=np.where(filled, 0.0, integ.loss),
    )
    return out, score, parent


__all__ = ["Conditions", "fill_duplicates", "neighbours", "refine_candidates", "related_elements"]
