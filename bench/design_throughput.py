"""Design-loop throughput against the bare model, for several batch sizes.

    python -m bench.design_throughput                      # B = 64, 1,024, 8,192; 20 steps each; CPU
    python -m bench.design_throughput --batches 64,1024 --steps 10
    python -m bench.design_throughput --json               # one JSON line for B = 1,024
    python -m bench.design_throughput --device cuda --steps 100

For each B: candidate-steps/s of DesignEngine.optimize (half the steps in stage 2, half in
stage 3, projection, integer loss over N = 4..24, trajectory recording, integer-formula checks)
and of the bare forward + backward to the input of the same model on the same batch, measured in
the same process. The goal is a loop overhead under 10 %.
"""

from __future__ import annotations

import argparse
import json

import torch

from bench.design_common import add_common_args, md_table, setup
from bench.design_speed import bare_fwd_bwd
from gdmcd_core.design.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine


def measure(model, ref, b: int, steps: int, device: str, seed: int) -> tuple[float, float]:
    cfg = DesignConfig(
        n_candidates=b, init_mode="mixed", steps2=steps // 2, steps3=steps - steps // 2, seed=seed, device=device
    )
    eng = DesignEngine(model, cfg, reference=ref)
    start = eng.start_points()
    DesignEngine(model, cfg.replace(steps2=1, steps3=1), reference=ref).optimize(start.x[: min(b, 8)])  # warm-up
    st = eng.optimize(start)
    loop = steps * len(start) / st.elapsed_s
    return loop, bare_fwd_bwd(model, st.x_start, steps)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--batches", default="64,1024,8192")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON line for B = 1,024 only")
    args = p.parse_args(argv)
    model, ref, desc = setup(args)
    if args.json:
        loop, bare = measure(model, ref, 1024, args.steps, args.device, args.seed)
        print(json.dumps({"n_candidates": 1024, "candidate_steps_per_s": loop, "bare_fwd_bwd_per_s": bare}))
        return
    rows = []
    for b in (int(v) for v in args.batches.split(",")):
        loop, bare = measure(model, ref, b, args.steps, args.device, args.seed)
        rows.append([b, f"{loop:,.0f}", f"{bare:,.0f}", f"{100 * (bare / loop - 1):+.1f} %"])
        print(f"B={b} done", flush=True)
    print(
        f"\nModel: {desc}\n{args.steps} steps per batch size, device {args.device}, {torch.get_num_threads()} threads.\n"
    )
    print(md_table(["B", "design loop cand-steps/s", "bare fwd+bwd cand-steps/s", "loop overhead"], rows))


if __name__ == "__main__":
    main()
