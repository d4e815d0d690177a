"""`DesignConfig`: everything that defines a design run, with its checks and its TOML/JSON forms.

Each field carries its help text in `metadata["help"]` (and `choices` where it has them): the CLI's
options and the app's form are derived from these fields, so a new field needs no edit on either side.
"""

from __future__ import annotations

import json
import math
from dataclasses import Field, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.formula_syntax import quoted
from gdmcd_core.design.config.fields import GROUPS, as_tuple, check_field_types, opt, parse_toml, toml_text
from gdmcd_core.design.objective.constraints import PIN_MODES, Constraints, Pin
from gdmcd_core.design.objective.integer_loss import INTEGER_LOSS_KINDS
from gdmcd_core.design.objective.loss import OBJECTIVES, alpha_ramp
from gdmcd_core.util import atomic_write_text

CONSTRAINT_METHODS = ("project", "relu")
# Defaults of the chemistry terms (chosen on checkpoints/tc_default.pt with 32 candidates x 100+100 steps:
# they leave the top candidates' Tc unchanged). PAPER_SETTINGS in config/presets.py switches them off.
VALENCE_WEIGHT, CU_VALENCE_WEIGHT = 3000.0, 1000.0  # K per (charge/atom)^2, K per charge/atom
DISTANCE_WEIGHT, TRUST_RADIUS = 100.0, 0.3  # K per unit L1; L1 in atomic fractions (0..2)
MAX_PRESSURE_GPA = 1000.0  # beyond any static pressure reached in a diamond-anvil cell
REFINE_STEPS = 60  # integer refinement: model evaluations per candidate (bench/discovery.py)
INTEGER_SELECT = ("best", "final")
ENSEMBLE_MODES = ("fused", "rotate")  # see loop/scoring.py: how the loop evaluates the members
INIT_MODES = ("dataset", "interpolate", "mixed", "hydride", "formulas")  # start compositions (loop/starts.py)
PARTNER_MODES = ("family", "any")
# gradient: the paper's Adam loop (loop/optimize.py); the others: search/methods.py at the same model-evaluation budget
SEARCH_METHODS = ("gradient", "evolution", "random", "database", "substitution")
__all__ = ["GROUPS", "DesignConfig", "config_fields", "field_label", "opt"]


@dataclass(frozen=True)
class DesignConfig:
    """Everything that defines a design run. Units: Tc in K, fractions in atoms per atom."""

    n_candidates: int = opt(
        256,
        "B, candidates optimized together (the hydride grid may give fewer)",
        "start",
        lo=1,
        hi=4096,
        label="Candidates",
    )
    init_mode: str = opt(
        "mixed",
        "start compositions: SuperCon entries, interpolations of two, both, the hydride grid, or typed formulas",
        "start",
        choices=INIT_MODES,
        choice_labels={
            "mixed": "SuperCon + interpolations (paper)",
            "dataset": "From SuperCon above T",
            "interpolate": "Interpolations",
            "hydride": "Hydride grid",
            "formulas": "Typed formulas",
        },
        label="Start from",
    )
    init_formulas: tuple[str, ...] = opt((), "start formulas for init_mode 'formulas'", "start", generic=False)
    interpolation_partners: str = opt(
        "family",
        "family: an interpolation's second composition shares all but at most one element with the first "
        "(within max_elements); any: two random SuperCon entries (the paper's, which mixes families)",
        "start",
        choices=PARTNER_MODES,
        label="Interpolation partners",
    )
    init_min_tc: float = opt(
        20.0,
        "K; SuperCon starts are drawn from entries above this Tc",
        "start",
        lo=0.0,
        hi=200.0,
        label="Start Tc above (K)",
    )
    pins: tuple[Pin, ...] = opt(
        (), "pinned elements (x_c); 'H=0.5' or 'H>=0.5' strings are accepted", "constraints", generic=False
    )
    pin_mode: str = opt(
        "at-least",
        "mode of pins that do not name one",
        "constraints",
        choices=PIN_MODES,
        choice_labels={"at-least": "at least", "exact": "exactly"},
        generic=False,
    )
    exclude: tuple[str, ...] = opt(
        (), "element symbols, or the words 'radioactive', 'toxic'", "constraints", generic=False
    )
    exclude_unseen: bool = opt(True, "also exclude elements in no training composition", "constraints", generic=False)
    exclude_implausible: bool = opt(
        True,
        "also exclude noble gases and radioactive elements, except pinned ones",
        "constraints",
        label="Exclude noble gases and radioactive elements",
    )
    max_elements: int = opt(
        6,
        "cap on distinct elements per candidate, pins included; 0 = no cap",
        "constraints",
        lo=0,
        hi=20,
        label="Max elements",
    )
    n_min: int = opt(4, "smallest allowed cell size N (atoms per formula unit)", "optimization", generic=False)
    n_max: int = opt(24, "largest allowed cell size N", "optimization", generic=False)
    n_values: tuple[int, ...] = opt(
        (), "explicit set of N; overrides n_min..n_max when not empty", "optimization", generic=False
    )
    integer_loss: str = opt(
        "int",
        "int: every count integer; es: two amounts may stay fractional",
        "optimization",
        choices=INTEGER_LOSS_KINDS,
        choice_labels={"int": "L_int (all atoms whole)", "es": "L_int,ES (two elements may stay fractional)"},
        label="Integer loss",
    )
    alpha_max: float = opt(
        1000.0,
        "weight of the integer loss at the last stage-3 step (ramped from 0)",
        "optimization",
        lo=0.0,
        hi=100_000.0,
        label="α max",
    )
    steps2: int = opt(1000, "stage-2 Adam steps (raise Tc)", "optimization", lo=0, hi=20_000, label="Stage-2 steps")
    steps3: int = opt(
        1000,
        "stage-3 Adam steps (raise Tc and pull counts to integers)",
        "optimization",
        lo=0,
        hi=20_000,
        label="Stage-3 steps",
    )
    lr: float = opt(0.01, "Adam learning rate of stage 2", "optimization", lo=1e-5, hi=1.0, label="Learning rate")
    lr3: float = opt(
        0.0, "stage-3 learning rate; 0 = same as lr", "optimization", lo=0.0, hi=1.0, label="Stage-3 learning rate"
    )
    target_tc: float = opt(300.0, "target Tc y_t in K", "optimization", lo=1.0, hi=1000.0, label="Target Tc (K)")
    pressure_gpa: float = opt(
        0.0,
        "pressure (GPa) the run designs for, recorded with it; the Tc model has no pressure input: above 0, every Tc "
        "of the run is high-pressure, out of the model's scope",
        "run",
        lo=0.0,
        hi=MAX_PRESSURE_GPA,
        label="Pressure (GPa)",
    )
    seed: int = opt(
        0, "seeds the start points (the loop itself is deterministic)", "run", lo=0, hi=2**31 - 1, label="Seed"
    )
    device: str = opt(
        "auto", "auto (the model's device, CUDA when present) | cpu | cuda | cuda:N", "run", label="Device"
    )
    constraint_method: str = opt(
        "project",
        "project: Euclidean projection after each step; relu: x = relu(p)/sum relu(p)",
        "optimization",
        choices=CONSTRAINT_METHODS,
        label="Constraint method",
    )
    keep_element_count: bool = opt(
        True,
        "a candidate never holds more distinct elements than its start (it may swap them)",
        "constraints",
        generic=False,
    )
    record_every: int = opt(
        10, "snapshot per-candidate compositions every k steps", "run", lo=1, hi=100_000, label="Record every"
    )
    integer_select: str = opt(
        "best",
        "best: each candidate's best integer formula seen in stage 3; final: the last step's",
        "optimization",
        choices=INTEGER_SELECT,
        label="Integer formula",
    )
    select_every: int = opt(
        20,
        "stage-3 steps between integer-formula checks (integer_select best)",
        "optimization",
        lo=1,
        hi=10_000,
        label="Check every",
    )
    refine_steps: int = opt(
        REFINE_STEPS,
        "after stage 3, model evaluations per candidate for a local search over its integer formula's "
        "neighbours (refine.py; part of every method's budget B x (steps2 + steps3 + refine_steps)); 0 = off",
        "optimization",
        lo=0,
        hi=100_000,
        label="Refinement evaluations",
    )
    objective: str = opt(
        "lcb",
        "mean: ensemble-mean Tc; lcb: mean - kappa * sd (a single model has sd 0)",
        "optimization",
        choices=OBJECTIVES,
        choice_labels={"mean": "ensemble mean Tc", "lcb": "lower confidence bound (mean − κσ)"},
        label="Objective",
    )
    kappa: float = opt(1.0, "LCB weight on the ensemble sd", "optimization", lo=0.0, hi=10.0, label="κ")
    ensemble_mode: str = opt(
        "fused",
        "how the loop evaluates an ensemble: fused (every member at every step, in one call) or rotate "
        "(one member per step for the gradient, all members with sd every full_every steps; cheaper)",
        "optimization",
        choices=ENSEMBLE_MODES,
        label="Ensemble in the loop",
    )
    full_every: int = opt(
        4, "ensemble_mode rotate: steps between full-ensemble steps", "optimization", lo=1, hi=1000, label="Full every"
    )
    formation_energy_weight: float = opt(
        0.0,
        "K per eV/atom of relu(E_f); needs a formation-energy model",
        "optimization",
        lo=0.0,
        hi=10_000.0,
        label="Stability penalty (K per eV/atom)",
    )
    method: str = opt(
        "gradient",
        "search: gradient (the paper), evolution, random perturbation of the starts, database screening (COD, JARVIS) "
        "or ionic substitution of known superconductors (search/substitution.py), at the same model-evaluation budget",
        "optimization",
        choices=SEARCH_METHODS,
        label="Search method",
    )
    valence_weight: float = opt(
        VALENCE_WEIGHT,
        "K per (charge/atom)^2 of the valence-window penalty: no mixed-valence charge balance "
        "(e.g. too little oxygen for the cations); intermetallics are exempt",
        "optimization",
        lo=0.0,
        hi=100_000.0,
        label="Charge-balance penalty (K per (e/atom)²)",
    )
    cu_valence_weight: float = opt(
        CU_VALENCE_WEIGHT,
        "K per charge/atom that a cuprate's formal Cu valence (others at typical valences) lies "
        "outside 1.8..2.6, e.g. over-oxidized",
        "optimization",
        lo=0.0,
        hi=100_000.0,
        label="Cu-valence penalty (K per e/atom)",
    )
    distance_weight: float = opt(
        DISTANCE_WEIGHT,
        "K per unit L1 distance (atomic fractions, 0..2) beyond trust_radius from the candidate's start",
        "optimization",
        lo=0.0,
        hi=100_000.0,
        label="Trust-region penalty (K per unit L1)",
    )
    trust_radius: float = opt(
        TRUST_RADIUS,
        "L1 distance from the start composition that is free of the trust-region penalty",
        "optimization",
        lo=0.0,
        hi=2.0,
        label="Trust radius (L1)",
    )
    hull_columns: bool = opt(
        True,
        "estimate each candidate's energy above the JARVIS convex hull (formation-energy surrogate, "
        "checkpoints/formation_energy.pt when none is given)",
        "run",
        label="Energy above hull",
    )
    mixtures_last: bool = opt(True, "rank mixtures (known compound + binaries, evidence/phases.py) last", "run")
    misfits_last: bool = opt(True, "rank site misfits (radius mismatch > 0.15, site_fit.py) after fits", "run")
    known_last: bool = opt(True, "rank known superconductors (SuperCon entries) after the new candidates", "run")
    site_repair: bool = opt(True, "add site repairs of misfit rows, variants of known ones (site_repair.py)", "run")
    max_per_family: int = opt(3, "candidates per parent phase before other families'; 0 = no cap", "run", lo=0, hi=99)
    executor: str = opt(
        "local", "local: this process; ray: the starts in shards, one Ray task each", "run", choices=("local", "ray")
    )
    address: str = opt(
        "", "Ray cluster address (host:port) for executor ray; empty: $GDMCD_RAY_ADDRESS, else a local Ray", "run"
    )
    shards: int = opt(
        0, "shards of the starts for executor ray; 0 = one per GPU, else per CPU, of the cluster", "run", lo=0, hi=4096
    )

    def __post_init__(self) -> None:
        # normalize container fields (TOML/JSON give lists, the CLI gives strings)
        object.__setattr__(self, "init_formulas", tuple(str(f) for f in as_tuple(self.init_formulas) if str(f).strip()))
        object.__setattr__(self, "pins", tuple(read_pin(p) for p in (self.pins or ())))
        object.__setattr__(self, "exclude", as_tuple(self.exclude))
        object.__setattr__(self, "n_values", tuple(sorted({int(n) for n in as_tuple(self.n_values)})))
        self.validate()

    def validate(self) -> None:
        """Checks that need no data or model. Raises ValueError naming the bad field."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(msg)

        check_field_types(self)  # types, finite floats and every field's choices
        need(self.n_candidates >= 1, f"n_candidates must be >= 1, got {self.n_candidates}")
        if self.init_mode == "formulas":
            need(bool(self.init_formulas), "init_mode 'formulas' needs at least one formula (CLI: --init FORMULA ...)")
        for f in self.init_formulas:
            to_vector(f)  # FormulaError (a ValueError) quoting the formula
        need(self.n_min >= 1, f"n_min must be >= 1, got {self.n_min}")
        need(
            self.n_min <= self.n_max or bool(self.n_values),
            f"empty N range {self.n_min}-{self.n_max}: n_min must be <= n_max",
        )
        need(all(n >= 1 for n in self.n_values), f"every N must be >= 1, got {self.n_values}")
        need(self.alpha_max >= 0 and math.isfinite(self.alpha_max), f"alpha_max must be >= 0, got {self.alpha_max}")
        need(
            self.steps2 >= 0 and self.steps3 >= 0, f"steps must be >= 0, got steps2={self.steps2}, steps3={self.steps3}"
        )
        need(self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr}")
        need(self.lr3 >= 0 and math.isfinite(self.lr3), f"lr3 must be >= 0 (0 = lr), got {self.lr3}")
        need(
            math.isfinite(self.target_tc) and self.target_tc > 0,
            f"target_tc must be a Tc above 0 K (the loss is relu(target_tc - Tc)), got {self.target_tc}",
        )
        need(self.record_every >= 1, f"record_every must be >= 1, got {self.record_every}")
        need(self.select_every >= 1, f"select_every must be >= 1, got {self.select_every}")
        need(self.kappa >= 0, f"kappa must be >= 0, got {self.kappa}")
        need(self.full_every >= 1, f"full_every must be >= 1, got {self.full_every}")
        need(
            self.formation_energy_weight >= 0,
            f"formation_energy_weight must be >= 0, got {self.formation_energy_weight}",
        )
        need(self.executor == "local" or self.method == "gradient", "executor 'ray' runs the gradient method only")
        need(self.max_elements >= 0, f"max_elements must be >= 0 (0 = no cap), got {self.max_elements}")
        need(self.max_per_family >= 0, f"max_per_family must be >= 0 (0 = no cap), got {self.max_per_family}")
        non_negative = "valence_weight cu_valence_weight distance_weight trust_radius shards refine_steps pressure_gpa"
        for name in non_negative.split():
            v = getattr(self, name)
            need(v >= 0 and math.isfinite(v), f"{name} must be a number >= 0, got {v}")
        c = self.constraints(unseen=())
        self._check_starts(c)
        if not c.feasible_ns(self.ns):
            raise ValueError(
                f"no cell size N in {self.n_range_text()} can hold the pins ({', '.join(str(p) for p in c.pins)}) "
                "as whole atoms; widen the N range or change the pinned fractions"
            )

    def _check_starts(self, c: Constraints) -> None:
        """Starts that the constraints would silently change: a hydride grid without H, a start formula
        holding an excluded element (exclusions known without data; the run checks the unseen ones too)."""
        if self.init_mode == "hydride" and "H" in c.excluded:
            raise ValueError("init_mode 'hydride' starts from hydrogen-rich compositions, but H is excluded")
        if self.init_mode == "formulas":
            for f in self.init_formulas:
                check_start_formula(f, c)

    # -- derived ---------------------------------------------------------------------------------

    @property
    def ns(self) -> tuple[int, ...]:
        """The allowed cell sizes before pins filter them."""
        return self.n_values or tuple(range(self.n_min, self.n_max + 1))

    @property
    def total_steps(self) -> int:
        return self.steps2 + self.steps3

    @property
    def budget_steps(self) -> int:
        """Model evaluations per candidate of every method: the steps plus the gradient's refinement."""
        return self.total_steps + self.refine_steps

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
            exclude_implausible=self.exclude_implausible,
        )

    def alpha_at(self, k: int) -> float:
        """alpha at stage-3 step k = 0..steps3-1 (see objective/loss.py: alpha_ramp)."""
        return alpha_ramp(k, self.steps3, self.alpha_max)

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
        return toml_text(self.to_dict(), self.pins)

    @classmethod
    def from_toml(cls, text: str) -> DesignConfig:
        return cls.from_dict(parse_toml(text))

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
        p = Path(path)
        atomic_write_text(p, self.to_toml() if p.suffix.lower() == ".toml" else self.to_json())

    def replace(self, **changes: Any) -> DesignConfig:
        return replace(self, **changes)


def read_pin(obj: Any) -> Pin:
    """`Pin.coerce` with a one-line ValueError naming the pin when a field is missing or not a number
    (a hand-written config file or run config.json)."""
    if isinstance(obj, dict):
        missing = [k for k in ("symbol", "fraction") if k not in obj]
        if missing:
            raise ValueError(
                f"pin {_brief(obj)} has no {missing[0]!r}: write {{symbol = 'H', fraction = 0.5}} or 'H=0.5'"
            )
    try:
        return Pin.coerce(obj)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"cannot read a pin from {_brief(obj)} ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        if str(exc).startswith(("pin ", "cannot read a pin")):
            raise
        raise ValueError(f"cannot read a pin from {_brief(obj)}: {exc}") from None


def _brief(obj: Any, limit: int = 80) -> str:
    """`repr(obj)` cut to `limit` characters for an error message."""
    r = repr(obj)
    return r if len(r) <= limit else f"{r[:limit]}…"


def check_start_formula(formula: str, c: Constraints) -> None:
    """ValueError naming the elements of a start formula that `c` excludes: the constraints would drop them
    silently (OgH2 would start from H alone)."""
    why = {s: "never seen in training" for s in c.unseen}
    why.update({s: "noble gas or radioactive (exclude_implausible)" for s in c.implausible if s not in why})
    bad = [s for s in parse_formula(formula) if s in c.excluded]
    if bad:
        reasons = ", ".join(f"{s}: {why.get(s, 'excluded')}" for s in bad)
        raise ValueError(
            f"start formula {quoted(formula)} holds excluded element(s) ({reasons}); "
            "remove them from the formula or allow them"
        )


def config_fields(generic_only: bool = True) -> list[Field]:
    """DesignConfig's fields with their metadata (help, group, choices, lo, hi, label), in order.

    generic_only: only the fields that the CLI and the form offer by their type alone.
    """
    return [f for f in fields(DesignConfig) if f.metadata.get("generic", True) or not generic_only]


def field_label(f: Field) -> str:
    """The form's label of a field: its metadata label, else its name in words."""
    return f.metadata.get("label") or f.name.replace("_", " ").capitalize()
