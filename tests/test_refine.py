"""Integer refinement (design/loop/refine.py): moves honour the run's conditions; repeated rows get new formulas."""

from __future__ import annotations

import numpy as np

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, index_of
from gdmcd_core.chem.valence import cu_valence
from gdmcd_core.design.loop.refine import KEEP_SHARE, Conditions, fill_duplicates, neighbours, refine_candidates
from gdmcd_core.design.objective.integer_loss import Integerized

Z = N_ELEMENTS


def _counts(formula: str) -> np.ndarray:
    x = to_vector(formula)
    n = {"YBa2Cu3O7": 13, "MgB2": 3, "LaH10": 11}[formula]
    return np.round(x * n).astype(np.int64)


def _cond(ns=range(1, 25), exclude=(), max_elements=0, exact=None, lower=None) -> Conditions:
    allowed = np.ones(Z, bool)
    allowed[[index_of(s) for s in exclude]] = False
    ex = np.full(Z, np.nan)
    for s, f in (exact or {}).items():
        ex[index_of(s)] = f
    lo = np.zeros(Z)
    for s, f in (lower or {}).items():
        lo[index_of(s)] = f
    return Conditions(allowed, allowed & np.isnan(ex), frozenset(ns), max_elements, lo, ex)


def test_neighbours_are_one_move_away_and_honour_the_conditions() -> None:
    a = _counts("YBa2Cu3O7")
    cond = _cond(ns=range(12, 15), exclude=("Sr",), max_elements=4)
    nb = neighbours(a, cond)
    assert nb and len({b.tobytes() for b in nb}) == len(nb)
    for b in nb:
        assert 12 <= b.sum() <= 14 and (b >= 0).all() and np.count_nonzero(b) <= 4
        assert b[index_of("Sr")] == 0
        assert 0 < np.abs(b - a).sum() <= 2 * a.max()  # one transfer, one atom, or one substitution
    assert any(b[index_of("La")] > 0 for b in nb)  # Y -> La: same group, next period
    assert any(b[index_of("Ag")] > 0 for b in nb)  # Cu -> Ag, one atom of it or all
    assert not any(b[index_of("Ca")] > 0 for b in nb)  # Ba's relatives are Sr (excluded here) and Ra, not Ca


def test_pins_are_kept_exactly_or_as_lower_bounds() -> None:
    a = _counts("LaH10")
    for b in neighbours(a, _cond(exact={"H": 10 / 11})):
        assert abs(b[index_of("H")] / b.sum() - 10 / 11) < 1e-9
    for b in neighbours(a, _cond(lower={"H": 0.9})):
        assert b[index_of("H")] / b.sum() >= 0.9 - 1e-9


def test_fill_duplicates_replaces_repeats_only_and_keeps_lineages() -> None:
    rows = np.stack([_counts("MgB2"), _counts("MgB2"), _counts("YBa2Cu3O7"), _counts("MgB2")])
    x0 = rows / rows.sum(1, keepdims=True)
    target = index_of("Ca")
    score_fn = lambda fr, _x0: fr[:, target] * 100 - np.abs(fr).sum(1)  # noqa: E731  (more Ca is better)
    score = score_fn(x0, x0)
    counts, new_score, parent, used = fill_duplicates(rows, score, x0, score_fn, _cond(), budget=200)
    assert 0 < used <= 200
    assert (counts[[0, 2]] == rows[[0, 2]]).all() and (parent[[0, 2]] == [0, 2]).all()  # first of each formula kept
    filled = parent != np.arange(4)
    assert filled.sum() == min(2, int(np.ceil(KEEP_SHARE * 4)))
    assert len({c.tobytes() for c in counts}) == 4 - (2 - filled.sum())
    assert (new_score[filled] > score[0]).all()  # the best neighbours (with Ca) were kept
    assert np.allclose(new_score, score_fn(counts / counts.sum(1, keepdims=True), x0))


def test_refine_candidates_leaves_fractional_amounts_alone() -> None:
    amounts = np.zeros((2, Z))
    amounts[:, index_of("Mg")] = [1.5, 1.5]
    amounts[:, index_of("B")] = [1.5, 1.5]
    integ = Integerized(np.array([3, 3]), amounts, ["", ""], np.zeros(2))
    out, _, parent = refine_candidates(integ, np.zeros(2), amounts / 3, lambda fr, x: fr.sum(1), _cond(), 10)
    assert out is integ and (parent == [0, 1]).all()


def test_hydrogen_counts_as_a_proton_in_a_cuprate() -> None:
    assert cu_valence({"Y": 1, "Ba": 2, "Cu": 3, "O": 7, "H": 1}) is not None
    assert cu_valence({"Rb": 1, "Ba": 4, "Cu": 3, "H": 1, "O": 13}) > 2.6  # over-oxidized, no longer exempt
