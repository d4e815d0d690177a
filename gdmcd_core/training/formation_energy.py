"""Stability guard: a composition -> formation energy (eV/atom) surrogate (issue 6, part 4).

Same featurization and network as the Tc model (`TcResNet` over the 4x7x32 composition image),
with a signed linear output (`output_relu=False`), trained on JARVIS-DFT 3D formation energies
(`raw/jarvis_dft_3d_subset.csv` in the data folder; Choudhary et al., npj Comput. Mater. 6, 173
(2020)). Compositions with several polymorphs keep the lowest-e_hull one, the polymorph a
synthesis would most likely reach. Split: random 0.80/0.05/0.15 over unique compositions with a
recorded seed. `train_model` early-stops on its "SuperCon val MAE"; every row here is marked
`is_supercon`, so that metric is the validation formation-energy MAE in eV/atom.

A composition-only surrogate sees no structure: it estimates the formation energy of the most
stable known polymorph of similar compositions. E_f < 0 means stable against the elements, a
necessary, not sufficient, condition for synthesizability (competing phases are not checked).

Train: ``python -m gdmcd_core.training.formation_energy --out checkpoints/formation_energy.pt``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from gdmcd_core.chem.composition import FormulaError, to_vector
from gdmcd_core.data.dataset import TEST, TRAIN, DataConfig, Dataset, assign_split
from gdmcd_core.data.paths import JARVIS_FILE, find_data_dir
from gdmcd_core.model.checkpoint import save_checkpoint
from gdmcd_core.model.formation_energy import (  # noqa: F401  (re-exported: CLI, app and tests import them here)
    FORMATION_ENERGY_CHECKPOINT,
    load_formation_energy_model,
)
from gdmcd_core.model.resnet import ModelConfig, count_parameters
from gdmcd_core.training.loop import TrainConfig, predict_array, resolve_device, train_model
from gdmcd_core.util import provenance, sha256_file

TARGET = "formation_energy_per_atom"  # JARVIS column, eV/atom (OptB88vdW)
SPLIT_SEED = 0
# Compact: width 16, one block per stage (~0.2 M parameters, ~0.4 MB in float16).
MODEL_CONFIG = ModelConfig(width=16, layers=(1, 1, 1, 1), stem="keep", head_bias=0.0, output_relu=False)
TRAIN_CONFIG = TrainConfig(
    epochs=20,
    batch_size=256,
    lr=0.005,
    lr_min=1e-4,
    huber_delta_k=0.1,  # eV/atom here (the field keeps its Tc name): near-L1 loss, robust to DFT outliers
    patience=4,
    seed=0,
    device="cpu",
    threads=1,
)


def load_jarvis(data_dir: str | Path | None = None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """JARVIS rows, one per composition -> (table, x (N, 118) float32 fractions, file SHA-256).

    Drops rows with a blank or unparsable formula or no formation energy; among rows with the
    same composition (rounded fractions) keeps the one with the lowest e_hull (eV/atom).
    """
    data_dir = Path(data_dir) if data_dir else find_data_dir(required=(JARVIS_FILE,), download=False)
    path = data_dir / JARVIS_FILE
    df = pd.read_csv(path, na_values=["na"], usecols=["jid", "formula", TARGET, "ehull"])
    df = df.dropna(subset=["formula", TARGET]).reset_index(drop=True)
    vecs, ok = [], np.zeros(len(df), dtype=bool)
    for i, f in enumerate(df["formula"]):
        try:
            vecs.append(to_vector(str(f)))
            ok[i] = True
        except FormulaError:
            continue
    x = np.stack(vecs).astype(np.float32)
    df = df[ok].reset_index(drop=True)
    df["key"] = [v.tobytes() for v in np.round(x, 4)]
    df["ehull"] = df["ehull"].fillna(np.inf)
    keep = df.sort_values(["ehull", "jid"], kind="stable").drop_duplicates("key").index.sort_values()
    return df.loc[keep].drop(columns="key").reset_index(drop=True), x[keep], sha256_file(path)


def build_formation_dataset(split_seed: int = SPLIT_SEED, data_dir: str | Path | None = None) -> Dataset:
    """A `Dataset` whose `tc_k` holds E_f in eV/atom; all rows marked `is_supercon` (see module docstring)."""
    df, x, digest = load_jarvis(data_dir)
    n = len(df)
    config = DataConfig(split="random", split_seed=split_seed, include_cod=False, supercon_replicas=1)
    split = assign_split(n, config.fractions, np.random.default_rng(split_seed))
    return Dataset(
        x=x,
        tc_k=df[TARGET].to_numpy(np.float32),
        is_supercon=np.ones(n, dtype=bool),
        split=split,
        formula=df["formula"].to_numpy(str),
        first_year=np.full(n, np.nan),
        is_hydride=np.zeros(n, dtype=bool),
        config=config,
        checksums={JARVIS_FILE: digest},
    )


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.abs(np.asarray(pred, np.float64) - target).mean())


def train_formation_energy(
    out: str | Path = FORMATION_ENERGY_CHECKPOINT,
    model_config: ModelConfig = MODEL_CONFIG,
    train_config: TrainConfig = TRAIN_CONFIG,
    split_seed: int = SPLIT_SEED,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Train the surrogate, save it (float16) with its card, and return the card.

    The card records the data checksum, split seed and sizes, the held-out test MAE (eV/atom),
    the train-mean baseline's test MAE, and the training time in seconds.
    """
    t0 = time.time()
    ds = build_formation_dataset(split_seed, data_dir)
    model, history = train_model(ds, model_config, train_config, progress=progress)
    device = resolve_device(train_config.device)
    test = ds.indices(TEST)
    y_test = ds.tc_k[test].astype(np.float64)
    pred = predict_array(model.to(device), ds.x[test])
    y_train = ds.tc_k[ds.indices(TRAIN)].astype(np.float64)
    test_mae = mae(pred, y_test)
    card = {
        "kind": "formation_energy",
        "target": f"{TARGET} (eV/atom, JARVIS-DFT 3D OptB88vdW)",
        "units": "eV/atom",
        "dedupe": "one row per composition (fractions rounded to 4 decimals), lowest ehull kept",
        "data_checksums": ds.checksums,
        "data_config": ds.config.to_dict(),
        "split_seed": split_seed,
        "n_rows": {"train": int((ds.split == TRAIN).sum()), "val": int((ds.split == 1).sum()), "test": int(len(test))},
        "train_config": train_config.to_dict(),
        "n_parameters": count_parameters(model),
        "metrics": {
            "test_mae_ev_atom": test_mae,
            "test_rmse_ev_atom": float(np.sqrt(np.mean((pred - y_test) ** 2))),
            "test_r2": float(1 - np.sum((pred - y_test) ** 2) / np.sum((y_test - y_test.mean()) ** 2)),
            "baseline_train_mean_test_mae_ev_atom": mae(np.full_like(y_test, y_train.mean()), y_test),
            "baseline_train_median_test_mae_ev_atom": mae(np.full_like(y_test, np.median(y_train)), y_test),
            "best_val_mae_ev_atom": history["best_val_mae_supercon"],
            "best_epoch": history["best_epoch"],
            "epochs_run": len(history["epochs"]),
        },
        "train_seconds": history["train_seconds"],
        "total_seconds": time.time() - t0,
        **provenance(),
    }
    save_checkpoint(out, [model.cpu()], card, half=True)
    return json.loads(Path(out).with_suffix(".json").read_text())


@torch.no_grad()
def predict_formation_energy(model: nn.Module, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """x: (B, 118) fractions -> (B,) predicted formation energy in eV/atom (float32)."""
    device = next(model.parameters()).device
    out = [
        model(torch.as_tensor(np.asarray(x[i : i + batch_size]), dtype=torch.float32, device=device)).cpu().numpy()
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train the formation-energy surrogate on JARVIS-DFT 3D.")
    p.add_argument(
        "--out", default=str(FORMATION_ENERGY_CHECKPOINT), help="checkpoint path (.pt); the card goes next to it"
    )
    p.add_argument("--epochs", type=int, default=TRAIN_CONFIG.epochs)
    p.add_argument("--threads", type=int, default=TRAIN_CONFIG.threads, help="torch CPU threads")
    p.add_argument("--device", default=TRAIN_CONFIG.device, help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--split-seed", type=int, default=SPLIT_SEED)
    p.add_argument("--seed", type=int, default=TRAIN_CONFIG.seed, help="model initialization / batch order seed")
    args = p.parse_args(argv)
    tc = replace(TRAIN_CONFIG, epochs=args.epochs, threads=args.threads, device=args.device, seed=args.seed)
    card = train_formation_energy(args.out, train_config=tc, split_seed=args.split_seed)
    m = card["metrics"]
    print(
        f"saved {args.out}: test MAE {m['test_mae_ev_atom']:.4f} eV/atom "
        f"(train-mean baseline {m['baseline_train_mean_test_mae_ev_atom']:.4f}), R2 {m['test_r2']:.3f}, "
        f"{card['n_rows']['test']} test compositions, {card['train_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
