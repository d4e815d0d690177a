"""A second opinion on Tc: gradient-boosted trees on element statistics, and the consensus with the ResNet.

The ResNet ensemble sees a composition as an image of which elements are present; trees on the 118
fractions plus fraction-weighted element statistics (`chem.element_features`: Z, mass,
electronegativity, period, group, radius, valence electrons; mean, std, min, max) see how the elements
differ. The two families err differently: on the random and JARVIS splits their consensus has a lower MAE than
either, on the time split the trees alone do better (docs/model-card.md), and the fitted weight below says so. Trees are not differentiable: the design loop climbs the
ResNet alone, and the trees score what it proposes, a check a candidate that exploits the network's
blind spots fails.

    consensus = w · Tc_resnet + (1 − w) · Tc_trees   where the ResNet calls the composition a superconductor,
              = 0                                   where it does not

w is the ResNet's weight, fitted per checkpoint on its validation superconductors and kept in the trees' card
(training/consensus_weight.py; `TreeModel.consensus_weight`); trees without one use the even mean, w = 0.5.

A two-part (hurdle) model: the ResNet, trained with the COD and physical non-superconductors, decides
whether there is superconductivity at all (precision 0.85 at 0 K on the random split); the trees,
fitted on the training superconductors alone (`TreeConfig.supercon_only`), help say how high. They
call nearly everything a superconductor (precision about 0.2), and trees fitted on the negatives as
well were pulled toward 0 K near them (random split, test: 5.18 K MAE against 4.44 K).

Storage is plain tensors, loaded with `weights_only=True` and checked against the SHA-256 in the card
(`checkpoint.verified_blob`), never a pickled scikit-learn object. A fitted HistGradientBoostingRegressor
is exported node by node (pre-order, so a split's left child is the next node): feature index (-1 for
a leaf), the right child's offset from its parent (int16), and one float32: the split threshold rounded
*down* to float32 (for float32 features x <= t64 exactly when x <= floor32(t64)), or the leaf value. The exported trees reproduce
scikit-learn's predictions (tests/test_trees.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gdmcd_core.chem.element_features import feature_matrix, feature_names
from gdmcd_core.chem.embeddings import EMBEDDINGS, EmbeddingUnavailableError, embedding_features, embedding_table
from gdmcd_core.chem.embeddings import feature_names as embedding_feature_names
from gdmcd_core.chem.valence_features import FEATURE_NAMES as VALENCE_FEATURE_NAMES
from gdmcd_core.chem.valence_features import valence_features
from gdmcd_core.model.checkpoint import CheckpointError, card_path, verified_blob
from gdmcd_core.model.kinds import TREES_KIND
from gdmcd_core.util import atomic_torch_save, atomic_write_text, provenance, sha256_file

# The trees disagree with the ResNet when |Tc - Tc_trees| > DISAGREEMENT_RATIO * max(Tc, TC_FLOOR_K): the app marks
# such a candidate speculative, and `gdmcd evaluate` reports how often that mark falls on the ensemble's false
# positives (disagreement_flags_*)
DISAGREEMENT_RATIO = 0.5
EVEN_WEIGHT = 0.5  # the ResNet's weight in the consensus where the trees' card holds none
TC_FLOOR_K = 1.0
TREES_SUFFIX = ".trees.pt"  # tc_default.pt -> tc_default.trees.pt (card tc_default.trees.json)
PREDICT_ROWS = 2048  # rows per traversal batch (bounds the (rows, trees) index arrays)


@dataclass(frozen=True)
class TreeConfig:
    """scikit-learn HistGradientBoostingRegressor settings; chosen by 3-fold CV on the JARVIS train rows."""

    max_iter: int = 1500  # boosting rounds
    learning_rate: float = 0.05
    max_leaf_nodes: int = 63
    min_samples_leaf: int = 10
    seed: int = 0
    # the 11 extra element properties (chem.element_features.EXTRA_PROPERTIES): tried, not kept (same 3-fold
    # CV on the JARVIS train rows: 5.353 K with them, 5.363 K without, at 1.3x the fit time)
    extended_features: bool = False
    # "" or an element embedding of chem.embeddings (its mean/std/min/max statistics added to the features), chosen
    # on validation rows by bench/tree_features.py (docs/benchmarks/tree-features.md)
    embedding: str = ""
    # the oxygen-aware valence features of chem.valence_features added (anion share, O per cation, charge window,
    # net charge at typical valences, formal Cu valence): not kept for the Tc trees, whose validation consensus MAE
    # rose with them on the random and time splits (bench/valence_features.py); the classifier keeps them
    valence: bool = False
    # fit on the superconductors of the training rows only (not the COD and physical negatives): the trees say how
    # high Tc is, the ResNet whether there is any (the consensus gate). Chosen on validation rows: consensus
    # SuperCon MAE 4.53 -> 4.38 K (random split), 6.17 -> 5.71 K (time split, pre-2010 validation)
    supercon_only: bool = True
    # leave out the superconductor rows the repair rule cu_valence_too_low flags (data/repair.py: a cuprate above 30 K
    # too reduced to be one, e.g. Y1Ba2Cu3O4 at 92 K). Off: the trees refitted without them had a higher validation
    # MAE on every split, the unflagged rows too (4.26 -> 4.33 K random, 4.75 -> 4.79 K time, 5.27 -> 5.30 K JARVIS;
    # docs/model-card.md); the classifier leaves them out (its P(SC) is where they did harm)
    skip_valence_suspect: bool = False

    def validate(self) -> TreeConfig:
        check_boosting(self)
        if self.embedding and self.embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be '' or one of {', '.join(EMBEDDINGS)}, got {self.embedding!r}")
        return self


def check_boosting(config: Any) -> None:
    """ValueError (one line) when the boosting settings of `config` (TreeConfig's max_iter, learning_rate,
    max_leaf_nodes and min_samples_leaf; the classifier's config has them too) are out of range."""
    if config.max_iter < 1 or not 0 < config.learning_rate <= 1:
        raise ValueError(
            f"max_iter must be >= 1 and learning_rate in (0, 1], got {config.max_iter}, {config.learning_rate}"
        )
    if not 2 <= config.max_leaf_nodes <= 4096 or config.min_samples_leaf < 1:
        raise ValueError(
            f"max_leaf_nodes must be in 2..4096 and min_samples_leaf >= 1, got {config.max_leaf_nodes}, "
            f"{config.min_samples_leaf}"
        )


@dataclass
class TreeModel:
    """Exported trees: node arrays over all trees, each tree's first node, and the baseline (K)."""

    feature: np.ndarray  # (nodes,) int16, -1 at a leaf
    right: np.ndarray  # (nodes,) int32, index of the right child (the left child is the next node)
    value: np.ndarray  # (nodes,) float32: threshold (split) or leaf value
    roots: np.ndarray  # (trees,) int32
    baseline: float
    n_features: int
    extended: bool = False  # features: chem.element_features.feature_matrix(..., extended=extended)
    embedding: str = ""  # then chem.embeddings.embedding_features(..., embedding) when not ""
    valence: bool = False  # then chem.valence_features.valence_features(...)
    consensus_weight: float = EVEN_WEIGHT  # the ResNet's weight in the consensus (card field; EVEN_WEIGHT when absent)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def predict_features(self, feats: np.ndarray) -> np.ndarray:
        """(N, n_features) float32 features -> (N,) Tc in K, clipped at 0."""
        return np.clip(self.raw_features(feats), 0.0, None)

    def raw_features(self, feats: np.ndarray) -> np.ndarray:
        """(N, n_features) float32 features -> (N,) baseline + sum of the leaf values, unclipped (for a classifier's
        trees: the log-odds)."""
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.n_features:
            raise ValueError(f"features must have shape (N, {self.n_features}), got {feats.shape}")
        out = np.empty(len(feats))
        for lo in range(0, len(feats), PREDICT_ROWS):
            f = feats[lo : lo + PREDICT_ROWS]
            node = np.tile(self.roots.astype(np.int64), len(f))  # (rows * trees,), row-major
            row = np.repeat(np.arange(len(f)), self.n_trees)
            active = np.arange(len(node))  # (row, tree) pairs not yet at a leaf
            while len(active):
                at = node[active]
                feat = self.feature[at]
                split = feat >= 0
                active, at, feat = active[split], at[split], feat[split]
                go_left = f[row[active], feat] <= self.value[at]
                node[active] = np.where(go_left, at + 1, self.right[at])
            leaf_sum = self.value[node].astype(np.float64).reshape(len(f), self.n_trees).sum(axis=1)
            out[lo : lo + len(f)] = self.baseline + leaf_sum
        return out

    def features(self, x: np.ndarray) -> np.ndarray:
        """(N, 118) fractions -> (N, n_features) float32: the features these trees were fitted on."""
        return tree_features(x, self.extended, self.embedding, self.valence)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, 118) fractions -> (N,) Tc in K."""
        return self.predict_features(self.features(x))

    def to_blob(self) -> dict[str, Any]:
        return {
            "feature": torch.from_numpy(self.feature),
            "right_offset": torch.from_numpy((self.right - np.arange(len(self.right))).clip(0).astype(np.int16)),
            "value": torch.from_numpy(self.value),
            "roots": torch.from_numpy(self.roots),
            "baseline": float(self.baseline),
            "n_features": int(self.n_features),
            "extended": bool(self.extended),
            "embedding": str(self.embedding),
            "valence": bool(self.valence),
        }

    @classmethod
    def from_blob(cls, blob: dict[str, Any], path: Path) -> TreeModel:
        try:
            offset = blob["right_offset"].numpy().astype(np.int32)
            model = cls(
                feature=blob["feature"].numpy().astype(np.int16),
                right=np.arange(len(offset), dtype=np.int32) + offset,
                value=blob["value"].numpy().astype(np.float32),
                roots=blob["roots"].numpy().astype(np.int32),
                baseline=float(blob["baseline"]),
                n_features=int(blob["n_features"]),
                extended=bool(blob.get("extended", False)),
                embedding=str(blob.get("embedding", "")),
                valence=bool(blob.get("valence", False)),
            )
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"trees {path} lack their node arrays ({exc})") from None
        n = len(model.feature)
        split = model.feature >= 0
        ok = (
            len(model.right) == n == len(model.value)
            and model.embedding in ("", *EMBEDDINGS)
            and model.n_features == len(tree_feature_names(model.extended, model.embedding, model.valence))
            and bool(np.all(model.feature < model.n_features))
            and bool(np.all((model.roots >= 0) & (model.roots < n)))
            and bool(np.all(np.arange(n)[split] + 1 < n))
            and bool(np.all(model.right[split] > np.arange(n)[split]))  # children after their parent: no cycle
            and bool(np.all(model.right[split] < n))
        )
        if not ok:
            raise CheckpointError(f"trees {path}: node arrays are inconsistent (damaged file)")
        if model.embedding:
            try:
                embedding_table(model.embedding)
            except EmbeddingUnavailableError as exc:
                raise CheckpointError(f"trees {path}: {exc}") from None
        return model


def tree_features(x: np.ndarray, extended: bool = False, embedding: str = "", valence: bool = False) -> np.ndarray:
    """(N, 118) fractions -> (N, F) float32: fractions and element statistics, then the embedding's statistics, then
    the valence features."""
    parts = [feature_matrix(np.asarray(x), extended=extended)]
    if embedding:
        parts.append(embedding_features(x, embedding))
    if valence:
        parts.append(valence_features(x))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def tree_feature_names(extended: bool = False, embedding: str = "", valence: bool = False) -> list[str]:
    """Column names of `tree_features`."""
    names = feature_names(extended=extended) + (embedding_feature_names(embedding) if embedding else [])
    return names + (list(VALENCE_FEATURE_NAMES) if valence else [])


def export_sklearn(
    model: Any,
    n_features: int,
    extended: bool = False,
    max_trees: int | None = None,
    embedding: str = "",
    valence: bool = False,
) -> TreeModel:
    """A fitted HistGradientBoostingRegressor, or a binary HistGradientBoostingClassifier (one tree per round; its
    output is then the log-odds), with numeric features and no missing values -> TreeModel of its first
    `max_trees` rounds (None: all)."""
    features, rights, values, roots = [], [], [], []
    start = 0
    for (predictor,) in model._predictors[:max_trees]:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        leaf = nodes["is_leaf"].astype(bool)
        split_idx = np.flatnonzero(~leaf)
        if np.any(nodes["left"][split_idx] != split_idx + 1):
            raise ValueError("tree nodes are not in pre-order (left child must follow its parent)")
        thr = nodes["num_threshold"].astype(np.float32)
        too_high = thr.astype(np.float64) > nodes["num_threshold"]
        thr[too_high] = np.nextafter(thr[too_high], np.float32(-np.inf))  # floor to float32: exact for x32 <= t
        features.append(np.where(leaf, -1, nodes["feature_idx"]).astype(np.int16))
        rights.append(np.where(leaf, 0, nodes["right"].astype(np.int64) + start).astype(np.int32))
        values.append(np.where(leaf, nodes["value"].astype(np.float32), thr).astype(np.float32))
        roots.append(start)
        start += len(nodes)
    return TreeModel(
        feature=np.concatenate(features),
        right=np.concatenate(rights),
        value=np.concatenate(values),
        roots=np.asarray(roots, dtype=np.int32),
        baseline=float(np.ravel(model._baseline_prediction)[0]),
        n_features=n_features,
        extended=extended,
        embedding=embedding,
        valence=valence,
    )


def boosting_settings(config: Any) -> dict[str, Any]:
    """Keyword arguments of a scikit-learn HistGradientBoosting regressor or classifier from any config with
    TreeConfig's fields (bench's GbtConfig adds l2_regularization; 0 without it, scikit-learn's default). No early
    stopping: its random holdout would hold replicas and is not the checkpoint's validation split."""
    return {
        "max_iter": config.max_iter,
        "learning_rate": config.learning_rate,
        "max_leaf_nodes": config.max_leaf_nodes,
        "min_samples_leaf": config.min_samples_leaf,
        "l2_regularization": getattr(config, "l2_regularization", 0.0),
        "early_stopping": False,
        "random_state": config.seed,
    }


def hist_gradient_boosting(config: Any) -> Any:
    """The project's one scikit-learn tree regressor, from any config with TreeConfig's fields (`boosting_settings`)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(**boosting_settings(config))


def fit_trees(x: np.ndarray, y: np.ndarray, config: TreeConfig = TreeConfig()) -> TreeModel:
    """Fit trees on (N, 118) fractions and Tc (K) -> TreeModel (uses the threads threadpoolctl allows)."""
    config.validate()
    feats = tree_features(x, config.extended_features, config.embedding, config.valence)
    model = hist_gradient_boosting(config)
    model.fit(feats, np.asarray(y, dtype=np.float64))
    return export_sklearn(
        model, feats.shape[1], config.extended_features, embedding=config.embedding, valence=config.valence
    )


def training_rows(ds: Any, config: TreeConfig = TreeConfig()) -> np.ndarray:
    """The rows of Dataset `ds` the trees fit on: its training rows as the ResNet saw them (replicas included),
    without the non-superconductors when config.supercon_only and the rows flagged `valence_suspect` when
    config.skip_valence_suspect."""
    rows = ds.train_indices()
    rows = rows[ds.is_supercon[rows]] if config.supercon_only else rows
    return without_valence_suspect(ds, rows) if config.skip_valence_suspect else rows


def without_valence_suspect(ds: Any, rows: np.ndarray) -> np.ndarray:
    """`rows` of Dataset `ds` minus those its repair flags `valence_suspect` (none where it records no flags)."""
    flags = getattr(ds, "valence_suspect", None)
    return rows if flags is None else rows[~flags[rows]]


def consensus(tc_resnet: np.ndarray, tc_trees: np.ndarray, weight: float = EVEN_WEIGHT) -> np.ndarray:
    """weight · Tc_resnet + (1 − weight) · Tc_trees where the ResNet predicts Tc > 0 K, else 0 (module docstring)."""
    a = np.asarray(tc_resnet, dtype=np.float64)
    return np.where(a > 0, tc_if_superconducting(a, tc_trees, weight), 0.0)


def tc_if_superconducting(tc_resnet: np.ndarray, tc_trees: np.ndarray, weight: float = EVEN_WEIGHT) -> np.ndarray:
    """The consensus where the ResNet predicts Tc > 0 K, the trees' Tc where it says 0 K: its zero says *whether*,
    not *how high* (model/hurdle.py's tc_if_sc)."""
    a, b = np.asarray(tc_resnet, dtype=np.float64), np.asarray(tc_trees, dtype=np.float64)
    return np.where(a > 0, weight * a + (1 - weight) * b, b)


def relative_disagreement(tc_resnet: np.ndarray, tc_trees: np.ndarray) -> np.ndarray:
    """(N,) |Tc - Tc_trees| / max(Tc, TC_FLOOR_K), Tc the ResNet's."""
    a, b = np.asarray(tc_resnet, dtype=np.float64), np.asarray(tc_trees, dtype=np.float64)
    return np.abs(a - b) / np.maximum(a, TC_FLOOR_K)


def disagrees(tc_resnet: np.ndarray, tc_trees: np.ndarray) -> np.ndarray:
    """(N,) bool: the trees' Tc is more than DISAGREEMENT_RATIO x the ResNet's (floored at TC_FLOOR_K) away."""
    return relative_disagreement(tc_resnet, tc_trees) > DISAGREEMENT_RATIO


def trees_path(checkpoint: str | Path) -> Path:
    """Where the trees fitted on a checkpoint's data and split live: NAME.pt -> NAME.trees.pt."""
    p = Path(checkpoint)
    return p.with_name(p.name.removesuffix(".pt") + TREES_SUFFIX)


def save_tree_file(path: str | Path, model: TreeModel, card: dict[str, Any], kind: str) -> str:
    """Write exported trees and their card (`kind`, the tree and node counts and the file's SHA-256 added)
    atomically; returns the SHA-256. The Tc trees and the superconductor classifier are both stored this way."""
    path = Path(path)
    atomic_torch_save(path, model.to_blob())
    digest = sha256_file(path)
    full = {**card, "kind": kind, "n_trees": model.n_trees, "n_nodes": len(model.feature), "sha256": digest}
    atomic_write_text(card_path(path), json.dumps(full, indent=2, sort_keys=True))
    return digest


def load_tree_file(path: str | Path, kind: str) -> tuple[TreeModel, dict[str, Any]]:
    """Exported trees of card kind `kind` and their card; CheckpointError (one line) for a missing, damaged or
    tampered file."""
    blob, card, _ = verified_blob(Path(path), kind)
    model = TreeModel.from_blob(blob, Path(path))
    model.consensus_weight = float(card.get("consensus_weight", EVEN_WEIGHT))
    return model, card


def save_trees(path: str | Path, model: TreeModel, card: dict[str, Any]) -> str:
    """Write the trees and their card (with the file's SHA-256) atomically; returns the SHA-256."""
    return save_tree_file(path, model, card, TREES_KIND)


def load_trees(path: str | Path) -> tuple[TreeModel, dict[str, Any]]:
    """Trees and their card; CheckpointError (one line) for a missing, damaged or tampered file."""
    return load_tree_file(path, TREES_KIND)


def companion_trees(ens: Any) -> TreeModel | None:
    """The trees saved beside an ensemble's checkpoint (`trees_beside`), else None."""
    path = getattr(ens, "path", None)
    return trees_beside(path, ens.card) if path else None


def second_opinion(ens: Any) -> tuple[TreeModel | None, str]:
    """`companion_trees` for callers that must go on without them: (trees or None, "" or why they are unusable)."""
    try:
        return companion_trees(ens), ""
    except CheckpointError as exc:
        return None, str(exc)


def trees_beside(checkpoint: str | Path, card: dict[str, Any]) -> TreeModel | None:
    """The trees saved beside a checkpoint (card: the checkpoint's) for the same data and split, else None.

    Trees fitted on another data config (or a damaged trees file) raise CheckpointError: a second
    opinion from other data would be silently wrong."""
    path = trees_path(checkpoint)
    refit = f"trees {path} were fitted on other data or split than {checkpoint}; refit them"
    return tree_file_beside(path, TREES_KIND, card, refit)


def tree_file_beside(path: Path, kind: str, card: dict[str, Any], refit: str) -> TreeModel | None:
    """The exported trees of card kind `kind` at `path`, saved beside a checkpoint (card: the checkpoint's), else
    None when there is no such file. Trees whose card names other data or split than `card` raise
    CheckpointError(refit), a one-line message naming both files."""
    if not path.is_file():
        return None
    model, own_card = load_tree_file(path, kind)
    if any(own_card.get(key) != card.get(key) for key in ("data_config", "hydride_config")):
        raise CheckpointError(refit)
    return model


def fitted_card(config_key: str, config: Any, ens_card: dict[str, Any], fit: dict[str, Any]) -> dict[str, Any]:
    """The card fields of a scikit-learn model fitted for an ensemble: its dataclass `config` under `config_key`,
    the ensemble's data, split and checksums, `fit` (how it was fitted) and provenance."""
    from sklearn import __version__ as sklearn_version

    return {
        config_key: asdict(config),
        "data_config": ens_card.get("data_config"),
        "hydride_config": ens_card.get("hydride_config"),
        "data_checksums": ens_card.get("data_checksums"),
        **fit,
        "sklearn_version": sklearn_version,
        **provenance(),
    }


def tree_card(config: TreeConfig, ens_card: dict[str, Any], fit_s: float, n_rows: int) -> dict[str, Any]:
    """The card fields of trees fitted for an ensemble (its data, split and checksums) and their provenance."""
    return fitted_card("tree_config", config, ens_card, {"train_rows": n_rows, "fit_s": round(fit_s, 1)})


__all__ = [
    "TreeConfig",
    "TreeModel",
    "boosting_settings",
    "check_boosting",
    "companion_trees",
    "DISAGREEMENT_RATIO",
    "TC_FLOOR_K",
    "consensus",
    "disagrees",
    "EVEN_WEIGHT",
    "tc_if_superconducting",
    "relative_disagreement",
    "export_sklearn",
    "fit_trees",
    "fitted_card",
    "hist_gradient_boosting",
    "load_tree_file",
    "load_trees",
    "save_tree_file",
    "save_trees",
    "second_opinion",
    "training_rows",
    "tree_card",
    "tree_file_beside",
    "trees_beside",
    "trees_path",
]
