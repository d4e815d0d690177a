"""Stability columns of the candidate table: energy above the convex hull of known compounds.

e_hull_ev_atom = max(0, E_f - E_hull): E_f from the formation-energy surrogate, E_hull from the JARVIS
hull of the candidate's chemical system (design/stability/hull.py). e_hull_sigma_ev_atom carries the surrogate's
error (its card's test MAE) through that max (`HullReference.e_hull_with_uncertainty`).

`FormationEnergyFn` is what the engine hands the table as its formation-energy callable: x (B, 118) ->
E_f (B,) in eV/atom, with its error `sigma_ev_atom` and `hull` (False: leave the e_hull columns empty).
The JARVIS reference is read once per process, on first use (`default_hull_reference`); when the data
file is missing the columns stay empty and one warning says why.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from gdmcd_core.chem.composition import parse_formula
from gdmcd_core.design.stability.hull import HullReference
from gdmcd_core.model.formation_energy import formation_energy_sigma, load_formation_energy_model
from gdmcd_core.util import batched

HULL_COLUMNS = ("e_hull_ev_atom", "e_hull_sigma_ev_atom")
_LOCK = threading.Lock()
_HULL: list[HullReference | None] = []  # [] = not tried yet; [None] = unavailable


def default_hull_reference() -> HullReference | None:
    """The JARVIS hull reference, loaded once per process; None (with a warning) if the data is missing."""
    with _LOCK:
        if not _HULL:
            try:
                _HULL.append(HullReference.from_jarvis())
            except (OSError, ValueError) as exc:  # DataNotFoundError is an OSError
                warnings.warn(f"energy above hull unavailable: {exc}", stacklevel=2)
                _HULL.append(None)
        return _HULL[0]


def default_formation_energy_model(device: torch.device | str = "cpu") -> nn.Module | None:
    """The committed surrogate (checkpoints/formation_energy.pt) or None when absent or unreadable."""
    try:
        return load_formation_energy_model(device=device)
    except Exception as exc:  # a bad checkpoint must not stop a design run that only wants table columns
        warnings.warn(f"formation-energy model not loaded: {exc}", stacklevel=2)
        return None


class FormationEnergyFn:
    """x (B, 118) fractions -> (B,) E_f in eV/atom, in batches on `device`; sigma_ev_atom: the model's
    error (None if unknown); hull: whether the table should compute the energy above the hull."""

    def __init__(self, model: nn.Module, device: torch.device, hull: bool = True) -> None:
        self.model, self.device, self.hull = model, device, hull
        self.sigma_ev_atom = formation_energy_sigma(model)

    @classmethod
    def of(cls, model: nn.Module | None, device: torch.device, hull: bool = True) -> FormationEnergyFn | None:
        """The callable for `model`, or None without one."""
        return None if model is None else cls(model, device, hull)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return batched(self.model, np.asarray(x), self.device)[0].astype(np.float64)


def hull_columns(
    formulas: list[str],
    e_form: np.ndarray | None,
    sigma: float | None,
    reference: HullReference | Callable[[], HullReference | None] | None = default_hull_reference,
) -> pd.DataFrame:
    """e_hull_ev_atom and e_hull_sigma_ev_atom (eV/atom) of integer formulas with formation energies e_form.

    Empty (NaN) columns when e_form is None or no reference is available; sigma None leaves the sigma
    column empty (the value itself is then computed at sigma 0).
    """
    empty = pd.DataFrame({c: np.full(len(formulas), np.nan) for c in HULL_COLUMNS})
    ref = reference() if callable(reference) else reference
    if e_form is None or ref is None or not len(formulas):
        return empty
    s = 0.0 if sigma is None else float(sigma)
    values = np.full(len(formulas), np.nan)
    sigmas = np.full(len(formulas), np.nan)
    for i, (f, e) in enumerate(zip(formulas, np.asarray(e_form, np.float64), strict=True)):
        if not math.isfinite(e):
            continue
        try:
            values[i], sigmas[i] = ref.e_hull_with_uncertainty(parse_formula(f), e, s)
        except Exception as exc:  # pymatgen refuses odd systems; the row stays empty
            warnings.warn(f"energy above hull of {f}: {exc}", stacklevel=2)
    if sigma is None:
        sigmas[:] = np.nan
    return pd.DataFrame({HULL_COLUMNS[0]: values, HULL_COLUMNS[1]: sigmas})


__all__ = [
    "HULL_COLUMNS",
    "FormationEnergyFn",
    "default_formation_energy_model",
    "default_hull_reference",
    "hull_columns",
]
