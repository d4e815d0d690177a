"""How the time-split σ is sized, chosen on a transfer that lies wholly before 2010.

The time-split ensemble's σ is fitted on an inner split (training/time_calibration.py): a model trained on
rows first reported before 2005, its errors on the superconductors of 2005-2009. Whether such a fit carries
over to a later period is checked one step earlier still: a calibration fitted on 2000-2004 by a model
trained before 2000 is applied to the model trained before 2005 and scored on its 2005-2009 superconductors.
Each coverage rule (calibration.coverage_scale: least squares over ±1σ and ±2σ, or either alone), with and
without the neighbour term (g · |Tc - Tc of the nearest training superconductor|), is scored there; the
pair whose transferred coverage lies nearest the targets (±1σ in 0.63-0.73, ±2σ at least 0.90, overall and
from L1 0.2 on) is the one `gdmcd evaluate --calibrate-from` uses (TIME_COVERAGE_RULE, TIME_NEIGHBOR_TERM). No row
from 2010 on is predicted here.

    gdmcd train --split time --time-split-year 2000 --members 3 --epochs 8 --patience 8 --hydride-replicas 30 \\
        --out runs/inner/tc_timesplit_inner2000.pt      # and the same with 2005
    python -m bench.time_calibration --early runs/inner/tc_timesplit_inner2000.pt \\
        --late runs/inner/tc_timesplit_inner2005.pt --doc
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import add_doc_option, fmt, publish
from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.training.calibration import COVERAGE_RULES, raw_mean_spread, training_neighbors
from gdmcd_core.training.evaluate import FAR_L1, dataset_for
from gdmcd_core.training.time_calibration import calibrate_inner_time, inner_rows

COV1_RANGE, COV2_MIN = (0.63, 0.73), 0.90


def miss(cov1: float, cov2: float) -> float:
    """How far a (±1σ, ±2σ) coverage pair lies outside the target box (0 inside)."""
    return max(0.0, COV1_RANGE[0] - cov1, cov1 - COV1_RANGE[1]) + max(0.0, COV2_MIN - cov2)


def transfer(early: str, late: str, rules: tuple[str, ...]) -> list[dict]:
    """One row per rule: fitted on the early model's window, scored on the late model's window."""
    e_ens, l_ens = load_checkpoint(early), load_checkpoint(late)
    e_ds, l_ds = dataset_for(e_ens), dataset_for(l_ens)
    year = l_ds.config.time_split_year
    rows = inner_rows(l_ds, 2010)
    mean, spread = raw_mean_spread(l_ens, l_ds.x[rows])
    distance, tc_nn = training_neighbors(l_ds, rows)
    err = np.abs(l_ds.tc_k[rows] - mean)
    gap = np.abs(mean - tc_nn)
    far = distance >= FAR_L1
    out = []
    for rule, neighbor in ((rule, neighbor) for neighbor in (False, True) for rule in rules):
        cal = calibrate_inner_time(e_ens, e_ds, year, rule, neighbor)
        z = err / cal.sigma(spread, distance, gap if neighbor else None)
        r = {
            "rule": rule,
            "neighbor_term": neighbor,
            "fitted_on": f"{e_ds.config.time_split_year}-{year - 1} (n {cal.n})",
            "scored_on": f"{year}-2009 (n {len(rows)})",
            "cov1": float(np.mean(z <= 1)),
            "cov2": float(np.mean(z <= 2)),
            "far_cov1": float(np.mean(z[far] <= 1)),
            "far_cov2": float(np.mean(z[far] <= 2)),
            "n_far": int(far.sum()),
        }
        r["miss"] = miss(r["cov1"], r["cov2"]) + miss(r["far_cov1"], r["far_cov2"])
        out.append(r)
    return out


def markdown(rows: list[dict], chosen: str) -> str:
    lines = [
        "Coverage of σ fitted on one window and scored on the next (both before 2010); targets: ±1σ 0.63–0.73, "
        f"±2σ ≥ 0.90, overall and far (L1 ≥ {FAR_L1:g}).",
        "",
        "| rule | neighbour term | fitted on | scored on | ±1σ | ±2σ | far ±1σ | far ±2σ | far rows | miss |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rule']} | {'yes' if r['neighbor_term'] else 'no'} | {r['fitted_on']} | {r['scored_on']} | {fmt(r['cov1'])} | {fmt(r['cov2'])} | "
            f"{fmt(r['far_cov1'])} | {fmt(r['far_cov2'])} | {r['n_far']} | {fmt(r['miss'])} |"
        )
    return "\n".join(lines) + f"\n\nChosen (smallest miss): **{chosen}**."


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--early", required=True, help="time-split checkpoint trained before the earlier year (2000)")
    p.add_argument("--late", required=True, help="time-split checkpoint trained before the later year (2005)")
    p.add_argument("--json", default="", help="also write the rows to this JSON file")
    add_doc_option(p, "time_calibration")
    a = p.parse_args(argv)
    rows = transfer(a.early, a.late, COVERAGE_RULES)
    best = min(rows, key=lambda r: r["miss"])
    chosen = f"{best['rule']}, {'with' if best['neighbor_term'] else 'without'} the neighbour term"
    numbers = {"rows": rows, "chosen_rule": best["rule"], "chosen_neighbor_term": best["neighbor_term"]}
    publish(numbers, markdown(rows, chosen), a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
