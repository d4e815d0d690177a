"""A deep ensemble of K Tc regressors: mean and standard deviation of Tc for every composition.

With K = 1 the standard deviation is reported as 0 and `has_uncertainty` is False, so callers
can show "no uncertainty available" instead of a misleading ±0.

Members trained on the same data agree more than their errors warrant, and they agree most
where they are all equally wrong: far from every training composition, and where the landscape is
steep. σ is therefore calibrated as

    σ² = (s · spread)² + (b · d)² + (g · |Tc − Tc_nn|)² + (h · Tc)²

where spread is the population sd of the members' pre-activation outputs (K), d the L1 distance in
atomic fractions (0..2) from the composition to its nearest training SuperCon composition, Tc_nn
that neighbour's measured Tc (a prediction far from its nearest known compound's Tc is a claim
the data do not yet support), Tc the ensemble's own prediction (errors grow with Tc: a 100 K claim is
uncertain by more kelvin than a 2 K one), and (s, b, g, h) are fitted by training/calibration.py and
recorded in the card under "calibration" ({"sigma_scale": s, "distance_scale_k": b, "neighbor_scale": g,
"tc_scale": h, ...}). Old cards hold only a top-level "sigma_scale": b, g and h are 0 for them. When d is
given, σ is then multiplied by the factor of d's distance band ("band_edges_l1", "band_factors" in the
calibration): errors do not grow smoothly with distance, so each band's σ is scaled to cover its own rows. A
term whose input is not given is left out (the design loop passes d and Tc_nn for a model calibrated with
them; the Tc term needs only the prediction). Because the spread is taken
over pre-activation outputs, members that all predict Tc <= 0 but disagree still give σ > 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gdmcd_core.model.resnet import TcResNet

SPREAD_FLOOR_K = 10.0  # how far below 0 K a member's disagreement still counts (see soft_floor)


def distance_band_factor(
    distance: torch.Tensor, edges: tuple[float, ...] = (), factors: tuple[float, ...] = ()
) -> torch.Tensor:
    """Factor (B,) on σ for L1 distances (B,): factors[i] for edges[i] <= d < edges[i + 1] (the first and last
    bands open-ended), 1 where d is NaN or no bands are given."""
    d = torch.as_tensor(distance)
    if not factors:
        return torch.ones_like(d)
    inner = torch.as_tensor(edges[1:-1], dtype=d.dtype, device=d.device)
    f = torch.as_tensor(factors, dtype=d.dtype, device=d.device)[torch.bucketize(d.nan_to_num(0.0), inner, right=True)]
    return torch.where(torch.isnan(d), torch.ones_like(d), f)


def calibrated_sigma(
    spread: torch.Tensor,
    distance: torch.Tensor | None,
    gap: torch.Tensor | None,
    scales: tuple[float, ...],
    band_edges: tuple[float, ...] = (),
    band_factors: tuple[float, ...] = (),
    tc: torch.Tensor | None = None,
) -> torch.Tensor:
    """σ (B,) in K of the module docstring: spread (B,) in K times s, combined with b · distance, g · gap and
    h · max(tc, 0) where those inputs are given, times the distance band's factor when a distance is given.
    scales = (s, b, g) or (s, b, g, h); the one formula for TcEnsemble.calibrated_std and Calibration.sigma."""
    s, b, g, h = (tuple(scales) + (0.0,))[:4]
    std = spread * s
    tc_term = None if tc is None else torch.as_tensor(tc, dtype=std.dtype, device=std.device).clamp(min=0.0)
    extra = [
        (scale, torch.as_tensor(v, dtype=std.dtype, device=std.device))
        for scale, v in ((b, distance), (g, gap), (h, tc_term))
        if v is not None and scale != 0.0
    ]
    if extra:
        std = torch.sqrt(std**2 + sum((scale * v) ** 2 for scale, v in extra))
    if distance is None or not band_factors:
        return std
    d = torch.as_tensor(distance, dtype=std.dtype, device=std.device)
    return std * distance_band_factor(d, band_edges, band_factors)


def soft_floor(raw: torch.Tensor, floor: float = SPREAD_FLOOR_K) -> torch.Tensor:
    """-floor + softplus(raw + floor): equal to raw above 0 K (within 5e-5 K), smoothly flattened towards -floor
    below. Members that all call a composition a non-superconductor but differ by 100 K in *how* far below 0
    they are agree on Tc = 0; members at -1 K and -5 K still show their disagreement (σ > 0).
    """
    return torch.nn.functional.softplus(raw + floor) - floor


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
        cal = self.card.get("calibration") or {}
        # s: factor on the member spread; b: K of sd per unit of L1 distance to the training set; g: factor on the
        # gap between the prediction and the nearest training superconductor's Tc (b and g are 0 for old cards)
        self.sigma_scale = float(cal.get("sigma_scale", self.card.get("sigma_scale", 1.0)))
        self.distance_scale_k = float(cal.get("distance_scale_k", 0.0))
        self.neighbor_scale = float(cal.get("neighbor_scale", 0.0))
        self.tc_scale = float(cal.get("tc_scale", 0.0))  # h: sd per K of predicted Tc (0 for older cards)
        self.band_edges_l1 = tuple(cal.get("band_edges_l1") or ())  # σ factor per distance band (empty: none)
        self.band_factors = tuple(cal.get("band_factors") or ())

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
    def has_extra_sigma_terms(self) -> bool:
        """σ has a distance, neighbour or Tc term besides the spread."""
        banded = any(f != 1.0 for f in self.band_factors)
        extra = self.distance_scale_k > 0 or self.neighbor_scale > 0 or self.tc_scale > 0 or banded
        return self.has_uncertainty and extra

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
        """x: (B, 118) -> (B,) ensemble Tc in K: the ReLU of the members' mean pre-activation output."""
        return self.activate_mean(self.member_raw_predictions(x))

    def activate_mean(self, raw: torch.Tensor) -> torch.Tensor:
        """(B,) ensemble Tc in K from the members' pre-activation outputs raw (K, B): ReLU of their mean.

        Taking the mean before the ReLU (not the mean of each member's ReLU'd Tc) makes the ensemble one
        regressor of the same form as its members, and a composition counts as a superconductor when the
        members agree on it on average, not as soon as one of them puts it a fraction of a kelvin above 0.
        """
        mean = raw.mean(0)
        return torch.relu(mean) if self.config.output_relu else mean

    def calibrated_std(
        self,
        spread: torch.Tensor,
        distance: torch.Tensor | None = None,
        neighbor_gap: torch.Tensor | None = None,
        tc: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """σ (B,) in K from the raw member spread (B,) in K and, optionally, the L1 distance (B,) to training,
        the gap |Tc − Tc_nn| (B,) in K to the nearest training superconductor's Tc and the predicted Tc (B,) in K
        (module docstring)."""
        scales = (self.sigma_scale, self.distance_scale_k, self.neighbor_scale, self.tc_scale)
        return calibrated_sigma(spread, distance, neighbor_gap, scales, self.band_edges_l1, self.band_factors, tc)

    def mean_std(
        self, x: torch.Tensor, distance: torch.Tensor | None = None, neighbor_tc: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 118); optional distance (B,) (L1) to, and Tc (B,) in K of, the nearest training SuperCon
        composition -> (mean, std) in K.

        mean is the ReLU of the members' mean pre-activation output (activate_mean). std is the calibrated σ of the module
        docstring: the population sd of the members' pre-activation outputs times s (0 if K = 1),
        combined with the distance and neighbour terms when their inputs are given. Members that all
        predict <= 0 but disagree on how far below 0 still report their disagreement instead of a false σ = 0.
        """
        return self.stats_from_raw(self.member_raw_predictions(x), distance, neighbor_tc)

    def stats_from_raw(
        self, raw: torch.Tensor, distance: torch.Tensor | None = None, neighbor_tc: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, calibrated std) in K from the members' pre-activation outputs raw (K, B); see mean_std."""
        spread = soft_floor(raw) if self.config.output_relu else raw
        mean = self.activate_mean(raw)
        gap = None if neighbor_tc is None else (mean - torch.as_tensor(neighbor_tc, dtype=mean.dtype)).abs()
        return mean, self.calibrated_std(spread.std(0, unbiased=False), distance, gap, mean)

    @torch.no_grad()
    def predict(
        self,
        x: np.ndarray,
        distance: np.ndarray | None = None,
        neighbor_tc: np.ndarray | None = None,
        batch_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Numpy convenience: x (B, 118), optional distance (B,) to and Tc (B,) of the nearest training
        superconductor -> (mean (B,), std (B,)) in K."""
        for name, v in (("distance", distance), ("neighbor_tc", neighbor_tc)):
            if v is not None and len(v) != len(x):
                raise ValueError(f"{name} has {len(v)} rows, x has {len(x)}")
        means, stds = [], []
        for i in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[i : i + batch_size]), dtype=torch.float32, device=self.device)
            db, nb = (
                None if v is None else torch.as_tensor(np.asarray(v[i : i + batch_size]), device=self.device)
                for v in (distance, neighbor_tc)
            )
            m, s = self.mean_std(xb, db, nb)
            means.append(m.cpu().numpy())
            stds.append(s.cpu().numpy())
        if not means:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(means), np.concatenate(stds)
