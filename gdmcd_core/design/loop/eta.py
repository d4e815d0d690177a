"""The time left in a design run's progress, from the measured rate of each stage (`Progress.eta_s`).

    clock = EtaClock(steps2, total_steps)
    clock.add(step, elapsed_s)          # at each progress report: steps done, seconds since the loop began
    clock.eta_s()                       # seconds left (NaN until enough steps were measured)

"Left" is until the last progress report (the progress bar's end): the remaining steps, the last best-integer
checks and the integer refinement. The candidate table that follows is a phase of its own (run.PHASES), shown
as such, and not in the ETA.

The seconds per step of each stage are measured separately, between progress reports, over about the last
WINDOW_S seconds of that stage (a load change on the machine shows within a minute). The first report comes
after the first step, so the first step's warm-up never counts. Time left = the current stage's remaining steps
at its own rate + stage 3's remaining steps at stage 3's rate, or, before stage 3 has been measured, at stage 2's
rate x STAGE3_STEP_COST + the work after the last step, AFTER_LOOP_STEPS steps at the latest rate.

Both constants were measured from the progress reports of whole runs with the default checkpoint on a busy 2-core
CPU (1 torch thread, seed 7, N 4-24, the default refinement; CPU s/step is the thread's CPU time, which the
machine's load does not change):

    B     steps      s/step stage 2   s/step stage 3   CPU s/step 3 / 2   last step to last report
    64    200+200    0.085 (wall)     0.070 (wall)     1.03               2.0 s (28 steps' worth)
    64    200+200    0.055 (wall)     0.070 (wall)     -                  3.3 s (47 steps' worth)
    256   100+100    0.139 (wall)     0.135 (wall)     0.98               7.5 s (55 steps' worth)

A stage-3 step costs what a stage-2 step does (the integer-loss gradient is small next to the model's forward
and backward passes, and the best-integer checks are batched, most of them scored after the last step), so
STAGE3_STEP_COST is 1; a run whose stages do differ is corrected once MIN_STEPS stage-3 steps were measured.
"""

from __future__ import annotations

import math
from collections import deque

# Seconds per stage-3 step / seconds per stage-2 step, used until stage 3's own rate is measured (see above).
STAGE3_STEP_COST = 1.0
# The work between the last step and the last progress report (the last best-integer checks, the integer
# refinement), in steps of the latest measured rate (see above: 28 to 55 steps' worth in the runs measured).
AFTER_LOOP_STEPS = 50
# A stage's rate needs this many of its steps measured (after the first report) before it is used.
MIN_STEPS = 3
# A stage's rate is taken over its reports of about the last this many seconds.
WINDOW_S = 60.0


class EtaClock:
    """Seconds left in a run of `steps2` stage-2 steps and `total_steps` in all, from (steps done, elapsed s)
    reports. after_steps: the work after the loop, in steps (AFTER_LOOP_STEPS)."""

    def __init__(self, steps2: int, total_steps: int, after_steps: float = AFTER_LOOP_STEPS) -> None:
        self.steps2, self.total, self.after_steps = int(steps2), int(total_steps), float(after_steps)
        self.last: tuple[int, float] | None = None
        # per stage: (steps, seconds, elapsed at the interval's end) of each interval between two reports
        self.intervals: dict[int, deque[tuple[int, float, float]]] = {2: deque(), 3: deque()}

    def add(self, step: int, elapsed_s: float) -> None:
        """A report: `step` steps done after `elapsed_s` seconds. Reports out of order or without a finite time
        are ignored; an interval with steps of both stages is not attributed to either."""
        prev = self.last
        if not math.isfinite(elapsed_s) or (prev is not None and (step <= prev[0] or elapsed_s < prev[1])):
            return
        self.last = (int(step), float(elapsed_s))
        if prev is None:
            return
        stage = 2 if step <= self.steps2 else 3 if prev[0] >= self.steps2 else 0
        if not stage:
            return
        q = self.intervals[stage]
        q.append((step - prev[0], elapsed_s - prev[1], elapsed_s))
        while len(q) > 1 and q[0][2] < elapsed_s - WINDOW_S and sum(n for n, _, _ in q) - q[0][0] >= MIN_STEPS:
            q.popleft()

    def rate(self, stage: int) -> float | None:
        """Seconds per step of `stage` (2 or 3) over its recent reports; None until MIN_STEPS were measured."""
        q = self.intervals[stage]
        steps = sum(n for n, _, _ in q)
        return sum(dt for _, dt, _ in q) / steps if steps >= MIN_STEPS else None

    def eta_s(self) -> float:
        """Seconds left (see the module docstring); NaN until the rates it needs are measured, 0 after the last step."""
        if self.last is None:
            return math.nan
        step = self.last[0]
        if step >= self.total:
            return 0.0
        r2, r3 = self.rate(2), self.rate(3)
        if r3 is None and r2 is not None:
            r3 = r2 * STAGE3_STEP_COST
        left2, left3 = max(self.steps2 - step, 0), self.total - max(step, self.steps2)
        if (left2 and r2 is None) or (left3 and r3 is None):
            return math.nan
        latest = r3 if self.total > self.steps2 else r2
        return left2 * (r2 or 0.0) + left3 * (r3 or 0.0) + self.after_steps * latest


__all__ = ["AFTER_LOOP_STEPS", "MIN_STEPS", "STAGE3_STEP_COST", "WINDOW_S", "EtaClock"]
