"""Tiny models and a tiny synthetic reference set for the design-engine tests (no data files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig, TcResNet

FORMULAS = [
    "YBa2Cu3O7",
    "La1.8Sr0.2CuO4",
    "MgB2",
    "Nb3Sn",
    "NbTi",
    "CaSrBi",
    "HgBa2Ca2Cu3O8",
    "Bi2Sr2CaCu2O8",
    "H3S",
    "LaH10",
    "YH6",
    "PdH",
    "Nb3Ge",
    "V3Si",
    "PbMo6S8",
    "K3C60",
    "LaFeAsO",
    "BaFe2As2",
    "Tl2Ba2CaCu2O8",
    "CeCoIn5",
    "NbN",
    "MoC",
    "Pb",
    "Sn",
    "Al",
    "NaCl",
    "SiO2",
    "Fe2O3",
]
TCS = [92, 38, 39, 18, 9, 20, 133, 85, 200, 250, 220, 9, 23, 17, 14, 19, 26, 38, 110, 2, 16, 14, 7, 3.7, 1.2, 0, 0, 0]


def tiny_reference() -> ReferenceData:
    x = np.stack([to_vector(f) for f in FORMULAS]).astype(np.float32)
    return ReferenceData(sc_x=x, sc_tc_k=np.asarray(TCS, np.float32), sc_formula=np.asarray(FORMULAS), train_x=x)


def constant_ensemble(
    biases: tuple[float, ...], card: dict | None = None, layers: tuple[int, ...] = (1,)
) -> TcEnsemble:
    """Members whose pre-activation output is the constant `biases[k]` (K), whatever the input."""
    members = [TcResNet(ModelConfig(width=4, layers=layers)) for _ in biases]
    for m, b in zip(members, biases, strict=True):
        torch.nn.init.zeros_(m.head.weight)
        torch.nn.init.constant_(m.head.bias, b)
        m.eval()
    return TcEnsemble(members, card=card)


def tiny_ensemble(members: int = 2, seed: int = 0) -> TcEnsemble:
    torch.manual_seed(seed)
    ms = [TcResNet(ModelConfig(width=4, layers=(1,), head_bias=50.0)) for _ in range(members)]
    return TcEnsemble(ms).eval().requires_grad_(False)


class LinearTc(nn.Module):
    """Tc(x) = w . x in K: its maximum on the simplex is the vertex of the largest allowed w_i."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and the machine is shared); restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# The candidates.csv columns named by the design issue (and integer_tc_std_k from the trust issue).
ISSUE_CANDIDATE_COLUMNS = frozenset(
    {
        "initial_formula",
        "initial_tc_k",
        "optimized_tc_k",
        "integer_formula",
        "n_atoms",
        "integer_tc_k",
        "delta_tc_k",
        "rounded_formula",
        "rounded_tc_k",
        "in_supercon",
        "elements_seen_in_training",
        "nearest_supercon_formula",
        "nearest_supercon_tc_k",
        "integer_tc_std_k",
        "parent_formula",
        "edit",
        "is_mixture",
        "is_known",
        "site_mismatch",
    }
)
# The ranking tiers of a candidate table (evidence/candidates.py rank_rows): within one tier, by score.
RANK_TIERS = ["only_pinned_elements", "passes_chemistry_checks", "is_mixture", "site_misfit", "is_known"]


def rank_groups(table, max_per_family: int = 3) -> list:
    """The groups of a ranked table within which rows are in score order: its tiers and whether the row is past
    the family cap (DesignConfig.max_per_family)."""
    past = table["family_rank"] > max_per_family if max_per_family > 0 else table["family_rank"] < 0
    return [table[c] for c in RANK_TIERS] + [past.rename("past_family_cap")]
