"""Reference compositions a design run starts from and is compared to.

`ReferenceData` holds SuperCon (x, Tc, formula: start points above a Tc threshold, the
"in SuperCon" and "nearest SuperCon composition" columns) and the element sets of every
training composition (SuperCon + COD non-superconductors: which elements the model has seen,
whether a candidate's element combination is new). Tests and benchmarks build one from arrays;
`load_reference()` builds it from the data files once per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from gdmcd_core.chem.composition import reduced_key
from gdmcd_core.chem.elements import N_ELEMENTS, symbols
from gdmcd_core.data.dataset import DataConfig, build_dataset


@dataclass(frozen=True)
class ReferenceData:
    """sc_x: (N, 118) SuperCon fractions; sc_tc_k: (N,) Tc in K; sc_formula: (N,) str.

    train_x: (M, 118) every training composition (SuperCon + non-superconductors); defaults to
    sc_x when not given.
    """

    sc_x: np.ndarray
    sc_tc_k: np.ndarray
    sc_formula: np.ndarray
    train_x: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sc_x.ndim != 2 or self.sc_x.shape[1] != N_ELEMENTS:
            raise ValueError(f"sc_x must be (N, {N_ELEMENTS}), got {self.sc_x.shape}")
        if not (len(self.sc_x) == len(self.sc_tc_k) == len(self.sc_formula)):
            raise ValueError("sc_x, sc_tc_k and sc_formula must have the same length")

    @property
    def all_x(self) -> np.ndarray:
        """(M, 118) all training compositions (train_x, or SuperCon alone)."""
        return self.sc_x if self.train_x is None else self.train_x

    def seen_mask(self) -> np.ndarray:
        """(118,) bool: element occurs in at least one training composition."""
        if "seen" not in self._cache:
            self._cache["seen"] = (np.asarray(self.all_x) > 0).any(0)
        return self._cache["seen"]

    def unseen_symbols(self) -> tuple[str, ...]:
        """Elements in no training composition (on the full data: At, Rn, Fr, Es-Lr, Z >= 104)."""
        syms = symbols()
        return tuple(syms[i] for i in np.flatnonzero(~self.seen_mask()))

    def element_sets(self) -> frozenset[frozenset[int]]:
        """The element combinations (sets of indices) of all training compositions."""
        if "sets" not in self._cache:
            nz = np.asarray(self.all_x) > 0
            self._cache["sets"] = frozenset(frozenset(np.flatnonzero(r).tolist()) for r in nz)
        return self._cache["sets"]

    def supercon_keys(self) -> dict[str, int]:
        """reduced_key of each SuperCon composition -> its row (first occurrence)."""
        if "keys" not in self._cache:
            keys: dict[str, int] = {}
            for i, row in enumerate(np.asarray(self.sc_x)):
                keys.setdefault(reduced_key(row), i)
            self._cache["keys"] = keys
        return self._cache["keys"]


@lru_cache(maxsize=2)
def load_reference(data_dir: str | None = None) -> ReferenceData:
    """Repaired SuperCon + COD from the data files (see data.paths.find_data_dir), cached per process.

    The synthetic physical negatives are left out: they are training labels, not known compounds.
    """
    ds = build_dataset(DataConfig(include_cod=True, physical_negatives=False), Path(data_dir) if data_dir else None)
    sc = ds.is_supercon
    return ReferenceData(
        sc_x=ds.x[sc],
        sc_tc_k=ds.tc_k[sc],
        sc_formula=ds.formula[sc],
        train_x=ds.x,
    )
