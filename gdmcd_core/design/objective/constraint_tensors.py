"""The device form of a run's constraints (constraints.Constraints.tensors) and the loop's pure tensor functions
that keep x_opt on the constrained set: the Euclidean projection (with the element cap), the relu
reparameterization, and x = x_opt + x_c. See constraints.py for what the conditions mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from gdmcd_core.design.objective.simplex import TopKProjection, project_simplex, relu_normalize, top_k_mask


@dataclass(frozen=True)
class ConstraintTensors:
    """Device tensors for the loop. x_c, free, keep: (118,); budget: sum of x_opt.

    k_free: how many non-pinned elements a candidate may hold: -1 = no cap, an int for all, or a
    (B,) long tensor per candidate (see design.DesignConfig.keep_element_count).
    """

    x_c: torch.Tensor
    free: torch.Tensor
    keep: torch.Tensor
    budget: float
    k_free: int | torch.Tensor
    any_keep: bool = True  # whether `keep` holds any element (False: the capped projection needs one top-k)


def _cap(ct: ConstraintTensors) -> torch.Tensor | int | None:
    if isinstance(ct.k_free, torch.Tensor):
        return ct.k_free
    return None if ct.k_free < 0 else ct.k_free


def apply_projection(v: torch.Tensor, ct: ConstraintTensors) -> torch.Tensor:
    """Project raw x_opt values v (B, 118) onto the constrained set; returns x_opt (B, 118)."""
    return projector(ct, tuple(v.shape))(v)


def projector(ct: ConstraintTensors, shape: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`apply_projection(., ct)` for batches of `shape` (B, 118), its per-run constants built once (the loop):
    with an element cap and no at-least pin, one top-k gives both the support and the sorted values."""
    k = _cap(ct)
    if k is not None and not ct.any_keep:
        return TopKProjection(k, ct.budget, ct.free, shape, ct.free.device)
    return partial(_project_masked, ct=ct, k=k)


def _project_masked(v: torch.Tensor, ct: ConstraintTensors, k) -> torch.Tensor:
    """The projection without a cap, or with a cap and forced (at-least pinned) elements in the support."""
    if k is None:
        return project_simplex(v, ct.budget, ct.free)
    support = top_k_mask(v.masked_fill(~ct.free, -torch.inf), k, ct.keep) & ct.free
    return project_simplex(v, ct.budget, support)


def apply_relu(p: torch.Tensor, ct: ConstraintTensors) -> torch.Tensor:
    """x_opt = budget * relu(p) / sum relu(p) over the free elements (with the element cap)."""
    k = _cap(ct)
    mask = ct.free.expand_as(p)
    if k is not None:
        mask = top_k_mask(p.masked_fill(~ct.free, -torch.inf), k, ct.keep) & ct.free
    return relu_normalize(p, ct.budget, mask)


def compose(x_opt: torch.Tensor, ct: ConstraintTensors) -> torch.Tensor:
    """x = x_opt + x_c (eq. 13). (B, 118) -> (B, 118)."""
    return x_opt + ct.x_c


__all__ = ["ConstraintTensors", "apply_projection", "apply_relu", "compose", "projector"]
