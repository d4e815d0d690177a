"""Paper Table 2: the Tc change when the same stage-2 candidates are made integer, for
rule-based rounding, stage 3 with L_int^N, and stage 3 with L_int,ES^N, at N = 8, 12, 16, 20, 40.

    python -m bench.integerization                      # 1,024 candidates, CPU (about an hour on 2 busy cores)
    python -m bench.integerization --n-candidates 256 --steps2 300 --steps3 300   # quick look
    python -m bench.integerization --device cuda --n-candidates 8192               # the paper's size

Stage 2 (hinge towards y_t) runs once from SuperCon starts; every method then starts from the same
stage-2 compositions x2. Tc change = model Tc of the integer formula (re-featurized from its text)
minus model Tc of x2, in K, mean ± sd over candidates. Rule-based: round(N x2) corrected to sum to
N by largest remainder (integer_loss.round_baseline). L_int columns: the integer formula of the
composition at the end of stage 3, rounded the same way; "best-of" columns: per candidate the best
integer formula (by model Tc) among those checked every 10 stage-3 steps (the engine's
integer_select="best" with select_every=10; the first check is the stage-2 composition itself).
Defaults follow the paper's Table 2 setup:
stage 2 with lr 0.001, stage 3 with lr 0.001 and alpha ramped 0 -> 1e5; `--steps3` and `--lr3`
change that. Prints a markdown table with the paper's numbers beside ours.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import add_doc_option, printed, write_doc
from bench.design_common import add_common_args, md_table, mean_sd, predict, predict_formulas, setup
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.design.objective.integer_loss import integerize, round_baseline

PAPER = {  # N: (rule-based, L_int^N, L_int,ES^N), mean ± sd in K (paper Table 2, 8,192 candidates)
    8: ("-35.5 ± 42.3", "-37.7 ± 29.6", "-13.4 ± 19.0"),
    12: ("-19.3 ± 40.6", "-22.4 ± 23.1", "-6.7 ± 11.1"),
    16: ("-10.2 ± 38.8", "-11.9 ± 16.3", "-4.5 ± 7.7"),
    20: ("-7.9 ± 39.0", "-9.9 ± 14.1", "-3.0 ± 5.3"),
    40: ("-3.4 ± 38.8", "-4.9 ± 8.2", "-1.0 ± 8.2"),
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--n-candidates", type=int, default=1024)
    p.add_argument("--ns", default="8,12,16,20,40", help="cell sizes N (comma-separated)")
    p.add_argument("--steps2", type=int, default=1000)
    p.add_argument("--steps3", type=int, default=1000)
    p.add_argument("--lr2", type=float, default=0.001, help="stage-2 learning rate (paper Table 2: 0.001)")
    p.add_argument("--lr3", type=float, default=0.001, help="stage-3 learning rate (paper: 0.001)")
    p.add_argument("--alpha-max", type=float, default=1e5, help="alpha at the end of stage 3 (paper: 1e5)")
    p.add_argument("--target-tc", type=float, default=300.0)
    p.add_argument("--init-min-tc", type=float, default=0.0, help="starts: SuperCon entries above this Tc (K)")
    p.add_argument("--method", choices=("project", "relu"), default="project")
    add_doc_option(p, "integerization")
    args = p.parse_args(argv)
    ns = [int(v) for v in args.ns.split(",")]
    model, ref, desc = setup(args)
    t0 = time.perf_counter()
    base = DesignConfig(
        n_candidates=args.n_candidates,
        init_mode="dataset",
        init_min_tc=args.init_min_tc,
        steps2=args.steps2,
        steps3=0,
        lr=args.lr2,
        target_tc=args.target_tc,
        seed=args.seed,
        device=args.device,
        constraint_method=args.method,
        record_every=10**9,
        select_every=10,
    )
    eng = DesignEngine(model, base, reference=ref)
    x2 = eng.optimize(eng.start_points()).x_stage2
    tc2 = predict(model, x2)
    t_stage2 = time.perf_counter() - t0
    rows = []
    for n in ns:
        rule = predict_formulas(model, round_baseline(x2, [n], n_choice=np.full(len(x2), n)).formulas) - tc2
        got = {}
        for kind in ("int", "es"):
            cfg = base.replace(
                steps2=0, steps3=args.steps3, n_values=(n,), integer_loss=kind, lr=args.lr3, alpha_max=args.alpha_max
            )
            st = DesignEngine(model, cfg, reference=ref).optimize(x2)
            integ = integerize(st.x_final, [n], kind, n_choice=np.full(len(x2), n))
            got[kind] = predict_formulas(model, integ.formulas) - tc2
            got[kind + "_best"] = predict_formulas(model, st.integer.formulas) - tc2
        rows.append(
            [
                n,
                mean_sd(rule),
                mean_sd(got["int"]),
                mean_sd(got["es"]),
                mean_sd(got["int_best"]),
                mean_sd(got["es_best"]),
            ]
            + list(PAPER.get(n, ("", "", "")))
        )
        print(f"N={n} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    with printed() as tables:
        print()
        print(f"Model: {desc}")
        print(
            f"{len(x2)} stage-2 candidates (SuperCon starts with Tc > {args.init_min_tc:g} K, {args.steps2} steps, lr {args.lr2:g}, "
            f"{args.method}; {t_stage2:.0f} s); stage 3: {args.steps3} steps, lr {args.lr3:g}, alpha 0 -> {args.alpha_max:g}; "
            f"total {time.perf_counter() - t0:.0f} s on {args.device}."
        )
        print("Tc change in K (integer formula minus stage-2 composition), mean ± sd:\n")
        headers = ["N", "rule-based", "L_int^N", "L_int,ES^N", "L_int^N best-of", "L_int,ES^N best-of"]
        headers += ["paper rule-based", "paper L_int^N", "paper L_int,ES^N"]
        print(md_table(headers, rows))
    if args.doc:
        write_doc(args.doc, tables.getvalue(), checkpoints=[model])


if __name__ == "__main__":
    main()
