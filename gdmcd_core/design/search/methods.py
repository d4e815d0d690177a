"""The non-gradient search methods behind `DesignConfig.method`, run against a design engine.

`run.run_design` calls `run_search(engine, start, ...)` for every method but "gradient". Each method

* honours the engine's constraints (pins with their modes, exclusions, max_elements) through
  `mutation.SearchSpace.from_constraints`;
* scores compositions with the objective the gradient run reports by (`objective_scores`: the
  ensemble-mean Tc, or mean - kappa * sd for "lcb", minus the formation-energy penalty when set);
* spends the gradient run's budget of model evaluations, B x (steps2 + steps3) compositions through
  the Tc model (B = number of starts), in "generations" of B compositions, so that generation g is
  reported as step g (trajectory: best / median / quantiles of the ensemble-mean Tc of the best B
  compositions found so far; progress callbacks as in the gradient loop; `stop_event` is checked
  between generations; the first generation always runs, so a stopped run still has candidates);
* keeps the best B distinct compositions, integerizes them with `engine.integerize` and returns a
  `SearchState`, which has the attributes of `loop/results.OptimizeState` (plus the candidates' labels),
  so the candidate table, run folder and trajectory are built exactly as for a gradient run.

Methods:

* "evolution": (mu + lambda) with mu = lambda = B. Generation 0 scores the starts; each later one
  makes B children from the best B distinct compositions so far (tournament selection, blend
  crossover with probability baselines.CROSSOVER_PROB, `mutate`: jitter, swap, add, remove).
* "random": the same moves applied to starts drawn uniformly at random, with no selection (the
  baseline that tells what selection and gradients add).
* "database": screens known compounds that are not superconductors in training: COD
  (cod_nonsc_inorganic_konno2009.csv) and JARVIS-DFT (raw/jarvis_dft_3d_subset.csv), minus every
  composition equal to a training SuperCon entry (4-decimal fractions), minus rows with an excluded
  element or more than max_elements elements. A pin keeps the rows whose pinned fraction is within
  PIN_MATCH_TOL of it (exact) or above it minus PIN_MATCH_TOL (at-least); the pin is then set and the
  other elements rescaled. If more rows pass than the budget allows, a seeded random subset is scored.
* "substitution": data-mined ionic substitution (substitution.py, Hautier et al. 2011) of known superconductors
  (Tc > 0 K), the parents, tier by tier: first the starts' nearest ones (L1), then, while the budget lasts, their
  2nd, 3rd, ... nearest (`substitution.parent_tiers`). A tier's Tc is predicted first (part of the budget, at
  most half of what is left), then its single and double substitutions are scored in the order of their
  probability, B per generation, each snapped to its integer formula, duplicates and training SuperCon
  compositions skipped. The run ends when the budget is spent or the tiers run out (then with fewer evaluations).
  A pinned element must be in the substitution (its pin is then set, the other elements rescaled). The baseline
  without the table (`edit_table="uniform"`) tries every single substitution of a parent element by an allowed
  element, in random order.

Evolution and random children are snapped to their integer formula (engine.integerize, the run's
N set and pins) before they are scored, so a candidate is kept for the score of the formula reported.
Randomness: numpy Generator seeded with (config.seed, SEED_STREAM); a seeded run repeats exactly.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from gdmcd_core.chem.composition import FormulaError, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS
from gdmcd_core.data.dataset import load_table
from gdmcd_core.data.paths import COD_FILE, JARVIS_FILE, find_data_dir
from gdmcd_core.design.config.config import SEARCH_METHODS
from gdmcd_core.design.loop import starts as init
from gdmcd_core.design.loop.results import OptimizeState
from gdmcd_core.design.loop.step_log import PROGRESS_EVERY_S, Progress
from gdmcd_core.design.loop.trajectory import TrajectoryRecorder
from gdmcd_core.design.objective.integer_loss import integer_loss
from gdmcd_core.design.search import substitution as subst
from gdmcd_core.design.search.baselines import CROSSOVER_PROB, DEDUP_DECIMALS, TOURNAMENT_SIZE
from gdmcd_core.design.search.mutation import ADD_PROB, REMOVE_PROB, SearchSpace, mutate

if TYPE_CHECKING:
    from gdmcd_core.design.loop.optimize import DesignLoop

SEED_STREAM = 7919  # second seed word, so the search's random numbers differ from the start points'
PIN_MATCH_TOL = 0.02  # database: a known composition matches a pin within this fraction
NON_GRADIENT = tuple(m for m in SEARCH_METHODS if m != "gradient")
EDIT_TABLES = ("lambda", "uniform")  # substitution: the lambda table, or any allowed element (a baseline)
PROPOSAL_CHUNK = 4  # substitution: proposals made into compositions B x this at a time


@dataclass(frozen=True)
class KnownCompositions:
    """Known compounds to screen: x (N, 118) float32 fractions, label (N,) str ("COD: ...", "JARVIS JVASP-..: ...")."""

    x: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


def load_known_compositions(data_dir: str | Path | None = None) -> KnownCompositions:
    """COD then JARVIS rows, one per composition (first kept), cached per process. Unparsable rows are skipped."""
    folder = Path(data_dir) if data_dir else find_data_dir((COD_FILE, JARVIS_FILE), download=False)
    return _load_known(str(folder.resolve()))


@lru_cache(maxsize=2)
def _load_known(folder_name: str) -> KnownCompositions:
    folder = Path(folder_name)
    cod, x_cod = load_table(folder / COD_FILE)
    jv = pd.read_csv(folder / JARVIS_FILE, usecols=["jid", "formula"], dtype=str).dropna()
    rows, labels = [], []
    for jid, formula in zip(jv["jid"], jv["formula"], strict=True):
        try:
            rows.append(to_vector(formula))
        except FormulaError:
            continue
        labels.append(f"JARVIS {jid}: {formula}")
    x = np.concatenate([np.asarray(x_cod, np.float32), np.asarray(rows, np.float32).reshape(-1, N_ELEMENTS)])
    label = np.asarray([f"COD: {f}" for f in cod["formula"].astype(str)] + labels)
    _, first = np.unique(np.round(x, DEDUP_DECIMALS), axis=0, return_index=True)
    keep = np.sort(first)
    return KnownCompositions(x[keep], label[keep])


def composition_keys(x: np.ndarray) -> np.ndarray:
    """(N,) hashable keys: float32 fractions rounded to DEDUP_DECIMALS (the same composition gives the same key)."""
    r = np.round(np.asarray(x, np.float32), DEDUP_DECIMALS) + np.float32(0.0)  # + 0 turns -0.0 into 0.0
    return np.array([row.tobytes() for row in r], dtype=object)


def database_pool(engine: DesignLoop, known: KnownCompositions) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The known compositions a database search may propose: (x (M, 118) float64, index into `known` (M,), counts)."""
    c = engine.constraints
    space = SearchSpace.from_constraints(c)
    x = np.asarray(known.x, np.float64)
    x = x / x.sum(1, keepdims=True)
    ok = ~(x[:, ~space.allowed] > 0).any(1)
    counts = {"n_known": len(x), "n_excluded_element": int((~ok).sum())}
    if c.max_elements:
        over = (x > 0).sum(1) > c.max_elements
        counts["n_over_cap"] = int((ok & over).sum())
        ok &= ~over
    for k, f in space.pins.items():
        match = x[:, k] >= f - PIN_MATCH_TOL if k in space.atleast else np.abs(x[:, k] - f) <= PIN_MATCH_TOL
        counts[f"n_pin_mismatch_{k + 1}"] = int((ok & ~match).sum())
        ok &= match
    train = set(composition_keys(engine.reference.sc_x))
    in_train = np.array([k in train for k in composition_keys(known.x)], bool)
    counts["n_training_supercon"] = int((ok & in_train).sum())
    ok &= ~in_train
    idx = np.flatnonzero(ok)
    x = x[idx]
    if space.pins:
        y = space.free_part(x)
        s = y.sum(1)
        has_rest = (s > 0) if space.budget > 0 else np.ones(len(x), bool)
        counts["n_nothing_besides_pins"] = int((~has_rest).sum())
        y, s, idx = y[has_rest], s[has_rest], idx[has_rest]
        x = y / np.where(s > 0, s, 1.0)[:, None] * space.budget + space.x_pin
    counts["n_pool"] = len(idx)
    return x, idx, counts


def objective_scores(engine: DesignLoop, x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """(B,) the score the gradient run ranks integer formulas by (K): mean or mean - kappa sd, minus w relu(E_f)."""
    cfg = engine.config
    score = mean - cfg.kappa * sd if cfg.objective == "lcb" else mean.copy()
    if cfg.formation_energy_weight > 0:
        score = score - cfg.formation_energy_weight * np.maximum(engine.predict_formation_energy(x), 0.0)
    return score


@dataclass(frozen=True)
class SearchState(OptimizeState):
    """Has the attributes of loop/results.OptimizeState; x_*: (M, 118) with M <= B distinct compositions, best first.

    labels: where each candidate came from (its start's label, or the database row); evaluations:
    compositions scored by the Tc model (== budget unless stopped or the database pool is smaller).
    """

    labels: list[str]
    method: str
    evaluations: int
    budget: int
    info: dict[str, Any] = field(default_factory=dict)


class _Archive:
    """The best `size` distinct compositions scored so far, best first (ties: the earlier one)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.x = np.zeros((0, N_ELEMENTS))
        self.score = self.mean = self.sd = np.zeros(0)
        self.origin = self.step = np.zeros(0, np.int64)

    def add(self, x, score, mean, sd, origin, step: int) -> None:
        cat = np.concatenate
        X, S = cat([self.x, x]), cat([self.score, score])
        order = np.argsort(-S, kind="stable")
        _, first = np.unique(np.round(X[order], DEDUP_DECIMALS), axis=0, return_index=True)
        keep = order[np.sort(first)][: self.size]
        self.x, self.score = X[keep], S[keep]
        self.mean, self.sd = cat([self.mean, mean])[keep], cat([self.sd, sd])[keep]
        self.origin = cat([self.origin, np.asarray(origin, np.int64)])[keep]
        self.step = cat([self.step, np.full(len(x), step, np.int64)])[keep]


class _Search:
    """One search run: the scorer, the archive, the trajectory and the callbacks."""

    def __init__(self, engine: DesignLoop, n: int, callback, stop_event, recorder) -> None:
        cfg = engine.config
        self.engine, self.cfg, self.B = engine, cfg, n
        self.budget = n * cfg.budget_steps  # the gradient run's steps and its integer refinement
        self.evaluations = 0
        self.archive = _Archive(n)
        self.callback: Callable[[Progress], None] | None = callback
        self.stop_event: threading.Event | None = stop_event
        self.rec = recorder if recorder is not None else TrajectoryRecorder(n)
        self.ns = torch.tensor(engine.allowed_ns, dtype=torch.float64)
        self.t0 = time.perf_counter()
        self.last_cb = -math.inf
        self.steps_done = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.evaluations

    def stop_requested(self) -> bool:
        return self.stop_event is not None and self.stop_event.is_set()

    def score(self, x: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """Score rows of x (at most `remaining`), file them in the archive as generation steps_done + 1; their Tc."""
        x, origin = x[: self.remaining], origin[: self.remaining]
        mean, sd = self.engine.predict(x)
        self.evaluations += len(x)
        self.archive.add(x, objective_scores(self.engine, x, mean, sd), mean, sd, origin, self.steps_done + 1)
        self._record()
        return mean

    def _int_loss(self, x: np.ndarray) -> torch.Tensor:
        return integer_loss(torch.as_tensor(x, dtype=torch.float64), self.ns, self.cfg.integer_loss)[0]

    def _record(self) -> None:
        self.steps_done += 1
        a, step, cfg = self.archive, self.steps_done, self.cfg
        tc, il = torch.as_tensor(a.mean), self._int_loss(a.x)
        q10, q50, q90 = np.quantile(a.mean, (0.1, 0.5, 0.9))
        stage = 2 if step <= cfg.steps2 else 3  # generations mapped onto the gradient run's step axis
        self.rec.add_step(
            step=step,
            stage=stage,
            alpha=0.0,
            tc_best_k=float(a.mean.max()),
            tc_median_k=float(q50),
            tc_q10_k=float(q10),
            tc_q90_k=float(q90),
            int_loss_median=float(il.median()),
            hinge_mean_k=float(np.maximum(cfg.target_tc - a.score, 0.0).mean()),
        )
        now = time.perf_counter()
        if self.callback is not None and (now - self.last_cb >= PROGRESS_EVERY_S or step == cfg.steps2):
            self.last_cb = now
            self.callback(self.engine.progress(step, stage, 0.0, tc, il, self.t0, done=False))

    def finish(self, method: str, stopped: bool, x_start: np.ndarray, start_tc: np.ndarray, labels: list[str], info):
        """The SearchState of the archive; x_start, start_tc: (M,) rows aligned with the archive."""
        a = self.archive
        x = a.x
        integ = self.engine.integerize(x)
        rec = self.rec
        rec.add_snapshot(0, start_tc, self._int_loss(x_start).numpy(), x_start)
        rec.add_snapshot(self.steps_done, a.mean, self._int_loss(x).numpy(), x)
        if self.callback is not None:
            il = self._int_loss(x)
            stage = 2 if self.steps_done <= self.cfg.steps2 else 3
            self.callback(self.engine.progress(self.steps_done, stage, 0.0, torch.as_tensor(a.mean), il, self.t0, True))
        return SearchState(
            x_start=x_start,
            x_stage2=x.copy(),
            x_final=x.copy(),
            steps_done=self.steps_done,
            stopped=stopped,
            recorder=rec,
            elapsed_s=time.perf_counter() - self.t0,
            integer=integ,
            integer_step=a.step.copy(),
            labels=labels,
            method=method,
            evaluations=self.evaluations,
            budget=self.budget,
            info=info,
        )


def _snap(engine: DesignLoop, x: np.ndarray) -> np.ndarray:
    """The fractions of each row's integer formula under the run's N set and pins."""
    return engine.integerize(x, with_formulas=False).fractions


def _children(s: _Search, space: SearchSpace, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n evolution children of the archive: tournament parents, blend crossover, mutation."""
    a = s.archive
    contenders = rng.integers(len(a.x), size=(n, 2, TOURNAMENT_SIZE))
    winners = np.take_along_axis(contenders, a.score[contenders].argmax(-1, keepdims=True), -1)[..., 0]
    w = np.where(rng.random(n) < CROSSOVER_PROB, rng.uniform(0.25, 0.75, size=n), 1.0)[:, None]
    blend = w * a.x[winners[:, 0]] + (1 - w) * a.x[winners[:, 1]]
    return mutate(blend, space, rng, p_add=ADD_PROB, p_remove=REMOVE_PROB), a.origin[winners[:, 0]]


def _generative(s: _Search, method: str, start: init.StartPoints, rng: np.random.Generator) -> SearchState:
    engine = s.engine
    space = SearchSpace.from_constraints(engine.constraints)
    x0 = _snap(engine, space.repair(start.x, rng))
    start_tc = s.score(x0, np.arange(len(x0)))  # generation 1: the starts themselves (budget >= B)
    stopped = False
    while s.remaining > 0:
        if s.stop_requested():
            stopped = True
            break
        n = min(s.B, s.remaining)
        if method == "evolution":
            kids, origin = _children(s, space, rng, n)
        else:
            origin = rng.integers(len(x0), size=n)
            kids = mutate(x0[origin], space, rng, p_add=ADD_PROB, p_remove=REMOVE_PROB)
        s.score(_snap(engine, kids), origin)
    a = s.archive
    labels = [start.label[o] for o in a.origin]
    return s.finish(method, stopped, x0[a.origin], start_tc[a.origin], labels, {"n_starts": len(x0)})


def _database(s: _Search, known: KnownCompositions, rng: np.random.Generator) -> SearchState:
    x, idx, counts = database_pool(s.engine, known)
    if len(x) == 0:
        raise ValueError(f"no known composition passes the constraints ({s.engine.constraints.describe()})")
    if len(x) > s.budget:
        pick = np.sort(rng.choice(len(x), size=s.budget, replace=False))
        x, idx = x[pick], idx[pick]
    counts["n_scored_max"] = len(x)
    stopped = False
    for g in range(0, len(x), s.B):
        if g and s.stop_requested():
            stopped = True
            break
        s.score(x[g : g + s.B], idx[g : g + s.B])
    a = s.archive
    return s.finish("database", stopped, a.x.copy(), a.mean.copy(), [str(known.label[i]) for i in a.origin], counts)


class _Feed:
    """Substitution proposals made into compositions to score: admissible (`substitution.admissible`), pins set,
    snapped to their integer formula, and fresh (neither a training SuperCon composition nor one made before).

    Parents come in tiers (`add_parents`); `take` hands out the compositions of the current tier's proposals in
    their order. For each composition handed out, `parent` (index into `parents_x`) and `edit` say what it is.
    """

    def __init__(self, engine: DesignLoop, rng: np.random.Generator, edit_table: str) -> None:
        self.engine, self.rng, self.edit_table = engine, rng, edit_table
        self.space = SearchSpace.from_constraints(engine.constraints)
        self.known = set(composition_keys(engine.reference.sc_x))
        self.seen = set(self.known)
        self.props: subst.Proposals | None = None
        self.offset = self.next = 0  # the current tier's first parent; its proposals made so far
        self.parents_x = np.zeros((0, N_ELEMENTS))
        self.parent: list[int] = []
        self.edit: list[str] = []
        self.x = np.zeros((0, N_ELEMENTS))  # made, not yet handed out (the last len(x) of parent/edit)
        self.counts: dict[str, Any] = {"n_rejected_constraints": 0, "n_known_supercon": 0, "n_repeat": 0}

    def add_parents(self, x: np.ndarray) -> None:
        """The next tier of parents (P, 118): their proposals follow when the current ones are used up."""
        if self.edit_table == "uniform":
            props = subst.uniform_proposals(x, self.space, self.rng)
            counts = {"n_parents": len(x), "n_single": len(props), "n_double": 0}
        else:
            props, counts = subst.proposals(x, self.space)
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self.offset, self.next, self.props = len(self.parents_x), 0, props
        self.parents_x = np.concatenate([self.parents_x, x])

    def _fresh(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x), bool)
        for i, k in enumerate(composition_keys(x)):
            if k in self.seen:
                self.counts["n_known_supercon" if k in self.known else "n_repeat"] += 1
            else:
                self.seen.add(k)
                out[i] = True
        return out

    def _make(self, n: int) -> np.ndarray:
        """Make the next n proposals of the current tier; the fresh compositions (M, 118)."""
        props = self.props
        rows = np.arange(self.next, min(self.next + n, len(props)))
        self.next += len(rows)
        x = props.compositions(self.parents_x[self.offset :], rows)
        ok = subst.admissible(x, self.space)
        self.counts["n_rejected_constraints"] += int((~ok).sum())
        if not ok.any():
            return x[:0]
        x = _snap(self.engine, self.space.repair(x[ok], self.rng))
        new = self._fresh(x)
        for r in rows[ok][new]:
            self.parent.append(self.offset + int(props.parent[r]))
            self.edit.append(props.edit(int(r)))
        return x[new]

    def take(self, n: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to n compositions (n, 118) and their indices into `parent`/`edit`; fewer when the tier runs out."""
        parts, have = [self.x], len(self.x)
        while have < n and self.props is not None and self.next < len(self.props):
            parts.append(self._make(chunk))
            have += len(parts[-1])
        x = np.concatenate(parts)
        start = len(self.parent) - len(x)
        self.x = x[n:]
        return x[:n], np.arange(start, start + min(n, len(x)))


def _substitution(s: _Search, start: init.StartPoints, rng: np.random.Generator, edit_table: str) -> SearchState:
    engine, ref = s.engine, s.engine.reference
    feed, stopped, parent_tc, opened = _Feed(engine, rng, edit_table), False, [], []
    for tier in subst.parent_tiers(start.x, ref.sc_x, ref.sc_tc_k):
        tier = tier[: s.remaining // 2]  # a tier's Tc may take at most half of what is left
        if len(tier) == 0 or stopped:
            break
        opened.append(tier)
        x = np.asarray(ref.sc_x, np.float64)[tier]
        feed.add_parents(x)
        parent_tc.append(engine.predict(x)[0])
        s.evaluations += len(x)  # the parents' Tc: the trajectory's starting point
        while s.remaining > 0:
            x, origin = feed.take(min(s.B, s.remaining), PROPOSAL_CHUNK * s.B)
            if len(x) == 0:
                break
            if s.steps_done and s.stop_requested():
                stopped = True
                break
            s.score(x, origin)
    if s.steps_done == 0:
        raise ValueError(
            f"no {edit_table} substitution of the starts' nearest superconductors passes the constraints "
            f"({engine.constraints.describe()})"
        )
    parent_idx = np.concatenate(opened)
    par = np.asarray(feed.parent, np.int64)[s.archive.origin]
    labels = [
        f"substitution of {ref.sc_formula[parent_idx[k]]}: {feed.edit[o]}"
        for k, o in zip(par, s.archive.origin, strict=True)
    ]
    counts = feed.counts | {"n_parent_tiers": len(parent_tc), "edit_table": edit_table}
    return s.finish("substitution", stopped, feed.parents_x[par], np.concatenate(parent_tc)[par], labels, counts)


def run_search(
    engine: DesignLoop,
    start: init.StartPoints,
    callback: Callable[[Progress], None] | None = None,
    stop_event: threading.Event | None = None,
    recorder: TrajectoryRecorder | None = None,
    *,
    known: KnownCompositions | None = None,
    edit_table: str = "lambda",
) -> SearchState:
    """Run `engine.config.method` (not "gradient") from `start` at the gradient run's evaluation budget.

    known: the compounds "database" screens (default: `load_known_compositions()` from the data folder).
    edit_table: what "substitution" proposes: "lambda" (the method) or "uniform" (the baseline without the table).
    """
    method = engine.config.method
    if method not in NON_GRADIENT:
        raise ValueError(
            f"run_search runs {NON_GRADIENT}, got method {method!r} (the gradient loop is engine.optimize)"
        )
    if engine.config.total_steps < 1:
        raise ValueError(f"method {method!r} needs steps2 + steps3 >= 1 (its budget is B x steps)")
    s = _Search(engine, len(start), callback, stop_event, recorder)
    rng = np.random.default_rng([engine.config.seed, SEED_STREAM])
    if method == "database":
        return _database(s, known if known is not None else load_known_compositions(), rng)
    if method == "substitution":
        if edit_table not in EDIT_TABLES:
            raise ValueError(f"edit_table must be one of {EDIT_TABLES}, got {edit_table!r}")
        return _substitution(s, start, rng, edit_table)
    return _generative(s, method, start, rng)


__all__ = [
    "EDIT_TABLES",
    "NON_GRADIENT",
    "KnownCompositions",
    "SearchState",
    "composition_keys",
    "database_pool",
    "load_known_compositions",
    "objective_scores",
    "run_search",
]
