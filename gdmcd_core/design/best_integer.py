"""Each candidate's best-scoring integer formula among those stage 3 passes through (integer_select "best")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from gdmcd_core.design.integer_loss import Integerized, formulas_from_amounts


class BestInteger:
    """Keeps, per candidate, the integer formula with the highest score seen so far.

    integerize_fn(x (B, 118), with_formulas=False) -> Integerized; score_fn(Integerized) -> (B,) score.
    """

    def __init__(self, integerize_fn: Callable[..., Integerized], score_fn: Callable[[Integerized], np.ndarray]):
        self.integerize_fn, self.score_fn = integerize_fn, score_fn
        self.integ: Integerized | None = None
        self.score = self.step = None

    def consider(self, step: int, x_np: np.ndarray) -> None:
        integ = self.integerize_fn(x_np, with_formulas=False)
        score = self.score_fn(integ)
        if self.integ is None:
            self.integ, self.score, self.step = integ, score, np.full(len(score), step)
            return
        better = score > self.score
        if better.any():
            old = self.integ
            self.integ = Integerized(
                n_atoms=np.where(better, integ.n_atoms, old.n_atoms),
                amounts=np.where(better[:, None], integ.amounts, old.amounts),
                formulas=[],
                loss=np.where(better, integ.loss, old.loss),
            )
            self.score = np.where(better, score, self.score)
            self.step = np.where(better, step, self.step)

    def result(self) -> tuple[Integerized, np.ndarray]:
        """(the kept formulas, with their text; (B,) the step each was taken at)."""
        assert self.integ is not None
        return replace(self.integ, formulas=formulas_from_amounts(self.integ.amounts)), self.step


__all__ = ["BestInteger"]
