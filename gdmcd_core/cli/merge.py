"""`gdmcd merge A.pt B.pt ... --out C.pt`: one ensemble from members trained apart (training/merge.py)."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_USAGE = 0, 2


def add_merge_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("checkpoints", nargs="+", metavar="PT", help="two or more checkpoints to merge (one with --weights)")
    p.add_argument("--out", required=True, help="merged checkpoint path, e.g. checkpoints/tc_jarvis.pt")
    p.add_argument("--data-dir", default=None, help="folder with the data files (to calibrate and evaluate)")
    p.add_argument(
        "--weights",
        choices=("float16", "int8"),
        default="float16",
        help="storage of the weights: int8 (per-channel scales) halves the file; σ and the metrics use them as stored",
    )
    p.set_defaults(handler=handle_merge)
    return p


def handle_merge(a: argparse.Namespace) -> int:
    from gdmcd_core.data.paths import DataNotFoundError
    from gdmcd_core.model.checkpoint import CheckpointError
    from gdmcd_core.training.merge import merge_checkpoints

    try:
        card = merge_checkpoints(a.checkpoints, a.out, a.data_dir, weights=a.weights)
    except (CheckpointError, DataNotFoundError, ValueError, OSError) as exc:
        print(f"gdmcd merge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    m = card["metrics_test"]
    print(
        f"{a.out}: {card['n_members']} members; SuperCon test MAE {m['supercon_test_mae_k']:.2f} K, "
        f"R² {m['supercon_test_r2']:.3f}; sha256 {card['sha256'][:12]}…"
    )
    return EXIT_OK


__all__ = ["add_merge_parser", "handle_merge"]
