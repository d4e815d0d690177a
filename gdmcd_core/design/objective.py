"""The design objective as pure tensor functions: what stage 2 and stage 3 minimize.

loss_b = max(0, y_t - score_b) + alpha * L_integer,{N}(x_b) + w_E * relu(E_f(x_b))

score is the ensemble-mean Tc, or its lower confidence bound mean - kappa * sd ("lcb"), taken on the
members' pre-activation outputs in the loop: equal to Tc wherever Tc > 0, but still sloped where the
output ReLU reads 0 K, so a start the model calls a non-superconductor still gets a gradient.
Units: K for Tc and the hinge; alpha in K per unit of L_integer; w_E in K per eV/atom.
"""

from __future__ import annotations

import torch

OBJECTIVES = ("mean", "lcb")


def score_from_members(raw: torch.Tensor, objective: str = "mean", kappa: float = 1.0) -> torch.Tensor:
    """raw: (K, B) members' pre-activation outputs in K -> (B,) score in K (mean, or mean - kappa * sd)."""
    if objective == "lcb":
        return raw.mean(0) - kappa * raw.std(0, unbiased=False)
    return raw.mean(0)


def hinge(score: torch.Tensor, target_tc: float) -> torch.Tensor:
    """(B,) max(0, y_t - score) in K."""
    return torch.relu(target_tc - score)


def design_loss(
    score: torch.Tensor,
    target_tc: float,
    alpha: float = 0.0,
    int_loss: torch.Tensor | None = None,
    formation_energy: torch.Tensor | None = None,
    formation_energy_weight: float = 0.0,
) -> torch.Tensor:
    """(B,) per-candidate loss: hinge + alpha * L_integer + w_E * relu(E_f). Terms with zero weight are skipped."""
    loss = hinge(score, target_tc)
    if alpha > 0 and int_loss is not None:
        loss = loss + alpha * int_loss
    if formation_energy_weight > 0 and formation_energy is not None:
        loss = loss + formation_energy_weight * torch.relu(formation_energy)
    return loss


def alpha_ramp(k: int, steps3: int, alpha_max: float) -> float:
    """alpha at stage-3 step k = 0..steps3-1: linear from 0 to alpha_max (alpha_max when steps3 <= 1)."""
    if steps3 <= 1:
        return alpha_max
    return alpha_max * k / (steps3 - 1)
