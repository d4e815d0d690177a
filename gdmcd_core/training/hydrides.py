"""Hydride mode (paper S5): the hydride-balanced training set, its checkpoint, and the search preset.

Hydride superconductors (HSCs) are a handful of SuperCon rows. The paper builds three training
sets over one split and compares the Tc MAE on the other superconductors (Table 8):

* D_random: the usual random split (`data.build_dataset`).
* D_HSC1: the same split, with every HSC moved into the training part.
* D_HSC200: D_HSC1 plus copies of the HSCs, the same number for every element combination
  ({H, Pd} has ~20 compositions, {H, La} one), until HSCs make about half of the training rows.

Which rows are HSCs. The paper does not state its rule; it counts "over ten" H-Pd compositions,
and SuperCon's PdH_x rows have x = 0.77..1 (H fraction 0.43..0.5). So here an HSC is a SuperCon
composition with at most `MAX_ELEMENTS` elements and an H atomic fraction of at least
`MIN_H_FRACTION` (0.4): PdH0.77, H3S, LaH10, BaReH9 count; dilute interstitial NbH0.05 does not.
This is wider than the data README's `high_pressure_hydride` flag (H >= 0.5), which would drop
most PdH_x rows.

Extra rows come from `hydrides_from_public_files.csv`, those whose composition is not already in
SuperCon (in practice Konno's CaH6 245 K and PH3 100 K; note the data README: several of these
values look like predictions, CaH6 was measured at ~215 K, and no pressure is recorded).
`hydrides_literature_manual.csv` is typed from memory and UNVERIFIED, so it is never used here.

Train: ``python -m gdmcd_core.training.hydrides train --out checkpoints/tc_hydride.pt`` (D_HSC200) and
``python -m gdmcd_core.training.hydrides train --mode hsc1 --out .checkpoint_work/tc_hydride_hsc1.pt``;
Table 8: ``python -m gdmcd_core.training.hydrides table8``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gdmcd_core.chem.composition import HYDRIDE_MAX_ELEMENTS, HYDRIDE_MIN_H_FRACTION, is_hydride, reduced_key, to_vector
from gdmcd_core.data.dataset import TEST, TRAIN, DataConfig, Dataset, build_dataset
from gdmcd_core.data.paths import HYDRIDE_FILE, find_data_dir
from gdmcd_core.model.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT, load_checkpoint, read_card, save_checkpoint
from gdmcd_core.model.resnet import ModelConfig
from gdmcd_core.training.loop import TrainConfig, predict_array, train_model
from gdmcd_core.util import provenance, sha256_file

HYDRIDE_CHECKPOINT = CHECKPOINT_DIR / "tc_hydride.pt"
# Not committed: the D_HSC1 model of Table 8 and resumable training states (git-ignored folder).
WORK_DIR = CHECKPOINT_DIR.parent / ".checkpoint_work"
HSC1_CHECKPOINT = WORK_DIR / "tc_hydride_hsc1.pt"
MIN_H_FRACTION, MAX_ELEMENTS = HYDRIDE_MIN_H_FRACTION, HYDRIDE_MAX_ELEMENTS  # recorded in the card
TARGET_SHARE = 0.5  # D_HSC200: hydrides are ~half of the training rows (paper: 50.263 %)
FALLBACK_MODEL = ModelConfig(width=16, layers=(1, 1, 1, 1))  # when checkpoints/tc_default.json is absent
FALLBACK_TRAIN = TrainConfig(epochs=30, patience=6, device="cpu", threads=1)
# Hydride search (paper S5): H pinned at 0.5, binary and ternary starts, N in 4..24, target 300 K.


is_hydride_superconductor = is_hydride  # the one hydride rule (chem.composition)


@dataclass(frozen=True)
class HydrideConfig:
    """How the hydride training set is built on top of a `DataConfig` (recorded in the card)."""

    mode: str = "hsc200"  # "random" (D_random), "hsc1" (all hydrides in train) or "hsc200" (balanced to target_share)
    target_share: float = TARGET_SHARE  # hydride share of the training rows after replication (hsc200)
    extra_public_rows: bool = True  # add hydrides_from_public_files.csv rows not in SuperCon (train only)
    # H-rich non-superconductors (H2, H2O, LiH ... among the physical negatives; H-rich COD rows) are balanced
    # like the superconducting hydrides (hsc200, hsc1): without it the ~1,600 copies of every superconducting
    # hydride drown the one H2 row, and the model calls H2 a 250 K superconductor
    balance_negatives: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("random", "hsc1", "hsc200"):
            raise ValueError(f"mode must be 'random', 'hsc1' or 'hsc200', got {self.mode!r}")
        if not 0 < self.target_share < 1:
            raise ValueError(f"target_share must be in (0, 1), got {self.target_share}")


def public_hydride_rows(supercon_keys: set[str], data_dir: str | Path | None = None) -> pd.DataFrame:
    """Hydride rows of the public file whose composition is not in SuperCon, one per composition.

    Returns columns formula, tc_k (mean over duplicates, K), source, key. Only
    `hydrides_from_public_files.csv` is read (never the UNVERIFIED manual file).
    """
    data_dir = Path(data_dir) if data_dir else find_data_dir()
    path = data_dir / HYDRIDE_FILE
    if not path.is_file():
        return pd.DataFrame(columns=["formula", "tc_k", "source", "key"])
    df = pd.read_csv(path)
    df["key"] = [reduced_key(to_vector(f)) for f in df["formula"]]
    df = df[~df["key"].isin(supercon_keys)]
    return (
        df.groupby("key", sort=False)
        .agg(formula=("formula", "first"), tc_k=("tc_k", "mean"), source=("source", "first"))
        .reset_index()
    )


def hydride_replicas_for_share(ds: Dataset, share: float) -> int:
    """`DataConfig.hydride_replicas` R that makes hydrides ~`share` of the training rows.

    The training rows are the base rows (SuperCon repeated `supercon_replicas` times, COD once)
    plus about R * n_hyd balanced copies (`Dataset.hydride_balanced_extra`), so
    share = (base_hyd + R n_hyd) / (base + R n_hyd).
    """
    idx = ds.indices(TRAIN)
    n_hyd = int(ds.is_hydride[idx].sum())
    if n_hyd == 0:
        return 0
    base_idx = replace(ds, config=replace(ds.config, hydride_replicas=0)).train_indices()
    base, base_hyd = len(base_idx), int(ds.is_hydride[base_idx].sum())
    r = (share * base - base_hyd) / ((1 - share) * n_hyd)
    return max(1, int(round(r)))


def build_hydride_dataset(
    data_config: DataConfig = DataConfig(), hydride: HydrideConfig = HydrideConfig(), data_dir: str | Path | None = None
) -> Dataset:
    """D_random, D_HSC1 or D_HSC200 over the split of `data_config` (paper S5, Table 8).

    All three share the split of every non-hydride row, so their non-hydride test sets are identical.
    `is_hydride` is set by `is_hydride_superconductor` (on superconductors, and with `balance_negatives` on the
    H-rich Tc = 0 rows too); the returned config carries the hydride_replicas used.
    """
    ds = build_dataset(replace(data_config, hydride_replicas=0), data_dir)
    if hydride.mode != "random" and hydride.extra_public_rows:
        keys = {reduced_key(v) for v in ds.x[ds.is_supercon]}
        extra = public_hydride_rows(keys, data_dir)
        if len(extra):
            data_dir_p = Path(data_dir) if data_dir else find_data_dir()
            n = len(extra)
            ds = replace(
                ds,
                x=np.concatenate([ds.x, np.stack([to_vector(f) for f in extra["formula"]]).astype(np.float32)]),
                tc_k=np.concatenate([ds.tc_k, extra["tc_k"].to_numpy(np.float32)]),
                is_supercon=np.concatenate([ds.is_supercon, np.ones(n, bool)]),
                split=np.concatenate([ds.split, np.full(n, TRAIN, np.int8)]),
                formula=np.concatenate([ds.formula, extra["formula"].to_numpy(str)]),
                first_year=np.concatenate([ds.first_year, np.full(n, np.nan)]),
                is_hydride=np.concatenate([ds.is_hydride, np.zeros(n, bool)]),
                checksums={**ds.checksums, HYDRIDE_FILE: sha256_file(data_dir_p / HYDRIDE_FILE)},
            )
    h_rich = is_hydride_superconductor(ds.x)
    is_hyd = h_rich & (ds.is_supercon | (hydride.balance_negatives and hydride.mode != "random"))
    split = ds.split.copy()
    if hydride.mode != "random":
        split[is_hyd] = TRAIN  # D_HSC1: every hydride is training data
    ds = replace(ds, split=split, is_hydride=is_hyd)
    if hydride.mode == "hsc200":
        ds = replace(
            ds, config=replace(ds.config, hydride_replicas=hydride_replicas_for_share(ds, hydride.target_share))
        )
    return ds


def hydride_share(ds: Dataset) -> float:
    """Share of hydride rows among the training rows after all replication."""
    idx = ds.train_indices()
    return float(ds.is_hydride[idx].mean()) if len(idx) else 0.0


def default_configs(default_card: str | Path = DEFAULT_CHECKPOINT) -> tuple[ModelConfig, TrainConfig, DataConfig, str]:
    """Model, training and data configs of the default Tc checkpoint's card, or the compact fallback.

    Training runs on the CPU with one thread here (the machine is shared); the last item says where the configs came from.
    """
    try:
        card = read_card(default_card)
    except Exception:
        return FALLBACK_MODEL, FALLBACK_TRAIN, DataConfig(), "fallback (no default card)"
    model = ModelConfig.from_dict(card["model_config"])
    tc = card.get("train_config", {})
    train = TrainConfig(**{k: v for k, v in tc.items() if k in TrainConfig.__dataclass_fields__})
    train = replace(train, device="cpu", threads=1)
    data = DataConfig.from_dict(card.get("data_config", {}))
    return model, train, data, f"card {Path(default_card).with_suffix('.json').name}"


def non_hydride_test_mae(model: torch.nn.Module, ds: Dataset) -> tuple[float, int]:
    """Tc MAE (K) on the SuperCon, non-hydride test rows of ds, and their count."""
    idx = ds.indices(TEST)
    idx = idx[ds.is_supercon[idx] & ~is_hydride_superconductor(ds.x[idx])]
    pred = predict_array(model.cpu(), ds.x[idx])
    return float(np.abs(pred - ds.tc_k[idx]).mean()), int(len(idx))


def train_hydride(
    out: str | Path,
    hydride: HydrideConfig = HydrideConfig(),
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    data_config: DataConfig | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    configs_from: str = "",
    init_from: str | Path = "",
) -> dict:
    """Train one Tc model on the hydride(-balanced) set, save it (float16) with its card; return the card.

    Configs default to those of checkpoints/tc_default.json (else the compact fallback). The
    training state is saved after every epoch to `.checkpoint_work/<name>.state.pt`; a run started again with the
    same arguments resumes from it (the file is removed when the checkpoint is written). `init_from`: a
    checkpoint of the same architecture whose first member the model starts from (warm start).
    """
    m0, t0, d0, source = default_configs()
    model_config, train_config, data_config = model_config or m0, train_config or t0, data_config or d0
    start = time.time()
    ds = build_hydride_dataset(data_config, hydride, data_dir)
    state_file = WORK_DIR / (Path(out).stem + ".state.pt")  # resumable state, outside checkpoints/
    state_file.parent.mkdir(parents=True, exist_ok=True)
    resume = torch.load(state_file, map_location="cpu", weights_only=True) if state_file.is_file() else None

    def save_state(row: dict) -> None:
        tmp = state_file.with_name(state_file.name + ".tmp")
        torch.save(row["state"], tmp)
        tmp.replace(state_file)

    init = load_checkpoint(init_from).members[0].state_dict() if init_from else None
    model, history = train_model(
        ds, model_config, train_config, progress=progress, on_epoch=save_state, resume_state=resume, init_weights=init
    )
    model = model.cpu().eval()
    mae, n_test = non_hydride_test_mae(model, ds)
    train_idx = ds.indices(TRAIN)
    card: dict[str, Any] = {
        "kind": "tc_regressor_hydride",
        "hydride_config": {**hydride.__dict__, "min_h_fraction": MIN_H_FRACTION, "max_elements": MAX_ELEMENTS},
        "configs_from": configs_from or source,
        "init_from": str(init_from),
        "train_config": train_config.to_dict(),
        "data_config": ds.config.to_dict(),
        "data_checksums": ds.checksums,
        "split_seed": ds.config.split_seed,
        "hydrides_in_train": sorted(
            {str(f) for f in ds.formula[train_idx][(ds.is_hydride & ds.is_supercon)[train_idx]]}
        ),
        "hydride_negatives_in_train": sorted(
            {str(f) for f in ds.formula[train_idx][(ds.is_hydride & ~ds.is_supercon)[train_idx]]}
        ),
        "hydride_share_of_training_rows": hydride_share(ds),
        "training_rows_after_replication": int(len(ds.train_indices())),
        "metrics_test": {"supercon_nonhydride_test_mae_k": mae, "n_test_supercon_nonhydride": n_test},
        "best_val_mae_supercon_k": history["best_val_mae_supercon"],
        "epochs_trained": len(history["epochs"]),
        "train_seconds": history["train_seconds"],
        "total_seconds": time.time() - start,
        **provenance(),
    }
    save_checkpoint(out, [model], card, half=True)
    state_file.unlink(missing_ok=True)
    return read_card(out)


def table8(
    checkpoints: dict[str, str | Path], data_config: DataConfig | None = None, data_dir: str | Path | None = None
) -> pd.DataFrame:
    """Paper Table 8 for our models: hydride share of the training rows and non-hydride test MAE (K).

    checkpoints: {"D_random": path, "D_HSC1": path, "D_HSC200": path}; missing files are skipped.
    Every model is scored on the same rows (SuperCon, non-hydride, test part of `data_config`'s
    split). An ensemble gets two rows, its first member alone (comparable with a single hydride
    model trained with the same seed) and its mean.
    """
    from gdmcd_core.model.ensemble import TcEnsemble

    data_config = data_config or default_configs()[2]
    paper = {"D_random": (0.049, 4.12), "D_HSC1": (0.051, 4.24), "D_HSC200": (50.263, 4.11)}
    modes = {"D_random": "random", "D_HSC1": "hsc1", "D_HSC200": "hsc200"}
    rows = []
    for name, path in checkpoints.items():
        if not Path(path).is_file():
            continue
        ens = load_checkpoint(path)
        ds = build_hydride_dataset(data_config, HydrideConfig(mode=modes.get(name, "random")), data_dir)
        share = ens.card.get("hydride_share_of_training_rows", hydride_share(ds))
        models = [("1 model", TcEnsemble([ens.members[0]]).eval())]
        if ens.n_members > 1:
            models.append((f"{ens.n_members}-member mean", ens))
        for label, m in models:
            mae, n = non_hydride_test_mae(m, ds)
            rows.append(
                {
                    "training_data": name,
                    "model": f"{Path(path).name} ({label})",
                    "hydride_share_pct": 100 * share,
                    "nonhydride_test_mae_k": mae,
                    "n_test": n,
                    "paper_share_pct": paper.get(name, (np.nan, np.nan))[0],
                    "paper_mae_k": paper.get(name, (np.nan, np.nan))[1],
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Hydride mode (paper S5): train a hydride checkpoint or print Table 8.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one model on D_random, D_HSC1 or D_HSC200")
    t.add_argument("--out", default=str(HYDRIDE_CHECKPOINT))
    t.add_argument("--mode", choices=("random", "hsc1", "hsc200"), default="hsc200")
    t.add_argument("--epochs", type=int, default=None, help="default: the default checkpoint's")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--patience", type=int, default=None)
    t.add_argument("--width", type=int, default=None, help="model width (default: the default checkpoint's)")
    t.add_argument("--layers", default=None, help="blocks per stage, e.g. 1,1,1,1")
    t.add_argument("--stem", choices=("keep", "stock"), default=None)
    t.add_argument("--lr", type=float, default=None, help="default: the default checkpoint's")
    t.add_argument("--init-from", default="", metavar="PT", help="warm start from this checkpoint's first member")
    s = sub.add_parser("table8", help="print Table 8 for existing checkpoints")
    s.add_argument("--random", default=str(DEFAULT_CHECKPOINT), help="D_random checkpoint (default: the default model)")
    s.add_argument("--hsc1", default=str(HSC1_CHECKPOINT))
    s.add_argument("--hsc200", default=str(HYDRIDE_CHECKPOINT))
    a = p.parse_args(argv)
    if a.cmd == "train":
        mcfg, tcfg, _, source = default_configs()
        tcfg = replace(
            tcfg,
            threads=a.threads,
            epochs=a.epochs or tcfg.epochs,
            patience=a.patience or tcfg.patience,
            seed=tcfg.seed if a.seed is None else a.seed,
            lr=a.lr or tcfg.lr,
        )
        changes: dict[str, Any] = {"width": a.width, "stem": a.stem}
        if a.layers:
            changes["layers"] = tuple(int(v) for v in a.layers.split(","))
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes:
            mcfg, source = replace(mcfg, **changes), f"command line over {source}"
        card = train_hydride(
            a.out,
            HydrideConfig(mode=a.mode),
            model_config=mcfg,
            train_config=tcfg,
            configs_from=source,
            init_from=a.init_from,
        )
        print(
            json.dumps(
                {k: card[k] for k in ("metrics_test", "hydride_share_of_training_rows", "train_seconds")}, indent=2
            )
        )
    else:
        df = table8({"D_random": a.random, "D_HSC1": a.hsc1, "D_HSC200": a.hsc200})
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
