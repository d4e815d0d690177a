"""Decide the integer refinement's KEEP_SHARE (gdmcd_core/design/loop/refine.py) on pre-2010 data only: an inner split
of the discovery benchmark (bench/discovery.py), so that the benchmark's post-2010 targets choose nothing.

    python -m bench.keep_share_inner --doc                  # full: trains the inner model, then every share and seed
    python -m bench.keep_share_inner --save runs/inner.pt   # ... and keeps the inner model for a rerun
    python -m bench.keep_share_inner --checkpoint runs/inner.pt --doc   # reuse it: only the design runs
    python -m bench.keep_share_inner --tiny                 # smoke run: a tiny model, tiny designs, 1 seed (no doc)

Settings: [keep_share_inner], [targets] and [design] of bench/discovery.toml. The data are the time-split
checkpoint's (its card's data config) without the physical negatives (a negative is made from a superconductor of
any year and carries no year of its own, so it could leak the inner targets). SuperCon compositions first reported
before `cutoff_year` (2005; those without a year count as earlier) train the inner model (a seeded 16:1 train and
validation share, as the time split has); those from cutoff_year to 2009 are the inner targets, under the
benchmark's rules (L1 > 0.1 from every earlier composition, a hit within 0.05); no post-2010 row is used at all.
The inner model has the time-split checkpoint's architecture and training settings ([keep_share_inner] members and
epochs), σ calibrated on its own validation rows. For every share and seed, the gradient design ([design]) runs with
KEEP_SHARE set to that share; the share with the largest mean of `metric` wins (ties: the current value if it is
among them, else the smaller share).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench import discovery as D
from bench import discovery_metrics as dm
from bench.common import REPO, add_doc_option, write_doc
from bench.design_common import md_table
from gdmcd_core.data.dataset import TEST, VAL, DataConfig, Dataset, assign_split, build_dataset
from gdmcd_core.data.reference import reference_from_dataset
from gdmcd_core.design import DesignEngine
from gdmcd_core.design.loop import refine
from gdmcd_core.model.checkpoint import card_path, load_checkpoint, save_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig
from gdmcd_core.training.calibration import calibrate
from gdmcd_core.training.loop import TrainConfig, train_model
from gdmcd_core.training.tasks import tc_rows

TINY_MODEL = ModelConfig(width=4, layers=(1,))
TINY_TRAIN = {"epochs": 1, "patience": 1}
TINY_DESIGN = {"n_candidates": 16, "steps2": 5, "steps3": 5, "refine_steps": 10}


def inner_dataset(
    outer_card: dict, cutoff_year: int, first_year: int, data_dir: str | None
) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """The inner split (module docstring): (dataset with its new split, earlier (N,) bool, later (N,) bool)."""
    cfg = dataclasses.replace(DataConfig.from_dict(outer_card["data_config"]), physical_negatives=False)
    ds = build_dataset(cfg, data_dir)
    year = ds.first_year
    earlier = ds.is_supercon & ~(year >= cutoff_year)  # NaN years count as earlier
    later = ds.is_supercon & (year >= cutoff_year) & (year < first_year)
    split = ds.split.copy()
    split[ds.is_supercon & ~earlier] = TEST  # inner targets and post-2010 rows: never trained on
    f_tr, f_val = cfg.fractions[0], cfg.fractions[1]
    share = (f_tr / (f_tr + f_val), f_val / (f_tr + f_val), 0.0)
    split[earlier] = assign_split(int(earlier.sum()), share, np.random.default_rng(cfg.split_seed))
    return dataclasses.replace(ds, split=split), earlier, later


def train_inner(ds: Dataset, outer_card: dict, members: int, epochs: int, tiny: bool) -> TcEnsemble:
    """The inner model: the outer checkpoint's architecture and training settings, on the inner split."""
    model_cfg = TINY_MODEL if tiny else ModelConfig.from_dict(outer_card["model_config"])
    base = TrainConfig.from_dict(outer_card.get("train_config", {}))
    train_cfg = dataclasses.replace(base, **({"epochs": epochs, "device": "cpu"} | (TINY_TRAIN if tiny else {})))
    rows = tc_rows(ds)
    trained = [
        train_model(rows, model_cfg, dataclasses.replace(train_cfg, seed=base.seed + k), progress=False)[0]
        for k in range(members)
    ]
    ens = TcEnsemble(trained).eval()
    calibrate(ens, ds, VAL).apply_to(ens)
    return ens


def run_shares(model, ds: Dataset, targets: dm.Targets, settings: D.Settings, tiny: bool) -> dict[float, list[dict]]:
    """{share: [ranking metrics per seed]} of the gradient design with refine.KEEP_SHARE = share."""
    inner = settings.raw["keep_share_inner"]
    design = settings.design.replace(device="cpu", **(TINY_DESIGN if tiny else {}))
    seeds = inner["seeds"][:1] if tiny else inner["seeds"]
    ref, hit_l1 = reference_from_dataset(ds), float(settings.raw["targets"]["hit_l1"])
    out: dict[float, list[dict]] = {}
    kept = refine.KEEP_SHARE
    try:
        for share in inner["shares"]:
            refine.KEEP_SHARE = float(share)
            out[float(share)] = []
            for seed in seeds:
                cfg = design.replace(seed=int(seed), method="gradient")
                start = DesignEngine(model, cfg, reference=ref).start_points()
                run = D.run_arm(model, cfg, ref, start)
                m = dm.match(D.ranked_x(run["table"]), targets, hit_l1)
                out[float(share)].append(dm.ranking_metrics(m, targets, settings.ks))
                print(f"share {share} seed {seed}: {run['wall_s']:.0f} s", flush=True)
    finally:
        refine.KEEP_SHARE = kept
    return out


def decide(results: dict[float, list[dict]], metric: str, current: float) -> float:
    """The share with the largest mean of `metric` over seeds; ties: the current share if it is among them, else the
    smaller share (a tie is no reason to change the code)."""
    means = {s: float(np.mean([r[metric] for r in rows])) for s, rows in results.items()}
    best = [s for s, v in means.items() if v == max(means.values())]
    return current if current in best else min(best)


def report(results: dict[float, list[dict]], settings: D.Settings, n_targets: int, note: str) -> str:
    inner = settings.raw["keep_share_inner"]
    keys = ["precision_at_50", "target_hits_at_200", "element_set_hits_at_200", "recall_at_200"]
    rows = [
        [f"{s:g}"] + [D._ci(settings.summary([r[k] for r in rs]), ".3f" if "precision" in k else ".2f") for k in keys]
        for s, rs in results.items()
    ]
    winner = decide(results, inner["metric"], refine.KEEP_SHARE)
    verdict = (
        f"Winner by mean {inner['metric']}: KEEP_SHARE = {winner:g} (ties: the current value, else the smaller "
        f"share); the code has "
        f"{refine.KEEP_SHARE:g}" + (": keep it." if winner == refine.KEEP_SHARE else ": change it and the toml.")
    )
    head = (
        f"{note}\n\nInner split: model trained on SuperCon compositions first reported before {inner['cutoff_year']}; "
        f"{n_targets} inner targets (reported {inner['cutoff_year']}–{settings.raw['targets']['first_year'] - 1}, "
        f"L1 > {settings.raw['targets']['min_l1_to_known']} from every earlier composition); settings "
        f"{settings.path.name} sha256 {settings.sha256}. Cells: mean over seeds [bootstrap interval]."
    )
    return "\n\n".join([head, md_table(["KEEP_SHARE"] + keys, rows), verdict])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(D.CONFIG), help="the frozen settings (default bench/discovery.toml)")
    p.add_argument("--checkpoint", default=None, help="an inner model trained before (else one is trained here)")
    p.add_argument("--save", default=None, help="save the inner model trained here to this path")
    p.add_argument("--tiny", action="store_true", help="smoke run: tiny model and designs, one seed; no doc")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    add_doc_option(p, "keep_share_inner")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = D.Settings.load(args.config)
    inner = settings.raw["keep_share_inner"]
    outer = REPO / settings.raw["model"]["checkpoint"]
    outer_card = json.loads(card_path(outer).read_text())
    t0 = time.perf_counter()
    t = settings.raw["targets"]
    ds, earlier, later = inner_dataset(outer_card, int(inner["cutoff_year"]), int(t["first_year"]), args.data_dir)
    targets = dm.discovery_targets(ds.x, ds.tc_k, ds.formula, earlier, later, float(t["min_l1_to_known"]))
    print(f"inner split: {int(earlier.sum())} earlier, {len(targets)} targets ({time.perf_counter() - t0:.0f} s)")
    if args.checkpoint:
        model = load_checkpoint(args.checkpoint)
        note = f"Inner model: {args.checkpoint} (sha256 {model.sha256[:12]})"
    else:
        model = train_inner(ds, outer_card, int(inner["members"]), int(inner["epochs"]), args.tiny)
        note = f"Inner model trained here ({model.n_members} member(s){', tiny' if args.tiny else ''})"
        if args.save:
            save_checkpoint(Path(args.save), list(model.members), {"note": "keep_share_inner", "inner": inner})
    print(f"model ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    results = run_shares(model, ds, targets, settings, args.tiny)
    text = report(results, settings, len(targets), note)
    print("\n" + text + f"\n\ntotal {time.perf_counter() - t0:.0f} s")
    if args.doc and not args.tiny:
        write_doc(args.doc, text, checkpoints=[model])
    return {
        "results": results,
        "winner": decide(results, inner["metric"], refine.KEEP_SHARE),
        "n_targets": len(targets),
    }


if __name__ == "__main__":
    main()
