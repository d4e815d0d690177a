"""Stability guard: a composition -> formation energy (eV/atom) surrogate, the `formation_energy` task.

Same featurization and network as the Tc model (`TcResNet` over the 4x7x32 composition image),
with a signed linear output (`output_relu=False`), trained on JARVIS-DFT 3D formation energies
(`raw/jarvis_dft_3d_subset.csv` in the data folder; Choudhary et al., npj Comput. Mater. 6, 173
(2020)). Compositions with several polymorphs keep the lowest-e_hull one, the polymorph a
synthesis would most likely reach. Split: random 0.80/0.05/0.15 over unique compositions with a
recorded seed; early stopping scores the formation-energy MAE of every validation row.

A composition-only surrogate sees no structure: it estimates the formation energy of the most
stable known polymorph of similar compositions. E_f < 0 means stable against the elements, a
necessary, not sufficient, condition for synthesizability (competing phases are not checked).

Train: ``gdmcd train --task formation_energy --out checkpoints/formation_energy.pt``; the design layer loads
it through `model/formation_energy.py`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import FormulaError, to_vector
from gdmcd_core.data.dataset import SPLIT_NAMES, TEST, TRAIN, VAL, DataConfig, assign_split
from gdmcd_core.data.paths import JARVIS_FILE, find_data_dir
from gdmcd_core.model.checkpoint import save_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.kinds import FORMATION_ENERGY_KIND
from gdmcd_core.model.resnet import ModelConfig, TcResNet, count_parameters
from gdmcd_core.training.loop import TrainConfig, TrainRows
from gdmcd_core.training.metrics import regression_metrics
from gdmcd_core.training.run import TrainedRun
from gdmcd_core.util import predict_array, provenance, sha256_file

TARGET = "formation_energy_per_atom"  # JARVIS column, eV/atom (OptB88vdW)
UNIT = "eV/atom"
SPLIT_SEED = 0
# Compact: width 16, one block per stage (~0.2 M parameters, ~0.4 MB in float16).
MODEL_CONFIG = ModelConfig(width=16, layers=(1, 1, 1, 1), stem="keep", head_bias=0.0, output_relu=False)
# huber_delta 0.1 eV/atom: a near-L1 loss, robust to DFT outliers
TRAIN_CONFIG = TrainConfig(epochs=20, batch_size=256, lr=0.005, lr_min=1e-4, huber_delta=0.1, patience=4, seed=0)
# Only the split fields of a DataConfig apply (recorded in the card); the rest describe the Tc data.
DATA_CONFIG = DataConfig(split="random", split_seed=SPLIT_SEED, include_cod=False, supercon_replicas=1)
SPLIT_FIELDS = ("split_seed", "fractions")  # the DataConfig fields the formation_energy task takes


@dataclass(frozen=True)
class FormationEnergyData:
    """JARVIS rows, one per composition, with their split.

    x: (N, 118) float32 fractions; energy: (N,) float32 E_f in eV/atom; split: (N,) in {0, 1, 2}.
    """

    x: np.ndarray
    energy: np.ndarray
    split: np.ndarray
    config: DataConfig  # the split's seed and fractions
    checksums: dict[str, str]  # of the JARVIS file

    def indices(self, part: int) -> np.ndarray:
        return np.flatnonzero(self.split == part)

    def counts(self) -> dict[str, int]:
        return {name: int((self.split == p).sum()) for p, name in enumerate(SPLIT_NAMES)}

    def rows(self) -> TrainRows:
        """Every training row once; early stopping on every validation row."""
        return TrainRows(self.x, self.energy, self.indices(TRAIN), self.indices(VAL))


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


def build_formation_dataset(
    config: DataConfig = DATA_CONFIG, data_dir: str | Path | None = None
) -> FormationEnergyData:
    """The JARVIS rows (`load_jarvis`) with a random split of `config.fractions`, seeded by `config.split_seed`.

    Raises ValueError for a config that differs from DATA_CONFIG in more than the split seed and fractions."""
    other = {k: v for k, v in config.to_dict().items() if k not in SPLIT_FIELDS and v != getattr(DATA_CONFIG, k)}
    if other:
        raise ValueError(
            "the formation_energy task takes a random split of the JARVIS rows; of the data options only "
            f"--split-seed applies, got {other}"
        )
    df, x, digest = load_jarvis(data_dir)
    split = assign_split(len(df), config.fractions, np.random.default_rng(config.split_seed))
    return FormationEnergyData(
        x=x,
        energy=df[TARGET].to_numpy(np.float32),
        split=split,
        config=config,
        checksums={JARVIS_FILE: digest},
    )


def _per_member(values: list) -> float | int | list:
    """A member's figure for a single model (as cards have always had it), the list for an ensemble."""
    return values[0] if len(values) == 1 else values


def formation_energy_metrics(members: list[TcResNet], data: FormationEnergyData, record: TrainedRun) -> dict:
    """Test MAE, RMSE and R² (eV/atom) of the members' mean, the train mean and median baselines' test MAE, and
    the training record (best validation MAE, best epoch, epochs run)."""
    test = data.indices(TEST)
    y_test = data.energy[test].astype(np.float64)
    y_train = data.energy[data.indices(TRAIN)].astype(np.float64)
    reg = regression_metrics(y_test, predict_array(TcEnsemble(members).eval(), data.x[test]))
    baseline = {
        name: regression_metrics(y_test, np.full_like(y_test, value))["mae"]
        for name, value in (("mean", y_train.mean()), ("median", np.median(y_train)))
    }
    hist = record.histories
    return {
        "test_mae_ev_atom": reg["mae"],
        "test_rmse_ev_atom": reg["rmse"],
        "test_r2": reg["r2"],
        "baseline_train_mean_test_mae_ev_atom": baseline["mean"],
        "baseline_train_median_test_mae_ev_atom": baseline["median"],
        "best_val_mae_ev_atom": _per_member([h["best_val_mae"] for h in hist]),
        "best_epoch": _per_member([h["best_epoch"] for h in hist]),
        "epochs_run": _per_member([len(h["epochs"]) for h in hist]),
    }


def save_formation_energy_model(
    out: Path, members: list[TcResNet], data: FormationEnergyData, record: TrainedRun
) -> dict:
    """Save the surrogate (float16) with its card and return the card as written.

    The card records the data checksum, split seed and sizes, the held-out test metrics (eV/atom) beside the
    train-mean and -median baselines, the training config and time, and the provenance.
    """
    card = {
        "kind": FORMATION_ENERGY_KIND,
        "target": f"{TARGET} ({UNIT}, JARVIS-DFT 3D OptB88vdW)",
        "units": UNIT,
        "dedupe": "one row per composition (fractions rounded to 4 decimals), lowest ehull kept",
        "data_checksums": data.checksums,
        "data_config": data.config.to_dict(),
        "split_seed": data.config.split_seed,
        "n_rows": data.counts(),
        "train_config": record.spec.train.to_dict(),
        "n_parameters": count_parameters(members[0]),
        "metrics": formation_energy_metrics(members, data, record),
        "complete": record.complete,
        "members_planned": record.spec.members,
        "hardware": record.hardware,
        "train_seconds": record.seconds,
        "total_seconds": time.time() - record.started,
        **provenance(),
    }
    save_checkpoint(out, members, card)
    return json.loads(Path(out).with_suffix(".json").read_text())
