"""Classical composition features: fractions + fraction-weighted element statistics (baselines, model branch).

For each element property p (Z, atomic mass, Pauling electronegativity, period, group, atomic
radius, valence electrons) and composition x (fractions summing to 1) the features are

    mean = sum_i x_i p_i,   std = sqrt(sum_i x_i (p_i - mean)^2),   min / max over elements with x_i > 0.

Period, group, Z and the valence-electron count come from the one element table
(`gdmcd_core.chem.elements`; valence electrons in the Matthias convention: the group number for
groups 1-12, group - 10 for groups 13-18, 2 for He, 3 for the f block); mass,
electronegativity and radius from pymatgen. A property pymatgen does not know for an element
(e.g. the electronegativity of He, Ne, Z >= 104; many radii) is filled with the median over
the elements that have it, so every feature is finite.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
from pymatgen.core import Element

from gdmcd_core.chem.elements import N_ELEMENTS, element_table, symbols

PROPERTIES = ("z", "atomic_mass", "electronegativity", "period", "group", "atomic_radius", "valence_electrons")
PROPERTY_UNITS = {"z": "", "atomic_mass": "u", "electronegativity": "Pauling", "period": "", "group": "",
                  "atomic_radius": "Å", "valence_electrons": "e"}  # fmt: skip
STATISTICS = ("mean", "std", "min", "max")
PRESENT_EPS = 1e-9  # fractions at or below this count as absent for min/max


def _pymatgen_value(el: Element, prop: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for every missing value
        value = {"atomic_mass": el.atomic_mass, "electronegativity": el.X, "atomic_radius": el.atomic_radius}[prop]
    return float(value) if value is not None else math.nan


def valence_electrons(group: int, block: str, symbol: str) -> int:
    """Valence electrons per atom as in Matthias' rule: Nb 5, Cu 11, O 6, La 3, He 2."""
    if symbol == "He":
        return 2
    if block == "f":
        return 3
    return group if group <= 12 else group - 10


@lru_cache(maxsize=1)
def property_table() -> np.ndarray:
    """(118, len(PROPERTIES)) float64 element properties, row i = element with Z = i + 1, no NaN."""
    table = np.empty((N_ELEMENTS, len(PROPERTIES)))
    for i, info in enumerate(element_table()):
        el = Element(info.symbol)
        table[i] = [
            info.z,
            _pymatgen_value(el, "atomic_mass"),
            _pymatgen_value(el, "electronegativity"),
            info.period,
            info.group,
            _pymatgen_value(el, "atomic_radius"),
            valence_electrons(info.group, info.block, info.symbol),
        ]
    for j in range(table.shape[1]):
        col = table[:, j]
        col[np.isnan(col)] = np.nanmedian(col)
    table.setflags(write=False)
    return table


def feature_names(include_fractions: bool = True) -> list[str]:
    """Column names of `feature_matrix`: `frac_H`..`frac_Og`, then `{stat}_{property}`."""
    stats = [f"{s}_{p}" for p in PROPERTIES for s in STATISTICS]
    return ([f"frac_{s}" for s in symbols()] if include_fractions else []) + stats


def element_statistics(x: np.ndarray) -> np.ndarray:
    """Fraction-weighted statistics of the element properties.

    Args:
        x: (N, 118) fractions, each row summing to 1.

    Returns:
        (N, 4 * len(PROPERTIES)) float32, per property the columns mean, std, min, max.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != N_ELEMENTS:
        raise ValueError(f"x must have shape (N, {N_ELEMENTS}), got {x.shape}")
    p = property_table()  # (118, P)
    mean = x @ p  # (N, P)
    var = x @ (p**2) - mean**2
    std = np.sqrt(np.clip(var, 0.0, None))
    present = x > PRESENT_EPS  # (N, 118)
    lo = np.where(present[:, :, None], p[None], np.inf).min(axis=1)  # (N, P)
    hi = np.where(present[:, :, None], p[None], -np.inf).max(axis=1)
    empty = ~present.any(axis=1)
    lo[empty], hi[empty] = 0.0, 0.0
    out = np.stack([mean, std, lo, hi], axis=2)  # (N, P, 4): property-major like feature_names
    return out.reshape(len(x), -1).astype(np.float32)


def feature_matrix(x: np.ndarray, include_fractions: bool = True, batch: int = 4096) -> np.ndarray:
    """(N, 118) fractions -> (N, 118 + 24) float32 features (fractions, then statistics).

    Rows are processed in batches of `batch` to bound the (batch, 118, P) temporaries.
    """
    x = np.asarray(x)
    parts = [element_statistics(x[i : i + batch]) for i in range(0, len(x), batch)] or [
        np.zeros((0, len(PROPERTIES) * len(STATISTICS)), np.float32)
    ]
    stats = np.concatenate(parts)
    return np.concatenate([x.astype(np.float32), stats], axis=1) if include_fractions else stats


__all__ = [
    "PROPERTIES",
    "STATISTICS",
    "element_statistics",
    "feature_matrix",
    "feature_names",
    "property_table",
    "valence_electrons",
]
