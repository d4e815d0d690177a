"""A deep ensemble of K Tc regressors: mean and standard deviation of Tc for every composition.

With K = 1 the standard deviation is reported as 0 and `has_uncertainty` is False, so callers
can show "no uncertainty available" instead of a misleading ±0.

Members trained on the same data agree more than their errors warrant, so the raw spread is
multiplied by `sigma_scale`, fitted on the validation split when the checkpoint is saved
(`evaluate.fit_sigma_scale`: 68.3 % of validation superconductors inside ±1σ), and recorded in
the checkpoint card. σ always means this calibrated value. The spread is taken over the members'
pre-activation outputs, so members that all predict Tc <= 0 but disagree still give σ > 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gdmcd_core.model.resnet import TcResNet


class TcEnsemble(nn.Module):
    """K members sharing one config. Call it like a model: x (B, 118) -> mean Tc (B,) in K."""

    def __init__(
        self, members: list[TcResNet], card: dict[str, Any] | None = None, sha256: str = "", path: str = ""
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.card = card or {}
        self.sha256 = sha256
        self.path = path
        self.sigma_scale = float(self.card.get("sigma_scale", 1.0))  # calibration of the member spread

    @property
    def config(self):
        return self.members[0].config

    @property
    def n_members(self) -> int:
        return len(self.members)

    @property
    def has_uncertainty(self) -> bool:
        return self.n_members > 1

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def member_predictions(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 118) -> (K, B) Tc of every member in K."""
        return torch.stack([m(x) for m in self.members])

    def member_raw_predictions(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 118) -> (K, B) pre-activation outputs of every member in K (may be negative)."""
        return torch.stack([m.forward_raw(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 118) -> (B,) ensemble-mean Tc in K."""
        return self.member_predictions(x).mean(0)

    def mean_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 118) -> (mean (B,), std (B,)) in K.

        mean is the average of the members' (ReLU'd) Tc. std is the population sd of the members'
        pre-activation outputs times `sigma_scale` (0 if K = 1): members that all predict <= 0 but
        disagree on how far below 0 still report their disagreement instead of a false sigma = 0.
        """
        raw = self.member_raw_predictions(x)
        p = torch.relu(raw) if self.config.output_relu else raw
        return p.mean(0), raw.std(0, unbiased=False) * self.sigma_scale

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Numpy convenience: x (B, 118) -> (mean (B,), std (B,)) in K."""
        means, stds = [], []
        for i in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[i : i + batch_size]), dtype=torch.float32, device=self.device)
            m, s = self.mean_std(xb)
            means.append(m.cpu().numpy())
            stds.append(s.cpu().numpy())
        if not means:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(means), np.concatenate(stds)
