"""Scale-out of the design search: in-process vs Ray shards on this machine, and GPU batch sizes and precisions.

    python -m bench.scale                                  # a tenth of the paper's starts and steps (1,164 x 200,
                                                           #   1 % of its candidate-steps): in-process vs Ray
                                                           #   with 1 and 2 local workers
    python -m bench.scale --fraction 1                     # the paper's search: 11,640 starts x 2,000 steps
    python -m bench.scale --starts 64 --steps 10 --tiny    # a few seconds: checks the script only
    python -m bench.scale --address 10.0.0.1:6379 --workers 1,8,64   # shards on an existing cluster
    python -m bench.scale --device cuda                    # + GPU rows (below); --json: one JSON object

CPU rows: candidate-steps/s (starts x steps / wall time of the loop, DesignEngine.optimize in this process or
design.executor.optimize_sharded with one shard per worker, each worker one CPU and one torch thread) and the
scaling efficiency rate(w workers) / (w x rate(1 worker)). Each Ray row is timed after a one-step warm-up run
that starts the workers, so worker start-up (seconds) is not in it; the model is shipped to the workers in
every timed run.

GPU rows (--device cuda): the loop at B = 1,024 ... 65,536 in FP32, TF32 (matmul/cuDNN TF32) and AMP (bf16
autocast), with the largest |delta Tc| of the final compositions against FP32 (the goal: under 0.5 K); the
analytic limit peak FLOP/s / (3 x forward FLOPs per member-candidate x members) (forward + backward ~ 3
forwards; forward FLOPs counted by torch's FlopCounterMode, ~4.8 MFLOP per member-candidate for the
default model; --peak-tflops, default 67, an H100 SXM's FP32 peak); and how long the paper's full search
takes on 1, 8 and 64 GPUs: 2,000 steps at ceil(11,640 / n) starts per GPU, from the rate measured at that B
(one shard per GPU; Ray's start-up of seconds not included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time

import numpy as np
import torch

from bench.common import add_doc_option, printed, write_doc
from bench.design_common import add_common_args, md_table, setup
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine

PAPER_STARTS, PAPER_STEPS = 11_640, 2_000
GPU_BATCHES = (1_024, 2_048, 4_096, 8_192, 16_384, 32_768, 65_536)
GPU_COUNTS = (1, 8, 64)
TOLERANCE_K = 0.5


def config(starts: int, steps: int, seed: int, device: str, **kw) -> DesignConfig:
    half = steps // 2
    return DesignConfig(
        refine_steps=0,  # the loop alone: no integer refinement after it
        n_candidates=starts,
        steps2=half,
        steps3=steps - half,
        seed=seed,
        device=device,
        hull_columns=False,
        **kw,
    )


def in_process(model, ref, cfg: DesignConfig) -> tuple[float, np.ndarray]:
    """(candidate-steps/s, final compositions) of one in-process run (after a one-step warm-up)."""
    eng = DesignEngine(model, cfg, reference=ref)
    start = eng.start_points()
    DesignEngine(model, cfg.replace(steps2=1, steps3=0), reference=ref).optimize(start.x[:8])
    if eng.device.type == "cuda":
        torch.cuda.synchronize()
    st = eng.optimize(start)
    return len(start) * cfg.total_steps / st.elapsed_s, st.x_final


def on_ray(model, ref, cfg: DesignConfig, workers: int, address: str) -> float:
    """Candidate-steps/s of the same run in `workers` shards on Ray (a local instance of `workers` CPUs unless
    `address` names a cluster)."""
    import ray

    from gdmcd_core.design.distributed.executor import optimize_sharded

    if not address:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    else:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        rcfg = cfg.replace(executor="ray", shards=workers, address=address)
        eng = DesignEngine(model, rcfg, reference=ref)
        start = eng.start_points()
        optimize_sharded(DesignEngine(model, rcfg.replace(steps2=1, steps3=0), reference=ref), start)  # warm-up
        t0 = time.perf_counter()
        optimize_sharded(eng, start)
        return len(start) * cfg.total_steps / (time.perf_counter() - t0)
    finally:
        ray.shutdown()


def cpu_rows(args, model, ref) -> list[dict]:
    cfg = config(args.starts, args.steps, args.seed, "cpu")
    rate, _ = in_process(model, ref, cfg)
    rows = [{"executor": f"in-process ({torch.get_num_threads()} threads)", "workers": 1, "cand_steps_per_s": rate}]
    print(f"in-process: {rate:,.0f} candidate-steps/s", flush=True)
    one = None
    for w in args.workers:
        r = on_ray(model, ref, cfg, w, args.address)
        one = r if w == 1 else one
        eff = r / (w * one) if one else float("nan")
        rows.append({"executor": "ray", "workers": w, "cand_steps_per_s": r, "efficiency": eff})
        print(f"ray x{w}: {r:,.0f} candidate-steps/s", flush=True)
    return rows


@contextlib.contextmanager
def precision(mode: str):
    """fp32 | tf32 | amp (bf16 autocast) around the loop; the flags are restored."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode == "amp"):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def forward_flops(model) -> float:
    """Forward FLOPs per member-candidate (FlopCounterMode on a batch of 64)."""
    from torch.utils.flop_counter import FlopCounterMode

    members = list(getattr(model, "members", [model]))
    x = torch.full((64, 118), 1 / 118, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        members[0](x)
    return fc.get_total_flops() / 64


def gpu_rows(args, model, ref) -> tuple[list[dict], list[dict], dict]:
    members = len(list(getattr(model, "members", [model])))
    flops = forward_flops(model)
    limit = args.peak_tflops * 1e12 / (3 * flops * members)
    rows, rates = [], {}
    for b in args.gpu_batches:
        cfg = config(b, args.gpu_steps, args.seed, "cuda")
        out, tc32 = {}, None
        for mode in ("fp32", "tf32", "amp"):
            try:
                with precision(mode):
                    rate, x = in_process(model, ref, cfg)
            except RuntimeError as exc:  # e.g. an op without a bf16 kernel: the row says so
                print(f"B={b} {mode}: failed ({str(exc).splitlines()[0]})", flush=True)
                out[mode] = (float("nan"), float("nan"))
                continue
            tc = DesignEngine(model, cfg, reference=ref).predict(x)[0]  # FP32 predictions of the final compositions
            tc32 = tc if mode == "fp32" else tc32
            out[mode] = (rate, float(np.max(np.abs(tc - tc32))) if tc32 is not None and len(tc) else float("nan"))
        rates[b] = max(r for r, _ in out.values())
        rows.append(
            {"B": b, **{f"{m}_cand_steps_per_s": r for m, (r, _) in out.items()}}
            | {
                "tf32_max_dtc_k": out["tf32"][1],
                "amp_max_dtc_k": out["amp"][1],
                "limit_cand_steps_per_s": limit,
            }
        )
        print(f"B={b}: " + ", ".join(f"{m} {r:,.0f}" for m, (r, _) in out.items()), flush=True)
    full = []
    for n in GPU_COUNTS:
        b = math.ceil(PAPER_STARTS / n)
        cfg = config(b, args.gpu_steps, args.seed, "cuda")
        with precision("fp32"):
            r32, _ = in_process(model, ref, cfg)
        full.append({"gpus": n, "starts_per_gpu": b, "fp32_hours": PAPER_STEPS * b / r32 / 3600})
    return rows, full, {"forward_mflop_per_member": flops / 1e6, "members": members, "limit": limit}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.set_defaults(threads=1)
    p.add_argument("--fraction", type=float, default=0.1, help="of the paper's starts and of its steps (default 0.1)")
    p.add_argument("--starts", type=int, default=0, help="starts (overrides --fraction)")
    p.add_argument("--steps", type=int, default=0, help="steps, half per stage (overrides --fraction)")
    p.add_argument("--workers", default="1,2", help="Ray workers (shards) to time, comma-separated (default 1,2)")
    p.add_argument("--address", default="", help="an existing Ray cluster (default: a local Ray per row)")
    p.add_argument("--no-ray", action="store_true", help="in-process row only")
    p.add_argument("--gpu-batches", default=",".join(map(str, GPU_BATCHES)))
    p.add_argument("--gpu-steps", type=int, default=40, help="steps per GPU measurement (default 40)")
    p.add_argument("--peak-tflops", type=float, default=67.0, help="FP32 peak of the GPU (default 67: H100 SXM)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    add_doc_option(p, "scale")
    args = p.parse_args(argv)
    args.starts = args.starts or max(1, round(PAPER_STARTS * args.fraction))
    args.steps = args.steps or max(2, round(PAPER_STEPS * args.fraction))
    args.workers = [] if args.no_ray else [int(w) for w in args.workers.split(",") if w.strip()]
    args.gpu_batches = [int(b) for b in args.gpu_batches.split(",") if b.strip()]
    cpu_model, ref, desc = setup(argparse.Namespace(**{**vars(args), "device": "cpu"}))
    out: dict = {"model": desc, "starts": args.starts, "steps": args.steps, "cpu": cpu_rows(args, cpu_model, ref)}
    if args.device.startswith("cuda"):
        gpu_model, _, _ = setup(args)
        out["gpu"], out["full_search"], out["analytic"] = gpu_rows(args, gpu_model, ref)
    if args.json:
        print(json.dumps(out))
        return
    with printed() as tables:
        print_tables(out, args)
    if args.doc:
        write_doc(args.doc, tables.getvalue(), checkpoints=[cpu_model])


def print_tables(out: dict, args: argparse.Namespace) -> None:
    """The markdown tables of a result (`main`'s `out`)."""
    share = out["starts"] * out["steps"] / (PAPER_STARTS * PAPER_STEPS)
    print(
        f"\nModel: {out['model']}\n{out['starts']} starts x {out['steps']} steps ({100 * share:.3g} % of the paper's candidate-steps).\n"
    )
    print(
        md_table(
            ["executor", "workers", "cand-steps/s", "scaling efficiency"],
            [
                [
                    r["executor"],
                    r["workers"],
                    f"{r['cand_steps_per_s']:,.0f}",
                    f"{r['efficiency']:.0%}" if "efficiency" in r else "",
                ]
                for r in out["cpu"]
            ],
        )
    )
    if "gpu" in out:
        a = out["analytic"]
        print(
            f"\nGPU: {a['forward_mflop_per_member']:.2f} MFLOP forward per member-candidate, {a['members']} member(s); "
            f"limit at {args.peak_tflops:g} TFLOP/s: {a['limit']:,.0f} cand-steps/s. {args.gpu_steps} steps per row.\n"
        )
        print(
            md_table(
                ["B", "FP32", "TF32", "AMP (bf16)", "max abs ΔTc TF32 / AMP (K)", "within 0.5 K", "FP32 / limit"],
                [
                    [
                        r["B"],
                        f"{r['fp32_cand_steps_per_s']:,.0f}",
                        f"{r['tf32_cand_steps_per_s']:,.0f}",
                        f"{r['amp_cand_steps_per_s']:,.0f}",
                        f"{r['tf32_max_dtc_k']:.3f} / {r['amp_max_dtc_k']:.3f}",
                        "yes" if max(r["tf32_max_dtc_k"], r["amp_max_dtc_k"]) <= TOLERANCE_K else "no",
                        f"{r['fp32_cand_steps_per_s'] / a['limit']:.0%}",
                    ]
                    for r in out["gpu"]
                ],
            )
        )
        print(f"\nThe paper's search ({PAPER_STARTS:,} starts x {PAPER_STEPS:,} steps), FP32, one shard per GPU:\n")
        print(
            md_table(
                ["GPUs", "starts per GPU", "time"],
                [[r["gpus"], r["starts_per_gpu"], f"{r['fp32_hours'] * 60:.1f} min"] for r in out["full_search"]],
            )
        )


if __name__ == "__main__":
    main()
