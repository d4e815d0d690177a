"""Design-loop speed, and the two constraint methods compared on the same candidates.

    python -m bench.design_speed                          # 256 candidates x 1,000 steps, CPU
    python -m bench.design_speed --n-candidates 64 --steps 200   # quick look
    python -m bench.design_speed --json                   # one JSON line: the throughput numbers only

Part 1, speed: candidate-steps per second of the whole loop (stage 2 then stage 3, Adam,
constraints, integer loss, trajectory recording) against the bare model forward + backward to
the input on the same batch, measured in the same process.
Part 2, the constraint methods from the same starts with the same settings: "project" (Euclidean
projection after each Adam step) with and without keep_element_count (a candidate never holds
more distinct elements than its start), and "relu" (x = relu(p) / sum relu(p)): Tc gain of
stage 2, Tc change from the stage-2 composition to the reported integer formula (the
integerization loss), the Tc of the integer formulas, and how the element sets changed.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.common import add_doc_option, printed, write_doc
from bench.design_common import add_common_args, md_table, mean_sd, predict, predict_formulas, setup
from gdmcd_core.chem.composition import FRACTION_EPS
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine

VARIANTS = {  # name -> DesignConfig changes; the first is the default
    "project, element count kept (default)": {"constraint_method": "project", "keep_element_count": True},
    "project, elements free": {"constraint_method": "project", "keep_element_count": False},
    "relu reparameterization": {"constraint_method": "relu", "keep_element_count": False},
}


def bare_fwd_bwd(model: torch.nn.Module, x: np.ndarray, steps: int) -> float:
    """Candidate-steps/s of model forward + backward to x alone."""
    dev = next(model.parameters()).device
    xs = torch.as_tensor(x, dtype=torch.float32, device=dev).requires_grad_(True)
    for _ in range(2):  # warm-up
        torch.autograd.grad(model(xs).sum(), xs)
    t0 = time.perf_counter()
    for _ in range(steps):
        (g,) = torch.autograd.grad(model(xs).sum(), xs)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(x) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--n-candidates", type=int, default=256)
    p.add_argument("--steps", type=int, default=1000, help="total steps, split evenly between stages 2 and 3")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--alpha-max", type=float, default=DesignConfig.alpha_max)
    p.add_argument("--n-range", default="4-24")
    p.add_argument("--init-min-tc", type=float, default=20.0)
    p.add_argument("--json", action="store_true", help="print one JSON line with the throughput only")
    add_doc_option(p, "design_speed")
    args = p.parse_args(argv)
    lo, hi = (int(v) for v in args.n_range.split("-"))
    model, ref, desc = setup(args)
    s2 = args.steps // 2
    base = DesignConfig(
        n_candidates=args.n_candidates,
        init_mode="mixed",
        init_min_tc=args.init_min_tc,
        steps2=s2,
        steps3=args.steps - s2,
        lr=args.lr,
        alpha_max=args.alpha_max,
        n_min=lo,
        n_max=hi,
        seed=args.seed,
        device=args.device,
    )
    start = DesignEngine(model, base, reference=ref).start_points()
    # warm-up (lazy imports, allocator) so that neither method pays one-time costs in its timing
    DesignEngine(model, base.replace(steps2=2, steps3=2), reference=ref).optimize(start.x[:8])
    results = {}
    for name, changes in VARIANTS.items():
        eng = DesignEngine(model, base.replace(**changes), reference=ref)
        st = eng.optimize(start)
        results[name] = (st, args.steps * len(start) / st.elapsed_s)
        if args.json:
            break
    first = next(iter(results.values()))
    bare = bare_fwd_bwd(model, first[0].x_start, max(20, min(args.steps, 200)))
    loop = first[1]
    if args.json:
        print(
            json.dumps(
                {
                    "n_candidates": len(start),
                    "steps": args.steps,
                    "candidate_steps_per_s": loop,
                    "bare_fwd_bwd_per_s": bare,
                }
            )
        )
        return
    with printed() as tables:
        print(f"Model: {desc}")
        print(
            f"{len(start)} candidates (mixed SuperCon starts, Tc > {args.init_min_tc:g} K), {s2} + {args.steps - s2} steps, "
            f"lr {args.lr:g}, alpha_max {args.alpha_max:g}, N {args.n_range}, device {args.device}, {torch.get_num_threads()} threads.\n"
        )
        rows = [
            [m, f"{r[1]:,.0f}", f"{r[0].elapsed_s:.1f}", f"{100 * (bare / r[1] - 1):+.0f} %"]
            for m, r in results.items()
        ]
        rows.append(["bare forward + backward to x", f"{bare:,.0f}", "", ""])
        print(md_table(["loop", "candidate-steps/s", "wall s", "overhead vs bare"], rows))
        print()
        comp = []
        for name, (st, _) in results.items():
            tc0, tc2 = predict(model, st.x_start), predict(model, st.x_stage2)
            integ = st.integer  # the engine's reported integer formulas (integer_select "best")
            tci = predict_formulas(model, integ.formulas)
            n0 = (st.x_start > FRACTION_EPS).sum(1)
            n2 = (st.x_stage2 > FRACTION_EPS).sum(1)
            ni = (integ.amounts > 0).sum(1)
            gained = ((integ.amounts > 0) & (st.x_start <= FRACTION_EPS)).any(1)
            comp.append(
                [
                    name,
                    mean_sd(tc2 - tc0),
                    f"{np.median(tc2 - tc0):+.1f}",
                    mean_sd(tci - tc2),
                    f"{np.mean(tci):.1f}",
                    f"{np.mean(n0):.1f} / {np.mean(n2):.1f} / {np.mean(ni):.1f}",
                    f"{gained.mean():.0%}",
                    f"{len(set(integ.formulas))}",
                ]
            )
        headers = [
            "method",
            "stage-2 gain (K)",
            "median gain",
            "integerization ΔTc (K)",
            "mean integer Tc (K)",
            "#elements start / stage 2 / integer",
            "gained a new element",
            "distinct formulas",
        ]
        print(md_table(headers, comp))
    if args.doc:
        write_doc(args.doc, tables.getvalue(), checkpoints=[model])


if __name__ == "__main__":
    main()
