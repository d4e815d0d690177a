"""Non-gradient composition search, for comparison with the gradient design engine.

Three methods behind one interface, each spending a budget counted in model evaluations (number of
compositions scored):

* `random_search`: random perturbations of the start compositions (log-normal jitter of the
  fractions present, occasional swap of an element for another allowed one); keeps the best.
* `evolution_search`: a (mu + lambda) evolutionary algorithm: tournament selection, blend crossover,
  mutation (jitter, element substitution, element addition/removal within the cap), truncation.
* `database_search`: screens given known compositions (e.g. COD/JARVIS rows not in the
  superconductor training set).

The model is a callable ``score_fn(x) -> (mean, std)``: x (B, 118) atomic fractions (index Z-1,
rows sum to 1) -> predicted Tc (B,) and its uncertainty (B,), both in kelvin. Every method honours
the same `SearchSpace` (mutation.py, with the random moves `mutate`): allowed elements, pins and the
element cap. These functions work on any score function; `methods.py` runs them against a design
engine's model and constraints behind `DesignConfig.method`.

Results share the `SearchResult` type, ranked by an objective: 'mean' (Tc), 'lcb' (mean - kappa std,
a cautious ranking that demotes compositions the model is unsure about) or 'ucb' (mean + kappa std).
Randomness comes only from the `rng` argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdmcd_core.chem.elements import N_ELEMENTS
from gdmcd_core.design.search.mutation import (
    ADD_PROB,
    JITTER_SIGMA,
    REMOVE_PROB,
    SWAP_PROB,
    SearchSpace,
    mutate,
)

ScoreFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
OBJECTIVES = ("mean", "lcb", "ucb")
# One standard deviation of caution: LCB ranks by a value the model expects to exceed ~84% of the time
# under a Gaussian predictive distribution.
DEFAULT_KAPPA = 1.0
# Compositions per score_fn call; small enough for CPU inference, large enough to amortize overhead.
DEFAULT_BATCH = 256
# Share of evolution children made by blending two parents before mutation.
CROSSOVER_PROB = 0.3
TOURNAMENT_SIZE = 3
# Rows are considered duplicates when their fractions agree to this many decimals.
DEDUP_DECIMALS = 4


@dataclass(frozen=True)
class SearchResult:
    """Best compositions found, ranked by `objective` (descending), duplicates removed.

    x: (M, 118) fractions; tc, std: (M,) predicted Tc and its uncertainty (K); score: (M,) the
    objective value (K); n_evaluated: compositions scored (<= budget); trace: (T, 2) rows of
    (evaluations so far, best objective so far); info: method-specific counts.
    """

    method: str
    x: np.ndarray
    tc: np.ndarray
    std: np.ndarray
    score: np.ndarray
    n_evaluated: int
    objective: str
    kappa: float
    trace: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def objective_value(
    tc: np.ndarray, std: np.ndarray, objective: str = "lcb", kappa: float = DEFAULT_KAPPA
) -> np.ndarray:
    """(B,) ranking value: 'mean' = tc, 'lcb' = tc - kappa std, 'ucb' = tc + kappa std (K)."""
    if objective == "mean":
        return np.asarray(tc, dtype=np.float64)
    if objective == "lcb":
        return np.asarray(tc, dtype=np.float64) - kappa * np.asarray(std, dtype=np.float64)
    if objective == "ucb":
        return np.asarray(tc, dtype=np.float64) + kappa * np.asarray(std, dtype=np.float64)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


@dataclass(frozen=True)
class Scoring:
    """How a search ranks and returns what it scores: by `objective` ('mean', 'lcb', 'ucb') with `kappa`, the
    top_k best distinct compositions; batch_size compositions per score_fn call."""

    objective: str = "lcb"
    kappa: float = DEFAULT_KAPPA
    top_k: int = 100
    batch_size: int = DEFAULT_BATCH

    def value(self, tc: np.ndarray, std: np.ndarray) -> np.ndarray:
        """(B,) the ranking value of predictions tc, std (K): `objective_value`."""
        return objective_value(tc, std, self.objective, self.kappa)


class _Evaluator:
    """Calls score_fn in batches, never beyond the budget; keeps every scored row."""

    def __init__(self, score_fn: ScoreFn, budget: int, scoring: Scoring) -> None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1 model evaluation, got {budget}")
        scoring.value(np.zeros(1), np.zeros(1))  # validates the objective
        self.score_fn, self.budget, self.scoring = score_fn, int(budget), scoring
        self.batch_size = max(1, int(scoring.batch_size))
        self.xs: list[np.ndarray] = []
        self.tcs: list[np.ndarray] = []
        self.stds: list[np.ndarray] = []
        self.trace: list[tuple[int, float]] = []
        self.n = 0
        self.best = -np.inf

    @property
    def remaining(self) -> int:
        return self.budget - self.n

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score up to `remaining` rows of x -> (x scored, tc, std); may return fewer rows than given."""
        x = x[: self.remaining]
        tc_parts, std_parts = [], []
        for i in range(0, len(x), self.batch_size):
            chunk = x[i : i + self.batch_size]
            tc, std = self.score_fn(chunk)
            tc, std = np.asarray(tc, dtype=np.float64).reshape(-1), np.asarray(std, dtype=np.float64).reshape(-1)
            if tc.shape != (len(chunk),) or std.shape != (len(chunk),):
                raise ValueError(f"score_fn returned shapes {tc.shape}, {std.shape} for {len(chunk)} rows")
            tc_parts.append(tc)
            std_parts.append(std)
        tc = np.concatenate(tc_parts) if tc_parts else np.zeros(0)
        std = np.concatenate(std_parts) if std_parts else np.zeros(0)
        if len(x):
            self.n += len(x)
            self.xs.append(x)
            self.tcs.append(tc)
            self.stds.append(std)
            self.best = max(self.best, float(self.scoring.value(tc, std).max()))
            self.trace.append((self.n, self.best))
        return x, tc, std

    def result(self, method: str, info: dict[str, Any] | None = None) -> SearchResult:
        if self.xs:
            x, tc, std = np.concatenate(self.xs), np.concatenate(self.tcs), np.concatenate(self.stds)
        else:
            x, tc, std = np.zeros((0, N_ELEMENTS)), np.zeros(0), np.zeros(0)
        score = self.scoring.value(tc, std)
        order = np.argsort(-score, kind="stable")
        _, first = np.unique(np.round(x[order], DEDUP_DECIMALS), axis=0, return_index=True)
        pick = order[np.sort(first)][: self.scoring.top_k]
        return SearchResult(
            method=method,
            x=x[pick],
            tc=tc[pick],
            std=std[pick],
            score=score[pick],
            n_evaluated=self.n,
            objective=self.scoring.objective,
            kappa=self.scoring.kappa,
            trace=np.array(self.trace, dtype=np.float64).reshape(-1, 2),
            info=dict(info or {}),
        )


def _space(space: SearchSpace | None) -> SearchSpace:
    """`space`, or every element allowed with no pins and no cap."""
    return SearchSpace(np.ones(N_ELEMENTS, bool)) if space is None else space


def _as_starts(starts: np.ndarray, space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
    s = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    if s.ndim != 2 or s.shape[1] != N_ELEMENTS or len(s) == 0:
        raise ValueError(f"starts must have shape (B >= 1, {N_ELEMENTS}), got {s.shape}")
    return space.repair(s, rng)


def random_search(
    starts: np.ndarray,
    score_fn: ScoreFn,
    budget: int,
    rng: np.random.Generator,
    *,
    space: SearchSpace | None = None,
    scoring: Scoring = Scoring(),
    sigma: float = JITTER_SIGMA,
    p_swap: float = SWAP_PROB,
) -> SearchResult:
    """Score the starts, then random perturbations of them (`mutate`) until `budget` evaluations.

    starts: (S, 118) compositions (repaired into the space first, so a start with an excluded
    element loses it; no space: every element allowed). Each batch perturbs starts drawn uniformly at random
    (perturbations are always of the starts, not of earlier finds: a baseline without selection). Returns the
    scoring's top_k.
    """
    space = _space(space)
    ev = _Evaluator(score_fn, budget, scoring)
    x0 = _as_starts(starts, space, rng)
    ev(x0)
    while ev.remaining > 0:
        n = min(ev.batch_size, ev.remaining)
        parents = x0[rng.integers(len(x0), size=n)]
        ev(mutate(parents, space, rng, sigma=sigma, p_swap=p_swap))
    return ev.result("random", {"n_starts": len(x0)})


def evolution_search(
    starts: np.ndarray,
    score_fn: ScoreFn,
    budget: int,
    rng: np.random.Generator,
    population: int = 64,
    *,
    space: SearchSpace | None = None,
    scoring: Scoring = Scoring(),
    sigma: float = JITTER_SIGMA,
    p_swap: float = SWAP_PROB,
    p_add: float = ADD_PROB,
    p_remove: float = REMOVE_PROB,
    p_crossover: float = CROSSOVER_PROB,
    tournament: int = TOURNAMENT_SIZE,
) -> SearchResult:
    """(mu + lambda) evolution: population from the starts, `population` children per generation.

    Parents are picked by tournament (best objective of `tournament` random members); a share
    p_crossover of children is a random convex blend of two parents; every child is then mutated
    (jitter, substitution, addition/removal within the cap). Parents and children compete and the
    best `population` survive (truncation). Starts beyond `population` are dropped at random;
    fewer starts are topped up with mutated copies.
    """
    if population < 2:
        raise ValueError(f"population must be >= 2, got {population}")
    space = _space(space)
    ev = _Evaluator(score_fn, budget, scoring)
    x0 = _as_starts(starts, space, rng)
    if len(x0) > population:
        x0 = x0[rng.choice(len(x0), size=population, replace=False)]
    elif len(x0) < population:
        extra = mutate(x0[rng.integers(len(x0), size=population - len(x0))], space, rng, sigma, p_swap, p_add, p_remove)
        x0 = np.concatenate([x0, extra])
    pop, tc, std = ev(x0)
    fit = scoring.value(tc, std)
    generations = 0
    while ev.remaining > 0 and len(pop):
        n = min(population, ev.remaining)
        contenders = rng.integers(len(pop), size=(n, 2, tournament))
        winners = np.take_along_axis(contenders, fit[contenders].argmax(-1, keepdims=True), -1)[..., 0]  # (n, 2)
        a, b = pop[winners[:, 0]], pop[winners[:, 1]]
        w = np.where(rng.random(n) < p_crossover, rng.uniform(0.25, 0.75, size=n), 1.0)[:, None]
        children = mutate(w * a + (1 - w) * b, space, rng, sigma, p_swap, p_add, p_remove)
        cx, ctc, cstd = ev(children)
        allx = np.concatenate([pop, cx])
        allfit = np.concatenate([fit, scoring.value(ctc, cstd)])
        keep = np.argsort(-allfit, kind="stable")[:population]
        pop, fit = allx[keep], allfit[keep]
        generations += 1
    return ev.result("evolution", {"generations": generations, "population": population})


def database_search(
    candidates_x: np.ndarray,
    score_fn: ScoreFn,
    budget: int,
    *,
    space: SearchSpace | None = None,
    scoring: Scoring = Scoring(),
    pin_policy: str = "set",
    pin_tol: float = 0.02,
    rng: np.random.Generator | None = None,
) -> SearchResult:
    """Screen known compositions candidates_x (N, 118) with score_fn, within the space.

    Rows are normalized to sum 1; a row with an excluded (not allowed) element is skipped. Pins:
    pin_policy 'set' sets each pinned element to its fraction and rescales the row's other
    elements to the rest (a row with no other element is skipped); 'filter' keeps only rows whose
    pinned fractions are already within pin_tol (absolute) and then sets them exactly. A row with
    more than max_elements elements afterwards is skipped (never truncated: it would no longer be
    the known composition). Duplicates are scored once. If more rows remain than `budget`, the
    first `budget` in input order are scored, or a random subset when `rng` is given.
    info counts: n_input, n_excluded, n_pin_mismatch, n_over_cap, n_duplicates, n_not_scored.
    """
    if pin_policy not in ("set", "filter"):
        raise ValueError(f"pin_policy must be 'set' or 'filter', got {pin_policy!r}")
    space = _space(space)
    ev = _Evaluator(score_fn, budget, scoring)
    x = np.atleast_2d(np.asarray(candidates_x, dtype=np.float64))
    if x.shape[1] != N_ELEMENTS:
        raise ValueError(f"candidates_x must have shape (N, {N_ELEMENTS}), got {x.shape}")
    n_input = len(x)
    x = np.clip(np.nan_to_num(x), 0.0, None)
    s = x.sum(1)
    x = x[s > 0] / s[s > 0, None]
    ok = ~(x[:, ~space.allowed] > 0).any(1)
    n_excluded = int((~ok).sum())
    x = x[ok]
    n_pin_mismatch = 0
    if space.pins:
        cols = np.array(list(space.pins))
        if pin_policy == "filter":
            match = (np.abs(x[:, cols] - space.x_pin[cols]) <= pin_tol).all(1)
            n_pin_mismatch = int((~match).sum())
            x = x[match]
        y = x.copy()
        y[:, cols] = 0.0
        rest = y.sum(1)
        has_rest = rest > 0 if space.budget > 0 else np.ones(len(y), bool)
        n_pin_mismatch += int((~has_rest).sum())
        y, rest = y[has_rest], rest[has_rest]
        x = np.where(rest[:, None] > 0, y / np.where(rest > 0, rest, 1.0)[:, None], 0.0) * space.budget + space.x_pin
    over = (x > 0).sum(1) > space.max_elements if space.max_elements else np.zeros(len(x), bool)
    x = x[~over]
    _, first = np.unique(np.round(x, DEDUP_DECIMALS), axis=0, return_index=True)
    n_dup = len(x) - len(first)
    x = x[np.sort(first)]
    if len(x) > budget and rng is not None:
        x = x[np.sort(rng.choice(len(x), size=budget, replace=False))]
    n_not_scored = max(0, len(x) - budget)
    ev(x)
    info = {
        "n_input": n_input,
        "n_excluded": n_excluded,
        "n_pin_mismatch": n_pin_mismatch,
        "n_over_cap": int(over.sum()),
        "n_duplicates": int(n_dup),
        "n_not_scored": n_not_scored,
    }
    return ev.result("database", info)


__all__ = [
    "OBJECTIVES",
    "ScoreFn",
    "Scoring",
    "SearchResult",
    "SearchSpace",
    "database_search",
    "evolution_search",
    "mutate",
    "objective_value",
    "random_search",
]
