"""Discovery benchmark: do the search methods re-find superconductors reported after the
model's training data?

    python -m bench.discovery                  # B = 256, 120 + 120 steps + 60 refinement: ~5 min on 2 CPU cores
    python -m bench.discovery --json           # the tables, then ONE JSON line with the numbers
    python -m bench.discovery --quick          # B = 32, 10 + 10 steps: a smoke run (numbers mean little)
    python -m bench.discovery --n-candidates 1024 --budget 1024000 --device cuda

Model: checkpoints/tc_timesplit.pt, trained only on SuperCon compositions first reported before 2010 (and
COD non-superconductors); any number of ensemble members. Its card's σ calibration is fitted on the
post-2010 rows (model card); as those hold this benchmark's targets, σ is refitted here on the pre-2010
validation rows, so nothing the methods rank by has seen a target. Every method (`DesignConfig.method`: gradient,
evolution, random, database) runs from the same B start compositions, drawn from the time split's
training SuperCon entries (init mode "mixed": entries above 20 K and interpolations of two), with the
same budget of model evaluations, B x (steps2 + steps3 + refine_steps) compositions (the gradient spends
B x refine_steps of it on its integer refinement, design/loop/refine.py; `--refine-steps 0` shows the gradient
without it). Reported per method: model
evaluations (forward rows, rows with a backward pass, forward-pass equivalents = forward + 2 x backward,
counted with a hook on the model while the search runs) and wall time of the whole run.

hits@K (K = 50, 200, 1000): ranked distinct integer candidates that match a superconductor first reported
from 2010 on and absent from the pre-2010 data (same reduced formula, or L1 <= 0.05 in fractions), for
any Tc and for a matched Tc >= 20 K (bench/discovery_metrics.py). A run yields at most B distinct
candidates, so hits@K for K > B counts the whole list. Random-draw baselines: the expected hits of K
compositions drawn uniformly without replacement (min(K, P) * h / P, for a pool of P holding h hits)
(a) from the pooled distinct candidates of all methods (does a method's ranking and pool beat picking
among what the methods propose?) and (b) from the database method's whole screening pool (known COD +
JARVIS compounds passing the constraints, not training superconductors).

Credibility of each method's top 10 and top 20: mean Tc, sigma, Tc - sigma (K), % charge-neutral (SMACT
rule of design/evidence/validity.py), cuprates (Cu and O) with a plausible formal Cu valence (chem/valence.py),
% with a noble gas or radioactive element, mean element count; and the same for the 10 best-ranked
candidates that pass every chemistry check.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.common import add_doc_option, fmt, load_calibrated, write_doc, write_results
from bench.design_common import md_table
from bench.discovery_metrics import (
    HIT_L1,
    KS,
    count_passes,
    credibility,
    expected_random_hits,
    formula_vectors,
    hit_flags,
    time_split_targets,
)
from gdmcd_core.data.dataset import SPLIT_NAMES, TEST, VAL
from gdmcd_core.data.reference import reference_from_dataset
from gdmcd_core.design import DesignConfig, DesignEngine
from gdmcd_core.design.config.config import SEARCH_METHODS
from gdmcd_core.design.search.methods import composition_keys, database_pool, load_known_compositions
from gdmcd_core.training.calibration import Calibration, calibrate

warnings.filterwarnings("ignore", message="No Pauling electronegativity")
DEFAULT_CHECKPOINT = "checkpoints/tc_timesplit.pt"
DEFAULT_B, DEFAULT_STEPS = 256, (120, 120)
QUICK_B, QUICK_STEPS = 32, (10, 10)
TOPS = (10, 20)
PASSING_TITLE = (
    "\nThe top 10 among candidates that pass every chemistry check (charge-neutral, plausible Cu valence for "
    "cuprates, no noble gas or radioactive element, <= 6 elements):"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--checkpoint", default=DEFAULT_CHECKPOINT, help=f"time-split Tc model (default {DEFAULT_CHECKPOINT})"
    )
    p.add_argument("--methods", default=",".join(SEARCH_METHODS), help="comma-separated subset of the methods")
    p.add_argument("--n-candidates", type=int, default=None, help=f"B (default {DEFAULT_B}; --quick {QUICK_B})")
    p.add_argument("--steps2", type=int, default=None, help=f"stage-2 steps (default {DEFAULT_STEPS[0]})")
    p.add_argument("--steps3", type=int, default=None, help=f"stage-3 steps (default {DEFAULT_STEPS[1]})")
    p.add_argument(
        "--budget", type=int, default=None, help="model evaluations per method; sets steps2 = steps3 = budget / 2B"
    )
    p.add_argument(
        "--quick", action="store_true", help=f"smoke run: B = {QUICK_B}, {QUICK_STEPS[0]} + {QUICK_STEPS[1]} steps"
    )
    p.add_argument("--init-mode", default="mixed", help="start compositions (default mixed)")
    p.add_argument("--objective", default=None, choices=("mean", "lcb"), help="default: DesignConfig's (lcb)")
    p.add_argument("--kappa", type=float, default=None, help="default: DesignConfig's")
    p.add_argument(
        "--refine-steps", type=int, default=None, help="the gradient's integer refinement (default: DesignConfig's)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true", help="end with one JSON line holding the numbers")
    p.add_argument("--out", default=None, help="also write the JSON numbers to this file")
    add_doc_option(p, "discovery")
    return p.parse_args(argv)


def design_config(args: argparse.Namespace) -> DesignConfig:
    b = args.n_candidates or (QUICK_B if args.quick else DEFAULT_B)
    s2, s3 = QUICK_STEPS if args.quick else DEFAULT_STEPS
    if args.budget:
        s2 = s3 = max(1, args.budget // (2 * b))
    return DesignConfig(
        n_candidates=b,
        init_mode=args.init_mode,
        steps2=args.steps2 if args.steps2 is not None else s2,
        steps3=args.steps3 if args.steps3 is not None else s3,
        **{
            k: v
            for k, v in (("objective", args.objective), ("kappa", args.kappa), ("refine_steps", args.refine_steps))
            if v is not None
        },
        seed=args.seed,
        device=args.device,
        record_every=10**9,
    )


def run_method(model, cfg: DesignConfig, ref, start) -> dict:
    """One run; its table, pass counts (search only) and wall time."""
    engine = DesignEngine(model, cfg, reference=ref)
    t0 = time.perf_counter()
    with count_passes(engine.scorer.fused) as counter:  # the one network every method calls

        def on_progress(p) -> None:
            if p.done:
                counter.freeze()

        res = engine.run(start=start, callback=on_progress)
    return {"table": res.candidates, "passes": counter.counts(), "wall_s": time.perf_counter() - t0}


def evaluate(runs: dict[str, dict], targets, pool_x: np.ndarray | None) -> dict:
    """hits@K per method and the random-draw baselines."""
    out: dict = {"methods": {}, "random_draw": {}}
    union: dict[bytes, np.ndarray] = {}
    for name, r in runs.items():
        x = formula_vectors(list(r["table"].sort_values("rank")["integer_formula"]))
        flags = hit_flags(x, targets)
        out["methods"][name] = {"n_candidates": len(x), "hits": flags.at(), "hits_high": flags.at(high=True)}
        for k, row in zip(composition_keys(x), x, strict=True):
            union.setdefault(k, row)
    ux = np.stack(list(union.values())) if union else np.zeros((0, 118))
    uf = hit_flags(ux, targets)
    out["random_draw"]["pooled candidates"] = _draw(uf.hit, uf.hit_high)
    if pool_x is not None:
        pf = hit_flags(pool_x, targets)
        out["random_draw"]["database pool"] = _draw(pf.hit, pf.hit_high)
    return out


def _draw(hit: np.ndarray, hit_high: np.ndarray) -> dict:
    n = len(hit)
    return {
        "pool_size": n,
        "pool_hits": int(hit.sum()),
        "pool_hits_high": int(hit_high.sum()),
        "hits": expected_random_hits(int(hit.sum()), n),
        "hits_high": expected_random_hits(int(hit_high.sum()), n),
    }


CREDIBILITY_KEYS = (
    "tc_k",
    "sigma_k",
    "tc_minus_sigma_k",
    "pct_charge_neutral",
    "cuprates",
    "pct_cuprates_cu_valence_plausible",
    "pct_noble_or_radioactive",
    "mean_elements",
)
CREDIBILITY_HEAD = [
    "method",
    "Tc K",
    "σ K",
    "Tc−σ K",
    "% neutral",
    "cuprates",
    "% Cu valence ok",
    "% noble/radioact.",
    "elements",
]


def report(numbers: dict) -> str:
    """The report of a run from its numbers (`main`'s JSON), as printed and as docs/benchmarks/ holds it."""
    return "\n".join(
        [_settings_text(numbers), _passes_table(numbers), "", _hits_table(numbers), *_credibility(numbers)]
    )


def _settings_text(numbers: dict) -> str:
    c = numbers["config"]
    refine = c.get("refine_steps", numbers["budget_evaluations"] // c["n_candidates"] - c["steps2"] - c["steps3"])
    return (
        f"Model: {numbers['model']}\n"
        f"Starts: {c['n_candidates']} ({c['init_mode']}, seed {c['seed']}); steps {c['steps2']} + {c['steps3']} "
        f"(+ {refine} evaluations per candidate: the gradient's integer refinement); "
        f"budget {numbers['budget_evaluations']:,} model evaluations per method; objective {c['objective']}; "
        f"{numbers['n_targets']} targets (SuperCon first reported >= 2010, absent before); "
        f"hit = same reduced formula or L1 <= {HIT_L1}.\n"
    )


def _passes_table(numbers: dict) -> str:
    rows = [
        [
            m,
            f"{p['forward_rows']:,}",
            f"{p['backward_rows']:,}",
            f"{p['forward_equivalents']:,}",
            f"{numbers['wall_s'][m]:.0f}",
            numbers["n_candidates"][m],
        ]
        for m, p in numbers["passes"].items()
    ]
    return md_table(["method", "forward rows", "backward rows", "forward-pass equiv.", "wall s", "distinct"], rows)


def _hits_table(numbers: dict) -> str:
    head = ["method"] + [f"hits@{k}" for k in KS] + [f"hits@{k} (Tc>=20 K)" for k in KS]
    rows = [
        [m] + [numbers[f"hits_at_{k}"][m] for k in KS] + [numbers[f"hits_tc20_at_{k}"][m] for k in KS]
        for m in numbers["passes"]
    ]
    for name, d in numbers["random_draw"].items():
        label = f"random draw: {name} (P={d['pool_size']:,}, h={d['pool_hits']}, h20={d['pool_hits_high']})"
        rows.append([label] + [f"{v:.2f}" for v in d["hits"].values()] + [f"{v:.2f}" for v in d["hits_high"].values()])
    return md_table(head, rows)


def _credibility(numbers: dict) -> list[str]:
    out = []
    for top in (*map(str, TOPS), "10_passing"):
        out.append(f"\nCredibility of the top {top}:" if top != "10_passing" else PASSING_TITLE)
        rows = [
            [m] + [c[top][k] if k == "cuprates" else fmt(c[top][k], ".1f") for k in CREDIBILITY_KEYS]
            for m, c in numbers["credibility"].items()
        ]
        out.append(md_table(CREDIBILITY_HEAD, rows))
    return out


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return None if math.isnan(float(o)) else float(o)
    return o


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = sorted(set(methods) - set(SEARCH_METHODS))
    if bad:
        raise SystemExit(f"unknown methods {bad}; choose from {SEARCH_METHODS}")
    t0 = time.perf_counter()
    model, ds, note = load_calibrated(args.checkpoint, args.data_dir)
    if Calibration.from_card(model.card).part == SPLIT_NAMES[TEST]:  # fitted on the targets' years: refit
        cal = calibrate(model, ds, VAL)  # σ may learn nothing from post-2010 rows here: pre-2010 validation rows only
        cal.apply_to(model)
        note = f"σ recalibrated here on {cal.fitted_on} (the card's calibration saw the post-2010 targets)"
    model = model.to(args.device)
    targets = time_split_targets(ds)
    ref = reference_from_dataset(ds)
    cfg = design_config(args)
    base = DesignEngine(model, cfg, reference=ref)
    start = base.start_points()
    pool_x = None
    if "database" in methods:
        pool_x, _, _ = database_pool(base, load_known_compositions(args.data_dir))
    desc = f"{args.checkpoint} ({model.n_members} member(s), sha256 {model.sha256[:12]}; {note})"
    print(
        f"setup {time.perf_counter() - t0:.0f} s: {len(ref.sc_x)} training SuperCon, {len(targets)} targets", flush=True
    )
    runs = {}
    for m in methods:
        runs[m] = run_method(model, cfg.replace(method=m), ref, start)
        print(f"{m}: {runs[m]['wall_s']:.0f} s, {runs[m]['passes']['forward_rows']:,} forward rows", flush=True)
    ev = evaluate(runs, targets, pool_x)
    cred = {
        m: {**{top: credibility(r["table"], top) for top in TOPS}, "10_passing": credibility(r["table"], 10, True)}
        for m, r in runs.items()
    }
    numbers = {
        **{f"hits_at_{k}": {m: v["hits"][k] for m, v in ev["methods"].items()} for k in KS},
        **{f"hits_tc20_at_{k}": {m: v["hits_high"][k] for m, v in ev["methods"].items()} for k in KS},
        "random_draw": ev["random_draw"],
        "n_candidates": {m: v["n_candidates"] for m, v in ev["methods"].items()},
        "passes": {m: r["passes"] for m, r in runs.items()},
        "wall_s": {m: round(r["wall_s"], 1) for m, r in runs.items()},
        "credibility": cred,
        "budget_evaluations": cfg.n_candidates * cfg.budget_steps,
        "config": {
            "n_candidates": cfg.n_candidates,
            "steps2": cfg.steps2,
            "steps3": cfg.steps3,
            "seed": cfg.seed,
            "init_mode": cfg.init_mode,
            "objective": cfg.objective,
            "quick": args.quick,
            "refine_steps": cfg.refine_steps,
        },
        "n_targets": len(targets),
        "model": desc,
        "total_s": round(time.perf_counter() - t0, 1),
    }
    numbers = _jsonable(numbers)
    print("\n" + report(numbers))
    if args.out:
        Path(args.out).write_text(json.dumps(numbers, indent=2))
    if args.json:
        print(json.dumps(numbers))
    if args.doc:
        write_results(args.doc, numbers, [model])
        write_doc(args.doc, report(numbers), checkpoints=[model])
    return numbers


if __name__ == "__main__":
    main()
