"""The design loop's view of the Tc model: members' outputs, the objective's score, and predictions.

An ensemble of TcResNet members is evaluated through model.fused.FusedEnsemble: all K members in one
network (BatchNorm folded, members as convolution groups), equal to calling them one by one to float32
rounding. Two ways to spend it in the loop (DesignConfig.ensemble_mode):

- "fused": every step scores all members (mean, or mean - kappa * sd for "lcb").
- "rotate": every `full_every`-th step scores all members as "fused" does; the steps between take the
  gradient through one member, in turn, with the sd of the last full step held fixed (lcb). A step then
  costs about one member instead of K; Tc statistics of those steps are the single member's.

Any other nn.Module mapping (B, 118) -> (B,) Tc is used as it is (sd 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gdmcd_core.design.objective import loss as obj
from gdmcd_core.model.fused import FusedEnsemble, fuse_members


def _fusable(model: nn.Module) -> list[nn.Module] | None:
    members = list(model.members) if hasattr(model, "members") else [model]
    ok = all(hasattr(m, "forward_raw") and hasattr(m, "stages") for m in members)
    return members if ok and len({m.config for m in members}) == 1 else None


class Scorer:
    """Scores compositions for the loop and the candidate table. `model` must be frozen and in eval mode."""

    def __init__(
        self,
        model: nn.Module,
        objective: str = "mean",
        kappa: float = 1.0,
        mode: str = "fused",
        full_every: int = 4,
        neighbors_fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> None:
        """neighbors_fn: (B, 118) -> ((B,) L1 distance to, (B,) Tc in K of) the nearest reference superconductor,
        for the σ's distance and neighbour terms (a model calibrated with them, model/ensemble.py); None: σ
        without them (the spread and the Tc term)."""
        self.model, self.objective, self.kappa = model, objective, kappa
        self.neighbors_fn = neighbors_fn
        self.mode, self.full_every = mode, max(1, full_every)
        members = _fusable(model)
        self.fused: FusedEnsemble | None = fuse_members(members) if members else None
        self.singles = [fuse_members([m]) for m in members] if members and len(members) > 1 else []
        self.relu = bool(getattr(getattr(model, "config", None), "output_relu", True))
        self._sd_last: torch.Tensor | None = None
        self._turn = 0

    def reset(self) -> None:
        """Forget the rotation and the held sd: a new optimization starts with member 0 (runs repeat)."""
        self._sd_last, self._turn = None, 0

    @property
    def n_members(self) -> int:
        return self.fused.k if self.fused is not None else 1

    def raw(self, x: torch.Tensor) -> torch.Tensor | None:
        """(K, B) members' pre-activation outputs in K, or None for a model without members."""
        return self.fused(x) if self.fused is not None else None

    def score(self, x: torch.Tensor, raw: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(score (B,), ensemble-mean Tc (B,)) in K with all members. raw=True (the loop) scores the members'
        pre-activation outputs, still sloped where Tc reads 0 K (lcb: their plain sd); raw=False (integer
        formulas, the table) scores the reported Tc (lcb: minus kappa times the model's calibrated sd)."""
        r = self.raw(x)
        if r is not None and raw:
            return self._from_raw(r)
        if self.objective == "lcb":
            mean, std = self.mean_std(x, r)
            return mean - self.kappa * std, mean
        mean = self._activate(r.mean(0)) if r is not None else self.model(x)
        return mean, mean

    def _activate(self, r: torch.Tensor) -> torch.Tensor:
        return torch.relu(r) if self.relu else r

    def _from_raw(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(score, Tc): Tc is the ReLU of the members' mean raw output, as TcEnsemble.activate_mean."""
        return obj.score_from_members(r, self.objective, self.kappa), self._activate(r.mean(0))

    def loop_score(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The loop's (score, Tc) at `step` under the ensemble mode (see the module docstring)."""
        if self.mode != "rotate" or not self.singles or step % self.full_every == 0:
            r = self.raw(x)
            if r is None:
                return self.score(x, raw=True)
            if self.mode == "rotate" and self.singles:  # held for the single-member steps until the next full one
                self._sd_last = r.detach().std(0, unbiased=False)
            return self._from_raw(r)
        member = self.singles[self._turn % len(self.singles)]
        self._turn += 1
        r = member(x)[0]
        if self.objective == "lcb" and self._sd_last is not None:
            return r - self.kappa * self._sd_last, self._activate(r)
        return r, self._activate(r)

    def mean_std(self, x: torch.Tensor, r: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean Tc, calibrated sd) in K, as the model's own mean_std, with the distance and neighbour terms when
        the scorer has a neighbors_fn; r: the members' raw outputs at x if already computed."""
        r = self.raw(x) if r is None else r
        d, tc_nn = self.neighbors_fn(x) if self.neighbors_fn is not None else (None, None)
        if r is not None and hasattr(self.model, "stats_from_raw"):
            return self.model.stats_from_raw(r, d, tc_nn)
        if hasattr(self.model, "mean_std"):
            return self.model.mean_std(x, d, tc_nn)
        m = self.model(x)
        return m, torch.zeros_like(m)


__all__ = ["Scorer"]
