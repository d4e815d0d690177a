"""Design-loop throughput against the bare model, for a single member and for the ensemble.

    python -m bench.design_throughput                        # B = 64, 256, 1,024; 60 steps; median of 3
    python -m bench.design_throughput --batches 64 --steps 40 --repeats 5
    python -m bench.design_throughput --json --batches 256   # one JSON line per B
    python -m bench.design_throughput --device cuda --batches 1024,8192

For each B and each way of running the model, candidate-steps/s of `DesignEngine.optimize` (half the steps
in stage 2, half in stage 3, projection, integer loss over N = 4..24, trajectory recording, integer-formula
checks, the final integerization) and of the bare forward + backward to the input of the network the loop
uses, on the same batch, in the same process. Each figure is the median of `--repeats` timed runs after a
warm-up run, so that the numbers repeat to within a few per cent on a quiet machine.

Rows:
- member: one member of the checkpoint (BatchNorm folded), the cheapest loop;
- ensemble, fused: all K members at every step in one call (model/fused.py), the default;
- ensemble, rotate: one member per step, all K every 4th step (DesignConfig.ensemble_mode "rotate");
- ensemble, one by one: the K members called in turn (the loop before fusion), bare only, for reference.
"loop / bare" is the loop's share of the model's own speed (target >= 0.90); "cost vs member" is the
member loop's rate over the row's loop rate (target <= 2 for an ensemble step with sd).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from bench.design_common import add_common_args, md_table, setup
from gdmcd_core.design.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.fused import fuse_members


def bare_rate(fn, x: np.ndarray, steps: int, repeats: int, device: str) -> float:
    """Median candidate-steps/s of fn(x).sum() forward + backward to x."""
    xs = torch.as_tensor(x, dtype=torch.float32, device=device).requires_grad_(True)
    for _ in range(3):  # warm-up
        torch.autograd.grad(fn(xs).sum(), xs)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            torch.autograd.grad(fn(xs).sum(), xs)
        if device == "cuda":
            torch.cuda.synchronize()
        rates.append(steps * len(x) / (time.perf_counter() - t0))
    return statistics.median(rates)


def loop_rate(
    model, ref, b: int, steps: int, repeats: int, device: str, seed: int, mode: str
) -> tuple[float, np.ndarray]:
    """(median candidate-steps/s of DesignEngine.optimize, the start compositions)."""
    cfg = DesignConfig(
        refine_steps=0,  # the loop alone: no integer refinement after it
        n_candidates=b, steps2=steps // 2, steps3=steps - steps // 2, seed=seed, device=device,
        ensemble_mode=mode, hull_columns=False,
    )  # fmt: skip
    eng = DesignEngine(model, cfg, reference=ref)
    start = eng.start_points()
    eng.optimize(start)  # warm-up: allocator, lazy imports, oneDNN kernels for this B
    rates = [steps * len(start) / eng.optimize(start).elapsed_s for _ in range(repeats)]
    return statistics.median(rates), start.x


def measure(model: TcEnsemble, ref, b: int, args) -> list[dict]:
    """One dict per row for batch size b (see the module docstring)."""
    member = TcEnsemble([model.members[0]], card=model.card).eval()
    rows = []
    loop_m, x = loop_rate(member, ref, b, args.steps, args.repeats, args.device, args.seed, "fused")
    bare_m = bare_rate(fuse_members([model.members[0]]), x, args.steps, args.repeats, args.device)
    rows.append({"row": "member", "loop": loop_m, "bare": bare_m})
    if model.n_members > 1:
        fused = fuse_members(list(model.members))
        loop_f, _ = loop_rate(model, ref, b, args.steps, args.repeats, args.device, args.seed, "fused")
        rows.append(
            {
                "row": f"ensemble of {model.n_members}, fused",
                "loop": loop_f,
                "bare": bare_rate(fused, x, args.steps, args.repeats, args.device),
            }
        )
        loop_r, _ = loop_rate(model, ref, b, args.steps, args.repeats, args.device, args.seed, "rotate")
        rows.append({"row": f"ensemble of {model.n_members}, rotate (full every 4)", "loop": loop_r, "bare": None})
        rows.append({"row": f"ensemble of {model.n_members}, one by one", "loop": None, "bare": bare_rate(model.member_raw_predictions, x, args.steps, args.repeats, args.device)})  # fmt: skip
    for r in rows:
        r.update(n_candidates=b, cost_vs_member=loop_m / r["loop"] if r["loop"] else None)
        r["loop_over_bare"] = r["loop"] / r["bare"] if r["loop"] and r["bare"] else None
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--batches", default="64,256,1024", help="comma-separated batch sizes B")
    p.add_argument("--steps", type=int, default=60, help="steps per timed run (half stage 2, half stage 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the median is reported")
    p.add_argument(
        "--json", action="store_true", help="one JSON line per B (the ensemble's fused loop as the headline)"
    )
    args = p.parse_args(argv)
    model, ref, desc = setup(args)
    table = []
    for b in (int(v) for v in args.batches.split(",")):
        rows = measure(model, ref, b, args)
        if args.json:
            head = rows[1] if len(rows) > 1 else rows[0]
            out = {"n_candidates": b, "candidate_steps_per_s": head["loop"], "bare_fwd_bwd_per_s": head["bare"],
                   "loop_over_bare": head["loop_over_bare"], "threads": torch.get_num_threads(), "rows": rows}  # fmt: skip
            print(json.dumps(out), flush=True)
            continue
        for r in rows:
            fmt = lambda v, f: "—" if v is None else f.format(v)  # noqa: E731
            table.append([b, r["row"], fmt(r["loop"], "{:,.0f}"), fmt(r["bare"], "{:,.0f}"),
                          fmt(r["loop_over_bare"], "{:.2f}"), fmt(r["cost_vs_member"], "{:.2f}×")])  # fmt: skip
        print(f"B={b} done", flush=True)
    if not args.json:
        print(f"\nModel: {desc}\n{args.steps} steps per run, median of {args.repeats} runs, device {args.device}, "
              f"{torch.get_num_threads()} threads.\n")  # fmt: skip
        heads = [
            "B",
            "model in the loop",
            "loop cand-steps/s",
            "bare fwd+bwd cand-steps/s",
            "loop / bare",
            "cost vs member",
        ]
        print(md_table(heads, table))


if __name__ == "__main__":
    main()
