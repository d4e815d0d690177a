"""How the time-split σ is formed and sized, chosen on transfers that lie wholly before 2010.

The time-split ensemble's σ is fitted on an inner split (training/time_calibration.py): a model trained on
rows first reported before 2005, its errors on the superconductors of 2005-2009. Whether such a fit carries
over to a later period is checked a step earlier, on every pair of consecutive inner models given: a
calibration fitted on 1995-1999 by a model trained before 1995 is applied to the model trained before 2000 and
scored on its 2000-2004 superconductors; one fitted on 2000-2004 by that model is applied to the model trained
before 2005 and scored on 2005-2009. Each combination of a coverage rule (calibration.coverage_scale: least
squares over ±1σ and ±2σ, or either alone), a third σ term (none, the neighbour term g · |Tc - Tc_nn|, or the
Tc term h · Tc) and per-band factors (on or off) is scored on every transfer; the combination whose transferred
coverage lies nearest the targets (±1σ in 0.63-0.73, ±2σ at least 0.90, overall and from L1 0.2 on), on
average over the transfers, is the one `gdmcd evaluate --calibrate-from` uses (TIME_COVERAGE_RULE,
TIME_SIGMA_TERM, TIME_BANDS). No row from 2010 on is predicted here.

    gdmcd train --split time --time-split-year 1995 --members 3 --epochs 8 --patience 8 --lr 0.01 \\
        --lr-min 0.0001 --negative-margin 0 --hydride-replicas 30 --out runs/inner/tc_timesplit_inner1995.pt
    # and the same with 2000 and 2005
    python -m bench.time_calibration --models runs/inner/tc_timesplit_inner1995.pt \\
        runs/inner/tc_timesplit_inner2000.pt runs/inner/tc_timesplit_inner2005.pt --doc
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import add_doc_option, fmt, publish
from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.training.calibration import COVERAGE_RULES, raw_mean_spread, training_neighbors
from gdmcd_core.training.evaluate import FAR_L1, dataset_for
from gdmcd_core.training.time_calibration import SIGMA_TERMS, calibrate_inner_time, inner_rows

COV1_RANGE, COV2_MIN = (0.63, 0.73), 0.90


def miss(cov1: float, cov2: float) -> float:
    """How far a (±1σ, ±2σ) coverage pair lies outside the target box (0 inside)."""
    return max(0.0, COV1_RANGE[0] - cov1, cov1 - COV1_RANGE[1]) + max(0.0, COV2_MIN - cov2)


def combinations() -> list[tuple[str, str, bool]]:
    """(rule, term, bands) in the order a tie is broken: the fewest fitted factors first."""
    return [(rule, term, bands) for bands in (False, True) for term in SIGMA_TERMS for rule in COVERAGE_RULES]


def transfer(early: str, late: str) -> list[dict]:
    """One row per combination: fitted on the early model's window, scored on the late model's window."""
    e_ens, l_ens = load_checkpoint(early), load_checkpoint(late)
    e_ds, l_ds = dataset_for(e_ens), dataset_for(l_ens)
    year = l_ds.config.time_split_year
    end = year + (year - e_ds.config.time_split_year)  # the late window is as long as the early one
    rows = inner_rows(l_ds, end)
    mean, spread = raw_mean_spread(l_ens, l_ds.x[rows])
    distance, tc_nn = training_neighbors(l_ds, rows)
    err = np.abs(l_ds.tc_k[rows] - mean)
    inputs = {"none": (None, None), "neighbor": (np.abs(mean - tc_nn), None), "tc": (None, mean)}
    far = distance >= FAR_L1
    out = []
    for rule, term, bands in combinations():
        cal = calibrate_inner_time(e_ens, e_ds, year, rule, term, bands)
        z = err / cal.sigma(spread, distance, *inputs[term])
        r = {
            "rule": rule,
            "term": term,
            "bands": bands,
            "fitted_on": f"{e_ds.config.time_split_year}-{year - 1} (n {cal.n})",
            "scored_on": f"{year}-{end - 1} (n {len(rows)})",
            "cov1": float(np.mean(z <= 1)),
            "cov2": float(np.mean(z <= 2)),
            "far_cov1": float(np.mean(z[far] <= 1)),
            "far_cov2": float(np.mean(z[far] <= 2)),
            "n_far": int(far.sum()),
        }
        r["miss"] = miss(r["cov1"], r["cov2"]) + miss(r["far_cov1"], r["far_cov2"])
        out.append(r)
    return out


def summary(rows: list[dict]) -> list[dict]:
    """Mean miss per combination over the transfers, in `combinations` order."""
    out = []
    for rule, term, bands in combinations():
        mine = [r["miss"] for r in rows if (r["rule"], r["term"], r["bands"]) == (rule, term, bands)]
        out.append({"rule": rule, "term": term, "bands": bands, "mean_miss": float(np.mean(mine))})
    return out


def markdown(rows: list[dict], means: list[dict], chosen: str) -> str:
    lines = [
        "Coverage of σ fitted on one window and scored on the next (all before 2010); targets: ±1σ 0.63–0.73, "
        f"±2σ ≥ 0.90, overall and far (L1 ≥ {FAR_L1:g}). Terms: none (s · spread, b · d), neighbour (+ g · |Tc − "
        "Tc_nn|), Tc (+ h · Tc, the predicted Tc); bands: a factor per L1 distance band.",
        "",
        "| rule | term | bands | fitted on | scored on | ±1σ | ±2σ | far ±1σ | far ±2σ | far rows | miss |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rule']} | {r['term']} | {'yes' if r['bands'] else 'no'} | {r['fitted_on']} | {r['scored_on']} | "
            f"{fmt(r['cov1'])} | {fmt(r['cov2'])} | {fmt(r['far_cov1'])} | {fmt(r['far_cov2'])} | {r['n_far']} | "
            f"{fmt(r['miss'])} |"
        )
    lines += ["", "Mean miss over the transfers:", "", "| rule | term | bands | mean miss |", "|---|---|---|---:|"]
    lines += [f"| {m['rule']} | {m['term']} | {'yes' if m['bands'] else 'no'} | {fmt(m['mean_miss'])} |" for m in means]
    return "\n".join(lines) + f"\n\nChosen (smallest mean miss, the fewest factors on a tie): **{chosen}**."


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models", nargs="+", required=True, help="inner time-split checkpoints, earliest split year first (>= 2)"
    )
    p.add_argument("--json", default="", help="also write the rows to this JSON file")
    add_doc_option(p, "time_calibration")
    a = p.parse_args(argv)
    if len(a.models) < 2:
        p.error("--models: give at least two checkpoints (one transfer)")
    rows = [r for early, late in zip(a.models[:-1], a.models[1:], strict=True) for r in transfer(early, late)]
    means = summary(rows)
    best = min(means, key=lambda m: m["mean_miss"])  # min keeps the first of equals: combinations' order
    chosen = f"rule {best['rule']}, term {best['term']}, bands {'on' if best['bands'] else 'off'}"
    numbers = {"rows": rows, "mean_miss": means, "chosen": best}
    publish(numbers, markdown(rows, means, chosen), a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
