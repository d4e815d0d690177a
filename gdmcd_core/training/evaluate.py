"""Evaluation of a Tc checkpoint on its held-out test split (paper Table 1, S3 / Table 6).

"Superconductor" means Tc > threshold; the headline `test_precision` uses threshold 0 K as in
the paper (the model's ReLU output is exactly 0 for compositions it calls non-superconducting),
and precision/recall are also reported at 1 K and 5 K.

Uncertainty figures (superconductors of the part): ±1σ/±2σ coverage overall and for rows "far"
from training (L1 distance in fractions >= FAR_L1 to the nearest training SuperCon composition),
Spearman(σ, |error|), and the same coverages with the spread-only σ (no distance term) when the
checkpoint's calibration has one (training/calibration.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from gdmcd_core.chem.composition import is_hydride
from gdmcd_core.data.dataset import SPLIT_NAMES, TEST, VAL, DataConfig, Dataset, build_dataset
from gdmcd_core.data.reference import ReferenceData, training_reference
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.trees import EVEN_WEIGHT, TreeModel, consensus, disagrees, relative_disagreement, second_opinion
from gdmcd_core.training.calibration import (
    CROSS_FIT_FOLDS,
    DISTANCE_BINS_L1,
    ONE_SIGMA_COVERAGE,
    Calibration,
    cross_fit,
    fit_inputs,
    raw_mean_spread,
    training_neighbors,
)
from gdmcd_core.training.metrics import (
    THRESHOLDS_K,
    mae_by_range,
    mean_absolute_error,
    regression_metrics,
    threshold_metrics,
)
from gdmcd_core.training.testset_log import log_test_figures

# "Far from training": L1 >= 0.2 means at least 10 % of the atoms differ from the nearest training composition
# (e.g. a new dopant at 10 %); ~9 % of random-split test superconductors, many more on the time split.
FAR_L1 = 0.2


def dataset_for(ens: TcEnsemble, data_dir: str | None = None) -> Dataset:
    """Rebuild the exact dataset and split the checkpoint was trained on (from its card).

    A hydride model (card `hydride_config`) gets its own training set (training/hydrides.py: every hydride in
    train, balanced copies, extra public rows), so its test split holds no hydride it was trained on."""
    cfg = DataConfig.from_dict(ens.card.get("data_config", {}))
    hyd = ens.card.get("hydride_config")
    if isinstance(hyd, dict):
        from gdmcd_core.training.hydrides import HydrideConfig, build_hydride_dataset

        fields = {k: v for k, v in hyd.items() if k in HydrideConfig.__dataclass_fields__}
        return build_hydride_dataset(replace(cfg, hydride_replicas=0), HydrideConfig(**fields), data_dir)
    return build_dataset(cfg, data_dir)


def training_reference_for(card: dict, data_dir: str | None = None) -> tuple[ReferenceData | None, str]:
    """(the training compositions of the checkpoint with this card, "") or (None, why) when its data files are not
    here: what `gdmcd predict` and the app's Predict page check a formula against."""
    try:
        return training_reference(DataConfig.from_dict(card.get("data_config", {})), data_dir), ""
    except (FileNotFoundError, ValueError, KeyError) as exc:
        return None, f"training data not available ({exc}); distance and unseen elements not checked"


# The Tc models have no pressure input: their training Tc values are mostly ambient-pressure ones, but those of the
# hydrogen-rich phases (H3S, LaH10, ...) were measured at 100-200 GPa (data README; Drozdov et al., Nature 525, 73
# (2015) and Nature 569, 528 (2019)), so a hydride's Tc, or any Tc asked for at a pressure above 0, is out of scope
PRESSURE_NOTE = "the model has no pressure input"


def pressure_notes(x: np.ndarray, pressure_gpa: float = 0.0) -> list[str | None]:
    """Per row of x (B, 118): why its Tc is a high-pressure value out of the model's scope, None where it is not
    (pressure_gpa 0 and not a hydride by chem.composition.is_hydride)."""
    hyd = is_hydride(x) if len(x) else np.zeros(0, bool)
    out: list[str | None] = []
    for h in hyd:
        notes = []
        if pressure_gpa > 0:
            notes.append(
                f"asked at {pressure_gpa:g} GPa: high-pressure, out of the model's scope ({PRESSURE_NOTE}; its Tc "
                "is what it learned from mostly ambient-pressure data)"
            )
        if h:
            notes.append(
                "hydrogen-rich (is_hydride): a high-pressure value, out of the model's scope at ambient pressure "
                f"({PRESSURE_NOTE}; the hydrides it learned from were measured at 100-200 GPa)"
            )
        out.append("; ".join(notes) or None)
    return out


def prediction_warnings(
    x: np.ndarray,
    ref: ReferenceData | None,
    why: str = "",
    distance: np.ndarray | None = None,
    pressure_gpa: float = 0.0,
) -> list[str | None]:
    """The warning `gdmcd predict` prints under each row of x (B, 118), None where there is none: why the training
    set was not checked, a high-pressure value (`pressure_notes`), elements it never saw, and an L1 distance >=
    FAR_L1 to every training superconductor. `distance`: ref.supercon_neighbors(x)[0] when the caller has it."""
    if ref is not None and distance is None:
        distance = ref.supercon_neighbors(x)[0]
    pressure = pressure_notes(x, pressure_gpa)
    out: list[str | None] = []
    for i in range(len(x)):
        notes = [why] if why else []
        notes += [pressure[i]] if pressure[i] else []
        unseen = ref.unseen_elements(x[i]) if ref is not None else None
        if unseen:
            notes.append(f"elements never seen in training: {', '.join(unseen)}; the prediction is an extrapolation")
        d = None if distance is None or not np.isfinite(distance[i]) else round(float(distance[i]), 4)
        if d is not None and d >= FAR_L1:
            notes.append(f"far from every training superconductor (L1 {d:.2f} >= {FAR_L1:g})")
        out.append("; ".join(notes) or None)
    return out


def _coverage(err: np.ndarray, s: np.ndarray, k: float) -> float | None:
    return float((err <= k * s).mean()) if len(err) else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def uncertainty_metrics(
    err: np.ndarray, std: np.ndarray, distance: np.ndarray | None, std_spread_only: np.ndarray | None = None
) -> dict:
    """Coverage of |error| (K) by ±1σ/±2σ, overall and far (distance >= FAR_L1), and Spearman(σ, |error|).

    All arrays (N,) aligned; distance in L1 fractions (NaN: unknown, counted as near).
    """
    out: dict = {
        "coverage_1sigma": _coverage(err, std, 1),
        "coverage_2sigma": _coverage(err, std, 2),
        "spearman_sigma_abs_error": _spearman(std, err),
        "mean_sigma_k": float(std.mean()) if len(std) else None,
    }
    far = np.zeros(len(err), bool) if distance is None else np.nan_to_num(distance, nan=0.0) >= FAR_L1
    out["far_coverage_1sigma"] = _coverage(err[far], std[far], 1)
    out["far_coverage_2sigma"] = _coverage(err[far], std[far], 2)
    out["far_mean_sigma_k"] = float(std[far].mean()) if far.any() else None
    if std_spread_only is not None:
        for name, k in (("1sigma", 1), ("2sigma", 2)):
            out[f"coverage_{name}_spread_only"] = _coverage(err, std_spread_only, k)
            out[f"far_coverage_{name}_spread_only"] = _coverage(err[far], std_spread_only[far], k)
    return out


def evaluate_predictions(
    ds: Dataset,
    mean: np.ndarray,
    std: np.ndarray | None,
    part: int = TEST,
    distance: np.ndarray | None = None,
    std_spread_only: np.ndarray | None = None,
) -> dict:
    """Metrics of predictions `mean`, `std` (K) aligned with ds rows of `part`.

    distance: optional (rows,) L1 to the nearest training SuperCon composition (NaN where unknown);
    std_spread_only: optional σ without the distance term, reported beside the calibrated one.
    """
    idx = ds.indices(part)
    sc = ds.is_supercon[idx]
    y = ds.tc_k[idx]
    out: dict = {"n_test_supercon": int(sc.sum()), "n_test_nonsc": int((~sc).sum())}
    reg = regression_metrics(y[sc], mean[sc])
    out["supercon_test_mae_k"] = reg["mae"]
    out["supercon_test_rmse_k"] = reg["rmse"]
    out["supercon_test_r2"] = reg["r2"]
    hyd = is_hydride(ds.x[idx]) & sc  # high-pressure phases (LaH10, H3S): no pressure in the data
    out["n_test_supercon_hydrides"] = int(hyd.sum())
    if (sc & ~hyd).sum() >= 2:
        out["supercon_test_r2_without_hydrides"] = regression_metrics(y[sc & ~hyd], mean[sc & ~hyd])["r2"]
    out.update(threshold_metrics(y, mean, THRESHOLDS_K))
    out["test_precision"] = out["precision_at_0k"]
    out["test_precision_threshold_k"] = 0.0
    out["supercon_predicted_zero_fraction"] = float((mean[sc & (y > 0)] == 0).mean()) if (sc & (y > 0)).any() else 0.0
    out["mae_by_tc_range"] = mae_by_range(y[sc], mean[sc])
    err = np.abs(mean[sc] - y[sc])
    if distance is not None:
        d = distance[sc]
        far = np.nan_to_num(d, nan=0.0) >= FAR_L1
        out["far_threshold_l1"] = FAR_L1
        out["n_test_supercon_far"] = int(far.sum())
        out["median_distance_l1"] = float(np.nanmedian(d)) if np.isfinite(d).any() else None
        out["far_mae_k"] = float(err[far].mean()) if far.any() else None
        out["near_mae_k"] = float(err[~far].mean()) if (~far).any() else None
        out["mae_by_distance_l1"] = _by_distance(err, d, None if std is None else std[sc])
    if std is not None and np.any(std > 0):
        spread_only = None if std_spread_only is None else std_spread_only[sc]
        out.update(uncertainty_metrics(err, std[sc], None if distance is None else distance[sc], spread_only))
    return out


def _by_distance(err: np.ndarray, d: np.ndarray, std: np.ndarray | None) -> list[dict]:
    """MAE, mean σ (K) and ±1σ / ±2σ coverage of superconductors per distance band (DISTANCE_BINS_L1); rows of
    unknown distance are left out."""
    rows = []
    for lo, hi in zip(DISTANCE_BINS_L1[:-1], DISTANCE_BINS_L1[1:], strict=True):
        m = (d >= lo) & (d < hi)
        if m.any():
            row = {"l1_from": lo, "l1_to": hi, "n": int(m.sum()), "mae_k": float(err[m].mean()), "mean_sigma_k": None}
            if std is not None:
                row.update(
                    mean_sigma_k=float(std[m].mean()),
                    cov1=float(np.mean(err[m] <= std[m])),
                    cov2=float(np.mean(err[m] <= 2 * std[m])),
                )
            rows.append(row)
    return rows


def fit_sigma_scale(ens: TcEnsemble, ds: Dataset) -> float:
    """Factor on the members' spread so that 68.27 % of validation superconductors fall inside ±1σ (a spread-only
    calibration; `calibration.calibrate` is the one training and `gdmcd evaluate` use).

    Returns 1.0 for a single model or without validation superconductors.
    """
    idx = ds.indices(VAL)
    idx = idx[ds.is_supercon[idx]]
    if not ens.has_uncertainty or len(idx) == 0:
        return 1.0
    saved, ens.sigma_scale = ens.sigma_scale, 1.0
    try:
        mean, raw_std = ens.predict(ds.x[idx])
    finally:
        ens.sigma_scale = saved
    ratio = np.abs(mean - ds.tc_k[idx]) / np.maximum(raw_std, 1e-6)
    return float(np.quantile(ratio, ONE_SIGMA_COVERAGE))


def part_predictions(ens: TcEnsemble, ds: Dataset, part: int = TEST) -> dict[str, np.ndarray]:
    """Predictions for the rows of `part`: mean, σ (with the distance and neighbour terms on superconductors),
    spread-only σ and the L1 distance to the nearest training SuperCon composition (NaN for non-superconductor
    rows). When the card's calibration was fitted on this very part, the superconductors' σ is cross-fitted
    (calibration.cross_fitted_sigma) and "cross_fitted" is True: no σ is reported on the rows it was fitted on."""
    idx = ds.indices(part)
    sc = ds.is_supercon[idx]
    mean, spread = raw_mean_spread(ens, ds.x[idx])
    std = spread * np.float32(ens.sigma_scale)  # the spread-only σ, as ens.predict gives it without a neighbour
    distance = np.full(len(idx), np.nan)
    tc_nn = np.full(len(idx), np.nan)
    distance[sc], tc_nn[sc] = training_neighbors(ds, idx[sc])
    spread_only = std.copy()
    cross_fitted = ens.has_uncertainty and Calibration.from_card(ens.card).part == SPLIT_NAMES[part] and sc.any()
    if cross_fitted or (ens.has_extra_sigma_terms and sc.any()):
        # the same rows, in the same order, as calibration_inputs(ens, ds, part) gives them
        c = fit_inputs(ds, idx[sc], mean[sc], spread[sc], distance[sc], tc_nn[sc])
        if cross_fitted:
            std[sc] = cross_fit(c)
        else:  # the ensemble's own σ formula on the spread already computed: no second forward pass
            terms = (torch.as_tensor(c[k]) for k in ("spread", "distance", "gap", "tc"))
            std[sc] = ens.calibrated_std(*terms).cpu().numpy()
    return {
        "idx": idx,
        "mean": mean,
        "std": std,
        "std_spread_only": spread_only,
        "distance": distance,
        "cross_fitted": bool(cross_fitted),
    }


def evaluate_checkpoint(ens: TcEnsemble, ds: Dataset | None = None, part: int = TEST) -> dict:
    """Evaluate `ens` on `part` of its own split (rebuilt from the card if `ds` is None)."""
    ds = ds if ds is not None else dataset_for(ens)
    pr = part_predictions(ens, ds, part)
    idx = pr["idx"]
    out = evaluate_predictions(
        ds,
        pr["mean"],
        pr["std"] if ens.has_uncertainty else None,
        part,
        distance=pr["distance"],
        std_spread_only=pr["std_spread_only"] if ens.has_extra_sigma_terms else None,
    )
    out["calibration"] = {
        "sigma_scale": ens.sigma_scale,
        "distance_scale_k": ens.distance_scale_k,
        "neighbor_scale": ens.neighbor_scale,
        "tc_scale": ens.tc_scale,
        "band_factors": list(ens.band_factors),
        "part": Calibration.from_card(ens.card).part,
        "sigma_cross_fitted_folds": CROSS_FIT_FOLDS if pr["cross_fitted"] else None,
    }
    if ens.n_members > 1:
        with torch.no_grad():
            per = ens.member_predictions(torch.as_tensor(ds.x[idx], device=ens.device)).cpu().numpy()
        sc = ds.is_supercon[idx]
        out["member_supercon_test_mae_k"] = [mean_absolute_error(ds.tc_k[idx][sc], p[sc]) for p in per]
    trees, why = second_opinion(ens)  # stale or damaged trees must not fail an evaluation (or a training's save)
    if why:
        out["trees_error"] = why
    if trees is not None:
        out.update(consensus_metrics(ds, pr["mean"], trees, part))
    out["n_members"] = ens.n_members
    out["split"] = ds.config.split
    out["split_seed"] = ds.config.split_seed
    if part == TEST:  # every test figure computed is logged (training/testset_log.py)
        seconds = " with trees and consensus" if trees is not None else ""
        log_test_figures(
            ens.sha256,
            f"{Path(ens.path).name or 'model'} ({ds.config.split} split): test MAE, R², precision, σ{seconds}",
        )
    return out


CONSENSUS_KEYS = ("supercon_test_mae_k", "supercon_test_r2", "test_precision", "recall_at_0k")
# keys of consensus_metrics: figures of the trees beside a checkpoint, kept in the trees' card (`gdmcd trees`
# writes them there), never in the checkpoint's, because the trees can be refitted without the checkpoint changing
SECOND_OPINION_PREFIXES = ("trees_", "consensus_", "disagreement_")


def second_opinion_metrics(metrics: dict) -> dict:
    """The entries of an evaluation (`evaluate_checkpoint`) that describe the trees and the consensus."""
    return {k: v for k, v in metrics.items() if k.startswith(SECOND_OPINION_PREFIXES)}


DISAGREEMENT_SHARE = 0.2  # the superconductors on which the two models disagree most: this share of them


def consensus_metrics(ds: Dataset, mean: np.ndarray, trees: TreeModel, part: int = TEST) -> dict:
    """The trees' and the consensus' figures on `part` (model/trees.py), keys prefixed trees_ / consensus_,
    and how the ensemble's error follows its disagreement with the trees on the superconductors:
    Spearman(|Tc - Tc_trees|, |error|) and the MAE on the DISAGREEMENT_SHARE rows where they differ most
    against the others."""
    idx = ds.indices(part)
    tc_trees = trees.predict(ds.x[idx])
    weight = getattr(trees, "consensus_weight", EVEN_WEIGHT)  # the ResNet's weight in the consensus
    out = {}
    for prefix, pred in (("trees", tc_trees), ("consensus", consensus(mean, tc_trees, weight))):
        m = evaluate_predictions(ds, pred, None, part)
        out.update({f"{prefix}_{k}": m[k] for k in CONSENSUS_KEYS})
    sc = ds.is_supercon[idx]
    if sc.sum() >= 10:
        err, gap = np.abs(mean[sc] - ds.tc_k[idx][sc]), np.abs(mean[sc] - tc_trees[sc])
        top = gap >= np.quantile(gap, 1 - DISAGREEMENT_SHARE)
        out["disagreement_spearman_abs_error"] = _spearman(gap, err)
        out["disagreement_top_share"] = DISAGREEMENT_SHARE
        out["disagreement_top_mae_k"] = float(err[top].mean())
        out["disagreement_rest_mae_k"] = float(err[~top].mean()) if (~top).any() else None
    out.update(_false_positive_flags(mean, tc_trees, sc))
    return out


def _false_positive_flags(mean: np.ndarray, tc_trees: np.ndarray, sc: np.ndarray) -> dict:
    """How the disagreement mark (`trees.disagrees`, the app's speculative mark) separates the rows the ensemble
    calls superconductors (Tc > 0) into false and true positives: the share of each it marks, and the AUC
    of the relative disagreement for telling them apart (0.5: no better than chance)."""
    from sklearn.metrics import roc_auc_score

    pos = mean > 0
    false_pos = ~sc[pos]
    if not (false_pos.any() and (~false_pos).any()):
        return {}
    flagged = disagrees(mean[pos], tc_trees[pos])
    rel = relative_disagreement(mean[pos], tc_trees[pos])
    return {
        "disagreement_flags_false_positive_share": float(flagged[false_pos].mean()),
        "disagreement_flags_true_positive_share": float(flagged[~false_pos].mean()),
        "disagreement_false_positive_auc": float(roc_auc_score(false_pos, rel)),
    }


def test_predictions(ens: TcEnsemble, ds: Dataset | None = None) -> dict[str, np.ndarray]:
    """Per-row test predictions for plots: formula, true Tc, predicted mean and sd, is_supercon."""
    ds = ds if ds is not None else dataset_for(ens)
    pr = part_predictions(ens, ds, TEST)
    idx = pr["idx"]
    return {
        "formula": ds.formula[idx],
        "tc_true_k": ds.tc_k[idx],
        "tc_pred_k": pr["mean"],
        "tc_std_k": pr["std"],
        "distance_l1": pr["distance"],
        "is_supercon": ds.is_supercon[idx],
    }
