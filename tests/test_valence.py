"""Oxidation-state window penalty and cuprate Cu-valence helpers (gdmcd_core.chem.valence)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, index_of
from gdmcd_core.chem.valence import (
    cu_valence,
    cu_valence_plausible,
    is_charge_balanceable,
    oxidation_states,
    valence_bounds,
    valence_window_penalty,
)

BALANCEABLE = [
    "YBa2Cu3O7",
    "YBa2Cu3O6",
    "La1.85Sr0.15CuO4",
    "NaCl",
    "HgBa2Ca2Cu3O8",
    "Bi2Sr2CaCu2O8",
    "BaFe2As2",
    "LaFeAsO0.9F0.1",
    "CuSO4",
    "Li2O2",
    "MgO",
    "H3S",
    "LaH10",
    "NaOH",
]
INTERMETALLIC = ["MgB2", "Nb3Sn", "NbTi", "V3Si", "YNi2B2C", "CaC6", "Pb", "MgB1.9C0.1"]
# Oxygen-starved: Cu cannot go below +1 and the other cations are fixed, so too little anion.
# Over-oxidized: more oxygen than the cations can compensate even as peroxide.
INFEASIBLE = ["YBa2Cu3O1", "HgBa2Ca2Cu3O0.5", "Na3Cl", "Li2O5", "MgO4", "BaF5"]


def _penalty(formulas: list[str], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    x = torch.tensor(np.stack([to_vector(f) for f in formulas]), dtype=dtype)
    v_min, v_max = valence_bounds(dtype=dtype)
    return valence_window_penalty(x, v_min, v_max)


def test_bounds_are_finite_and_ordered() -> None:
    v_min, v_max = valence_bounds()
    assert v_min.shape == v_max.shape == (N_ELEMENTS,)
    assert torch.isfinite(v_min).all() and torch.isfinite(v_max).all()
    assert (v_min <= v_max).all()
    assert v_min[index_of("He")] == v_max[index_of("He")] == 0  # no states: neutral
    assert oxidation_states("Cu") == (1, 2, 3)
    assert max(oxidation_states("O")) < 0


@pytest.mark.parametrize("formula", BALANCEABLE + INTERMETALLIC)
def test_zero_for_feasible(formula: str) -> None:
    assert _penalty([formula]).item() == 0.0
    assert is_charge_balanceable(parse_formula(formula))


@pytest.mark.parametrize("formula", INFEASIBLE)
def test_positive_for_infeasible(formula: str) -> None:
    assert _penalty([formula]).item() > 0.0
    assert not is_charge_balanceable(parse_formula(formula))


def test_intermetallic_rule_can_be_turned_off() -> None:
    # Nb3Sn has no anion former; as an ionic compound it is still balanceable only if Sn goes negative.
    assert is_charge_balanceable({"Nb": 3, "Sn": 1})
    assert not is_charge_balanceable({"Mg": 1, "Ca": 1}, allow_intermetallic=False)
    assert is_charge_balanceable({"Mg": 1, "Ca": 1})


def test_gradient_flows_and_points_to_feasibility() -> None:
    x = torch.tensor(np.stack([to_vector("YBa2Cu3O1"), to_vector("Li2O5"), to_vector("YBa2Cu3O7")]))
    x.requires_grad_(True)
    v_min, v_max = valence_bounds(dtype=x.dtype)
    p = valence_window_penalty(x, v_min, v_max)
    p.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    o = index_of("O")
    # oxygen-starved: more O lowers the penalty (negative gradient); over-oxidized: the opposite.
    assert x.grad[0, o] < 0 < x.grad[1, o]
    assert torch.all(x.grad[2] == 0)


def test_device_and_dtype_follow_input() -> None:
    for dtype in (torch.float32, torch.float64):
        p = _penalty(["Li2O5", "NaCl"], dtype=dtype)
        assert p.dtype == dtype and p.shape == (2,)
    v_min, v_max = valence_bounds(dtype=torch.float64)  # bounds in another dtype are cast
    p = valence_window_penalty(torch.tensor(to_vector("Li2O5"), dtype=torch.float32)[None], v_min, v_max)
    assert p.dtype == torch.float32


def test_tiny_anion_fraction_is_intermetallic() -> None:
    x = to_vector("Nb3Sn")
    x[index_of("O")] = 1e-8
    v_min, v_max = valence_bounds(dtype=torch.float64)
    assert valence_window_penalty(torch.tensor(x / x.sum())[None], v_min, v_max).item() == 0.0


def test_cu_valence() -> None:
    assert cu_valence(parse_formula("YBa2Cu3O7")) == pytest.approx(7 / 3)
    assert cu_valence(parse_formula("YBa2Cu3O6")) == pytest.approx(5 / 3)
    assert cu_valence(parse_formula("La1.85Sr0.15CuO4")) == pytest.approx(2.15)
    assert cu_valence(parse_formula("Nd1.85Ce0.15CuO4")) == pytest.approx(1.85)
    assert cu_valence(parse_formula("HgBa2Ca2Cu3O8")) == pytest.approx(2.0)
    assert cu_valence(parse_formula("Nb3Sn")) is None  # no Cu
    assert cu_valence({"Cu": 1, "Zr": 1}) is None  # intermetallic
    assert cu_valence({"Cu": 1, "Fe": 1, "O": 2}) is None  # Fe +2 or +3: ambiguous


def test_cu_valence_plausible() -> None:
    assert cu_valence_plausible(parse_formula("YBa2Cu3O7")) is True
    assert cu_valence_plausible(parse_formula("Tl2Ba2CaCu2O8")) is True
    assert cu_valence_plausible(parse_formula("YBa2Cu3O6")) is False
    assert cu_valence_plausible(parse_formula("NaCl")) is None
