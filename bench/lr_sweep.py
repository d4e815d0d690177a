"""Paper Table 7: percentiles of the stage-2 Tc change at learning rates 0.01 and 0.0001.

    python -m bench.lr_sweep                                  # 1,024 candidates x 1,000 steps per lr, CPU
    python -m bench.lr_sweep --n-candidates 256 --steps2 300  # quick look
    python -m bench.lr_sweep --device cuda --n-candidates 2048   # the paper's size

The same start compositions (SuperCon entries with Tc above --init-min-tc) are optimized with the
hinge loss (stage 2 only) at each learning rate; ΔT = model Tc after - before, in K.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import add_doc_option, printed, write_doc
from bench.design_common import add_common_args, md_table, predict, setup
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine

PAPER = {0.01: (-133.90, 0.36, 15.81, 35.50, 123.39), 0.0001: (-81.22, 2.57, 13.64, 30.01, 107.65)}
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--n-candidates", type=int, default=1024)
    p.add_argument("--steps2", type=int, default=1000)
    p.add_argument("--lrs", default="0.01,0.0001")
    p.add_argument("--init-min-tc", type=float, default=0.0)
    p.add_argument("--target-tc", type=float, default=300.0)
    p.add_argument("--method", choices=("project", "relu"), default="project")
    p.add_argument(
        "--free-elements", action="store_true", help="keep_element_count=False: candidates may gain elements"
    )
    add_doc_option(p, "lr_sweep")
    args = p.parse_args(argv)
    lrs = [float(v) for v in args.lrs.split(",")]
    model, ref, desc = setup(args)
    t0 = time.perf_counter()
    base = DesignConfig(
        n_candidates=args.n_candidates,
        init_mode="dataset",
        init_min_tc=args.init_min_tc,
        steps2=args.steps2,
        steps3=0,
        target_tc=args.target_tc,
        seed=args.seed,
        device=args.device,
        constraint_method=args.method,
        keep_element_count=not args.free_elements,
        record_every=10**9,
    )
    start = DesignEngine(model, base, reference=ref).start_points()
    deltas = {}
    for lr in lrs:
        st = DesignEngine(model, base.replace(lr=lr), reference=ref).optimize(start)
        deltas[lr] = predict(model, st.x_stage2) - predict(model, st.x_start)
        print(f"lr={lr:g} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    with printed() as tables:
        print()
        print(f"Model: {desc}")
        print(
            f"{len(start)} start compositions (SuperCon, Tc > {args.init_min_tc:g} K), stage 2 only, {args.steps2} steps, "
            f"y_t {args.target_tc:g} K, {args.method}{', elements free' if args.free_elements else ''}; "
            f"{time.perf_counter() - t0:.0f} s on {args.device}.\n"
        )
        headers = (
            ["percentile"] + [f"ΔT @ lr={lr:g} (K)" for lr in lrs] + [f"paper @ lr={lr:g}" for lr in lrs if lr in PAPER]
        )
        rows = []
        for i, q in enumerate(QUANTILES):
            row: list[object] = [f"{q:.2f}"] + [float(np.quantile(deltas[lr], q)) for lr in lrs]
            row += [PAPER[lr][i] for lr in lrs if lr in PAPER]
            rows.append(row)
        rows.append(["mean"] + [float(deltas[lr].mean()) for lr in lrs] + ["" for lr in lrs if lr in PAPER])
        rows.append(
            ["share ΔT > 0"] + [f"{(deltas[lr] > 0).mean():.0%}" for lr in lrs] + ["" for lr in lrs if lr in PAPER]
        )
        print(md_table(headers, rows))
    if args.doc:
        write_doc(args.doc, tables.getvalue(), checkpoints=[model])


if __name__ == "__main__":
    main()
