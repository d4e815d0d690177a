"""Shared pieces of the trust benchmarks: run the design engine on fixed starts and
summarize the final integer candidates (Tc, ensemble spread, formation energy, validity)."""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.design.loop.starts import StartPoints

# pymatgen warns once per noble gas when formatting formulas; the warning says nothing about results.
warnings.filterwarnings("ignore", message="No Pauling electronegativity")

SPREAD_LIMIT_K = 20.0  # "members disagree": max - min over ensemble members above this (K)


@dataclass(frozen=True)
class Size:
    """Run size: candidates and steps per stage. `cpu` is what this 2-core machine finishes in minutes."""

    n_candidates: int
    steps2: int
    steps3: int
    label: str


CPU_SIZE = Size(64, 300, 300, "reduced (CPU): 64 candidates, 300 + 300 steps")
FULL_SIZE = Size(1024, 1000, 1000, "full (GPU): 1,024 candidates, 1,000 + 1,000 steps (the paper's step counts)")


def add_size_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--full", action="store_true", help="the paper's step counts and 1,024 candidates (use a GPU)")
    p.add_argument("--n-candidates", type=int, default=None, help="override the candidate count")
    p.add_argument("--steps", type=int, default=None, help="override the steps per stage")


def size_from_args(args: argparse.Namespace) -> Size:
    s = FULL_SIZE if args.full else CPU_SIZE
    if args.n_candidates or args.steps:
        n = args.n_candidates or s.n_candidates
        k = args.steps or s.steps2
        return Size(n, k, k, f"custom: {n} candidates, {k} + {k} steps")
    return s


def base_config(size: Size, seed: int, device: str) -> DesignConfig:
    """The paper's search settings (S2 search: mixed starts above 20 K, y_t 300 K, N 4..24, lr 0.01)."""
    return DesignConfig(
        n_candidates=size.n_candidates,
        init_mode="mixed",
        steps2=size.steps2,
        steps3=size.steps3,
        lr=0.01,
        target_tc=300.0,
        seed=seed,
        device=device,
        record_every=10**9,
    )


def shared_starts(model: torch.nn.Module, config: DesignConfig, ref: ReferenceData) -> StartPoints:
    """The seeded start compositions, drawn once so that every variant starts from the same ones."""
    return DesignEngine(model, config, reference=ref).start_points()


@torch.no_grad()
def member_spread(model: torch.nn.Module, formulas: list[str]) -> np.ndarray:
    """(B,) max - min of the members' Tc (K) for each formula; zeros for a single model."""
    if not formulas or not hasattr(model, "member_predictions"):
        return np.zeros(len(formulas))
    dev = next(model.parameters()).device
    x = torch.as_tensor(np.stack([to_vector(f) for f in formulas]), dtype=torch.float32, device=dev)
    p = model.member_predictions(x).cpu().numpy()  # (K, B)
    return (p.max(0) - p.min(0)).astype(np.float64)


@dataclass(frozen=True)
class Variant:
    """One run: the candidate table (distinct integer formulas, with `member_spread_k`) and, per
    start b (same order in every variant), the final composition's Tc (K) and E_f (eV/atom)."""

    table: pd.DataFrame
    final_tc_k: np.ndarray  # (B,) ensemble mean
    final_sd_k: np.ndarray  # (B,) ensemble sd
    start_tc_k: np.ndarray  # (B,) ensemble mean at the start
    final_ef_ev_atom: np.ndarray | None  # (B,), None without a formation-energy model
    seconds: float


def run_variant(
    model: torch.nn.Module,
    config: DesignConfig,
    start: StartPoints,
    ref: ReferenceData,
    fe_model: torch.nn.Module | None = None,
) -> Variant:
    """Run the engine from `start` and collect the table plus per-start final values."""
    t0 = time.perf_counter()
    engine = DesignEngine(model, config, fe_model, reference=ref)
    res = engine.run(start=start)
    table = res.candidates.copy()
    table["member_spread_k"] = member_spread(model, list(table["integer_formula"]))
    final_tc, final_sd = engine.predict(res.x_final)
    start_tc, _ = engine.predict(res.x_start)
    ef = None
    if fe_model is not None:
        with torch.no_grad():
            xf = torch.as_tensor(res.x_final, dtype=torch.float32, device=engine.device)
            ef = engine.fe_model(xf).float().cpu().numpy().astype(np.float64)
    return Variant(table, final_tc, final_sd, start_tc, ef, time.perf_counter() - t0)


def summarize(table: pd.DataFrame, top: int = 10) -> dict[str, float]:
    """Statistics over the distinct final integer candidates (K, eV/atom, shares in 0..1)."""
    t = table
    out: dict[str, float] = {
        "n_distinct": float(len(t)),
        "mean_initial_tc_k": float(t["initial_tc_k"].mean()),
        "mean_integer_tc_k": float(t["integer_tc_k"].mean()),
        "mean_tc_gain_k": float((t["integer_tc_k"] - t["initial_tc_k"]).mean()),
        "mean_sigma_k": float(t["integer_tc_std_k"].mean()),
        "share_spread_gt_20k": float((t["member_spread_k"] > SPREAD_LIMIT_K).mean()),
        "top_mean_tc_k": float(t["integer_tc_k"].head(top).mean()),
        "top_mean_sigma_k": float(t["integer_tc_std_k"].head(top).mean()),
    }
    if "nearest_training_distance" in t:
        out["median_nearest_training_distance"] = float(t["nearest_training_distance"].median())
        out["share_new_element_set"] = float(t["new_element_set"].mean())
        out["share_charge_neutral"] = float(t["charge_neutral"].mean())
    if "formation_energy_ev_atom" in t:
        out["share_ef_negative"] = float((t["formation_energy_ev_atom"] < 0).mean())
        out["mean_ef_ev_atom"] = float(t["formation_energy_ev_atom"].mean())
    return out


def size_line(numbers: dict) -> str:
    """'Size: …' of a run's numbers (its JSON): the size, and the starts, seed and time where they were recorded."""
    run = ""
    if "starts" in numbers:
        run = f"; {numbers['starts']} shared starts (seed {numbers['seed']}); total {numbers['total_s']:.0f} s on {numbers['device']}"
    return f"Size: {numbers['size']}{run}."
