"""Composition image: fractions x (B, 118) times the one-hot atom tensor a (118, 4, 7, 32).

a[i, block, period-1, column-1] = 1 for element i (paper S1, eqs. 14-15). The product x·a is
linear in x, so the image is differentiable in x — the property gradient design relies on.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from gdmcd_core.chem.elements import BLOCKS, N_COLUMNS, N_ELEMENTS, N_PERIODS, element_table

IMAGE_SHAPE = (len(BLOCKS), N_PERIODS, N_COLUMNS)  # (4, 7, 32): channel, row, column


@lru_cache(maxsize=1)
def atom_tensor_numpy() -> np.ndarray:
    """The fixed tensor a as float32, shape (118, 4, 7, 32), exactly one 1 per element."""
    a = np.zeros((N_ELEMENTS, *IMAGE_SHAPE), dtype=np.float32)
    for i, el in enumerate(element_table()):
        a[i, BLOCKS.index(el.block), el.period - 1, el.column - 1] = 1.0
    a.setflags(write=False)
    return a


def atom_tensor(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """a as a torch tensor (118, 4, 7, 32) on `device`."""
    return torch.tensor(atom_tensor_numpy(), dtype=dtype, device=device)


def composition_image(x: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
    """x: (B, 118) fractions -> (B, 4, 7, 32) image. Differentiable in x.

    `a` may be passed (118, 4, 7, 32) or flattened (118, 896) to avoid rebuilding it per call.
    """
    if a is None:
        a = atom_tensor(x.device, x.dtype)
    B = x.shape[0]
    return (x @ a.reshape(N_ELEMENTS, -1)).reshape(B, *IMAGE_SHAPE)
