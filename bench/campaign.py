"""Simulated campaigns: the closed loop with the lab, measured retrospectively on the time split.

The model is the time-split ensemble (checkpoints/tc_timesplit.pt: trained on rows first reported before 2010).
The pool is what it never trained on and whose outcome is known: the test rows of its split, i.e. SuperCon
compositions first reported from 2010 on (outcome: their Tc) and the non-superconductors held out of training
(outcome: no transition down to 2 K). Each seed draws POOL_SIZE of them. Every round each arm picks a batch of
BATCH from what it has not measured, the outcomes are revealed, and the closed-loop arms update the model
(campaign/update.py: fine-tune with replay, censored labels, σ factor, boosted trees: the update `gdmcd campaign
update` runs); ROUNDS rounds.

Arms: closed_default (the diverse selection, updated every round), closed_greedy (Tc − κσ, updated),
open_loop (the diverse selection, never updated), random. A discovery is a measured superconductor with
Tc ≥ 20 K (and ≥ 40 K); element_sets_tc20 counts their distinct element sets. Means over seeds with a 95 %
t-interval. The pool rows carry no parent phase, so the selection's parent term is idle here.

    python -m bench.campaign --json      # about 15 min on 2 CPU cores; writes bench/results/campaign.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

import numpy as np
import torch
from scipy import stats as sps

from bench.common import add_doc_option, fmt, write_doc, write_results
from gdmcd_core.campaign.propose import Settings, choose
from gdmcd_core.campaign.update import DEFAULT_T_MIN_K, Labels, UpdateConfig, learn
from gdmcd_core.chem.distance import nearest_l1
from gdmcd_core.data.dataset import TEST, TRAIN
from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.model.trees import second_opinion
from gdmcd_core.training.evaluate import dataset_for
from gdmcd_core.util import REPO_ROOT

CHECKPOINT = "checkpoints/tc_timesplit.pt"
ARMS = ("closed_default", "closed_greedy", "open_loop", "random")
POOL_SIZE, BATCH, ROUNDS, SEEDS = 3000, 20, 10, 5
TC_HIT_K = (20.0, 40.0)


class World:
    """What every arm shares: the model, the replay rows, the candidate pool with its hidden outcomes."""

    def __init__(self, checkpoint: str) -> None:
        self.ens = load_checkpoint(REPO_ROOT / checkpoint)
        self.trees, _ = second_opinion(self.ens)
        ds = dataset_for(self.ens)
        tr = ds.indices(TRAIN)
        self.replay_x, self.replay_tc = ds.x[tr], ds.tc_k[tr].astype(np.float64)
        self.replay_sc = ds.is_supercon[tr]
        self.train_sc_x = ds.x[tr[self.replay_sc]]
        te = ds.indices(TEST)
        _, first = np.unique(ds.x[te].round(6), axis=0, return_index=True)  # one row per composition
        te = te[np.sort(first)]
        self.pool_x, self.pool_tc = ds.x[te], np.where(ds.is_supercon[te], ds.tc_k[te], 0.0).astype(np.float64)
        self.pool_sc = ds.is_supercon[te]
        self.pool_formula = ds.formula[te]
        _, self.pool_d = nearest_l1(self.pool_x, self.train_sc_x)


def predict(ens, x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = ens.predict(x, distance=d)
    return mean.astype(np.float64), std.astype(np.float64)


def update(world: World, ens, trees, measured: list[int], idx: np.ndarray, config: UpdateConfig):
    """One model update on every measurement so far (pool positions `measured` of the seed's pool `idx`)."""
    rows = idx[measured]
    sc = world.pool_sc[rows]
    lab = Labels(
        x=world.pool_x[rows],
        tc=np.where(sc, world.pool_tc[rows], np.nan),
        t_min=np.where(sc, np.nan, DEFAULT_T_MIN_K),
        ids=list(range(len(rows))),
    )
    replay = (world.replay_x, world.replay_tc, world.replay_sc)
    before = predict(ens, lab.x, world.pool_d[rows])
    new, trees, _ = learn(ens, trees, lab, replay, before, config, {"simulated": True})
    return new, trees


def run_arm(
    world: World, arm: str, seed: int, config: UpdateConfig, rounds: int = ROUNDS, pool_size: int = POOL_SIZE
) -> dict:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(world.pool_x), size=min(pool_size, len(world.pool_x)), replace=False)
    ens, trees = world.ens, None  # the selection reads the ensemble only: the trees' refit is timed in update_times
    settings = Settings(strategy="greedy" if arm == "closed_greedy" else "diverse")
    measured: list[int] = []
    per_round, update_s = [], []
    for rnd in range(rounds):
        if arm == "random":
            open_ = np.setdiff1d(np.arange(len(idx)), measured)
            picks = list(rng.choice(open_, size=min(BATCH, len(open_)), replace=False))
        else:
            tc, sd = predict(ens, world.pool_x[idx], world.pool_d[idx])
            pool = [
                {
                    "formula": str(i),
                    "x": world.pool_x[j],
                    "tc_k": float(tc[i]),
                    "sigma_k": float(sd[i]),
                    "parent_formula": None,
                }
                for i, j in enumerate(idx)
            ]
            done = [(str(i), world.pool_x[idx[i]]) for i in measured]
            history = {"measured": done, "failed": [], "sent": []}
            picks = [int(c["formula"]) for c in choose(pool, history, BATCH, settings, rng)]
        measured += picks
        tcs = world.pool_tc[idx[picks]]
        per_round.append({k: int((tcs >= k).sum()) for k in TC_HIT_K})
        if arm.startswith("closed") and rnd < rounds - 1:
            t0 = time.perf_counter()
            ens, trees = update(world, ens, trees, measured, idx, replace(config, seed=seed * 100 + rnd))
            update_s.append(time.perf_counter() - t0)
    hits = idx[measured][world.pool_tc[idx[measured]] >= TC_HIT_K[0]]
    sets = {tuple(np.flatnonzero(world.pool_x[i] > 0)) for i in hits}
    return {
        "discoveries_tc20": sum(r[TC_HIT_K[0]] for r in per_round),
        "discoveries_tc40": sum(r[TC_HIT_K[1]] for r in per_round),
        "element_sets_tc20": len(sets),
        "per_round_tc20": [r[TC_HIT_K[0]] for r in per_round],
        "update_s": update_s,
    }


def update_times(world: World, config: UpdateConfig, n: int = 3, measured: int = 100) -> list[float]:
    """Seconds of `n` whole updates as `gdmcd campaign update` runs them (trees refit included) on `measured` rows."""
    idx = np.random.default_rng(0).choice(len(world.pool_x), size=measured, replace=False)
    out = []
    for k in range(n):
        t0 = time.perf_counter()
        update(world, world.ens, world.trees, list(range(measured)), idx, replace(config, seed=k))
        out.append(time.perf_counter() - t0)
    return out


def summary(values: list[float]) -> dict:
    """Mean and 95 % t-interval over seeds, and the values."""
    m = float(np.mean(values))
    half = (
        float(sps.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))
        if len(values) > 1
        else 0.0
    )
    return {"mean": m, "ci_low": m - half, "ci_high": m + half, "per_seed": values}


def markdown(out: dict) -> str:
    lines = [
        f"Pool {out['pool_size']} compositions per seed (of {out['pool_total']}: SuperCon from 2010 on and held-out "
        f"non-superconductors, {out['pool_sc_share']:.0%} superconductors, {out['pool_tc20_share']:.1%} with Tc ≥ 20 K); "
        f"{out['rounds']} rounds of {BATCH}; {len(out['seeds'])} seeds; mean [95 % interval].",
        "",
        "| arm | discoveries Tc ≥ 20 K | Tc ≥ 40 K | element sets (Tc ≥ 20 K) |",
        "|---|---|---|---|",
    ]
    for arm in out["arms"]:
        cells = [
            f"{fmt(out[k][arm]['mean'], '.1f')} [{fmt(out[k][arm]['ci_low'], '.1f')}, {fmt(out[k][arm]['ci_high'], '.1f')}]"
            for k in ("discoveries_tc20", "discoveries_tc40", "element_sets_tc20")
        ]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Median model update: {out['update_s']:.1f} s as `gdmcd campaign update` runs it on 100 measurements "
        f"(fine-tune of {out['update_config']['steps']} steps per member with replay, σ factor, "
        f"{out['update_config']['trees_rounds']} tree rounds); {fmt(out['sim_update_s'], '.1f')} s within the simulation, "
        "which skips the trees (its selection reads the ensemble only).",
        f"Closed loop / open loop: {fmt(out['ratio_closed_open'], '.2f')}; closed loop / random: "
        f"{fmt(out['ratio_closed_random'], '.2f')} (targets 2 and 3).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--steps", type=int, default=UpdateConfig().steps, help="fine-tune steps per member per update")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--rounds", type=int, default=ROUNDS, help="a quick look: fewer rounds (results not written)")
    p.add_argument("--pool", type=int, default=POOL_SIZE, help="compositions drawn into each seed's pool")
    p.add_argument(
        "--json", action="store_true", help="print the result as JSON (and write bench/results/campaign.json)"
    )
    add_doc_option(p, "campaign")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    config = UpdateConfig(steps=a.steps)
    world = World(CHECKPOINT)
    res: dict[str, list[dict]] = {arm: [] for arm in a.arms}
    for seed in range(a.seeds):
        for arm in a.arms:
            r = run_arm(world, arm, seed, config, a.rounds, a.pool)
            res[arm].append(r)
            print(f"seed {seed} {arm:15s} tc20 {r['discoveries_tc20']:3d} sets {r['element_sets_tc20']:3d}", flush=True)
    out: dict = {
        "arms": list(a.arms),
        "seeds": list(range(a.seeds)),
        "pool_size": a.pool,
        "pool_total": int(len(world.pool_x)),
        "pool_sc_share": float(world.pool_sc.mean()),
        "pool_tc20_share": float((world.pool_tc >= 20).mean()),
        "rounds": a.rounds,
        "batch": BATCH,
        "update_config": config.__dict__,
    }
    for key in ("discoveries_tc20", "discoveries_tc40", "element_sets_tc20"):
        out[key] = {arm: summary([r[key] for r in res[arm]]) for arm in a.arms}
    out["per_round_tc20"] = {arm: [r["per_round_tc20"] for r in res[arm]] for arm in a.arms}
    times = [t for arm in a.arms for r in res[arm] for t in r["update_s"]]
    out["sim_update_s"] = statistics.median(times) if times else None  # fine-tune and σ only
    out["update_s_runs"] = update_times(world, config)
    out["update_s"] = statistics.median(out["update_s_runs"])
    d = out["discoveries_tc20"]
    closed = d.get("closed_default", {}).get("mean")
    out["ratio_closed_open"] = (
        closed / d["open_loop"]["mean"] if closed and d.get("open_loop", {}).get("mean") else None
    )
    out["ratio_closed_random"] = closed / d["random"]["mean"] if closed and d.get("random", {}).get("mean") else None
    text = markdown(out)
    print("\n" + text)
    official = a.rounds == ROUNDS and a.pool == POOL_SIZE and a.seeds >= SEEDS
    if a.json:
        print(json.dumps(out))
        if official:
            write_results("campaign", out, [world.ens])
    if a.doc and official:
        write_doc(a.doc, text, checkpoints=[world.ens])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
