"""Composition design: from a target Tc to a ranked table of integer formulas and a run folder.

`from gdmcd_core.design import DesignConfig, DesignEngine` is the public entry point. Its names are loaded on
first use (PEP 562), so importing one module of this package does not import the others.

The subpackages, each importing only those before it (tests/test_architecture.py checks it):

    objective/     the maths: simplex projections, constraints, integer loss, the design loss, Adam
    stability/     formation energy and the convex hull (the loop's E_f term, the table's hull columns)
    config/        DesignConfig, its field metadata and TOML, presets, resource and speed estimates
    loop/          the design loop (loop/optimize.py), scoring, starts, best integer formula, refinement
    search/        the non-gradient methods (evolution, random, database, substitution)
    distributed/   the loop in shards on a Ray cluster
    evidence/      the candidate table and its checks (validity, filters)
    runs/          run folders: format, writer, lock, meta, state, resume
    run.py         a whole run (run_design); engine.py: DesignEngine, the loop plus `.run`
    session.py     open_design: the engine with its device, models, memory check and reference data
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.loop.step_log import Progress
    from gdmcd_core.design.runs.result import DesignResult

_HOMES = {
    "DesignConfig": "gdmcd_core.design.config.config",
    "DesignEngine": "gdmcd_core.design.engine",
    "DesignResult": "gdmcd_core.design.runs.result",
    "Progress": "gdmcd_core.design.loop.step_log",
}
__all__ = ["DesignConfig", "DesignEngine", "DesignResult", "Progress"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
