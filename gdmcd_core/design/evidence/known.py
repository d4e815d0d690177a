"""The known compounds a candidate is compared with: SuperCon, COD and JARVIS-DFT, one row per composition.

`KnownCompounds` holds (K, 118) fractions with each row's formula, source ("supercon", "cod" or "jarvis"),
Tc in K (NaN where the compound is not a SuperCon entry) and the year it was first reported (SuperCon
only; NaN elsewhere). A composition listed by several sources is kept once, from the first of SuperCon,
COD, JARVIS (4-decimal fraction key, as the data files' comp_key).

`known_compounds(reference, jarvis)` builds it from the design's ReferenceData (SuperCon with years, and
the COD rows of its training compositions) and the JARVIS compounds of the hull reference
(design/stability/hull.py), so the phase analysis compares a candidate with exactly the compounds the
rest of the table uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import format_amounts, parse_formula
from gdmcd_core.chem.elements import N_ELEMENTS, index_of, symbols
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.design.stability.hull import HullReference

SOURCES = ("supercon", "cod", "jarvis")


@dataclass(frozen=True)
class KnownCompounds:
    """x: (K, 118) fractions; formula, source: (K,) str; tc_k, year: (K,) float (NaN: not known)."""

    x: np.ndarray
    formula: np.ndarray
    source: np.ndarray
    tc_k: np.ndarray
    year: np.ndarray
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.x.shape[1] != N_ELEMENTS:
            raise ValueError(f"known compounds: x must be (K, {N_ELEMENTS}), got {self.x.shape}")
        n = len(self.x)
        if not all(len(a) == n for a in (self.formula, self.source, self.tc_k, self.year)):
            raise ValueError("known compounds: x, formula, source, tc_k and year must have the same length")

    def __len__(self) -> int:
        return len(self.x)

    def element_bits(self) -> np.ndarray:
        """(K, 15) uint8: each row's element set as a packed bit mask (np.packbits of x > 0)."""
        if "bits" not in self._cache:
            self._cache["bits"] = np.packbits(np.asarray(self.x) > 0, axis=1)
        return self._cache["bits"]

    def row_sums(self) -> np.ndarray:
        """(K,) float64: each row's sum of fractions (1 up to rounding), computed once."""
        if "sums" not in self._cache:
            self._cache["sums"] = np.asarray(self.x, np.float64).sum(1)
        return self._cache["sums"]

    def amounts(self, i: int) -> dict[str, float]:
        """{symbol: amount} of row i as its formula writes it (YBa2Cu3O6.95), parsed once."""
        cache = self._cache.setdefault("amounts", {})
        if i not in cache:
            try:
                cache[i] = parse_formula(str(self.formula[i]))
            except ValueError:  # a formula the strict parser refuses: its fractions, scaled to 1 atom
                syms = symbols()
                cache[i] = {syms[j]: float(self.x[i, j]) for j in np.flatnonzero(self.x[i] > 0)}
        return cache[i]


def _rows_from_amounts(amounts: list[dict[str, float]]) -> np.ndarray:
    x = np.zeros((len(amounts), N_ELEMENTS), np.float32)
    for r, a in enumerate(amounts):
        total = sum(a.values())
        for s, v in a.items():
            x[r, index_of(s)] += v / total
    return x


def _cod_rows(ref: ReferenceData) -> tuple[np.ndarray, np.ndarray]:
    """The training compositions with their formulas: SuperCon rows among them are dropped as duplicates of
    the SuperCon part (known_compounds keeps a composition's first source), the others are COD's."""
    if ref.train_x is None:
        return np.zeros((0, N_ELEMENTS), np.float32), np.zeros(0, dtype=object)
    train = np.asarray(ref.train_x, np.float32)
    if ref.train_formula is not None:
        return train, np.asarray(ref.train_formula, dtype=object)
    syms = symbols()  # no formulas given: the fractions, written as a formula
    names = [format_amounts({syms[j]: float(r[j]) for j in np.flatnonzero(r > 0)}) for r in train]
    return train, np.asarray(names, dtype=object)


def _jarvis_rows(hull: HullReference | None) -> tuple[np.ndarray, np.ndarray]:
    """The hull reference's compounds (JARVIS-DFT, one per reduced formula), with formulas."""
    if hull is None or not len(hull):
        return np.zeros((0, N_ELEMENTS), np.float32), np.zeros(0, dtype=object)
    entries = list(hull.by_key.values())
    names = np.array(["".join(f"{s}{a:g}" for s, a in e.amounts.items()) for e in entries], dtype=object)
    return _rows_from_amounts([e.amounts for e in entries]), names


def known_compounds(ref: ReferenceData, jarvis: HullReference | None = None) -> KnownCompounds:
    """SuperCon (with Tc and first year), COD and JARVIS compounds, one row per composition (see module doc)."""
    n_sc = len(ref.sc_x)
    cod_x, cod_f = _cod_rows(ref)
    jv_x, jv_f = _jarvis_rows(jarvis)
    x = np.concatenate([np.asarray(ref.sc_x, np.float32), np.asarray(cod_x, np.float32), jv_x])
    formula = np.concatenate([np.asarray(ref.sc_formula, dtype=object), cod_f, jv_f])
    source = np.array(["supercon"] * n_sc + ["cod"] * len(cod_x) + ["jarvis"] * len(jv_x), dtype=object)
    year = np.full(len(x), np.nan)
    if ref.sc_year is not None:
        year[:n_sc] = np.asarray(ref.sc_year, np.float64)
    tc = np.full(len(x), np.nan)
    tc[:n_sc] = np.asarray(ref.sc_tc_k, np.float64)
    keep = _first_of_each(x)
    return KnownCompounds(x[keep], formula[keep].astype(str), source[keep].astype(str), tc[keep], year[keep])


def _first_of_each(x: np.ndarray) -> np.ndarray:
    """Indices of the first row of each composition (fractions rounded to 4 decimals), in order."""
    rounded = pd.DataFrame(np.round(np.asarray(x, np.float32), 4) + np.float32(0.0))  # + 0: -0.0 hashes as 0.0
    return np.flatnonzero(~pd.util.hash_pandas_object(rounded, index=False).duplicated().to_numpy())


_LOADED: dict[tuple[int, int], tuple[ReferenceData, HullReference | None, KnownCompounds]] = {}


def cached_known_compounds(ref: ReferenceData, jarvis: HullReference | None) -> KnownCompounds:
    """`known_compounds(ref, jarvis)`, built once per pair of objects in a process (the last two pairs kept)."""
    key = (id(ref), id(jarvis))
    if key not in _LOADED:
        while len(_LOADED) >= 2:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = (ref, jarvis, known_compounds(ref, jarvis))  # the objects kept alive: ids stay theirs
    return _LOADED[key][2]


__all__ = ["SOURCES", "KnownCompounds", "cached_known_compounds", "known_compounds"]
