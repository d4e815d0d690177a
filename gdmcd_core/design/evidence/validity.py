"""Validity and novelty flags for candidate compositions.

For every candidate formula:

* ``charge_neutral``: SMACT's charge-neutrality test (`smact.screening.smact_validity` with the
  Pauling test off): some assignment of one oxidation state per element, from SMACT's default
  ICSD-2024 list of observed oxidation states, makes the integer formula neutral.
* ``electronegativity_ok``: SMACT's full test (`smact_validity` with the Pauling test on): a
  neutral assignment exists in which every cation is less electronegative than every anion.
  It implies ``charge_neutral``.
* ``all_metal``: every element is a metal in SMACT's list. Such compositions (CaSrBi, Nb3Sn) are
  alloys/intermetallics, where ionic charge counting does not apply; as in the field's
  ``smact_validity(include_alloys=True)`` (CDVAE, DiffCSP and successors report "composition
  validity" this way) they pass both tests, and this column says so, so that a reader can tell
  "passes as an alloy" from "passes as an ionic compound". Single-element compositions pass too.
* ``radioactive`` / ``toxic``: an element of `elements.radioactive_symbols()` (Po and beyond, Tc,
  Pm) or of `elements.TOXIC` (Hg Tl Cd As Pb Be) is present; ``flagged_elements`` lists them.
* ``nearest_training_distance``: L1 distance, in atomic-fraction space (range 0..2), to the
  nearest row of the training set; ``nearest_training_index`` is that row.
* ``new_element_set``: no training row has exactly this set of elements.

Fractional formulas (Ba0.2La1.8CuO4) are scaled to the smallest integer formula first
(denominators up to `MAX_DENOMINATOR`), because SMACT counts whole atoms. A doped composition
such as La1.8Sr0.2CuO4 then becomes La9SrCu5O20, which is neutral only through mixed valence:
SMACT assigns one oxidation state per element, so many doped superconductors fail the test.
That is a property of the rule, not of the compound; read the flag as "balances with simple
ionic charges", not as "cannot exist". SMACT's default ICSD-2024 state list is permissive (Y +1..+4,
Cu +1..+4, O -2/-1/+2), so YBa2Cu3O7 passes through unusual states; most oxides pass.

SMACT enumerates every combination of oxidation states, which grows exponentially with the number
of elements. Beyond `SMACT_ENUMERATION_LIMIT` combinations the same two tests are decided by an
exact dynamic programme over reachable total charges (`_flags_by_dp`; tests check that it agrees
with `smact_validity`), so a 15-element candidate takes milliseconds.
"""

from __future__ import annotations

import hashlib
import warnings
from fractions import Fraction
from functools import cache, lru_cache
from math import lcm

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, TOXIC, radioactive_symbols, symbols

# Amounts are rationalized with denominators up to this (0.119 -> 119/1000); coarser input is exact.
MAX_DENOMINATOR = 1000
# Budget of float32 values per block of the chunked distance computation (~ 64 MB).
DISTANCE_BLOCK_ELEMENTS = 16_000_000
COLUMNS = (
    "formula",
    "charge_neutral",
    "electronegativity_ok",
    "all_metal",
    "radioactive",
    "toxic",
    "flagged_elements",
    "nearest_training_distance",
    "nearest_training_index",
    "new_element_set",
)


def integer_counts(amounts: dict[str, float], max_denominator: int = MAX_DENOMINATOR) -> dict[str, int]:
    """{symbol: amount} -> smallest whole-atom formula with the same ratios.

    >>> integer_counts({"Ba": 0.2, "La": 1.8, "Cu": 1.0, "O": 4.0})
    {'Ba': 1, 'La': 9, 'Cu': 5, 'O': 20}
    """
    fracs = {s: Fraction(a).limit_denominator(max_denominator) for s, a in amounts.items()}
    scale = lcm(*(f.denominator for f in fracs.values()))
    counts = {s: int(f * scale) for s, f in fracs.items()}
    if any(c <= 0 for c in counts.values()):  # an amount below 1/max_denominator of the others
        smallest = min(amounts.values())
        counts = {s: max(1, round(a / smallest)) for s, a in amounts.items()}
    g = np.gcd.reduce(np.array(list(counts.values()), dtype=np.int64))
    return {s: int(c // g) for s, c in counts.items()}


@lru_cache(maxsize=1)
def _smact_data() -> tuple[dict[str, list[int]], frozenset[str]]:
    """SMACT's default oxidation states (ICSD-2024 list, as `smact_validity` uses) and its metals."""
    from smact import metals
    from smact.screening import ICSD24FilterConfig, _get_icsd24_oxidation_dict

    cfg = ICSD24FilterConfig()
    states = _get_icsd24_oxidation_dict(
        include_zero=cfg.include_zero, consensus=cfg.consensus, commonality=cfg.commonality
    )
    return states, frozenset(metals)


@cache
def _pauling(symbol: str) -> float | None:
    """SMACT's Pauling electronegativity (None where SMACT has none, e.g. He, Ne, Ar)."""
    from smact import Element

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Element(symbol).pauling_eneg


def _neutral_reachable(counts: list[int], states: list[list[int]]) -> bool:
    """True if choosing one oxidation state per element can make sum(count * state) = 0.

    A dynamic programme over the reachable total charges (a boolean array shifted per state), so
    the cost grows with the charge range, not with the number of state combinations.
    """
    if sum(n * min(st) for n, st in zip(counts, states, strict=True)) > 0:
        return False
    if sum(n * max(st) for n, st in zip(counts, states, strict=True)) < 0:
        return False
    # Every partial sum lies in [lo, hi]; index i of `reach` stands for total charge i + lo.
    lo = sum(n * min(min(st), 0) for n, st in zip(counts, states, strict=True))
    hi = sum(n * max(max(st), 0) for n, st in zip(counts, states, strict=True))
    reach = np.zeros(hi - lo + 1, dtype=bool)
    reach[-lo] = True  # total 0 before any element
    for n, st in zip(counts, states, strict=True):
        nxt = np.zeros_like(reach)
        for o in st:
            shift = n * o
            if shift >= 0:
                nxt[shift:] |= reach[: len(reach) - shift]
            else:
                nxt[:shift] |= reach[-shift:]
        reach = nxt
    return bool(reach[-lo])


def _flags_by_dp(counts: list[int], symbols_: list[str], states: list[list[int]]) -> tuple[bool, bool]:
    """(charge_neutral, electronegativity_ok) with SMACT's semantics, for any number of elements.

    SMACT's Pauling test asks for a neutral assignment in which every cation is strictly less
    electronegative than every anion; an element without a Pauling value fails every assignment
    (its comparisons return False in `smact.screening.eneg_states_test`). So the valid sign
    patterns are the splits of the elements sorted by electronegativity: those at or below a
    threshold take positive states, those above take negative ones; each split is one DP.
    """
    neutral = _neutral_reachable(counts, states)
    if not neutral:
        return False, False
    en = [_pauling(s) for s in symbols_]
    if any(e is None for e in en):
        return True, False
    free = [e != e for e in en]  # NaN: every comparison is False, so no constraint
    values = sorted({e for e, f in zip(en, free, strict=True) if not f})
    for t in [-np.inf, *values]:  # cations: EN <= t; anions: EN > t
        split = []
        for e, f, st in zip(en, free, states, strict=True):
            split.append(st if f else [o for o in st if (o > 0 if e <= t else o < 0)])
        if all(split) and _neutral_reachable(counts, split):
            return True, True
    return True, False


# SMACT's own enumeration is used while it is cheap (product of state counts); beyond that the
# equivalent dynamic programme (tests check both agree).
SMACT_ENUMERATION_LIMIT = 1_000


@lru_cache(maxsize=65536)
def _smact_flags(items: tuple[tuple[str, int], ...]) -> tuple[bool, bool, bool]:
    """(charge_neutral, electronegativity_ok, all_metal) for integer counts ((symbol, n), ...)."""
    from smact.screening import smact_validity

    ox, metals = _smact_data()
    syms = [s for s, _ in items]
    all_metal = all(s in metals for s in syms)
    if len(syms) == 1 or all_metal:  # SMACT's fast paths: an element, or an alloy
        return True, True, all_metal
    states = [ox.get(s) for s in syms]
    if any(not st for st in states):  # an element with no known oxidation state
        return False, False, all_metal
    if int(np.prod([len(st) for st in states], dtype=np.float64)) > SMACT_ENUMERATION_LIMIT:
        neutral, en_ok = _flags_by_dp([n for _, n in items], syms, states)  # type: ignore[arg-type]
        return neutral, en_ok, all_metal
    formula = "".join(f"{s}{n}" for s, n in items)
    with warnings.catch_warnings():  # SMACT warns on elements without Pauling data; the test then fails them
        warnings.simplefilter("ignore")
        neutral = bool(smact_validity(formula, use_pauling_test=False, include_alloys=True))
        en_ok = bool(neutral and smact_validity(formula, use_pauling_test=True, include_alloys=True))
    return neutral, en_ok, all_metal


def smact_flags(formula: str) -> tuple[bool, bool, bool]:
    """One formula -> (charge_neutral, electronegativity_ok, all_metal); see the module docstring."""
    counts = integer_counts(parse_formula(formula))
    return _smact_flags(tuple(counts.items()))


class TrainingIndex:
    """Precomputed look-ups over training compositions: element sets and supports for L1 distances.

    x: (N, 118) fractions (rows summing to 1). Build once per training set; `training_index`
    caches it by content.
    """

    def __init__(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != N_ELEMENTS:
            raise ValueError(f"train_x must have shape (N, {N_ELEMENTS}), got {x.shape}")
        self.x = x
        self.row_sum = x.sum(1)  # (N,), 1 up to float error
        present = np.packbits(x > 0, axis=1)  # (N, 15) uint8 bitmask of the element set
        self.element_sets = {row.tobytes() for row in present}

    def __len__(self) -> int:
        return len(self.x)

    def has_element_set(self, c: np.ndarray) -> np.ndarray:
        """c: (M, 118) -> (M,) bool, True where some training row has exactly c's element set."""
        keys = np.packbits(np.asarray(c) > 0, axis=1)
        return np.array([k.tobytes() in self.element_sets for k in keys], dtype=bool)

    def nearest(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """c: (M, 118) fractions -> (L1 distance (M,), index (M,)) of the nearest training row.

        Uses sum_i |c_i - t_i| = sum_{i in S} |c_i - t_i| + (sum_i t_i - sum_{i in S} t_i) for any
        element set S covering the support of c, so each block of candidates only touches the
        columns its members use (a handful of the 118), in a (block, N, |S|) array.
        """
        c = np.asarray(c, dtype=np.float32)
        M, N = len(c), len(self.x)
        dist = np.full(M, np.inf, dtype=np.float64)
        idx = np.full(M, -1, dtype=np.int64)
        if M == 0 or N == 0:
            return dist, idx
        # Visit candidates grouped by element set, so that a block shares few columns.
        supports = [tuple(np.flatnonzero(r > 0)) for r in c]
        order = np.array(sorted(range(M), key=supports.__getitem__), dtype=np.int64)
        start = 0
        while start < M:
            # Grow the block while (block, N, |S|) stays under the memory budget.
            stop = start + 1
            cols = set(supports[order[start]])
            while stop < M:
                more = cols | set(supports[order[stop]])
                if (stop - start + 1) * N * len(more) > DISTANCE_BLOCK_ELEMENTS:
                    break
                cols, stop = more, stop + 1
            rows = order[start:stop]
            S = np.array(sorted(cols), dtype=np.int64)
            cs = c[rows][:, S]  # (B, |S|)
            ts = self.x[:, S]  # (N, |S|)
            outside = self.row_sum - ts.sum(1)  # (N,) training mass outside S
            d = np.abs(cs[:, None, :] - ts[None, :, :]).sum(2) + outside[None, :]  # (B, N)
            j = d.argmin(1)
            dist[rows] = d[np.arange(len(rows)), j]
            idx[rows] = j
            start = stop
        return dist, idx


@lru_cache(maxsize=4)
def _training_index_cached(digest: str, shape: tuple[int, int], data: bytes) -> TrainingIndex:
    del digest, shape  # part of the cache key only
    return TrainingIndex(np.frombuffer(data, dtype=np.float32).reshape(-1, N_ELEMENTS))


def training_index(train_x: np.ndarray) -> TrainingIndex:
    """A `TrainingIndex` for train_x (N, 118), cached by content (hashing 15k rows takes ~10 ms)."""
    arr = np.ascontiguousarray(train_x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != N_ELEMENTS:
        raise ValueError(f"train_x must have shape (N, {N_ELEMENTS}), got {arr.shape}")
    data = arr.tobytes()
    return _training_index_cached(hashlib.sha1(data).hexdigest(), arr.shape, data)


def candidate_flags(formulas: list[str], train_x: np.ndarray) -> pd.DataFrame:
    """Validity and novelty flags, one row per formula, in input order.

    formulas: M formula strings (integer or fractional amounts). train_x: (N, 118) training
    fractions. Returns a DataFrame with the columns in `COLUMNS` (see the module docstring);
    distances are in atomic-fraction L1 units (0 = same composition, 2 = no element shared).
    Raises `FormulaError` for a formula that does not parse.
    """
    formulas = list(formulas)
    if not formulas:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    c = np.stack([to_vector(f) for f in formulas]).astype(np.float32)  # (M, 118)
    index = training_index(train_x)
    dist, nearest = index.nearest(c)
    syms = symbols()
    radioactive, toxic = set(radioactive_symbols()), set(TOXIC)
    rows = []
    for f, vec in zip(formulas, c, strict=True):
        present = [syms[i] for i in np.flatnonzero(vec > 0)]
        neutral, en_ok, all_metal = smact_flags(f)
        bad = [s for s in present if s in radioactive or s in toxic]
        rows.append(
            {
                "formula": f,
                "charge_neutral": neutral,
                "electronegativity_ok": en_ok,
                "all_metal": all_metal,
                "radioactive": any(s in radioactive for s in present),
                "toxic": any(s in toxic for s in present),
                "flagged_elements": " ".join(bad),
            }
        )
    out = pd.DataFrame(rows)
    out["nearest_training_distance"] = dist
    out["nearest_training_index"] = nearest
    out["new_element_set"] = ~index.has_element_set(c)
    return out[list(COLUMNS)]


__all__ = ["COLUMNS", "TrainingIndex", "candidate_flags", "integer_counts", "smact_flags", "training_index"]
