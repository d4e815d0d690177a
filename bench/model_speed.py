"""Speed of candidate Tc-model architectures: parameters, MFLOP per forward, training samples/s,
design candidate-steps/s (forward + backward to x), on this machine.

    python bench/model_speed.py [--threads 2] [--seconds 3] [--device cpu]

Prints a markdown table. Accuracy of the trained variants is in bench/model_accuracy.py.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import add_doc_option, printed, write_doc
from gdmcd_core.model.resnet import RESNET18, ModelConfig, TcResNet, count_parameters

CONFIGS = {
    "ResNet18, stock stem (7x7/2 + max-pool)": RESNET18,
    "ResNet18, resolution-keeping stem": ModelConfig(width=64, layers=(2, 2, 2, 2), stem="keep"),
    "compact w32 (1,1,1,1), stock stem": ModelConfig(width=32, layers=(1, 1, 1, 1), stem="stock"),
    "compact w32 (1,1,1,1), keep stem": ModelConfig(width=32, layers=(1, 1, 1, 1), stem="keep"),
    "compact w16 (1,1,1,1), keep stem": ModelConfig(width=16, layers=(1, 1, 1, 1), stem="keep"),
}


def simplex_batch(b: int, device: torch.device) -> torch.Tensor:
    x = torch.rand(b, 118, device=device) ** 8  # a few dominant elements, like real compositions
    return x / x.sum(1, keepdim=True)


def mflop_per_forward(cfg: ModelConfig) -> float:
    m = TcResNet(cfg).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(simplex_batch(1, torch.device("cpu")))
    return fc.get_total_flops() / 1e6


def throughput(cfg: ModelConfig, device: torch.device, seconds: float, batch: int = 256) -> tuple[float, float]:
    m = TcResNet(cfg).to(device)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = simplex_batch(batch, device)
    y = torch.rand(batch, device=device) * 50
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        loss = torch.nn.functional.huber_loss(m.forward_raw(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    train = n / (time.perf_counter() - t0)
    m.eval().requires_grad_(False)
    xs = x.clone().requires_grad_(True)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        (g,) = torch.autograd.grad(m(xs).sum(), xs)
        n += batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return train, n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="cpu")
    add_doc_option(ap, "model_speed")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    with printed() as tables:
        print(f"device: {device}, torch threads: {a.threads}\n")
        print("| model | params | MFLOP/forward | train samples/s | design candidate-steps/s |")
        print("|---|---:|---:|---:|---:|")
        for name, cfg in CONFIGS.items():
            tr, de = throughput(cfg, device, a.seconds)
            print(
                f"| {name} | {count_parameters(TcResNet(cfg)):,} | {mflop_per_forward(cfg):.1f} | {tr:,.0f} | {de:,.0f} |"
            )
    if a.doc:
        write_doc(a.doc, tables.getvalue())


if __name__ == "__main__":
    main()
