"""Chemistry sanity checks of a Tc model: pure functions over a `predict` callable.

`predict(x)` takes (B, 118) atomic fractions and returns (mean (B,), std (B,)) in K, e.g.
`TcEnsemble.predict`. Nothing here reads files or trains.

* `oxygen_scan`      Tc along the oxygen content of known oxide superconductors (tidy DataFrame).
* `oxygen_response`  per family: Tc at nominal oxygen vs the highest Tc at <= 50 % of it; "falls".
* `hydride_sanity`   predictions for molecular/ionic hydrides that do not superconduct.
* `binary_hydride_grid` the XH1..XH10 grid over Z <= 83 (noble gases excluded) for scans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import format_amounts, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, index_of, symbols
from gdmcd_core.data.negatives import KNOWN_NON_SUPERCONDUCTORS
from gdmcd_core.data.repair import NOBLE_GASES

Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

# family -> (cation amounts per formula unit, nominal O amount, highest O amount scanned)
DEFAULT_FAMILIES: dict[str, tuple[dict[str, float], float, float]] = {
    "YBa2Cu3Ox": ({"Y": 1, "Ba": 2, "Cu": 3}, 7.0, 7.0),
    "HgBa2Ca2Cu3Ox": ({"Hg": 1, "Ba": 2, "Ca": 2, "Cu": 3}, 8.0, 8.5),
    "La1.85Sr0.15CuOx": ({"La": 1.85, "Sr": 0.15, "Cu": 1}, 4.0, 4.0),
    "Bi2Sr2CaCu2Ox": ({"Bi": 2, "Sr": 2, "Ca": 1, "Cu": 2}, 8.0, 8.0),
    "Ba0.6K0.4BiOx": ({"Ba": 0.6, "K": 0.4, "Bi": 1}, 3.0, 3.0),
    "La3Ni2Ox": ({"La": 3, "Ni": 2}, 7.0, 7.0),
    "Sr2RuOx": ({"Sr": 2, "Ru": 1}, 4.0, 4.0),
}
SCAN_POINTS = 9  # oxygen amounts per family, evenly spaced from 0 to the family's maximum
LOW_OXYGEN_FRACTION = 0.5  # "stripped" means at most half the nominal oxygen
FALL_RATIO = 0.5  # Tc "falls" if the highest Tc at <= 50 % O is below half the Tc at nominal O
HYDRIDE_GRID_MAX_Z = 83  # Bi; heavier elements are radioactive
HYDRIDE_GRID_H = tuple(range(1, 11))  # XH1 .. XH10
SCAN_COLUMNS = ("family", "formula", "o_amount", "o_fraction_of_nominal", "tc_mean", "tc_std")


def _amounts_with_oxygen(cations: Mapping[str, float], o_amount: float) -> dict[str, float]:
    out = {s: float(a) for s, a in cations.items()}
    if o_amount > 0:
        out["O"] = float(o_amount)
    return out


def oxygen_scan(
    predict: Predict,
    families: Mapping[str, tuple[Mapping[str, float], float, float]] = DEFAULT_FAMILIES,
    n_points: int = SCAN_POINTS,
) -> pd.DataFrame:
    """Predicted Tc along oxygen content, one row per (family, O amount), O from 0 to the family maximum.

    Returns a DataFrame with `SCAN_COLUMNS`: o_amount in atoms per formula unit, o_fraction_of_nominal
    = o_amount / nominal, tc_mean and tc_std in K. The nominal amount is always one of the points.
    """
    rows: list[dict[str, object]] = []
    xs: list[np.ndarray] = []
    for name, (cations, nominal, o_max) in families.items():
        grid = np.unique(np.round(np.append(np.linspace(0.0, o_max, n_points), nominal), 6))
        for o in grid:
            amounts = _amounts_with_oxygen(cations, float(o))
            formula = format_amounts(amounts)
            xs.append(to_vector(formula))
            rows.append(
                {"family": name, "formula": formula, "o_amount": float(o), "o_fraction_of_nominal": float(o) / nominal}
            )
    mean, std = predict(np.stack(xs).astype(np.float32))
    out = pd.DataFrame(rows)
    out["tc_mean"] = np.asarray(mean, dtype=float)
    out["tc_std"] = np.asarray(std, dtype=float)
    return out[list(SCAN_COLUMNS)]


def oxygen_response(scan: pd.DataFrame) -> pd.DataFrame:
    """Per family: Tc at nominal O, the highest Tc at <= 50 % of nominal O, and whether Tc falls.

    scan: the output of `oxygen_scan`. Returns columns family, tc_nominal, tc_low_oxygen_max (K), falls (bool):
    falls is True when tc_low_oxygen_max < 0.5 * tc_nominal.
    """
    out = []
    for name, g in scan.groupby("family", sort=False):
        nominal = g.loc[(g["o_fraction_of_nominal"] - 1.0).abs().idxmin(), "tc_mean"]
        low = g.loc[g["o_fraction_of_nominal"] <= LOW_OXYGEN_FRACTION + 1e-9, "tc_mean"].max()
        out.append(
            {
                "family": name,
                "tc_nominal": float(nominal),
                "tc_low_oxygen_max": float(low),
                "falls": bool(low < FALL_RATIO * nominal),
            }
        )
    return pd.DataFrame(out, columns=["family", "tc_nominal", "tc_low_oxygen_max", "falls"])


def hydride_formulas() -> list[str]:
    """The molecular and ionic hydrides of the curated non-superconductor list (Tc = 0 at ambient pressure)."""
    return [f for f in KNOWN_NON_SUPERCONDUCTORS if "H" in to_symbols(f)]


def to_symbols(formula: str) -> set[str]:
    """Element symbols present in a formula."""
    x = to_vector(formula)
    syms = symbols()
    return {syms[i] for i in np.flatnonzero(x > 0)}


def hydride_sanity(predict: Predict, formulas: Sequence[str] | None = None) -> pd.DataFrame:
    """Predictions for non-superconducting hydrides: columns formula, tc_mean, tc_std (K); expected ~0."""
    names = list(formulas) if formulas is not None else hydride_formulas()
    mean, std = predict(np.stack([to_vector(f) for f in names]).astype(np.float32))
    return pd.DataFrame({"formula": names, "tc_mean": np.asarray(mean, float), "tc_std": np.asarray(std, float)})


def binary_hydride_grid(
    max_z: int = HYDRIDE_GRID_MAX_Z, h_counts: Sequence[int] = HYDRIDE_GRID_H
) -> tuple[list[str], np.ndarray]:
    """XH_n for every element X with 2 <= Z <= max_z except noble gases, n in h_counts.

    Returns (formulas (M,), fractions (M, 118) float32), ordered by Z then n.
    """
    formulas: list[str] = []
    xs: list[np.ndarray] = []
    for sym in symbols()[1:max_z]:
        if sym in NOBLE_GASES:
            continue
        for n in h_counts:
            x = np.zeros(N_ELEMENTS, dtype=np.float32)
            x[index_of(sym)] = 1.0 / (n + 1)
            x[0] = n / (n + 1)
            formulas.append(f"{sym}H{n}" if n > 1 else f"{sym}H")
            xs.append(x)
    return formulas, np.stack(xs)
