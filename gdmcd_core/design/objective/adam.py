"""Adam for the design loop's one parameter tensor, in six in-place operations.

The loop optimizes a single (B, 118) tensor, where torch.optim.Adam's per-call machinery (hooks,
profiling records, state dictionaries) costs more than the update itself at interactive batch sizes.
This is the same update (Kingma & Ba 2015, as torch.optim.Adam with its defaults: no weight decay,
no amsgrad), equal to it to float32 rounding (tests/test_design.py):

    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
    p <- p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
"""

from __future__ import annotations

import torch


class Adam:
    """Adam on `param` (updated in place, under no_grad); a fresh instance starts with zero moments."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m, self.v, self.t = torch.zeros_like(param), torch.zeros_like(param), 0

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v / (1 - b2**self.t)).sqrt_().add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))


__all__ = ["Adam"]
