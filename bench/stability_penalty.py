"""Stability guard: the same starts optimized with and without the
formation-energy penalty w * relu(E_f) (w in K per eV/atom, E_f from checkpoints/formation_energy.pt).

    python -m bench.stability_penalty                    # reduced size, CPU (a few minutes)
    python -m bench.stability_penalty --exclude O,F,Cl,Br,I,S,Se,Te,N   # intermetallic search
    python -m bench.stability_penalty --weights 0,100,1000 --full --device cuda

Reported over the distinct final integer candidates: share with predicted E_f < 0 (stable against
the elements), mean E_f (eV/atom), mean final Tc, and the Tc the penalty costs (mean final Tc
without the penalty minus with it, K). The surrogate's own test MAE is ~0.1 eV/atom, so E_f
within ~0.1 eV/atom of 0 is not resolved.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

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
from gdmcd_core.model.formation_energy import FORMATION_ENERGY_CHECKPOINT, load_formation_energy_model

HEADERS = [
    "penalty weight (K per eV/atom)",
    "distinct",
    "share E_f < 0",
    "mean E_f (eV/atom)",
    "mean final Tc (K)",
    "Tc cost, distinct means (K)",
    "Tc cost, paired per start (K)",
    "per start: share E_f < 0",
    "share charge-neutral",
]
FOOTNOTE = (
    "Distinct: over the distinct final integer formulas. Paired: the final (near-integer) composition of each start, "
    "Tc without minus with the penalty, averaged over starts."
)


def report(numbers: dict) -> str:
    """The report of a run from its numbers (`main`'s JSON), as printed and as docs/benchmarks/ holds it. Results
    files written before the run's settings were recorded hold the model, size and results only."""
    lines = [
        f"Model: {numbers['model']}"
        + (f"; formation energy: {numbers['formation_energy']}" if "formation_energy" in numbers else "")
    ]
    if "exclude" in numbers:
        lines.append(f"Excluded elements: {', '.join(numbers['exclude']) or 'none'}.")
    lines.append(size_line(numbers) + "\n")
    results = numbers["results"]
    ref_tc = next(iter(results.values()))["mean_integer_tc_k"]
    rows = [
        [
            name.removeprefix("w="),
            f"{r['n_distinct']:.0f}",
            f"{r['share_ef_negative']:.1%}",
            f"{r['mean_ef_ev_atom']:+.3f}",
            f"{r['mean_integer_tc_k']:.1f}",
            f"{ref_tc - r['mean_integer_tc_k']:+.1f}",
            f"{r['paired_tc_cost_k']:+.1f}",
            f"{r['per_start_share_ef_negative']:.1%}",
            f"{r['share_charge_neutral']:.1%}",
        ]
        for name, r in results.items()
    ]
    return "\n".join([*lines, md_table(HEADERS, rows), "", FOOTNOTE])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_size_args(p)
    p.add_argument("--weights", default="0,100,1000", help="penalty weights w, K per eV/atom (0 = no penalty)")
    p.add_argument("--fe-checkpoint", default=str(FORMATION_ENERGY_CHECKPOINT))
    p.add_argument(
        "--exclude",
        default="",
        help="elements the search may not use, e.g. O,F,Cl,Br,I,S,Se,Te,N for an intermetallic search",
    )
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    add_doc_option(p, "stability_penalty")
    args = p.parse_args(argv)
    model, ref, desc = setup(args)
    fe = load_formation_energy_model(args.fe_checkpoint, device=next(model.parameters()).device)
    if fe is None:
        raise SystemExit(
            f"no formation-energy model at {args.fe_checkpoint}: train it with gdmcd train --task formation_energy --out {args.fe_checkpoint}"
        )
    size = size_from_args(args)
    base = base_config(size, args.seed, args.device)
    if args.exclude:
        base = base.replace(exclude=tuple(e.strip() for e in args.exclude.split(",") if e.strip()))
    start = shared_starts(model, base, ref)
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    base_tc = None
    for w in map(float, args.weights.split(",")):
        v = run_variant(model, base.replace(formation_energy_weight=w), start, ref, fe_model=fe)
        r = summarize(v.table)
        base_tc = v.final_tc_k if base_tc is None else base_tc
        r["paired_tc_cost_k"] = float(np.mean(base_tc - v.final_tc_k))  # same start, first weight minus this one
        r["per_start_share_ef_negative"] = float(np.mean(v.final_ef_ev_atom < 0))
        results[f"w={w:g}"] = r
        print(f"w={w:g}: {len(v.table)} distinct candidates in {v.seconds:.0f} s", flush=True)
    numbers = {
        "model": desc,
        "formation_energy": f"{args.fe_checkpoint} (test MAE {fe.card['metrics']['test_mae_ev_atom']:.3f} eV/atom)",
        "exclude": list(base.exclude),
        "size": size.label,
        "starts": len(start),
        "seed": args.seed,
        "device": args.device,
        "total_s": round(time.perf_counter() - t0, 1),
        "results": results,
    }
    publish(numbers, report(numbers), args, [model, args.fe_checkpoint])
    return results


if __name__ == "__main__":
    main()
