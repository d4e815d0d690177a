"""Physically grounded non-superconductors (Tc = 0 rows) for training.

Two kinds:

* oxygen-stripped variants of oxide superconductors (`oxygen_stripped_negatives`). A cuprate
  superconducts only while its CuO2 planes carry holes (Cu valence above ~+2) or, for the
  electron-doped T' family, slightly below +2 (Nd1.85Ce0.15CuO4: +1.85). Removing oxygen until the
  average Cu valence falls below +1.8 gives the insulating, non-superconducting end (YBa2Cu3O6 has
  +1.67). Scaling the oxygen to 0, 1/4 and 1/2 of the original gives further negatives; for other
  oxide superconductors (bismuthates, nickelates, ruthenates, titanates...) oxygen is set to 0 and 1/4.
* a curated list of known non-superconductors (`KNOWN_NON_SUPERCONDUCTORS`): undoped cuprate parents
  (antiferromagnetic Mott insulators) and molecular or ionic hydrides at ambient pressure.

The Cu valence here (`_fixed_cu_valence`) is private to the generator: it assigns every element a fixed
valence (`FIXED_VALENCE`, Fe +3, N -3, ...) and also answers for intermetallics, which keeps the generated
rows as they were. Credibility checks use `gdmcd_core.chem.valence.cu_valence`, which leaves ambiguous
valences and intermetallics undefined (the two differ on ~18% of SuperCon's Cu compounds). All functions
are pure and deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gdmcd_core.chem.composition import format_amounts, parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS
from gdmcd_core.chem.valence import TYPICAL_VALENCE
from gdmcd_core.data.repair import ALKALI, ALKALINE_EARTH, RARE_EARTH, fractions, is_cuprate

# Fixed common oxidation states used to balance charge around Cu. Rare earths are +3 except Ce (+4, the
# electron dopant of Nd2-xCexCuO4); Bi and Tl are taken as +3, Hg and Pb as +2, as usual for cuprates.
FIXED_VALENCE: dict[str, float] = {
    **{s: TYPICAL_VALENCE[s] for s in ("O", "F", "Cl", "Br", "I", "S", "Se")},  # the anions, as chem.valence
    "N": -3.0,
    **{s: 1.0 for s in ALKALI},
    **{s: 2.0 for s in ALKALINE_EARTH},
    **{s: 3.0 for s in RARE_EARTH},
    "Ce": 4.0,
    "Bi": 3.0,
    "Tl": 3.0,
    "Hg": 2.0,
    "Pb": 2.0,
    "Cd": 2.0,
    "Zn": 2.0,
    "Ni": 2.0,
    "Ag": 1.0,
    "Au": 3.0,
    "Pd": 2.0,
    "Pt": 4.0,
    "Fe": 3.0,
    "Co": 3.0,
    "Cr": 3.0,
    "Al": 3.0,
    "Ga": 3.0,
    "In": 3.0,
    "B": 3.0,
    "C": 4.0,  # carbonate groups in (Cu,C)-1234 type cuprates
    "Si": 4.0,
    "Ge": 4.0,
    "Sn": 4.0,
    "Ti": 4.0,
    "Zr": 4.0,
    "Hf": 4.0,
    "Th": 4.0,
    "Ru": 5.0,  # RuSr2GdCu2O8: Ru close to +5
    "Nb": 5.0,
    "Ta": 5.0,
    "V": 5.0,
    "P": 5.0,
    "Mo": 6.0,
    "W": 6.0,
    "Re": 7.0,
    "H": 1.0,
}

NEGATIVE_CU_VALENCE = 1.7  # oxygen of the reduced variant is chosen so Cu sits at or below this (YBa2Cu3O6: 1.67)
OXYGEN_STEP = 0.25  # reduced oxygen amounts are floored to this grid, so YBa2Cu3O7 -> YBa2Cu3O6
CUPRATE_OXYGEN_SCALES = (0.0, 0.25, 0.5)  # further cuprate variants: oxygen times these
OXIDE_OXYGEN_SCALES = (0.0, 0.25)  # other oxide superconductors: oxygen times these
OXIDE_MIN_O_FRACTION = 0.3  # a non-cuprate counts as an oxide superconductor from this O fraction (LiTi2O4: 0.57)
MIN_PARENT_TC_K = 0.0  # parents must superconduct (Tc > this)
AMOUNT_DECIMALS = 4  # amounts of generated formulas are rounded to this many decimals

REASON_CU_VALENCE = "cuprate_reduced_cu_valence"
REASON_CUPRATE_SCALED = "cuprate_oxygen_scaled"
REASON_OXIDE_SCALED = "oxide_oxygen_scaled"
REASON_KNOWN = "known_non_superconductor"

# Known non-superconductors (Tc = 0 at ambient pressure), formula -> why.
KNOWN_NON_SUPERCONDUCTORS: dict[str, str] = {
    # Undoped cuprate parents: antiferromagnetic charge-transfer insulators; superconductivity needs doping
    # (Lee, Nagaosa & Wen, Rev. Mod. Phys. 78, 17 (2006); Keimer et al., Nature 518, 179 (2015)).
    "YBa2Cu3O6": "AF insulating parent of YBa2Cu3O7 (Cu +1.67 with fixed valences)",
    "La2CuO4": "AF insulating parent of La2-xSrxCuO4 (stoichiometric; excess oxygen dopes it)",
    "Nd2CuO4": "AF insulating parent of electron-doped Nd2-xCexCuO4",
    "Sr2CuO2Cl2": "AF insulating oxychloride parent (Vaknin et al., PRB 41, 1926 (1990))",
    "Ca2CuO2Cl2": "AF insulating oxychloride parent (superconducts only when Na-doped)",
    # Molecular and ionic hydrides: insulators at ambient pressure; H-rich superconductivity (H3S, LaH10)
    # needs >100 GPa (Drozdov et al., Nature 525, 73 (2015); Somayazulu et al., PRL 122, 027001 (2019)).
    "H2O": "molecular insulator",
    "NH3": "molecular insulator",
    "CH4": "molecular insulator",
    "H2": "molecular insulator at ambient pressure",
    "SiH4": "molecular insulator at ambient pressure",
    "LiH": "ionic insulator (salt-like hydride)",
    "NaH": "ionic insulator (salt-like hydride)",
    "KH": "ionic insulator (salt-like hydride)",
    "CaH2": "ionic insulator (salt-like hydride)",
    "MgH2": "ionic insulator (hydrogen-storage hydride)",
    "BaH2": "ionic insulator (salt-like hydride)",
    "AlH3": "covalent insulator (alane)",
    "LiAlH4": "complex-hydride insulator",
    "NaBH4": "complex-hydride insulator",
}


@dataclass(frozen=True)
class Negatives:
    """Generated Tc = 0 rows. x: (N, 118) fractions; formula, reason: (N,) str; parent: (N,) int (-1: none)."""

    x: np.ndarray
    formula: np.ndarray
    reason: np.ndarray
    parent: np.ndarray

    def __len__(self) -> int:
        return len(self.formula)


def _fixed_cu_valence(amounts: Mapping[str, float]) -> float | None:
    """Average Cu oxidation state from charge balance with `FIXED_VALENCE` for every other element.

    amounts: {symbol: amount per formula unit}. None if there is no Cu or an element has no fixed valence.
    >>> round(_fixed_cu_valence({"Y": 1, "Ba": 2, "Cu": 3, "O": 7}), 3)
    2.333
    """
    n_cu = amounts.get("Cu", 0.0)
    if n_cu <= 0:
        return None
    charge = 0.0
    for sym, n in amounts.items():
        if sym == "Cu":
            continue
        if sym not in FIXED_VALENCE:
            return None
        charge += FIXED_VALENCE[sym] * n
    return -charge / n_cu


def oxygen_for_cu_valence(amounts: Mapping[str, float], valence: float) -> float | None:
    """Oxygen amount per formula unit at which the average Cu valence equals `valence` (None if not computable)."""
    if "Cu" not in amounts or "O" not in amounts:
        return None
    others = {s: n for s, n in amounts.items() if s != "O"}
    base = _fixed_cu_valence({**others, "O": 0.0})
    if base is None:
        return None
    # valence = base + 2 * n_O / n_Cu
    return (valence - base) * amounts["Cu"] / 2.0


def _with_oxygen(amounts: Mapping[str, float], n_o: float) -> dict[str, float]:
    out = {s: round(float(n), AMOUNT_DECIMALS) for s, n in amounts.items() if s != "O"}
    n_o = round(n_o, AMOUNT_DECIMALS)
    if n_o > 0:
        out["O"] = n_o
    return out


def oxide_variants(amounts: Mapping[str, float]) -> list[tuple[dict[str, float], str]]:
    """Oxygen-reduced variants of one oxide superconductor: [(amounts, reason)], without duplicates.

    Cuprates: oxygen floored to the 0.25 grid at Cu valence <= 1.7, and oxygen x 0, 0.25, 0.5.
    Other oxides (O fraction >= 0.3): oxygen x 0 and 0.25. Variants must keep >= 1 element and lose oxygen.
    """
    if "O" not in amounts:
        return []
    n_o = float(amounts["O"])
    targets: list[tuple[float, str]] = []
    if is_cuprate(amounts):
        red = oxygen_for_cu_valence(amounts, NEGATIVE_CU_VALENCE)
        if red is not None and red > 0:
            targets.append((math.floor(red / OXYGEN_STEP + 1e-9) * OXYGEN_STEP, REASON_CU_VALENCE))
        targets += [(s * n_o, REASON_CUPRATE_SCALED) for s in CUPRATE_OXYGEN_SCALES]
    elif fractions(amounts)["O"] >= OXIDE_MIN_O_FRACTION:
        targets += [(s * n_o, REASON_OXIDE_SCALED) for s in OXIDE_OXYGEN_SCALES]
    out: list[tuple[dict[str, float], str]] = []
    seen: set[tuple] = set()
    for target, reason in targets:
        if target >= n_o - 1e-9:
            continue
        var = _with_oxygen(amounts, target)
        key = tuple(sorted(var.items()))
        if len(var) == 0 or key in seen:
            continue
        seen.add(key)
        out.append((var, reason))
    return out


def oxygen_stripped_negatives(
    formulas: Sequence[str], tc_k: Sequence[float] | np.ndarray, min_tc_k: float = MIN_PARENT_TC_K
) -> Negatives:
    """Tc = 0 variants of every oxide superconductor in `formulas` (Tc > min_tc_k), in input order.

    Args:
        formulas: (P,) parent formulas; tc_k: (P,) their Tc in K.
    Returns:
        `Negatives` with parent = index into `formulas`. Deterministic: no randomness is involved.
    """
    xs, fs, rs, ps = [], [], [], []
    for i, (f, tc) in enumerate(zip(formulas, tc_k, strict=True)):
        if not float(tc) > min_tc_k:
            continue
        for var, reason in oxide_variants(parse_formula(str(f))):
            text = format_amounts(var, decimals=AMOUNT_DECIMALS)
            xs.append(to_vector(text))
            fs.append(text)
            rs.append(reason)
            ps.append(i)
    return Negatives(
        x=np.array(xs, dtype=np.float32).reshape(-1, N_ELEMENTS),
        formula=np.array(fs, dtype=object).astype(str),
        reason=np.array(rs, dtype=object).astype(str),
        parent=np.array(ps, dtype=np.int64),
    )


def known_negatives() -> Negatives:
    """The curated `KNOWN_NON_SUPERCONDUCTORS` as Tc = 0 rows (parent = -1)."""
    names = list(KNOWN_NON_SUPERCONDUCTORS)
    return Negatives(
        x=np.stack([to_vector(f) for f in names]).astype(np.float32),
        formula=np.array(names, dtype=str),
        reason=np.array([REASON_KNOWN] * len(names), dtype=str),
        parent=np.full(len(names), -1, dtype=np.int64),
    )


def physical_negatives(formulas: Sequence[str], tc_k: Sequence[float] | np.ndarray) -> Negatives:
    """Oxygen-stripped variants of `formulas` followed by the curated list."""
    a, b = oxygen_stripped_negatives(formulas, tc_k), known_negatives()
    return Negatives(
        x=np.concatenate([a.x, b.x]),
        formula=np.concatenate([a.formula, b.formula]),
        reason=np.concatenate([a.reason, b.reason]),
        parent=np.concatenate([a.parent, b.parent]),
    )
