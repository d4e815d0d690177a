"""σ before and after fusing the ensemble, and what the rotate mode costs the design outcome.

    python -m bench.ensemble_modes            # default checkpoint, random-split test rows, B = 64 design runs
    python -m bench.ensemble_modes --json

Part 1: mean Tc and calibrated σ of the test rows of the checkpoint's own split, computed with the members
called one by one (TcEnsemble.predict) and with the fused network (model/fused.py): largest difference,
±1σ/±2σ coverage (overall and far from training) and the time each took.
Part 2: the same design run (same starts and settings) with ensemble_mode "fused" and "rotate" (one member
per step, all members every `full_every` steps): wall time, and the top-10 integer formulas' Tc, σ and
Tc − σ, all scored afterwards by the full ensemble.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.common import add_doc_option, load_calibrated, printed, write_doc
from bench.design_common import md_table
from gdmcd_core.data.reference import load_reference
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT
from gdmcd_core.model.fused import fuse_members
from gdmcd_core.training.evaluate import part_predictions, uncertainty_metrics


def fused_predict(ens, x: np.ndarray, distance: np.ndarray | None, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    fused = fuse_members(list(ens.members))
    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            d = None if distance is None else torch.as_tensor(distance[i : i + batch])
            m, s = ens.stats_from_raw(fused(torch.as_tensor(x[i : i + batch], dtype=torch.float32)), d)
            means.append(m.numpy())
            stds.append(s.numpy())
    return np.concatenate(means), np.concatenate(stds)


def coverage_rows(ens, ds) -> list[dict]:
    t0 = time.perf_counter()
    pr = part_predictions(ens, ds)
    t_loop = time.perf_counter() - t0
    idx, dist = pr["idx"], pr["distance"]
    sc = ds.is_supercon[idx]
    y = ds.tc_k[idx]
    t0 = time.perf_counter()
    mean_f, std_f = fused_predict(ens, ds.x[idx], None)
    if ens.has_uncertainty and ens.distance_scale_k > 0 and sc.any():
        std_f[sc] = fused_predict(ens, ds.x[idx[sc]], dist[sc])[1]
    t_fused = time.perf_counter() - t0
    rows = []
    for name, mean, std, t in (("one by one", pr["mean"], pr["std"], t_loop), ("fused", mean_f, std_f, t_fused)):
        u = uncertainty_metrics(np.abs(mean[sc] - y[sc]), std[sc], dist[sc])
        rows.append({"evaluation": name, "seconds": t, **u})
    rows[1]["max_abs_diff_mean_k"] = float(np.abs(mean_f - pr["mean"]).max())
    rows[1]["max_abs_diff_sigma_k"] = float(np.abs(std_f - pr["std"]).max())
    return rows


def design_rows(ens, b: int, steps: int, seed: int) -> list[dict]:
    ref = load_reference()
    rows = []
    for mode in ("fused", "rotate"):
        cfg = DesignConfig(
            n_candidates=b, steps2=steps, steps3=steps, seed=seed, ensemble_mode=mode, hull_columns=False
        )
        eng = DesignEngine(ens, cfg, reference=ref)
        start = eng.start_points()
        st = eng.optimize(start)
        tc, sd = eng.predict(st.integer.fractions)
        top = np.argsort(-(tc - sd))[:10]
        rows.append(
            {
                "mode": mode,
                "seconds": st.elapsed_s,
                "top10_tc_k": float(tc[top].mean()),
                "top10_sigma_k": float(sd[top].mean()),
                "top10_lcb_k": float((tc - sd)[top].mean()),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-candidates", type=int, default=64)
    p.add_argument("--steps", type=int, default=100, help="steps per stage of the design runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    add_doc_option(p, "ensemble_modes")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ens, ds, note = load_calibrated(args.checkpoint)
    cov = coverage_rows(ens, ds)
    des = design_rows(ens, args.n_candidates, args.steps, args.seed)
    if args.json:
        print(json.dumps({"coverage": cov, "design": des, "calibration": note}))
        return
    with printed() as tables:
        print_tables(args, ens.n_members, note, cov, des)
    if args.doc:
        write_doc(args.doc, tables.getvalue(), checkpoints=[ens])


def print_tables(args: argparse.Namespace, members: int, note: str, cov: list[dict], des: list[dict]) -> None:
    """The two tables of a run: σ one by one vs fused, and the design run fused vs rotate."""
    print(f"Checkpoint {args.checkpoint} ({members} members; {note}); {args.threads} threads.\n")
    print(
        md_table(
            [
                "evaluation",
                "±1σ coverage",
                "±2σ coverage",
                "far ±1σ",
                "far ±2σ",
                "max \\|Δ mean\\| (K)",
                "max \\|Δ σ\\| (K)",
                "time (s)",
            ],
            [
                [
                    r["evaluation"],
                    r["coverage_1sigma"],
                    r["coverage_2sigma"],
                    r["far_coverage_1sigma"],
                    r["far_coverage_2sigma"],
                    f"{r.get('max_abs_diff_mean_k', 0):.1e}",
                    f"{r.get('max_abs_diff_sigma_k', 0):.1e}",
                    r["seconds"],
                ]
                for r in cov
            ],
        )
    )
    print(
        f"\nDesign: {args.n_candidates} candidates × {args.steps}+{args.steps} steps, seed {args.seed}; "
        "integer formulas scored by the full ensemble.\n"
    )
    print(
        md_table(
            ["ensemble_mode", "loop time (s)", "top-10 Tc (K)", "top-10 σ (K)", "top-10 Tc − σ (K)"],
            [[r["mode"], r["seconds"], r["top10_tc_k"], r["top10_sigma_k"], r["top10_lcb_k"]] for r in des],
        )
    )


if __name__ == "__main__":
    main()
