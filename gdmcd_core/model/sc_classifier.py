"""P(superconductor): gradient-boosted trees that say whether a composition superconducts at all.

The first part of the two-part (hurdle) output of `model/hurdle.py`: a binary HistGradientBoostingClassifier
on the element-statistics features of the Tc trees of `model/trees.py` (the 118 fractions plus the
fraction-weighted mean, spread, minimum and maximum of seven element properties) and the oxygen-aware valence
features of `chem/valence_features.py` (anion share, O per cation, oxidation-state window, formal Cu valence),
fitted on the rows the checkpoint's ResNet trained on, less those the repair flags `valence_suspect`.

Labels and weights. A row is a superconductor when it is a SuperCon entry with Tc > 0 K. The other rows are not
measurements of Tc = 0: the COD rows are inorganic compounds never reported as superconductors (most were never
tested; Konno et al., Phys. Rev. B 103, 014509 (2021) use them as Tc = 0 "garbage-in" data, and the data README
notes that some are untested superconductors), and the physical negatives (`data/negatives.py`: oxygen-stripped
cuprates, insulating parents, molecular hydrides) encode a prior. Both enter with sample weight
`ClassifierConfig.negative_weight` (0.5: an unreported compound counts half as much as a reported
superconductor). That weight is a prior fixed before any fit, not a fitted number: the validation rows carry the
same weak labels, so any score on them prefers weight 1. A weight below 1 multiplies the fitted odds of
superconductivity by about 1 / weight, so a composition the negatives alone speak against gets a P(SC) that is
low but not near 0.

Rows. Training: the checkpoint's training rows once each (no replicas). The number of boosting rounds is chosen
on its validation rows (the round with the lowest weighted validation log loss, up to `max_iter`). The test
rows are never read here.

Storage: the rounds kept are exported as `trees.TreeModel` node arrays whose output is the log-odds, saved as
NAME.sc.pt beside NAME.pt with a card NAME.sc.json (its SHA-256, the data config and checksums of the
checkpoint, the validation figures), loaded with `weights_only=True` after the hash check, never a pickled
scikit-learn object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gdmcd_core.data.dataset import TRAIN, VAL
from gdmcd_core.model.checkpoint import CheckpointError
from gdmcd_core.model.kinds import SC_CLASSIFIER_KIND
from gdmcd_core.model.trees import (
    TreeModel,
    boosting_settings,
    check_boosting,
    export_sklearn,
    fitted_card,
    load_tree_file,
    save_tree_file,
    tree_features,
    tree_file_beside,
    without_valence_suspect,
)

CLASSIFIER_SUFFIX = ".sc.pt"  # tc_default.pt -> tc_default.sc.pt (card tc_default.sc.json)
P_THRESHOLD = 0.5  # validation precision and recall are reported for the call P(SC) >= this


@dataclass(frozen=True)
class ClassifierConfig:
    """scikit-learn HistGradientBoostingClassifier settings and the weight of the non-superconductor rows."""

    # most boosting rounds; the number kept is chosen on the validation rows (tc_default: 838 of 1000; with at most
    # 400 the validation log loss was still falling at the last round, 0.092 against 0.081)
    max_iter: int = 1000
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    negative_weight: float = 0.5  # sample weight of a COD row or physical negative (a superconductor: 1)
    seed: int = 0
    # the oxygen-aware valence features (chem/valence_features.py) added to the element statistics: chosen on
    # validation rows (bench/valence_features.py: log loss 0.0813 -> 0.0754 random, 0.0735 -> 0.0727 time,
    # 0.4538 -> 0.4441 JARVIS split); the Tc trees do without them (their validation MAE rose)
    valence: bool = True
    # leave out the superconductor rows the repair rule cu_valence_too_low flags (data/repair.py; the Tc trees keep them)
    skip_valence_suspect: bool = True

    def validate(self) -> ClassifierConfig:
        check_boosting(self)
        if not 0 < self.negative_weight <= 1:
            raise ValueError(f"negative_weight must be in (0, 1], got {self.negative_weight}")
        return self


@dataclass
class ScClassifier:
    """Exported classifier trees (output: log-odds of Tc > 0 K) -> P(superconductor)."""

    trees: TreeModel

    @property
    def n_trees(self) -> int:
        return self.trees.n_trees

    def probability(self, x: np.ndarray) -> np.ndarray:
        """(N, 118) fractions -> (N,) P(superconductor) in [0, 1]."""
        feats = self.trees.features(x)
        return sigmoid(self.trees.raw_features(feats))


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow


def labels_and_weights(is_supercon: np.ndarray, tc_k: np.ndarray, negative_weight: float) -> tuple[np.ndarray, ...]:
    """(y, w) of rows: y = 1 for a SuperCon entry with Tc > 0 K, else 0; w = 1 for y = 1, negative_weight else."""
    y = (np.asarray(is_supercon, bool) & (np.asarray(tc_k) > 0)).astype(np.int8)
    return y, np.where(y == 1, 1.0, float(negative_weight))


def labelled_rows(ds: Any, rows: np.ndarray, negative_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, w) of `rows` of Dataset `ds` for `fit_classifier` (`labels_and_weights`)."""
    y, w = labels_and_weights(ds.is_supercon[rows], ds.tc_k[rows], negative_weight)
    return ds.x[rows], y, w


def classifier_rows(ds: Any, skip_valence_suspect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) of Dataset `ds`, each once (no replicas), without the rows its repair flags
    `valence_suspect` when `skip_valence_suspect`."""
    parts = ds.indices(TRAIN), ds.indices(VAL)
    return tuple(without_valence_suspect(ds, r) for r in parts) if skip_valence_suspect else parts


def log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Mean (weighted) binary cross-entropy in nats, p clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(np.average(loss, weights=w))


def validation_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Precision and recall of the call P(SC) >= P_THRESHOLD, average precision, log loss and Brier score."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y).astype(bool)
    call = np.asarray(p) >= P_THRESHOLD
    tp = int((call & y).sum())
    out: dict[str, Any] = {
        "n": int(len(y)),
        "n_supercon": int(y.sum()),
        "threshold": P_THRESHOLD,
        "precision": tp / int(call.sum()) if call.any() else None,
        "recall": tp / int(y.sum()) if y.any() else None,
        "log_loss": log_loss(y, p),
        "brier": float(np.mean((np.asarray(p) - y) ** 2)) if len(y) else None,
    }
    out["average_precision"] = float(average_precision_score(y, p)) if y.any() and (~y).any() else None
    return out


def _sklearn_classifier(config: ClassifierConfig) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**boosting_settings(config))


def fit_classifier(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: ClassifierConfig = ClassifierConfig(),
) -> tuple[ScClassifier, dict[str, Any]]:
    """Fit on train = (x (N, 118), y (N,) in {0, 1}, w (N,)) and keep the rounds up to the lowest weighted log loss
    on val = (x, y, w). Returns the classifier and {"rounds": kept, "val_log_loss_by_round": [...] every 25}."""
    config.validate()
    (x_tr, y_tr, w_tr), (x_val, y_val, w_val) = train, val
    if len(np.unique(y_tr)) < 2:
        raise ValueError("the training rows hold one class only (no non-superconductor rows?): nothing to classify")
    model = _sklearn_classifier(config)
    feats_tr, feats_val = (tree_features(np.asarray(v), valence=config.valence) for v in (x_tr, x_val))
    model.fit(feats_tr, np.asarray(y_tr), sample_weight=np.asarray(w_tr))
    losses = [log_loss(y_val, p[:, 1], w_val) for p in model.staged_predict_proba(feats_val)]
    if not losses or not len(y_val):
        raise ValueError("no validation rows to choose the number of boosting rounds on")
    rounds = int(np.argmin(losses)) + 1
    trees = export_sklearn(model, feats_tr.shape[1], max_trees=rounds, valence=config.valence)
    curve = [round(v, 5) for v in losses[24::25]]
    return ScClassifier(trees), {"rounds": rounds, "val_log_loss_by_round": curve, "every": 25}


def classifier_path(checkpoint: str | Path) -> Path:
    """Where the classifier fitted on a checkpoint's data and split lives: NAME.pt -> NAME.sc.pt."""
    p = Path(checkpoint)
    return p.with_name(p.name.removesuffix(".pt") + CLASSIFIER_SUFFIX)


def save_classifier(path: str | Path, model: ScClassifier, card: dict[str, Any]) -> str:
    """Write the classifier and its card (with the file's SHA-256) atomically; returns the SHA-256."""
    return save_tree_file(path, model.trees, card, SC_CLASSIFIER_KIND)


def load_classifier(path: str | Path) -> tuple[ScClassifier, dict[str, Any]]:
    """The classifier and its card; CheckpointError (one line) for a missing, damaged or tampered file."""
    trees, card = load_tree_file(path, SC_CLASSIFIER_KIND)
    return ScClassifier(trees), card


def classifier_beside(checkpoint: str | Path, card: dict[str, Any]) -> ScClassifier | None:
    """The classifier saved beside a checkpoint (card: the checkpoint's) for the same data and split, else None.
    One fitted on another data config raises CheckpointError: its P(SC) would describe other training rows."""
    path = classifier_path(checkpoint)
    refit = f"classifier {path} was fitted on other data or split than {checkpoint}; refit it"
    trees = tree_file_beside(path, SC_CLASSIFIER_KIND, card, refit)
    return None if trees is None else ScClassifier(trees)


def companion_classifier(ens: Any) -> tuple[ScClassifier | None, str]:
    """(the classifier beside an ensemble's checkpoint or None, "" or why the one there is unusable)."""
    path = getattr(ens, "path", None)
    if not path:
        return None, ""
    try:
        return classifier_beside(path, ens.card), ""
    except CheckpointError as exc:
        return None, str(exc)


def classifier_card(config: ClassifierConfig, ens_card: dict[str, Any], fit: dict[str, Any]) -> dict[str, Any]:
    """The card fields of a classifier fitted for an ensemble: its data, split and checksums, how it was fitted
    (`fit`: rounds, row counts, validation figures, fit time) and provenance."""
    return fitted_card("classifier_config", config, ens_card, fit)


__all__ = [
    "CLASSIFIER_SUFFIX",
    "ClassifierConfig",
    "P_THRESHOLD",
    "ScClassifier",
    "classifier_beside",
    "classifier_card",
    "classifier_path",
    "classifier_rows",
    "companion_classifier",
    "fit_classifier",
    "labels_and_weights",
    "labelled_rows",
    "load_classifier",
    "save_classifier",
    "sigmoid",
    "validation_metrics",
]
