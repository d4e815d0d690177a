"""The design loop (paper stages 2 and 3): optimize B compositions at once against a frozen Tc model.

Stage 2 (eqs. 3-4): Adam on sum_b max(0, y_t - f(x_b)). Stage 3 (eqs. 9-10): a fresh Adam on
hinge + alpha * L_integer,{N}(x) (eq. 8, with L_int or L_int,ES), alpha ramped linearly from 0 at
the first stage-3 step to alpha_max at the last. x = x_opt + x_c (eq. 13) is kept a composition
with the pins and exclusions of `constraints` after every step, by the Euclidean projection
("project": Adam sees the gradient centered at the composition's average, see
simplex.center_gradient, and every step is followed by the projection) or by the
reparameterization x_opt = budget * relu(p) / sum relu(p) ("relu").

The reported integer formula of a candidate (integer_select "best", the default) is the one with
the highest model score among the integer formulas of the compositions stage 3 passes through,
checked every `select_every` steps (the first check is the stage-2 composition itself, i.e. the
rule-based rounding, so stage 3 can only improve on it); "final" reports the last composition's.

Optional objective terms (issue 6): "lcb" maximizes the ensemble's mean - kappa * sd instead of
the mean; `formation_energy_weight` w adds w * relu(E_f(x)) with E_f from a formation-energy
model in eV/atom — only compositions predicted unstable against the elements (E_f > 0) are
pushed, so the penalty costs no Tc where the surrogate already finds the composition bound.
w is in K per eV/atom: w = 100 trades 1 K of hinge for 0.01 eV/atom of positive E_f.

Public API (stable; the web app and CLI use it):

    DesignConfig(...)                      frozen; to_dict/from_dict, to_json/from_json,
                                           to_toml/from_toml, load(path)/save(path), replace(**kw)
    DesignEngine(model, config, fe_model=None, *, reference=None)
        .constraints                       the validated Constraints
        .allowed_ns                        the cell sizes N in use (pins filter them)
        .start_points() -> StartPoints     the start compositions (seeded)
        .optimize(start, callback=None, stop_event=None) -> OptimizeState   arrays only
        .run(run_dir=None, callback=None, stop_event=None, *, start=None) -> DesignResult
        .integerize(x) -> Integerized      integer formulas under the run's N set and pins
        .predict(x) -> (mean, sd)          model Tc in K of compositions (B, 118)
    Progress                               what the callback receives (at least every PROGRESS_EVERY_S)
    DesignResult                           the ranked candidate table plus arrays and trajectory

`reference` (ReferenceData: SuperCon and the training compositions) defaults to the data files,
loaded once per process. `model` is a TcEnsemble (or any nn.Module mapping (B, 118) fractions to
(B,) Tc in K); it is never modified: a model in train mode, with trainable weights or on another
device is copied, frozen and put in eval mode. `run` may be called from a worker thread (the
callback then runs in that thread); several engines may share one frozen model. Runs are
deterministic for a given seed, config and device.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from gdmcd_core.chem.composition import FRACTION_EPS, FormulaError, to_vector
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.design import initialization as init
from gdmcd_core.design.constraints import (
    PIN_MODES,
    Constraints,
    Pin,
    apply_projection,
    apply_relu,
    compose,
)
from gdmcd_core.design.integer_loss import (
    INTEGER_LOSS_KINDS,
    Integerized,
    formulas_from_amounts,
    integer_loss,
    integerize,
)
from gdmcd_core.design.runs import RunWriter, Trajectory, TrajectoryRecorder
from gdmcd_core.design.simplex import center_gradient

OBJECTIVES = ("mean", "lcb")
CONSTRAINT_METHODS = ("project", "relu")
INTEGER_SELECT = ("best", "final")
PROGRESS_EVERY_S = 0.5  # the callback is called at least this often (and at stage ends)
# Keep the composition snapshots of a run under this many float16 entries (~40 MB) by widening
# the snapshot stride for very large runs.
MAX_SNAPSHOT_ENTRIES = 20_000_000
EVAL_BATCH = 4096


def _tuple(v: Any) -> tuple:
    if v is None:
        return ()
    if isinstance(v, str):
        return tuple(s for s in v.replace(",", " ").split() if s)
    return tuple(v)


@dataclass(frozen=True)
class DesignConfig:
    """Everything that defines a design run. Units: Tc in K, fractions in atoms per atom."""

    n_candidates: int = 256  # B, candidates optimized together (the hydride grid may give fewer)
    init_mode: str = "mixed"  # dataset | interpolate | mixed (half each, the paper's search) | hydride | formulas
    init_formulas: tuple[str, ...] = ()  # start formulas for init_mode "formulas"
    init_min_tc: float = 20.0  # K; dataset/interpolate start from SuperCon compositions above this (paper: 20 K)
    pins: tuple[Pin, ...] = ()  # pinned elements (x_c); "H=0.5" strings are accepted
    pin_mode: str = "at-least"  # mode of pins that do not name one: "at-least" | "exact"
    exclude: tuple[str, ...] = ()  # element symbols, or the words "radioactive", "toxic"
    exclude_unseen: bool = True  # also exclude elements in no training composition (At, Rn, Fr, Es-Lr, Z >= 104)
    max_elements: int = 0  # cap on distinct elements per candidate, pins included; 0 = no cap
    n_min: int = 4  # allowed cell sizes N for L_integer,{N} (eq. 8): n_min..n_max (paper: 4..24)
    n_max: int = 24
    n_values: tuple[int, ...] = ()  # explicit set of N; overrides n_min..n_max when not empty
    integer_loss: str = "int"  # "int": L_int^N (eq. 6), all counts integer; "es": L_int,ES^N (eq. 7)
    alpha_max: float = 1000.0  # weight of L_integer at the last stage-3 step (ramped from 0)
    steps2: int = 1000  # stage-2 Adam steps (hinge only)
    steps3: int = 1000  # stage-3 Adam steps (hinge + alpha * L_integer)
    lr: float = 0.01  # Adam learning rate, stage 2 (paper search: 0.01)
    lr3: float = 0.0  # stage-3 learning rate; 0 = same as lr
    target_tc: float = 300.0  # y_t in K (paper: 300 K)
    seed: int = 0  # seeds the start points (the loop itself is deterministic)
    device: str = "auto"  # "auto" (the model's device) | "cpu" | "cuda" | "cuda:1" ...
    constraint_method: str = "project"  # "project" (Euclidean projection) | "relu" (x = relu(p)/sum relu(p))
    keep_element_count: bool = True  # a candidate never holds more distinct elements than its start (may swap them)
    record_every: int = 10  # snapshot per-candidate compositions every k steps
    integer_select: str = "best"  # "best": keep each candidate's best integer formula seen in stage 3; "final"
    select_every: int = 20  # stage-3 steps between integer-formula checks for integer_select "best"
    objective: str = "mean"  # "mean": ensemble-mean Tc; "lcb": mean - kappa * sd
    kappa: float = 1.0  # LCB weight on the ensemble sd
    formation_energy_weight: float = 0.0  # K per eV/atom of relu(E_f); needs a formation-energy model

    def __post_init__(self) -> None:
        # normalize container fields (TOML/JSON give lists, the CLI gives strings)
        object.__setattr__(self, "init_formulas", tuple(str(f) for f in _tuple(self.init_formulas) if str(f).strip()))
        object.__setattr__(self, "pins", tuple(Pin.coerce(p) for p in (self.pins or ())))
        object.__setattr__(self, "exclude", _tuple(self.exclude))
        object.__setattr__(self, "n_values", tuple(sorted({int(n) for n in _tuple(self.n_values)})))
        self.validate()

    def validate(self) -> None:
        """Checks that need no data or model. Raises ValueError naming the bad field."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(msg)

        need(self.n_candidates >= 1, f"n_candidates must be >= 1, got {self.n_candidates}")
        need(self.init_mode in init.INIT_MODES, f"init_mode must be one of {init.INIT_MODES}, got {self.init_mode!r}")
        if self.init_mode == "formulas":
            need(bool(self.init_formulas), "init_mode 'formulas' needs at least one formula (CLI: --init FORMULA ...)")
        for f in self.init_formulas:
            to_vector(f)  # FormulaError (a ValueError) quoting the formula
        need(self.pin_mode in PIN_MODES, f"pin_mode must be one of {PIN_MODES}, got {self.pin_mode!r}")
        need(self.n_min >= 1, f"n_min must be >= 1, got {self.n_min}")
        need(
            self.n_min <= self.n_max or bool(self.n_values),
            f"empty N range {self.n_min}-{self.n_max}: n_min must be <= n_max",
        )
        need(all(n >= 1 for n in self.n_values), f"every N must be >= 1, got {self.n_values}")
        need(
            self.integer_loss in INTEGER_LOSS_KINDS,
            f"integer_loss must be one of {INTEGER_LOSS_KINDS}, got {self.integer_loss!r}",
        )
        need(self.alpha_max >= 0 and math.isfinite(self.alpha_max), f"alpha_max must be >= 0, got {self.alpha_max}")
        need(
            self.steps2 >= 0 and self.steps3 >= 0, f"steps must be >= 0, got steps2={self.steps2}, steps3={self.steps3}"
        )
        need(self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr}")
        need(self.lr3 >= 0 and math.isfinite(self.lr3), f"lr3 must be >= 0 (0 = lr), got {self.lr3}")
        need(math.isfinite(self.target_tc), f"target_tc must be a number, got {self.target_tc}")
        need(
            self.constraint_method in CONSTRAINT_METHODS,
            f"constraint_method must be one of {CONSTRAINT_METHODS}, got {self.constraint_method!r}",
        )
        need(self.record_every >= 1, f"record_every must be >= 1, got {self.record_every}")
        need(
            self.integer_select in INTEGER_SELECT,
            f"integer_select must be one of {INTEGER_SELECT}, got {self.integer_select!r}",
        )
        need(self.select_every >= 1, f"select_every must be >= 1, got {self.select_every}")
        need(self.objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        need(self.kappa >= 0, f"kappa must be >= 0, got {self.kappa}")
        need(
            self.formation_energy_weight >= 0,
            f"formation_energy_weight must be >= 0, got {self.formation_energy_weight}",
        )
        need(self.max_elements >= 0, f"max_elements must be >= 0 (0 = no cap), got {self.max_elements}")
        c = self.constraints(unseen=())
        if not c.feasible_ns(self.ns):
            raise ValueError(
                f"no cell size N in {self.n_range_text()} can hold the pins ({', '.join(str(p) for p in c.pins)}) "
                "as whole atoms; widen the N range or change the pinned fractions"
            )

    # -- derived ---------------------------------------------------------------------------------

    @property
    def ns(self) -> tuple[int, ...]:
        """The allowed cell sizes before pins filter them."""
        return self.n_values or tuple(range(self.n_min, self.n_max + 1))

    @property
    def total_steps(self) -> int:
        return self.steps2 + self.steps3

    def n_range_text(self) -> str:
        return ",".join(map(str, self.n_values)) if self.n_values else f"{self.n_min}-{self.n_max}"

    def constraints(self, unseen: tuple[str, ...] | list[str] = ()) -> Constraints:
        """The validated Constraints (pass the unseen elements from the reference data)."""
        return Constraints.build(
            self.pins,
            self.exclude,
            pin_mode=self.pin_mode,
            exclude_unseen=self.exclude_unseen,
            unseen=unseen,
            max_elements=self.max_elements,
        )

    def alpha_at(self, k: int) -> float:
        """alpha at stage-3 step k = 0..steps3-1: linear from 0 to alpha_max."""
        if self.steps3 <= 1:
            return self.alpha_max
        return self.alpha_max * k / (self.steps3 - 1)

    # -- (de)serialization ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pins"] = [p.to_dict() for p in self.pins]
        for k in ("init_formulas", "exclude", "n_values"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DesignConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown design option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> DesignConfig:
        return cls.from_dict(json.loads(text))

    def to_toml(self) -> str:
        """TOML text (flat keys; pins as an array of inline tables, mode omitted when inherited)."""
        lines = []
        for k, v in self.to_dict().items():
            if k == "pins":
                items = []
                for p in self.pins:
                    mode = f', mode = "{p.mode}"' if p.mode else ""
                    items.append(f'{{ symbol = "{p.symbol}", fraction = {p.fraction!r}{mode} }}')
                lines.append(f"pins = [{', '.join(items)}]")
            else:
                lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str) -> DesignConfig:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        d = tomllib.loads(text)
        if "design" in d and isinstance(d["design"], dict) and len(d) == 1:
            d = d["design"]
        if "pins" in d:
            d["pins"] = [{k: v for k, v in p.items()} if isinstance(p, dict) else p for p in d["pins"]]
        return cls.from_dict(d)

    @classmethod
    def load(cls, path: str | Path) -> DesignConfig:
        """From a .toml or .json file (by suffix; other suffixes: JSON, then TOML)."""
        p = Path(path)
        text = p.read_text()
        if p.suffix.lower() == ".toml":
            return cls.from_toml(text)
        if p.suffix.lower() == ".json":
            return cls.from_json(text)
        try:
            return cls.from_json(text)
        except json.JSONDecodeError:
            return cls.from_toml(text)

    def save(self, path: str | Path) -> None:
        from gdmcd_core.util import atomic_write_text

        p = Path(path)
        atomic_write_text(p, self.to_toml() if p.suffix.lower() == ".toml" else self.to_json())

    def replace(self, **changes: Any) -> DesignConfig:
        return replace(self, **changes)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not (isinstance(v, float) and math.isinf(v)) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


@dataclass(frozen=True)
class Progress:
    """A progress report (the callback's argument). Tc statistics are across the B candidates of
    the ensemble-mean Tc in K at the step's composition; int_loss_median is L_integer,{N}."""

    step: int  # steps done, 0..total_steps
    total_steps: int
    stage: int  # 2 or 3
    alpha: float
    tc_best_k: float
    tc_median_k: float
    tc_q10_k: float
    tc_q90_k: float
    int_loss_median: float
    elapsed_s: float
    eta_s: float
    n_candidates: int
    done: bool = False  # True on the last report of the run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OptimizeState:
    """Arrays after `DesignEngine.optimize`. x_*: (B, 118) float64 full compositions; tc_*: (B,) K.

    x_stage2 is the composition at the end of stage 2 (or where a stop interrupted stage 2).
    integer: the integer formulas to report: with integer_select "best", per candidate the one
    with the highest objective among those checked during stage 3 (every select_every steps and
    at the end); with "final", those of x_final.
    """

    x_start: np.ndarray
    x_stage2: np.ndarray
    x_final: np.ndarray
    steps_done: int
    stopped: bool
    recorder: TrajectoryRecorder
    elapsed_s: float
    integer: Integerized
    integer_step: np.ndarray  # (B,) step count at which each reported integer formula was taken


@dataclass(frozen=True)
class DesignResult:
    """The outcome of `DesignEngine.run`.

    candidates: ranked table, one row per distinct integer formula (see candidates.py);
    status: "finished" or "stopped"; x_*: (B, 118) fractions (start, end of stage 2, final);
    start_labels: where each start came from; trajectory: see runs.Trajectory.
    """

    candidates: pd.DataFrame
    status: str
    steps_done: int
    total_steps: int
    config: DesignConfig
    x_start: np.ndarray
    x_stage2: np.ndarray
    x_final: np.ndarray
    start_labels: list[str]
    trajectory: Trajectory
    run_dir: Path | None
    elapsed_s: float
    device: str
    allowed_ns: tuple[int, ...] = field(default=())


def _frozen_copy(m: nn.Module, device: torch.device) -> nn.Module:
    """The module itself if already frozen, in eval mode and on device; else a frozen copy."""
    params = list(m.parameters())
    on_device = not params or params[0].device == device
    if not m.training and on_device and not any(p.requires_grad for p in params):
        return m
    return copy.deepcopy(m).to(device).eval().requires_grad_(False)


def _module_device(m: nn.Module) -> torch.device:
    p = next(m.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


class DesignEngine:
    """Runs one design search. See the module docstring for the API."""

    def __init__(
        self,
        model: nn.Module,
        config: DesignConfig,
        fe_model: nn.Module | None = None,
        *,
        reference: ReferenceData | None = None,
    ) -> None:
        from gdmcd_core.util import resolve_device

        self.config = config
        self.device = _module_device(model) if config.device == "auto" else resolve_device(config.device)
        if config.device == "auto" and self.device.type == "cpu" and torch.cuda.is_available():
            self.device = torch.device("cuda")
        self.source_model = model
        self.model = _frozen_copy(model, self.device)
        self.fe_model = _frozen_copy(fe_model, self.device) if fe_model is not None else None
        if config.formation_energy_weight > 0 and fe_model is None:
            raise ValueError("formation_energy_weight > 0 needs a formation-energy model (none was given)")
        if config.objective == "lcb" and not hasattr(self.model, "mean_std"):
            raise ValueError("objective 'lcb' needs an ensemble model with mean_std()")
        self._reference = reference
        self.constraints = config.constraints(self.reference.unseen_symbols() if config.exclude_unseen else ())
        self.allowed_ns = tuple(self.constraints.feasible_ns(config.ns))

    @property
    def reference(self) -> ReferenceData:
        if self._reference is None:
            from gdmcd_core.data.reference import load_reference

            self._reference = load_reference()
        return self._reference

    # -- start points ------------------------------------------------------------------------

    def start_points(self) -> init.StartPoints:
        """The seeded start compositions for the config's init mode (before constraints)."""
        cfg, ref, c = self.config, self.reference, self.constraints
        rng = np.random.default_rng(cfg.seed)
        # a start point must keep something after exclusions (else it says nothing about where to go)
        allowed_rows = (np.asarray(ref.sc_x)[:, c.free_mask | c.atleast_mask] > 0).any(1)
        B = cfg.n_candidates
        if cfg.init_mode == "dataset":
            return init.from_dataset(ref.sc_x, ref.sc_tc_k, ref.sc_formula, B, cfg.init_min_tc, rng, allowed_rows)
        if cfg.init_mode == "interpolate":
            return init.interpolate(ref.sc_x, ref.sc_tc_k, ref.sc_formula, B, cfg.init_min_tc, rng, allowed_rows)
        if cfg.init_mode == "mixed":
            a = init.from_dataset(
                ref.sc_x, ref.sc_tc_k, ref.sc_formula, (B + 1) // 2, cfg.init_min_tc, rng, allowed_rows
            )
            if B // 2 == 0:
                return a
            b = init.interpolate(ref.sc_x, ref.sc_tc_k, ref.sc_formula, B // 2, cfg.init_min_tc, rng, allowed_rows)
            return init.StartPoints(np.concatenate([a.x, b.x]), a.label + b.label)
        if cfg.init_mode == "hydride":
            h = next((p.fraction for p in c.pins if p.symbol == "H"), 0.5)
            grid = init.hydride_grid(c.free_mask, h_fraction=h)
            return init.subsample(grid, B, rng)
        sp = init.from_formulas(list(cfg.init_formulas), B, rng)
        for f, row in zip(sp.label, sp.x, strict=True):
            if not (row[c.free_mask | c.atleast_mask] > 0).any():
                raise ValueError(f"start formula {f!r} holds only excluded elements")
        return sp

    # -- objective -----------------------------------------------------------------------------

    def _members_raw(self, x: torch.Tensor) -> torch.Tensor | None:
        """(K, B) pre-activation outputs of the members, if the model exposes them (TcResNet)."""
        m = self.model
        members = list(m.members) if hasattr(m, "members") else [m]
        if not all(hasattr(k, "forward_raw") for k in members):
            return None
        return torch.stack([k.forward_raw(x) for k in members])

    def _score(self, x: torch.Tensor, raw: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective (B,), ensemble-mean Tc (B,)) in K.

        raw=True (the loop) takes the objective on the members' pre-activation outputs: equal to
        Tc wherever Tc > 0, but still sloped where the output ReLU reads 0 K, so a start the model
        calls a non-superconductor still gets a gradient instead of staying put.
        """
        r = self._members_raw(x) if raw else None
        if r is not None:
            out = torch.relu(r) if getattr(self.model.config, "output_relu", True) else r
            tc = out.mean(0)
            if self.config.objective == "lcb":
                return r.mean(0) - self.config.kappa * r.std(0, unbiased=False), tc
            return r.mean(0), tc
        if self.config.objective == "lcb":
            mean, std = self.model.mean_std(x)
            return mean - self.config.kappa * std, mean
        mean = self.model(x)
        return mean, mean

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean Tc (B,), sd (B,)) in K for compositions x (B, 118), in batches."""
        means, stds = [], []
        for i in range(0, len(x), EVAL_BATCH):
            xb = torch.as_tensor(np.asarray(x[i : i + EVAL_BATCH]), dtype=torch.float32, device=self.device)
            if hasattr(self.model, "mean_std"):
                m, s = self.model.mean_std(xb)
            else:
                m = self.model(xb)
                s = torch.zeros_like(m)
            means.append(m.float().cpu().numpy())
            stds.append(s.float().cpu().numpy())
        if not means:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(means).astype(np.float64), np.concatenate(stds).astype(np.float64)

    def integerize(self, x: np.ndarray, with_formulas: bool = True) -> Integerized:
        """Integer formulas of compositions x (B, 118) under this run's N set, loss and pins."""
        c = self.constraints
        lower = c.lower_frac if c.atleast_mask.any() else None
        exact = c.exact_frac if c.exact_mask.any() else None
        return integerize(x, self.allowed_ns, self.config.integer_loss, lower, exact, with_formulas=with_formulas)

    @torch.no_grad()
    def _integer_scores(self, integ: Integerized) -> np.ndarray:
        """Objective (K) of integer formulas, from their fractions (what the formula text encodes):
        Tc (or its LCB) minus the formation-energy penalty when one is set."""
        xi = torch.as_tensor(integ.fractions, dtype=torch.float32, device=self.device)
        score = self._score(xi)[0]
        if self.config.formation_energy_weight > 0:
            score = score - self.config.formation_energy_weight * torch.relu(self.fe_model(xi))
        return score.double().cpu().numpy()

    # -- the loop ------------------------------------------------------------------------------

    def optimize(
        self,
        start: init.StartPoints | np.ndarray,
        callback: Callable[[Progress], None] | None = None,
        stop_event: threading.Event | None = None,
        writer: RunWriter | None = None,
    ) -> OptimizeState:
        """Stages 2 and 3 from `start` (B, 118); returns the arrays. Stops between steps when
        `stop_event` is set (the state then holds what was reached)."""
        cfg, c = self.config, self.constraints  # the loop draws no random numbers: same start, same run
        x_raw = start.x if isinstance(start, init.StartPoints) else np.asarray(start, np.float64)
        B = len(x_raw)
        dev, dtype = self.device, torch.float32
        ct = c.tensors(dev, dtype)
        ns_t = torch.tensor(self.allowed_ns, device=dev, dtype=dtype)
        x_opt_np = c.start_x_opt(x_raw)
        if cfg.keep_element_count:  # cap each candidate at its start's number of non-pinned elements
            n_start = ((x_opt_np + c.x_c) > FRACTION_EPS).sum(1) - len(c.pins)
            k = torch.tensor(np.maximum(n_start, 0), device=dev)
            ct = replace(ct, k_free=k if ct.k_free < 0 else torch.clamp(k, max=ct.k_free))
        # on the constrained set in float64, then cast: projecting the float32 copy again would
        # spread its ~1e-8 rounding deficit over every absent element and revive them
        x_opt0 = torch.tensor(x_opt_np, device=dev, dtype=dtype)
        relu = cfg.constraint_method == "relu"
        param = x_opt0.clone().requires_grad_(True)

        def current_x() -> torch.Tensor:
            return compose(apply_relu(param, ct) if relu else param, ct)

        total = cfg.total_steps
        stride = max(cfg.record_every, math.ceil(max(total, 1) * B * 118 / MAX_SNAPSHOT_ENTRIES))
        rec = TrajectoryRecorder(B)
        t0 = time.perf_counter()
        last_cb = -math.inf
        x_start = current_x().detach().double().cpu().numpy()
        x_stage2: np.ndarray | None = None
        steps_done = 0
        stopped = False
        fe_w = cfg.formation_energy_weight
        select_best = cfg.integer_select == "best"

        def snapshot(step: int, x: torch.Tensor, tc: torch.Tensor, il: torch.Tensor) -> None:
            rec.add_snapshot(step, tc.detach().cpu().numpy(), il.detach().cpu().numpy(), x.detach().cpu().numpy())

        def report(step: int, stage: int, alpha: float, tc: torch.Tensor, il: torch.Tensor, done: bool) -> Progress:
            q = torch.quantile(tc.detach().float().cpu(), torch.tensor([0.1, 0.5, 0.9])).tolist() if B else [0.0] * 3
            elapsed = time.perf_counter() - t0
            eta = elapsed / step * (total - step) if step else 0.0
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
                eta_s=0.0 if done else eta,
                n_candidates=B,
                done=done,
            )

        opt: torch.optim.Optimizer | None = None
        tc = il = None
        stage, alpha = 2, 0.0
        best: dict[str, Any] = {}

        def consider(step: int, x_np: np.ndarray) -> None:
            """Integer formulas of x_np; keep each candidate's best so far (integer_select "best")."""
            integ = self.integerize(x_np, with_formulas=False)
            score = self._integer_scores(integ)
            if not best:
                best.update(integ=integ, score=score, step=np.full(B, step))
                return
            better = score > best["score"]
            if better.any():
                old: Integerized = best["integ"]
                best["integ"] = Integerized(
                    n_atoms=np.where(better, integ.n_atoms, old.n_atoms),
                    amounts=np.where(better[:, None], integ.amounts, old.amounts),
                    formulas=[],
                    loss=np.where(better, integ.loss, old.loss),
                )
                best["score"] = np.where(better, score, best["score"])
                best["step"] = np.where(better, step, best["step"])

        for step in range(total):
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            stage = 2 if step < cfg.steps2 else 3
            if step == 0 or step == cfg.steps2:
                if step == cfg.steps2 and step > 0:
                    x_stage2 = current_x().detach().double().cpu().numpy()
                    if writer is not None:
                        writer.log(f"stage 2 done after {step} steps ({time.perf_counter() - t0:.1f} s)")
                        writer.write_trajectory(rec)
                lr = cfg.lr if stage == 2 else (cfg.lr3 or cfg.lr)
                opt = torch.optim.Adam([param], lr=lr)  # a fresh optimizer per stage (eq. 4, then eq. 10)
            alpha = 0.0 if stage == 2 else cfg.alpha_at(step - cfg.steps2)
            x = current_x()
            score, tc = self._score(x, raw=True)
            hinge = torch.relu(cfg.target_tc - score)  # (B,) K, eq. 3
            if stage == 3 or il is None or step % cfg.record_every == 0 or step == cfg.steps2 - 1:
                with torch.set_grad_enabled(stage == 3):  # stage 2 only monitors it (every record_every steps)
                    il, _ = integer_loss(x, ns_t, cfg.integer_loss)  # (B,), eq. 8
            loss = hinge
            if stage == 3 and alpha > 0:
                loss = loss + alpha * il
            if fe_w > 0:
                loss = loss + fe_w * torch.relu(self.fe_model(x))
            if step % stride == 0:
                snapshot(step, x, tc, il)
            if stage == 3 and select_best and (step - cfg.steps2) % cfg.select_every == 0:
                consider(step, x.detach().double().cpu().numpy())
            assert opt is not None
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # candidates are independent: the sum gives each its own gradient
            if not relu:  # tangent gradient for Adam (see simplex.center_gradient)
                with torch.no_grad():
                    param.grad.copy_(center_gradient(param.grad, param, ct.free))
            opt.step()
            if not relu:
                with torch.no_grad():
                    param.copy_(apply_projection(param, ct))
            steps_done = step + 1
            tcd = tc.detach()
            q = torch.quantile(tcd.float(), torch.tensor([0.1, 0.5, 0.9], device=tcd.device)).tolist()
            rec.add_step(
                step=steps_done,
                stage=stage,
                alpha=alpha,
                tc_best_k=float(tcd.max()),
                tc_median_k=q[1],
                tc_q10_k=q[0],
                tc_q90_k=q[2],
                hinge_mean_k=float(hinge.detach().mean()),
                int_loss_median=float(il.detach().median()),
            )
            now = time.perf_counter()
            if callback is not None or writer is not None:
                if now - last_cb >= PROGRESS_EVERY_S or steps_done in (cfg.steps2, total):
                    last_cb = now
                    prog = report(steps_done, stage, alpha, tcd, il, done=False)
                    if callback is not None:
                        callback(prog)
                    if writer is not None:
                        writer.write_status("running", prog.to_dict(), force=False)
                        writer.write_trajectory(rec, force=False)

        with torch.no_grad():
            x = current_x()
            score, tc = self._score(x)
            il, _ = integer_loss(x, ns_t, cfg.integer_loss)
            snapshot(steps_done, x, tc, il)
            x_final = x.double().cpu().numpy()
        if x_stage2 is None:  # no stage 3 reached: stage 2 ended where the loop ended (or never ran)
            x_stage2 = x_start.copy() if cfg.steps2 == 0 else x_final.copy()
        consider(steps_done, x_final)  # the final composition is always a contender
        if not select_best:
            best.clear()
            consider(steps_done, x_final)
        if callback is not None:
            callback(report(steps_done, stage, alpha, tc, il, done=True))
        return OptimizeState(
            x_start=x_start,
            x_stage2=x_stage2,
            x_final=x_final,
            steps_done=steps_done,
            stopped=stopped,
            recorder=rec,
            elapsed_s=time.perf_counter() - t0,
            integer=replace(best["integ"], formulas=formulas_from_amounts(best["integ"].amounts)),
            integer_step=best["step"],
        )

    # -- a whole run ---------------------------------------------------------------------------

    def run_record(self) -> dict[str, Any]:
        """What config.json holds besides the DesignConfig."""
        from gdmcd_core.util import code_version

        m = self.source_model
        return {
            "design": self.config.to_dict(),
            "seed": self.config.seed,
            "device": str(self.device),
            "checkpoint_path": getattr(m, "path", ""),
            "checkpoint_sha256": getattr(m, "sha256", ""),
            "model_members": getattr(m, "n_members", 1),
            "formation_energy_model": type(self.fe_model).__name__ if self.fe_model is not None else None,
            "code_version": code_version(),
            "constraints": {
                "pins": [p.to_dict() for p in self.constraints.pins],
                "excluded": list(self.constraints.excluded),
                "unseen_excluded": list(self.constraints.unseen),
                "max_elements": self.constraints.max_elements,
            },
            "allowed_ns": list(self.allowed_ns),
            "torch_version": torch.__version__,
        }

    def run(
        self,
        run_dir: str | Path | None = None,
        callback: Callable[[Progress], None] | None = None,
        stop_event: threading.Event | None = None,
        *,
        start: init.StartPoints | None = None,
    ) -> DesignResult:
        """Initialize, optimize, integerize, rank. Writes the run folder as it goes if run_dir is
        given. A set stop_event ends the loop between steps; the result (status "stopped") then
        holds candidates built from the compositions reached. Exceptions mark the folder failed
        and propagate."""
        from gdmcd_core.design.candidates import build_candidates

        cfg = self.config
        writer = RunWriter(run_dir) if run_dir is not None else None
        try:
            if writer is not None:
                record = self.run_record()
                record["created"] = time.time()
                record["summary"] = self.summary()
                writer.write_config(record)
                writer.write_status("running", None)
                writer.log(f"design run started on {self.device}: {self.summary()}")
            sp = start if start is not None else self.start_points()
            record_n = len(sp)
            if writer is not None:
                record["n_candidates"] = record_n
                writer.write_config(record)
            state = self.optimize(sp, callback=callback, stop_event=stop_event, writer=writer)
            status = "stopped" if state.stopped else "finished"
            if writer is not None:
                writer.log(
                    f"{status} after {state.steps_done}/{cfg.total_steps} steps ({state.elapsed_s:.1f} s); building candidates"
                )
                writer.write_trajectory(state.recorder)
            table = build_candidates(
                engine=self,
                x_start=state.x_start,
                start_labels=list(sp.label),
                x_stage2=state.x_stage2,
                x_final=state.x_final,
                integer=state.integer,
                integer_step=state.integer_step,
            )
            if writer is not None:
                writer.write_candidates(table)
                final = state.recorder.to_trajectory()
                prog = {
                    "step": state.steps_done,
                    "total_steps": cfg.total_steps,
                    "elapsed_s": state.elapsed_s,
                    "n_candidates": record_n,
                    "tc_best_k": float(final.tc_best_k[-1]) if len(final.tc_best_k) else float("nan"),
                    "done": True,
                }
                writer.write_status(status, prog)
                writer.log(f"wrote {len(table)} distinct candidates")
            return DesignResult(
                candidates=table,
                status=status,
                steps_done=state.steps_done,
                total_steps=cfg.total_steps,
                config=cfg,
                x_start=state.x_start,
                x_stage2=state.x_stage2,
                x_final=state.x_final,
                start_labels=list(sp.label),
                trajectory=state.recorder.to_trajectory(),
                run_dir=Path(run_dir) if run_dir is not None else None,
                elapsed_s=state.elapsed_s,
                device=str(self.device),
                allowed_ns=self.allowed_ns,
            )
        except BaseException as exc:
            if writer is not None:
                msg = f"{type(exc).__name__}: {exc}"
                try:
                    writer.write_status("failed", None, message=msg)
                    writer.log(f"failed: {msg}")
                except OSError:
                    pass
            raise

    def summary(self) -> str:
        cfg = self.config
        return (
            f"{cfg.init_mode} x{cfg.n_candidates}, y_t={cfg.target_tc:g} K, N={cfg.n_range_text()}, "
            f"L_{cfg.integer_loss}, steps {cfg.steps2}+{cfg.steps3}, lr {cfg.lr:g}, {cfg.constraint_method}, "
            f"{self.constraints.describe()}"
        )


__all__ = [
    "CONSTRAINT_METHODS",
    "OBJECTIVES",
    "DesignConfig",
    "DesignEngine",
    "DesignResult",
    "FormulaError",
    "OptimizeState",
    "Progress",
]
