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

`extended=True` adds eleven properties in the spirit of Magpie (Ward et al. 2016), all from pymatgen's
offline element data: Mendeleev number, melting point, molar volume, first ionization energy,
electron affinity, mean ionic radius, the electrons in the s, p, d and f subshells outside the
noble-gas core and the unfilled places in those subshells.
"""

from __future__ import annotations

import math
import re
import warnings
from functools import lru_cache

import numpy as np
from pymatgen.core import Element

from gdmcd_core.chem.elements import N_ELEMENTS, element_table, symbols

PROPERTIES = ("z", "atomic_mass", "electronegativity", "period", "group", "atomic_radius", "valence_electrons")
PROPERTY_UNITS = {
    "z": "",
    "atomic_mass": "u",
    "electronegativity": "Pauling",
    "period": "",
    "group": "",
    "atomic_radius": "Å",
    "valence_electrons": "e",
}
EXTRA_PROPERTIES = (
    "mendeleev_number",
    "melting_point",
    "molar_volume",
    "ionization_energy",
    "electron_affinity",
    "ionic_radius",
    "s_valence",
    "p_valence",
    "d_valence",
    "f_valence",
    "unfilled",
)
STATISTICS = ("mean", "std", "min", "max")
PRESENT_EPS = 1e-9  # fractions at or below this count as absent for min/max


def _pymatgen_value(el: Element, prop: str) -> float:
    """A pymatgen element property as a float (units dropped), NaN where pymatgen does not know it."""
    attr = {"electronegativity": "X", "mendeleev_number": "mendeleev_no", "ionic_radius": "average_ionic_radius"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for every missing value
        try:
            value = getattr(el, attr.get(prop, prop))
            return float(value) if value is not None else math.nan
        except (AttributeError, KeyError, TypeError, ValueError):
            return math.nan


def valence_subshells(el: Element) -> list[float]:
    """[s, p, d, f valence electrons, unfilled places]: the subshells outside the noble-gas core
    (pymatgen's electronic_structure, e.g. Cu "[Ar].3d10.4s1" -> 1, 0, 10, 0, 1; Pd "[Kr].4d10" -> 0, 0, 10, 0, 0)."""
    count = dict.fromkeys("spdf", 0.0)
    try:
        for token in el.electronic_structure.split("."):
            match = re.fullmatch(r"(\d+)([spdf])(\d+)", token)
            if match:
                count[match.group(2)] += float(match.group(3))
    except (AttributeError, KeyError, TypeError, ValueError):
        return [math.nan] * 5
    capacity = {"s": 2, "p": 6, "d": 10, "f": 14}
    unfilled = sum(capacity[sub] - c for sub, c in count.items() if c > 0)
    return [count["s"], count["p"], count["d"], count["f"], float(unfilled)]


def _fill_missing(table: np.ndarray) -> np.ndarray:
    for j in range(table.shape[1]):
        col = table[:, j]
        col[np.isnan(col)] = np.nanmedian(col)
    table.setflags(write=False)
    return table


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
    return _fill_missing(table)


@lru_cache(maxsize=1)
def extended_property_table() -> np.ndarray:
    """(118, len(PROPERTIES) + len(EXTRA_PROPERTIES)) float64: `property_table` then the extra properties."""
    extra = np.empty((N_ELEMENTS, len(EXTRA_PROPERTIES)))
    for i, info in enumerate(element_table()):
        el = Element(info.symbol)
        extra[i] = [_pymatgen_value(el, p) for p in EXTRA_PROPERTIES[:6]] + valence_subshells(el)
    return _fill_missing(np.concatenate([np.array(property_table()), extra], axis=1))


def feature_names(include_fractions: bool = True, extended: bool = False) -> list[str]:
    """Column names of `feature_matrix`: `frac_H`..`frac_Og`, then `{stat}_{property}`."""
    props = PROPERTIES + (EXTRA_PROPERTIES if extended else ())
    stats = [f"{s}_{p}" for p in props for s in STATISTICS]
    return ([f"frac_{s}" for s in symbols()] if include_fractions else []) + stats


def element_statistics(x: np.ndarray, extended: bool = False) -> np.ndarray:
    """Fraction-weighted statistics of the element properties.

    Args:
        x: (N, 118) fractions, each row summing to 1.

    Returns:
        (N, 4 * P) float32, per property the columns mean, std, min, max (P properties: `PROPERTIES`, then
        `EXTRA_PROPERTIES` when extended).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != N_ELEMENTS:
        raise ValueError(f"x must have shape (N, {N_ELEMENTS}), got {x.shape}")
    p = extended_property_table() if extended else property_table()  # (118, P)
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


def feature_matrix(
    x: np.ndarray, include_fractions: bool = True, batch: int = 4096, extended: bool = False
) -> np.ndarray:
    """(N, 118) fractions -> (N, 118 + 4P) float32 features (fractions, then statistics; P = 7, or 18 extended).

    Rows are processed in batches of `batch` to bound the (batch, 118, P) temporaries.
    """
    x = np.asarray(x)
    n_props = len(PROPERTIES) + (len(EXTRA_PROPERTIES) if extended else 0)
    parts = [element_statistics(x[i : i + batch], extended) for i in range(0, len(x), batch)] or [
        np.zeros((0, n_props * len(STATISTICS)), np.float32)
    ]
    stats = np.concatenate(parts)
    return np.concatenate([x.astype(np.float32), stats], axis=1) if include_fractions else stats


__all__ = [
    "EXTRA_PROPERTIES",
    "PROPERTIES",
    "STATISTICS",
    "element_statistics",
    "extended_property_table",
    "feature_matrix",
    "feature_names",
    "property_table",
    "valence_electrons",
    "valence_subshells",
]
