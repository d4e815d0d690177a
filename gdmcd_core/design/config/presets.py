"""Named design presets: DesignConfigs for searches the paper describes."""

from __future__ import annotations

from typing import Any

from gdmcd_core.design.config.config import DesignConfig

SEARCH_H_FRACTION = 0.5
SEARCH_N_ATOMS = tuple(range(4, 25))
SEARCH_TARGET_TC_K = 300.0
SEARCH_FULL_CANDIDATES = 20_000  # more than the grid holds: the whole grid is used
SEARCH_QUICK_CANDIDATES = 256  # a CPU-sized random subsample of the grid
# The paper's method: DesignConfig(**PAPER_SETTINGS) switches off this project's chemistry defaults
# (mean objective, no valence/trust-region terms, no element cap or default exclusions, any partners, no
# integer refinement, candidates ranked by Tc alone: no phase tiers, site repairs or family cap).
PAPER_SETTINGS: dict[str, Any] = {
    "objective": "mean",
    "valence_weight": 0.0,
    "cu_valence_weight": 0.0,
    "distance_weight": 0.0,
    "max_elements": 0,
    "exclude_implausible": False,
    "interpolation_partners": "any",
    "refine_steps": 0,
    "mixtures_last": False,
    "misfits_last": False,
    "known_last": False,
    "site_repair": False,
    "max_per_family": 0,
}


def hydride_search_config(full: bool = False, **overrides: Any):
    """The "Hydride search" preset (paper S5) as a `DesignConfig`.

    H pinned at >= 0.5 atomic fraction (x_c = [0.5, 0, ...], eq. 18), starts from the binary and
    ternary grid (eqs. 16-17, `loop/starts.py: hydride_grid`), N in 4..24, y_t = 300 K, Adam
    lr 0.01, 500 + 500 steps. `full=True` takes every grid start (~7.7k: the paper's 14,580 counts
    each ternary pair twice); otherwise a seeded subsample of `SEARCH_QUICK_CANDIDATES` for a CPU.
    Run it with the hydride checkpoint (`checkpoints/tc_hydride.pt`). Overrides replace fields by name.
    No trust region: the grid points are not known compounds, so staying near them means nothing.
    """
    base = DesignConfig(
        n_candidates=SEARCH_FULL_CANDIDATES if full else SEARCH_QUICK_CANDIDATES,
        init_mode="hydride",
        pins=(f"H>={SEARCH_H_FRACTION}",),
        n_min=min(SEARCH_N_ATOMS),
        n_max=max(SEARCH_N_ATOMS),
        target_tc=SEARCH_TARGET_TC_K,
        lr=0.01,
        steps2=500,
        steps3=500,
        distance_weight=0.0,
    )
    return base.replace(**overrides) if overrides else base
