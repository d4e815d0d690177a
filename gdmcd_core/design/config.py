"""`DesignConfig`: everything that defines a design run, with its checks and its TOML/JSON forms.

Each field carries its help text in `metadata["help"]` (and `choices` where it has them): the CLI's
options and the app's form are derived from these fields, so a new field needs no edit on either side.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.design import initialization as init
from gdmcd_core.design.constraints import PIN_MODES, Constraints, Pin
from gdmcd_core.design.integer_loss import INTEGER_LOSS_KINDS
from gdmcd_core.design.objective import OBJECTIVES, alpha_ramp
from gdmcd_core.util import atomic_write_text

CONSTRAINT_METHODS = ("project", "relu")
INTEGER_SELECT = ("best", "final")


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
        """alpha at stage-3 step k = 0..steps3-1 (see objective.alpha_ramp)."""
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
