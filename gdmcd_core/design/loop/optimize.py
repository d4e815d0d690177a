"""The design loop (paper stages 2 and 3): optimize B compositions at once against a frozen Tc model.

Stage 2: Adam on the hinge max(0, y_t - score(x)). Stage 3: a fresh Adam on hinge + alpha * L_integer,{N}(x),
alpha ramped linearly from 0 to alpha_max (objective/loss.py). Both stages add the chemistry terms of
objective/loss.design_loss that have a weight: the valence window, the cuprate Cu valence, the trust region
around each candidate's start composition and relu(E_f). Each step takes autograd through the model only and
adds the gradients of the model-free terms by hand (`_loss_grad`). x = x_opt + x_c is kept a composition with the pins
and exclusions of `constraints` after every step, by the Euclidean projection ("project": Adam sees the
gradient centered at the composition's average, see simplex.center_gradient) or by the reparameterization
x_opt = budget * relu(p) / sum relu(p) ("relu"); Adam is design/objective/adam.py.

The reported integer formula of a candidate (integer_select "best", the default) is the one with the
highest score (minus the same chemistry terms) among the integer formulas stage 3 passes through, checked every
`select_every` steps (the first check is the stage-2 composition itself, i.e. rule-based rounding, so stage 3
can only improve on it); "final" reports the last composition's.

The loop's API (the search methods, the run folder code and Ray shards use it; `engine.DesignEngine` is this
class plus `.run`, a whole run with its folder):

    DesignLoop(model, config, fe_model=None, *, reference=None)
        .constraints, .allowed_ns          the validated constraints and the cell sizes N in use
        .start_points() -> StartPoints     the seeded start compositions
        .optimize(start, callback=None, stop_event=None, recorder=None) -> OptimizeState
                                           arrays in, arrays and progress callbacks out; writes no file
        .refine(state, score=None) -> OptimizeState   integer refinement of a finished loop's formulas
        .integerize(x) -> Integerized      integer formulas under the run's N set and pins
        .predict(x) -> (mean, sd)          model Tc in K of compositions (B, 118)
        .integer_scores(integ, x0=None) -> (B,)       objective of integer formulas, the penalty terms included
        .progress(step, stage, alpha, tc, il, t0, done, eta=None) -> Progress   the report handed to callbacks
                                           (eta: the loop's EtaClock, eta.py: the time left from each stage's rate)

`model` is a TcEnsemble (or any nn.Module mapping (B, 118) fractions to (B,) Tc in K; LCB then has sd 0); it is
never modified: a model in train mode, with trainable weights or on another device is copied, frozen and put in
eval mode. `fe_model` (E_f in eV/atom) defaults to checkpoints/formation_energy.pt when a stability penalty or
the table's hull columns (config.hull_columns) need one.
Runs are deterministic for a given seed, config and device.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from gdmcd_core.chem.composition import FRACTION_EPS
from gdmcd_core.data.reference import ReferenceData, load_reference
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.config.resources import snapshot_stride
from gdmcd_core.design.loop import starts as init
from gdmcd_core.design.loop.best_integer import BestInteger
from gdmcd_core.design.loop.eta import EtaClock
from gdmcd_core.design.loop.refine import Conditions, refine_candidates
from gdmcd_core.design.loop.results import OptimizeState
from gdmcd_core.design.loop.scoring import Scorer
from gdmcd_core.design.loop.step_log import PROGRESS_EVERY_S, Progress, StepLog, quantiles
from gdmcd_core.design.loop.trajectory import TrajectoryRecorder
from gdmcd_core.design.objective import loss as obj
from gdmcd_core.design.objective.adam import Adam
from gdmcd_core.design.objective.constraint_tensors import apply_relu, compose, projector
from gdmcd_core.design.objective.integer_loss import (
    Integerized,
    formulas_from_amounts,
    integer_loss,
    integer_loss_grad,
    integerize,
)
from gdmcd_core.design.objective.simplex import center_gradient
from gdmcd_core.design.stability.energy import FormationEnergyFn, default_formation_energy_model
from gdmcd_core.util import batched, module_device, resolve_device

REFINE_BATCH = 4096  # rows per model call when integer refinement scores neighbours


def _frozen_copy(m: nn.Module, device: torch.device) -> nn.Module:
    """The module itself if already frozen, in eval mode and on device; else a frozen copy."""
    params = list(m.parameters())
    on_device = not params or params[0].device == device
    if not m.training and on_device and not any(p.requires_grad for p in params):
        return m
    return copy.deepcopy(m).to(device).eval().requires_grad_(False)


class DesignLoop:
    """Runs one design search's loop. See the module docstring for the API."""

    def __init__(
        self,
        model: nn.Module,
        config: DesignConfig,
        fe_model: nn.Module | None = None,
        *,
        reference: ReferenceData | None = None,
    ) -> None:
        self.config = config
        self.device = module_device(model) if config.device == "auto" else resolve_device(config.device)
        if config.device == "auto" and self.device.type == "cpu" and torch.cuda.is_available():
            self.device = torch.device("cuda")
        self.source_model = model
        self.model = _frozen_copy(model, self.device)
        if fe_model is None and (config.formation_energy_weight > 0 or config.hull_columns):
            fe_model = default_formation_energy_model(self.device)  # checkpoints/formation_energy.pt
        self.fe_model = _frozen_copy(fe_model, self.device) if fe_model is not None else None
        if config.formation_energy_weight > 0 and fe_model is None:
            raise ValueError("formation_energy_weight > 0 needs a formation-energy model (none was given)")
        # E_f for the candidate table (with the model's error and whether to compute the hull), or None
        self.predict_formation_energy = FormationEnergyFn.of(self.fe_model, self.device, config.hull_columns)
        self._chemistry = obj.ChemistryPenalty(
            self.device,
            torch.float32,
            config.valence_weight,
            config.cu_valence_weight,
            config.distance_weight,
            config.trust_radius,
        )
        # the σ's distance and neighbour terms need the nearest reference superconductor: looked up only for a
        # model calibrated with them (its card's b, g or band factors)
        neighbors_fn = self._neighbors if getattr(self.model, "has_extra_sigma_terms", False) else None
        self.scorer = Scorer(
            self.model, config.objective, config.kappa, config.ensemble_mode, config.full_every, neighbors_fn
        )
        self._reference = reference
        self.constraints = config.constraints(self.reference.unseen_symbols() if config.exclude_unseen else ())
        self.allowed_ns = tuple(self.constraints.feasible_ns(config.ns))

    def _neighbors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((B,) L1 distance to, (B,) Tc in K of) the nearest reference SuperCon composition of each of x (B, 118),
        for σ's terms; without one, the farthest distance (2) and 0 K."""
        d, tc = self.reference.supercon_neighbors(x.detach().cpu().numpy())
        d, tc = np.nan_to_num(d, nan=2.0), np.nan_to_num(tc, nan=0.0)
        return tuple(torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (d, tc))

    @property
    def reference(self) -> ReferenceData:
        if self._reference is None:
            self._reference = load_reference()
        return self._reference

    def start_points(self) -> init.StartPoints:
        """The seeded start compositions for the config's init mode (before constraints)."""
        cfg, c = self.config, self.constraints
        return init.start_points(
            cfg.init_mode,
            cfg.n_candidates,
            self.reference,
            np.random.default_rng(cfg.seed),
            usable_mask=c.free_mask | c.atleast_mask,
            free_mask=c.free_mask,
            min_tc=cfg.init_min_tc,
            formulas=cfg.init_formulas,
            h_fraction=next((p.fraction for p in c.pins if p.symbol == "H"), 0.5),
            partners=cfg.interpolation_partners,
            max_elements=cfg.max_elements,
            constraints=c,
        )

    # -- the model's view (scoring.Scorer: members fused into one call) ------------------------------

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean Tc (B,), sd (B,)) in K for compositions x (B, 118), in batches."""
        mean, std = batched(self.scorer.mean_std, np.asarray(x), self.device)
        return mean.astype(np.float64), std.astype(np.float64)

    def integerize(self, x: np.ndarray, with_formulas: bool = True) -> Integerized:
        """Integer formulas of compositions x (B, 118) under this run's N set, loss and pins."""
        c = self.constraints
        lower = c.lower_frac if c.atleast_mask.any() else None
        exact = c.exact_frac if c.exact_mask.any() else None
        return integerize(x, self.allowed_ns, self.config.integer_loss, lower, exact, with_formulas=with_formulas)

    def _penalties(self, x: torch.Tensor, x0: torch.Tensor | None) -> dict:
        """design_loss's keyword arguments of the chemistry terms for compositions x (B, 118)."""
        cfg, out = self.config, {}
        if cfg.formation_energy_weight > 0:
            out.update(formation_energy=self.fe_model(x), formation_energy_weight=cfg.formation_energy_weight)
        if self._chemistry.active:
            out.update(chemistry=self._chemistry(x, x0))
        return out

    @torch.no_grad()
    def integer_scores(
        self, integ: Integerized | np.ndarray, x0: np.ndarray | torch.Tensor | None = None
    ) -> np.ndarray:
        """Score (K) of integer formulas (or their (B, 118) fractions), minus the objective's penalty terms (the
        trust region only with x0 (B, 118), the start compositions of the same candidates)."""
        fractions = integ if isinstance(integ, np.ndarray) else integ.fractions
        xi = torch.as_tensor(fractions, dtype=torch.float32, device=self.device)
        score = self.scorer.score(xi)[0]
        x0t = torch.as_tensor(x0, dtype=torch.float32, device=self.device) if x0 is not None else None
        penalty = obj.design_loss(torch.zeros_like(score), 0.0, **self._penalties(xi, x0t))
        return (score - penalty).double().cpu().numpy()

    def refine_conditions(self) -> Conditions:
        """What integer refinement must honour: this run's exclusions, pins, element cap and N set."""
        c = self.constraints
        return Conditions(
            allowed=c.free_mask | c.atleast_mask | c.exact_mask,
            movable=c.free_mask.copy(),
            ns=frozenset(self.allowed_ns),
            max_elements=c.max_elements,
            lower=c.lower_frac,
            exact=c.exact_frac,
        )

    def _refine_scores(self, fractions: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """`integer_scores` of many formulas in batches of REFINE_BATCH rows."""
        parts = [
            self.integer_scores(fractions[i : i + REFINE_BATCH], x0[i : i + REFINE_BATCH])
            for i in range(0, len(fractions), REFINE_BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros(0)

    # -- the loop ------------------------------------------------------------------------------

    def _parameters(self, x_raw: np.ndarray):
        """(constraint tensors, the optimized parameter, x(param) function, the projection) for starts x_raw (B, 118)."""
        cfg, c = self.config, self.constraints
        ct = c.tensors(self.device, torch.float32)
        x_opt_np = c.start_x_opt(x_raw)
        if cfg.keep_element_count:  # cap each candidate at its start's number of non-pinned elements
            n_start = ((x_opt_np + c.x_c) > FRACTION_EPS).sum(1) - len(c.pins)
            k = torch.tensor(np.maximum(n_start, 0), device=self.device)
            ct = replace(ct, k_free=k if ct.k_free < 0 else torch.clamp(k, max=ct.k_free))
        # on the constrained set in float64, then cast: projecting the float32 copy again would
        # spread its ~1e-8 rounding deficit over every absent element and revive them
        param = torch.tensor(x_opt_np, device=self.device, dtype=torch.float32).requires_grad_(True)
        relu = cfg.constraint_method == "relu"
        return ct, param, lambda: compose(apply_relu(param, ct) if relu else param, ct), projector(ct, param.shape)

    def _loss_grad(self, x: torch.Tensor, x0: torch.Tensor, step: int, alpha: float, ns_t, il, k_int: int | None):
        """(score, Tc, L_integer, d loss / d x) at compositions x (B, 118), all detached. Autograd runs through the
        model only, seeded with the hinge's slope (-1 below the target, else 0) and w_E where E_f > 0; the chemistry
        and integer terms, piecewise linear or quadratic in x, add their gradients by hand
        (loss.ChemistryPenalty.gradient, integer_loss.integer_loss_grad). Stage 2 (alpha None) computes
        L_integer only to monitor it, every record_every steps. k_int: the most non-zero entries any row can hold
        (None: counted)."""
        cfg = self.config
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            score, tc = self.scorer.loop_score(xg, step)
            outs, seeds = [score], [(score.detach() < cfg.target_tc).to(score.dtype).neg_()]
            if cfg.formation_energy_weight > 0:
                e_f = self.fe_model(xg)
                outs.append(e_f)
                seeds.append((e_f.detach() > 0).to(e_f.dtype) * cfg.formation_energy_weight)
            (grad,) = torch.autograd.grad(outs, xg, seeds)
        xd = xg.detach()
        if self._chemistry.active:
            grad += self._chemistry.gradient(xd, x0)
        if alpha is not None:
            il, g_int = integer_loss_grad(xd, ns_t.reshape(1, -1, 1), cfg.integer_loss, k_int)
            if alpha > 0:
                grad.add_(g_int, alpha=alpha)
        elif il is None or step % cfg.record_every == 0 or step == cfg.steps2 - 1:
            il = integer_loss(xd, ns_t, cfg.integer_loss)[0]
        return score.detach(), tc.detach(), il, grad

    def _step_update(self, opt: Adam, param: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, ct, project) -> None:
        """One Adam step from d loss / d x (candidates are independent: each gets its own gradient), then back onto
        the constrained set. "project": x = x_opt + x_c, so the gradient is x_opt's, centered for Adam (see
        simplex.center_gradient); "relu": chained through x(param) by autograd."""
        if self.config.constraint_method == "relu":
            opt.step(torch.autograd.grad(x, param, grad)[0])
            return
        with torch.no_grad():
            opt.step(center_gradient(grad, param, ct.free, ct.budget))  # param is on the simplex of sum budget
            param.copy_(project(param))

    def progress(
        self, step: int, stage: int, alpha: float, tc, il, t0: float, done: bool, eta: EtaClock | None = None
    ) -> Progress:
        B, total = len(tc), self.config.total_steps
        q = quantiles(tc)
        elapsed = time.perf_counter() - t0
        left = 0.0  # after the last report (done)
        if eta is None:  # the search methods: the mean time per step so far
            left = elapsed / step * max(total - step, 0) if step and not done else 0.0
        elif not done:  # the done report comes after the refinement: not a step's time
            eta.add(step, elapsed)
            left = eta.eta_s()
        return Progress(
            step=step,
            total_steps=total,
            stage=stage,
            alpha=float(alpha),
            tc_best_k=float(tc.max()) if B else 0.0,
            tc_median_k=q[1],
            tc_q10_k=q[0],
            tc_q90_k=q[2],
            int_loss_median=float(il.detach().float().median()) if B else 0.0,
            elapsed_s=elapsed,
            eta_s=left,
            n_candidates=B,
            done=done,
        )

    def optimize(
        self,
        start: init.StartPoints | np.ndarray,
        callback: Callable[[Progress], None] | None = None,
        stop_event: threading.Event | None = None,
        recorder: TrajectoryRecorder | None = None,
    ) -> OptimizeState:
        """Stages 2 and 3 from `start` (B, 118); returns the arrays. Stops between steps when `stop_event`
        is set (the state then holds what was reached). The loop draws no random numbers."""
        cfg = self.config
        x_raw = start.x if isinstance(start, init.StartPoints) else np.asarray(start, np.float64)
        run = _Optimization(self, x_raw, recorder)
        t0, last_cb = time.perf_counter(), -math.inf
        for step in range(cfg.total_steps):
            if stop_event is not None and stop_event.is_set():
                run.stopped = True
                break
            run.step(step)
            now = time.perf_counter()
            if callback is not None and (
                now - last_cb >= PROGRESS_EVERY_S or run.steps_done in (cfg.steps2, cfg.total_steps)
            ):
                last_cb = now
                run.log.flush()
                callback(run.progress(t0, done=False))
        state = run.finish(t0)
        state = self.refine(state, run.best.score)  # integer refinement (refine.py)
        if callback is not None:
            callback(run.progress(t0, done=True))
        return state

    def refine(self, state: OptimizeState, score: np.ndarray | None = None) -> OptimizeState:
        """The integer refinement (refine.py) of a finished run's formulas, within config.refine_steps model
        evaluations per candidate; a stopped run or refine_steps 0 returns `state` unchanged. A refined row keeps its
        arrays (start, trajectory), gets integer_step steps_done + 1, and `refined_from` names the candidate whose
        lineage its formula continues (the candidate table reports that candidate's start, not the row's own).
        score: the formulas' objective if known (else B more evaluations)."""
        if self.config.refine_steps <= 0 or state.stopped or not len(state.x_start):
            return state
        x0, integ = state.x_start, state.integer
        score = self.integer_scores(integ, x0) if score is None else score
        out, _, parent = refine_candidates(
            integ, score, x0, self._refine_scores, self.refine_conditions(), self.config.refine_steps
        )
        refined = parent != np.arange(len(x0))
        if not refined.any():
            return state
        out = replace(out, formulas=formulas_from_amounts(out.amounts))
        step = np.where(refined, state.steps_done + 1, state.integer_step)
        return replace(state, integer=out, integer_step=step, refined_from=parent)

    def summary(self) -> str:
        cfg = self.config
        return (
            f"{cfg.init_mode} x{cfg.n_candidates}, y_t={cfg.target_tc:g} K, N={cfg.n_range_text()}, "
            f"L_{cfg.integer_loss}, steps {cfg.steps2}+{cfg.steps3}, lr {cfg.lr:g}, {cfg.constraint_method}, "
            f"{self.constraints.describe()}"
        )


class _Optimization:
    """The working state of one `DesignLoop.optimize` call: the optimized parameter with its projection, the
    current stage's Adam, the latest Tc and L_integer, the trajectory and each candidate's best integer formula."""

    def __init__(self, loop: DesignLoop, x_raw: np.ndarray, recorder: TrajectoryRecorder | None) -> None:
        cfg = loop.config
        self.loop, self.cfg, B = loop, cfg, len(x_raw)
        self.ct, self.param, self.current_x, self.project = loop._parameters(x_raw)
        cap = getattr(self.project, "kmax", None)  # at most cap free elements + the pins in any row
        self.k_int = None if cap is None else cap + int((self.ct.x_c != 0).sum())
        loop.scorer.reset()
        self.ns_t = torch.tensor(loop.allowed_ns, device=loop.device, dtype=torch.float32)
        self.stride = snapshot_stride(cfg.total_steps, B, cfg.record_every)
        self.rec = recorder if recorder is not None else TrajectoryRecorder(B)
        self.log = StepLog(self.rec, cfg.target_tc)
        self.eta = EtaClock(cfg.steps2, cfg.total_steps)
        self.x0 = self.current_x().detach()
        self.x_start = self.x0.double().cpu().numpy()
        self.best = BestInteger(loop.integerize, self._scores)
        self.x_stage2: np.ndarray | None = None
        self.opt: Adam | None = None
        self.tc: torch.Tensor | None = None
        self.il: torch.Tensor | None = None
        self.steps_done, self.stopped, self.stage, self.alpha = 0, False, 2, 0.0

    def _scores(self, integ: Integerized, candidate: np.ndarray) -> np.ndarray:
        """The objective of integer formulas, each with the trust region around its candidate's start."""
        return self.loop._refine_scores(integ.fractions, self.x_start[candidate])

    def step(self, step: int) -> None:
        """One Adam step of stage 2 or 3 (a fresh Adam at each stage's start), recorded in the step log; stage 3
        queues the integer formulas of every select_every-th step for the best-integer check."""
        cfg = self.cfg
        self.stage = 2 if step < cfg.steps2 else 3
        if step in (0, cfg.steps2):
            if step == cfg.steps2 and step > 0:
                self.x_stage2 = self.current_x().detach().double().cpu().numpy()
            self.opt = Adam(self.param, lr=cfg.lr if self.stage == 2 else (cfg.lr3 or cfg.lr))
        self.alpha = 0.0 if self.stage == 2 else cfg.alpha_at(step - cfg.steps2)
        with torch.set_grad_enabled(cfg.constraint_method == "relu"):  # relu: x(param) is chained by autograd
            x = self.current_x()
        alpha = self.alpha if self.stage == 3 else None
        score, self.tc, self.il, grad = self.loop._loss_grad(x, self.x0, step, alpha, self.ns_t, self.il, self.k_int)
        if step % self.stride == 0:
            self.rec.add_snapshot(step, self.tc.cpu().numpy(), self.il.cpu().numpy(), x.detach().cpu().numpy())
        if self.stage == 3 and cfg.integer_select == "best" and (step - cfg.steps2) % cfg.select_every == 0:
            self.best.consider(step, x.detach().double().cpu().numpy())
        self.loop._step_update(self.opt, self.param, x, grad, self.ct, self.project)
        self.steps_done = step + 1
        self.log.add(self.steps_done, self.stage, self.alpha, self.tc, score, self.il)

    def progress(self, t0: float, done: bool) -> Progress:
        return self.loop.progress(self.steps_done, self.stage, self.alpha, self.tc, self.il, t0, done, self.eta)

    def finish(self, t0: float) -> OptimizeState:
        """The final composition's snapshot and the run's arrays. The final composition is always a contender for
        each candidate's integer formula (with integer_select "final" the only one)."""
        cfg = self.cfg
        self.log.flush()
        with torch.no_grad():
            x = self.current_x()
            _, self.tc = self.loop.scorer.score(x)
            self.il, _ = integer_loss(x, self.ns_t, cfg.integer_loss)
            self.rec.add_snapshot(self.steps_done, self.tc.cpu().numpy(), self.il.cpu().numpy(), x.cpu().numpy())
        x_final = x.double().cpu().numpy()
        if self.x_stage2 is None:  # no stage 3 reached: stage 2 ended where the loop ended (or never ran)
            self.x_stage2 = self.x_start.copy() if cfg.steps2 == 0 else x_final.copy()
        self.best.consider(self.steps_done, x_final)
        integ, integer_step = self.best.result()
        elapsed = time.perf_counter() - t0
        return OptimizeState(
            self.x_start, self.x_stage2, x_final, self.steps_done, self.stopped, self.rec, elapsed, integ, integer_step
        )


__all__ = ["DesignLoop"]
