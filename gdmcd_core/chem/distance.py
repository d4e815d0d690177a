"""Distances between compositions: L1 in atomic fractions, and elements a reference never contains.

Both vectors are (118,) atomic fractions summing to 1, so the L1 distance runs from 0 (same
composition) to 2 (no element in common). It is the "how far from anything the model was trained
on" measure of the uncertainty calibration (training/calibration.py) and of the design candidate
table (design/evidence/candidates.py `novelty_columns`).
"""

from __future__ import annotations

import numpy as np
import torch

from gdmcd_core.chem.elements import symbols

NEAREST_CHUNK = 256  # query rows per torch.cdist call: (256 x N) distances stay a few MB for N ~ 12k
L1_MAX = 2.0  # distance of two compositions without a common element


def nearest_l1(x: np.ndarray, ref_x: np.ndarray, chunk: int = NEAREST_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """For each row of x (B, 118), the nearest row of ref_x (N, 118) by L1 distance in fractions.

    Returns (index (B,) int64, distance (B,) float64 in 0..2). With an empty x or ref_x the index
    is -1 and the distance NaN.
    """
    x = np.asarray(x)
    if len(ref_x) == 0 or len(x) == 0:
        return np.full(len(x), -1, dtype=np.int64), np.full(len(x), np.nan)
    ref = torch.as_tensor(np.asarray(ref_x, np.float32))
    idx, dist = [], []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            d = torch.cdist(torch.as_tensor(np.asarray(x[i : i + chunk], np.float32)), ref, p=1)
            v, j = d.min(1)
            idx.append(j.numpy().astype(np.int64))
            dist.append(v.numpy())
    return np.concatenate(idx), np.clip(np.concatenate(dist).astype(np.float64), 0.0, L1_MAX)


def nearest_k_l1(x: np.ndarray, ref_x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ref_x (N, 118) nearest to one composition x (118,) by L1 distance, nearest first (ties in
    row order), computed as `nearest_l1` computes them (its nearest row and distance are the first here).

    Returns (index (min(k, N),) int64, distance (min(k, N),) float64 in 0..2); empty for k <= 0 or an empty ref_x.
    """
    if len(ref_x) == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    with torch.no_grad():
        x1 = torch.as_tensor(np.asarray(x, np.float32).reshape(1, -1))
        d = torch.cdist(x1, torch.as_tensor(np.asarray(ref_x, np.float32)), p=1)[0].numpy()
    order = np.argsort(d, kind="stable")[:k].astype(np.int64)
    return order, np.clip(d[order].astype(np.float64), 0.0, L1_MAX)


def unseen_elements(x: np.ndarray, seen: np.ndarray, eps: float = 1e-6) -> list[str]:
    """Symbols present in the composition x (118,) (fraction > eps) but absent from `seen` (118,) bool, in Z order."""
    syms = symbols()
    present = np.asarray(x) > eps
    return [syms[i] for i in np.flatnonzero(present & ~np.asarray(seen, bool))]


__all__ = ["L1_MAX", "nearest_k_l1", "nearest_l1", "unseen_elements"]
