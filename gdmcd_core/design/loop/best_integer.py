"""Each candidate's best-scoring integer formula among those stage 3 passes through (integer_select "best")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gdmcd_core.design.objective.integer_loss import Integerized, formulas_from_amounts

# Checks are integerized and scored together once this many rows (checks x candidates) are pending: one
# model call and one integerization for several checks instead of one each, inside a bounded memory.
CHECK_ROWS = 4096


class BestInteger:
    """Keeps, per candidate, the integer formula with the highest score seen so far (the earliest on ties).

    integerize_fn(x (R, 118), with_formulas=False) -> Integerized; score_fn(Integerized of R formulas, (R,) the
    candidate each belongs to) -> (R,) score. `consider` only queues a check; the queue is scored in batches
    of at least `batch_rows` rows, and before `result` and `score` are read.
    """

    def __init__(
        self,
        integerize_fn: Callable[..., Integerized],
        score_fn: Callable[[Integerized, np.ndarray], np.ndarray],
        batch_rows: int = CHECK_ROWS,
    ):
        self.integerize_fn, self.score_fn, self.batch_rows = integerize_fn, score_fn, batch_rows
        self.integ: Integerized | None = None
        self._score = self.step = None
        self._pending: list[tuple[int, np.ndarray]] = []
        self._last = self._last_score = None  # the latest check's amounts (B, 118) and their scores (B,)

    def consider(self, step: int, x_np: np.ndarray) -> None:
        """Queue the compositions x (B, 118) reached at `step` (the array must not change afterwards)."""
        self._pending.append((step, x_np))
        if sum(len(x) for _, x in self._pending) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Integerize the queued checks in one batch; score, in one batch, only the formulas that differ from the
        same candidate's formula at its previous check (late in stage 3 most do not change); keep each
        candidate's best."""
        if not self._pending:
            return
        steps, xs = zip(*self._pending, strict=True)
        self._pending = []
        integ = self.integerize_fn(np.concatenate(xs), with_formulas=False)
        n, B = len(steps), len(xs[0])
        amounts = integ.amounts.reshape(n, B, -1)
        changed = np.ones((n, B), bool)
        changed[1:] = (amounts[1:] != amounts[:-1]).any(-1)
        if self._last is not None:
            changed[0] = (amounts[0] != self._last).any(-1)
        new = np.flatnonzero(changed.reshape(-1))
        flat = np.zeros(n * B)
        if len(new):
            flat[new] = self.score_fn(_rows(integ, new), new % B)
        score = flat.reshape(n, B)
        for i, step in enumerate(steps):
            same = ~changed[i]
            if same.any():
                score[i, same] = (score[i - 1] if i else self._last_score)[same]
            rows = slice(i * B, (i + 1) * B)
            self._keep(step, integ.n_atoms[rows], integ.amounts[rows], integ.loss[rows], score[i])
        self._last, self._last_score = amounts[-1], score[-1]

    def _keep(self, step: int, n_atoms, amounts, loss, score) -> None:
        if self.integ is None:
            self.integ = Integerized(n_atoms=n_atoms, amounts=amounts, formulas=[], loss=loss)
            self._score, self.step = score, np.full(len(score), step)
            return
        better = score > self._score
        if better.any():
            old = self.integ
            self.integ = Integerized(
                n_atoms=np.where(better, n_atoms, old.n_atoms),
                amounts=np.where(better[:, None], amounts, old.amounts),
                formulas=[],
                loss=np.where(better, loss, old.loss),
            )
            self._score = np.where(better, score, self._score)
            self.step = np.where(better, step, self.step)

    @property
    def score(self) -> np.ndarray | None:
        """(B,) the kept formulas' scores."""
        self.flush()
        return self._score

    def result(self) -> tuple[Integerized, np.ndarray]:
        """(the kept formulas, with their text; (B,) the step each was taken at)."""
        self.flush()
        assert self.integ is not None
        return Integerized(
            self.integ.n_atoms, self.integ.amounts, formulas_from_amounts(self.integ.amounts), self.integ.loss
        ), self.step


def _rows(integ: Integerized, idx: np.ndarray) -> Integerized:
    return Integerized(integ.n_atoms[idx], integ.amounts[idx], [], integ.loss[idx])


__all__ = ["BestInteger"]
