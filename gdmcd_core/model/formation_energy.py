"""Loading the formation-energy surrogate (composition -> E_f in eV/atom) for inference.

The surrogate is trained by `gdmcd train --task formation_energy` (training/formation_energy.py) and
committed as ``checkpoints/formation_energy.pt``; this module only loads and runs it, so that the design
layer (which must not import training) can use it. Its error, the held-out test MAE recorded in the card, is the
uncertainty the design layer carries into the energy above the hull.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gdmcd_core.model.checkpoint import CHECKPOINT_DIR, CheckpointError, load_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.kinds import FORMATION_ENERGY_KIND

FORMATION_ENERGY_CHECKPOINT = CHECKPOINT_DIR / "formation_energy.pt"
# Card keys holding the surrogate's error in eV/atom, most preferred first.
SIGMA_CARD_KEYS = ("test_mae_ev_atom", "best_val_mae_ev_atom")


def load_formation_energy_model(
    path: str | Path = FORMATION_ENERGY_CHECKPOINT, device: str | torch.device = "cpu"
) -> nn.Module | None:
    """The surrogate for inference (x (B, 118) fractions -> (B,) E_f in eV/atom), or None if absent.

    A checkpoint that exists but fails its hash check raises `CheckpointError`.
    """
    if not Path(path).is_file():
        return None
    ens: TcEnsemble = load_checkpoint(path, device=device, kind=FORMATION_ENERGY_KIND)
    if ens.config.output_relu:
        raise CheckpointError(f"{path} has a ReLU output; a formation-energy model needs a signed output")
    return ens


@torch.no_grad()
def predict_formation_energy(model: nn.Module, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """x: (B, 118) fractions -> (B,) predicted formation energy in eV/atom (float32)."""
    device = next(model.parameters()).device
    out = [
        model(torch.as_tensor(np.asarray(x[i : i + batch_size]), dtype=torch.float32, device=device)).cpu().numpy()
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def formation_energy_sigma(model: nn.Module | None) -> float | None:
    """The surrogate's error in eV/atom (its card's test MAE), or None when the model carries no card."""
    metrics = (getattr(model, "card", None) or {}).get("metrics") or {}
    for key in SIGMA_CARD_KEYS:
        v = metrics.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v) and v >= 0:
            return float(v)
    return None


__all__ = [
    "FORMATION_ENERGY_CHECKPOINT",
    "formation_energy_sigma",
    "load_formation_energy_model",
    "predict_formation_energy",
]
