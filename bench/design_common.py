"""Shared pieces of the design-engine benchmarks: options, model and data loading, tables."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.data.reference import ReferenceData, load_reference
from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig, TcResNet


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="Tc model (default checkpoints/tc_default.pt)")
    p.add_argument("--tiny", action="store_true", help="use a random tiny model (smoke test of the script only)")
    p.add_argument(
        "--member",
        type=int,
        default=None,
        help="use only ensemble member K of the checkpoint (the tables in docs/benchmarks/ say when they used member 0 of tc_default.pt)",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--seed", type=int, default=0)


def setup(args: argparse.Namespace) -> tuple[torch.nn.Module, ReferenceData, str]:
    """(model, reference data, one-line description of the model)."""
    torch.set_num_threads(args.threads)
    device = (
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    if args.tiny:
        torch.manual_seed(0)
        model = TcEnsemble([TcResNet(ModelConfig(width=4, layers=(1,)))]).to(device).eval().requires_grad_(False)
        desc = "tiny random model (smoke test; numbers mean nothing)"
    else:
        model = load_checkpoint(Path(args.checkpoint), device=device)
        if args.member is not None:
            if not 0 <= args.member < model.n_members:
                raise SystemExit(f"--member {args.member}: the checkpoint has members 0..{model.n_members - 1}")
            model = TcEnsemble(
                [model.members[args.member]], card=model.card, sha256=model.sha256, path=model.path
            ).eval()
        c = model.config
        desc = (
            f"{args.checkpoint} (width {c.width}, layers {list(c.layers)}, stem {c.stem}, "
            f"{model.n_members} member(s){'' if args.member is None else f' = member {args.member}'}, sha256 {model.sha256[:12]})"
        )
    t0 = time.perf_counter()
    ref = load_reference()
    desc += f"; {len(ref.sc_x)} SuperCon compositions loaded in {time.perf_counter() - t0:.0f} s"
    return model, ref, desc


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(B, 118) fractions -> (B,) ensemble-mean Tc in K."""
    dev = next(model.parameters()).device
    out = [
        model(torch.as_tensor(x[i : i + batch], dtype=torch.float32, device=dev)).cpu().numpy()
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def predict_formulas(model: torch.nn.Module, formulas: list[str]) -> np.ndarray:
    """Tc of formula strings, re-featurized from the text (once per distinct formula)."""
    uniq = sorted(set(formulas))
    tc = predict(model, np.stack([to_vector(f) for f in uniq]))
    pos = {f: t for f, t in zip(uniq, tc, strict=True)}
    return np.array([pos[f] for f in formulas])


def md_table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def mean_sd(v: np.ndarray) -> str:
    return f"{np.mean(v):+.1f} ± {np.std(v):.1f}"
