"""Design-loop throughput against the bare model, for a single member and for the ensemble.

    python -m bench.design_throughput                        # B = 64, 256, 1,024; 120 steps; median of 3
    python -m bench.design_throughput --batches 64 --steps 40 --repeats 5
    python -m bench.design_throughput --json --batches 256   # one JSON line per B
    python -m bench.design_throughput --device cuda --batches 1024,8192

For each B and each way of running the model, candidate-steps/s of `DesignEngine.optimize` (half the steps
in stage 2, half in stage 3, projection, integer loss over N = 4..24, trajectory recording, integer-formula
checks, the final integerization) and of the bare forward + backward to the input of the network the loop
uses, on the same batch, in the same process. Each figure is the median of `--repeats` timed runs after a
warm-up run; loop and bare runs alternate, and "loop / bare" is the median of the paired ratios, so that a
slow spell of a shared machine moves both sides of a ratio together.

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

from bench.common import add_doc_option, printed, write_doc
from bench.design_common import add_common_args, md_table, setup
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.fused import fuse_members


def _bare_run(fn, x: np.ndarray, steps: int, device: str):
    """A callable timing `steps` forward + backward passes of fn(x).sum() to x; returns candidate-steps/s."""
    xs = torch.as_tensor(x, dtype=torch.float32, device=device).requires_grad_(True)
    for _ in range(3):  # warm-up
        torch.autograd.grad(fn(xs).sum(), xs)

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            torch.autograd.grad(fn(xs).sum(), xs)
        if device == "cuda":
            torch.cuda.synchronize()
        return steps * len(x) / (time.perf_counter() - t0)

    return run


def _loop_run(model, ref, b: int, steps: int, device: str, seed: int, mode: str):
    """(a callable timing one DesignEngine.optimize run, returning candidate-steps/s; the start compositions)."""
    cfg = DesignConfig(
        refine_steps=0,  # the loop alone: no integer refinement after it
        n_candidates=b,
        steps2=steps // 2,
        steps3=steps - steps // 2,
        seed=seed,
        device=device,
        ensemble_mode=mode,
        hull_columns=False,
    )
    eng = DesignEngine(model, cfg, reference=ref)
    start = eng.start_points()
    eng.optimize(start)  # warm-up: allocator, lazy imports, oneDNN kernels for this B
    return (lambda: steps * len(start) / eng.optimize(start).elapsed_s), start.x


def paired(loop, bare, repeats: int) -> dict:
    """Median loop and bare rates and the median of their ratios, the two timed in turn (loop, bare, loop, ...)
    so that a slow spell of a shared machine slows both sides of a ratio, not one."""
    pairs = [(loop(), bare() if bare else None) for _ in range(repeats)]
    out = {"loop": statistics.median(p[0] for p in pairs), "bare": None, "loop_over_bare": None}
    if bare:
        out["bare"] = statistics.median(p[1] for p in pairs)
        out["loop_over_bare"] = statistics.median(p[0] / p[1] for p in pairs)
    return out


def measure(model: TcEnsemble, ref, b: int, args) -> list[dict]:
    """One dict per row for batch size b (see the module docstring)."""
    member = TcEnsemble([model.members[0]], card=model.card).eval()
    a = (args.steps, args.device)
    loop_m, x = _loop_run(member, ref, b, *a, args.seed, "fused")
    rows = [{"row": "member", **paired(loop_m, _bare_run(fuse_members([model.members[0]]), x, *a), args.repeats)}]
    if model.n_members > 1:
        k = model.n_members
        loop_f, _ = _loop_run(model, ref, b, *a, args.seed, "fused")
        rows.append(
            {
                "row": f"ensemble of {k}, fused",
                **paired(loop_f, _bare_run(fuse_members(list(model.members)), x, *a), args.repeats),
            }
        )
        loop_r, _ = _loop_run(model, ref, b, *a, args.seed, "rotate")
        rows.append({"row": f"ensemble of {k}, rotate (full every 4)", **paired(loop_r, None, args.repeats)})
        one_by_one = _bare_run(model.member_raw_predictions, x, *a)
        rows.append(
            {
                "row": f"ensemble of {k}, one by one",
                "loop": None,
                "loop_over_bare": None,
                "bare": statistics.median(one_by_one() for _ in range(args.repeats)),
            }
        )
    for r in rows:
        r.update(n_candidates=b, cost_vs_member=rows[0]["loop"] / r["loop"] if r["loop"] else None)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--batches", default="64,256,1024", help="comma-separated batch sizes B")
    p.add_argument(
        "--steps",
        type=int,
        default=120,
        help="steps per timed run (half stage 2, half stage 3; enough that the per-run "
        "costs, start-up and the final integer checks, weigh as they do in a run, not as in a 20-step one)",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the median is reported")
    p.add_argument(
        "--json", action="store_true", help="one JSON line per B (the ensemble's fused loop as the headline)"
    )
    add_doc_option(p, "design_throughput")
    args = p.parse_args(argv)
    model, ref, desc = setup(args)
    table = []
    for b in (int(v) for v in args.batches.split(",")):
        rows = measure(model, ref, b, args)
        if args.json:
            head = rows[1] if len(rows) > 1 else rows[0]
            out = {
                "n_candidates": b,
                "candidate_steps_per_s": head["loop"],
                "bare_fwd_bwd_per_s": head["bare"],
                "loop_over_bare": head["loop_over_bare"],
                "threads": torch.get_num_threads(),
                "rows": rows,
            }
            print(json.dumps(out), flush=True)
            continue
        for r in rows:
            fmt = lambda v, f: "—" if v is None else f.format(v)  # noqa: E731
            table.append(
                [
                    b,
                    r["row"],
                    fmt(r["loop"], "{:,.0f}"),
                    fmt(r["bare"], "{:,.0f}"),
                    fmt(r["loop_over_bare"], "{:.2f}"),
                    fmt(r["cost_vs_member"], "{:.2f}×"),
                ]
            )
        print(f"B={b} done", flush=True)
    if args.json:
        return
    with printed() as tables:
        print(
            f"\nModel: {desc}\n{args.steps} steps per run, median of {args.repeats} runs, device {args.device}, "
            f"{torch.get_num_threads()} threads.\n"
        )
        heads = [
            "B",
            "model in the loop",
            "loop cand-steps/s",
            "bare fwd+bwd cand-steps/s",
            "loop / bare",
            "cost vs member",
        ]
        print(md_table(heads, table))
    if args.doc:
        write_doc(args.doc, tables.getvalue(), checkpoints=[model])


if __name__ == "__main__":
    main()
