"""Uncertainty-aware design: the same starts optimized for the ensemble-mean Tc
and for its lower confidence bound mean - kappa * sd.

    python -m bench.uncertainty_design                 # reduced size, CPU (a few minutes)
    python -m bench.uncertainty_design --full --device cuda

Reported over the distinct final integer candidates of each run: mean Tc gain (integer-formula
Tc minus start Tc, ensemble mean, K), mean ensemble sd sigma (K), share whose members disagree by
more than 20 K (max - min), and the mean Tc and sigma of the 10 top-ranked candidates. Needs an
ensemble checkpoint (K >= 2 members).
"""

from __future__ import annotations

import argparse
import time

from bench.common import add_doc_option, publish
from bench.design_common import add_common_args, md_table, setup
from bench.trust_common import (
    add_size_args,
    base_config,
    run_variant,
    shared_starts,
    size_from_args,
    size_line,
    summarize,
)

ROWS = (
    ("n_distinct", "distinct final candidates", "{:.0f}"),
    ("mean_initial_tc_k", "mean start Tc (K)", "{:.1f}"),
    ("mean_integer_tc_k", "mean final Tc (K)", "{:.1f}"),
    ("mean_tc_gain_k", "mean Tc gain (K)", "{:+.1f}"),
    ("mean_sigma_k", "mean sigma of final candidates (K)", "{:.1f}"),
    ("share_spread_gt_20k", "share with member spread > 20 K", "{:.1%}"),
    ("top_mean_tc_k", "top-10: mean Tc (K)", "{:.1f}"),
    ("top_mean_sigma_k", "top-10: mean sigma (K)", "{:.1f}"),
    ("paired_tc_gain_k", "per start: mean Tc gain of the final composition (K)", "{:+.1f}"),
    ("paired_sigma_k", "per start: mean sigma of the final composition (K)", "{:.1f}"),
    ("median_nearest_training_distance", "median L1 distance to training", "{:.3f}"),
    ("share_new_element_set", "share with a new element set", "{:.1%}"),
)


def report(numbers: dict) -> str:
    """The report of a run from its numbers (`main`'s JSON), as printed and as docs/benchmarks/ holds it. Results
    files written before the run's settings were recorded hold the model, size and results only."""
    results = numbers["results"]
    rows = [[label, *(fmt.format(r[key]) if key in r else "" for r in results.values())] for key, label, fmt in ROWS]
    return f"Model: {numbers['model']}\n{size_line(numbers)}\n\n{md_table(['', *results], rows)}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_size_args(p)
    p.add_argument("--kappas", default="1,2", help="LCB weights to compare with the mean objective")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    add_doc_option(p, "uncertainty_design")
    args = p.parse_args(argv)
    model, ref, desc = setup(args)
    if getattr(model, "n_members", 1) < 2:
        raise SystemExit(f"{args.checkpoint} has one member: the LCB objective needs an ensemble")
    size = size_from_args(args)
    base = base_config(size, args.seed, args.device)
    start = shared_starts(model, base, ref)
    t0 = time.perf_counter()
    variants = {"mean": base} | {
        f"LCB kappa={k:g}": base.replace(objective="lcb", kappa=k) for k in map(float, args.kappas.split(","))
    }
    results: dict[str, dict] = {}
    for name, cfg in variants.items():
        v = run_variant(model, cfg, start, ref)
        results[name] = summarize(v.table) | {
            "paired_tc_gain_k": float((v.final_tc_k - v.start_tc_k).mean()),
            "paired_sigma_k": float(v.final_sd_k.mean()),
        }
        print(f"{name}: {len(v.table)} distinct candidates in {v.seconds:.0f} s", flush=True)
    numbers = {
        "model": desc,
        "size": size.label,
        "starts": len(start),
        "seed": args.seed,
        "device": args.device,
        "total_s": round(time.perf_counter() - t0, 1),
        "results": results,
    }
    publish(numbers, report(numbers), args, [model])
    return results


if __name__ == "__main__":
    main()
