"""Hydride mode (paper S5): the hydride-balanced training set, its checkpoint, and the search preset.

Hydride superconductors (HSCs) are a handful of SuperCon rows. The paper builds three training
sets over one split and compares the Tc MAE on the other superconductors (Table 8):

* D_random: the usual random split (`data.build_dataset`).
* D_HSC1: the same split, with every HSC moved into the training part.
* D_HSC200: D_HSC1 plus copies of the HSCs, the same number for every element combination
  ({H, Pd} has ~20 compositions, {H, La} one), until HSCs make about half of the training rows.

Which rows are HSCs. The paper does not state its rule; it counts "over ten" H-Pd compositions,
and SuperCon's PdH_x rows have x = 0.77..1 (H fraction 0.43..0.5). So here an HSC is a SuperCon
composition with at most `HYDRIDE_MAX_ELEMENTS` elements and an H atomic fraction of at least
`HYDRIDE_MIN_H_FRACTION` (0.4), the one hydride rule of `chem.composition.is_hydride`: PdH0.77, H3S, LaH10,
BaReH9 count; dilute interstitial NbH0.05 does not. This is wider than the data README's
`high_pressure_hydride` flag (H >= 0.5, `data.cleaning.HIGH_PRESSURE_HYDRIDE_MIN_H_FRACTION`), which would drop
most PdH_x rows.

Extra rows come from `hydrides_from_public_files.csv`, those whose composition is not already in
SuperCon (in practice Konno's CaH6 245 K and PH3 100 K; note the data README: several of these
values look like predictions, CaH6 was measured at ~215 K, and no pressure is recorded).
`hydrides_literature_manual.csv` is typed from memory and UNVERIFIED, so it is never used here.

Train: ``gdmcd train --task hydride --out checkpoints/tc_hydride.pt`` (D_HSC200) and
``gdmcd train --task hydride --hydride-mode hsc1 --out .checkpoint_work/tc_hydride_hsc1.pt``;
Table 8: ``python -m bench.reproduce_paper --only table8`` (`table8` below).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gdmcd_core.chem.composition import HYDRIDE_MAX_ELEMENTS, HYDRIDE_MIN_H_FRACTION, is_hydride, reduced_key, to_vector
from gdmcd_core.data.dataset import TEST, TRAIN, DataConfig, Dataset, build_dataset
from gdmcd_core.data.paths import HYDRIDE_FILE, find_data_dir
from gdmcd_core.model.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT, load_checkpoint, read_card
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig
from gdmcd_core.training.loop import TrainConfig
from gdmcd_core.training.metrics import mean_absolute_error
from gdmcd_core.util import predict_array, sha256_file

HYDRIDE_CHECKPOINT = CHECKPOINT_DIR / "tc_hydride.pt"
# Not committed: the D_HSC1 model of Table 8 (git-ignored folder).
WORK_DIR = CHECKPOINT_DIR.parent / ".checkpoint_work"
HSC1_CHECKPOINT = WORK_DIR / "tc_hydride_hsc1.pt"
HYDRIDE_MODES = ("random", "hsc1", "hsc200")  # D_random, D_HSC1 (every hydride in train), D_HSC200 (balanced)
TARGET_SHARE = 0.5  # D_HSC200: hydrides are ~half of the training rows (paper: 50.263 %)
FALLBACK_MODEL = ModelConfig(width=16, layers=(1, 1, 1, 1))  # when checkpoints/tc_default.json is absent
MACHINE_FIELDS = ("device", "threads")  # of a card's train_config: where it ran, not how the model was trained


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
        if self.mode not in HYDRIDE_MODES:
            raise ValueError(f"mode must be one of {HYDRIDE_MODES}, got {self.mode!r}")
        if not 0 < self.target_share < 1:
            raise ValueError(f"target_share must be in (0, 1), got {self.target_share}")


def public_hydride_rows(supercon_keys: set[str], data_dir: str | Path | None = None) -> pd.DataFrame:
    """Hydride rows of the public file whose composition is not in SuperCon, one per composition.

    Returns columns formula, tc_k (mean over duplicates, K), source, key and pressure_gpa (the file's pressure in
    GPa, mean over duplicates; NaN where it records none, as for every row of the current file). Only
    `hydrides_from_public_files.csv` is read (never the UNVERIFIED manual file).
    """
    data_dir = Path(data_dir) if data_dir else find_data_dir()
    path = data_dir / HYDRIDE_FILE
    if not path.is_file():
        return pd.DataFrame(columns=["formula", "tc_k", "source", "key", "pressure_gpa"])
    df = pd.read_csv(path)
    df["key"] = [reduced_key(to_vector(f)) for f in df["formula"]]
    df["pressure_gpa"] = pd.to_numeric(df["pressure_gpa"], errors="coerce") if "pressure_gpa" in df else np.nan
    df = df[~df["key"].isin(supercon_keys)]
    return (
        df.groupby("key", sort=False)
        .agg(
            formula=("formula", "first"),
            tc_k=("tc_k", "mean"),
            source=("source", "first"),
            pressure_gpa=("pressure_gpa", "mean"),
        )
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
    `is_hydride` is set by `chem.composition.is_hydride` (on superconductors, and with `balance_negatives` on the
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
                # recorded, not learned from: the file's pressure (NaN where none), NaN for SuperCon and COD rows
                pressure_gpa=np.concatenate([np.full(len(ds.x), np.nan), extra["pressure_gpa"].to_numpy(float)]),
            )
    h_rich = is_hydride(ds.x)
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

    The card's device and thread count are left out (they describe the machine it trained on: TrainConfig's
    defaults apply); the last item says where the configs came from.
    """
    try:
        card = read_card(default_card)
    except Exception:
        return FALLBACK_MODEL, TrainConfig(), DataConfig(), "fallback (no default card)"
    model = ModelConfig.from_dict(card["model_config"])
    train = TrainConfig.from_dict({k: v for k, v in card.get("train_config", {}).items() if k not in MACHINE_FIELDS})
    data = DataConfig.from_dict(card.get("data_config", {}))
    return model, train, data, f"card {Path(default_card).with_suffix('.json').name}"


def non_hydride_test_mae(model: torch.nn.Module, ds: Dataset) -> tuple[float, int]:
    """Tc MAE (K) on the SuperCon, non-hydride test rows of ds, and their count."""
    idx = ds.indices(TEST)
    idx = idx[ds.is_supercon[idx] & ~is_hydride(ds.x[idx])]
    pred = predict_array(model.cpu(), ds.x[idx])
    return mean_absolute_error(ds.tc_k[idx], pred), int(len(idx))


def _train_formulas(ds: Dataset, rows: np.ndarray) -> list[str]:
    """The distinct formulas of the training rows among `rows` (a (N,) mask)."""
    train_idx = ds.indices(TRAIN)
    return sorted({str(f) for f in ds.formula[train_idx][rows[train_idx]]})


def hydride_card_fields(ds: Dataset, hydride: HydrideConfig) -> dict:
    """What a hydride model's card records besides the Tc card: its `HydrideConfig` and the hydride rule, the
    hydrides (and H-rich non-superconductors) it trained on and their share of the training rows."""
    return {
        "hydride_config": {
            **asdict(hydride),
            "min_h_fraction": HYDRIDE_MIN_H_FRACTION,
            "max_elements": HYDRIDE_MAX_ELEMENTS,
        },
        "split_seed": ds.config.split_seed,
        "hydrides_in_train": _train_formulas(ds, ds.is_hydride & ds.is_supercon),
        "hydride_negatives_in_train": _train_formulas(ds, ds.is_hydride & ~ds.is_supercon),
        "hydride_share_of_training_rows": hydride_share(ds),
        "training_rows_after_replication": int(len(ds.train_indices())),
    }


def table8(
    checkpoints: dict[str, str | Path], data_config: DataConfig | None = None, data_dir: str | Path | None = None
) -> pd.DataFrame:
    """Paper Table 8 for our models: hydride share of the training rows and non-hydride test MAE (K).

    checkpoints: {"D_random": path, "D_HSC1": path, "D_HSC200": path}; missing files are skipped.
    Every model is scored on the same rows (SuperCon, non-hydride, test part of `data_config`'s
    split). An ensemble gets two rows, its first member alone (comparable with a single hydride
    model trained with the same seed) and its mean.
    """
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
