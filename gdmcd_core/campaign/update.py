"""Learn from the lab: fine-tune a campaign's ensemble on its measurements, with replay of the training data.

What each outcome teaches (`labels`):

- superconducting: Tc (onset, K) is the target, as in training (`training.loop.tc_loss`);
- no_transition: a censored label, Tc < t_min (the lowest temperature measured; DEFAULT_T_MIN_K where the lab gave
  none): only a prediction above t_min is penalised, by the Huber loss on (raw − t_min);
- not_formed and pending: no Tc label. A composition that did not form says nothing about the Tc of the phase
  that was meant; the next batch keeps away from it and its close neighbours instead (campaign/propose.py,
  NOT_FORMED_RADIUS).

The fine-tune (`finetune`): each member, BatchNorm statistics frozen, takes `steps` Adam steps on batches of
`replay` rows drawn from the model's own training rows plus every labelled measurement (weighted
`measured_weight`), so that what was learned before is not forgotten. Measurements at a pressure above 0 GPa are
not used as Tc labels (the model predicts ambient-pressure Tc).

The trees (`boost_trees`) keep their trees and add `trees_rounds` rounds fitted on the residuals of the training
superconductors plus the measured ones. σ (`recalibrate`): the measured superconductors' errors before the update
(the old model had not seen them) give one factor k on σ (calibration.coverage_scale), used once there are
MIN_CALIBRATION_ROWS of them; its leave-one-out coverage (k fitted without the row scored) is reported.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.trees import TreeConfig, TreeModel, export_sklearn, hist_gradient_boosting
from gdmcd_core.training.calibration import coverage_scale

DEFAULT_T_MIN_K = 2.0  # lowest temperature of a no-transition measurement that names none (a common cryostat base)
MIN_CALIBRATION_ROWS = 5


@dataclass(frozen=True)
class UpdateConfig:
    steps: int = 60  # Adam steps per member
    replay: int = 192  # training rows per step, drawn afresh each step
    lr: float = 1e-3
    huber_delta: float = 2.0
    measured_weight: float = 4.0  # weight of a measured row's loss against a replay row's
    trees_rounds: int = 100  # boosting rounds added to the trees
    seed: int = 0

    def validate(self) -> UpdateConfig:
        if self.steps < 1 or self.replay < 1 or self.trees_rounds < 0:
            raise ValueError(f"steps and replay must be >= 1 and trees_rounds >= 0, got {asdict(self)}")
        if not (self.lr > 0 and self.measured_weight > 0 and self.huber_delta > 0):
            raise ValueError(f"lr, measured_weight and huber_delta must be > 0, got {asdict(self)}")
        return self


@dataclass
class Labels:
    """Measured rows usable as labels: x (M, 118); tc (M,) K for superconductors, NaN for censored rows; t_min (M,)
    K for censored rows, NaN for superconductors; ids: the measurement ids they came from."""

    x: np.ndarray
    tc: np.ndarray
    t_min: np.ndarray
    ids: list[int]

    @property
    def is_sc(self) -> np.ndarray:
        return np.isfinite(self.tc)

    def __len__(self) -> int:
        return len(self.ids)


def labels(rows: list[dict], to_vector: Callable[[str], np.ndarray]) -> Labels:
    """Labels from measurement rows (dicts with formula, outcome, tc_k, t_min_k, pressure_gpa, id)."""
    xs, tcs, tmins, ids = [], [], [], []
    for r in rows:
        if (r.get("pressure_gpa") or 0.0) > 0:
            continue
        if r["outcome"] == "superconducting" and r.get("tc_k") is not None:
            tcs.append(float(r["tc_k"]))
            tmins.append(math.nan)
        elif r["outcome"] == "no_transition":
            tcs.append(math.nan)
            tmins.append(float(r["t_min_k"]) if r.get("t_min_k") is not None else DEFAULT_T_MIN_K)
        else:
            continue
        xs.append(to_vector(r["formula"]))
        ids.append(int(r["id"]))
    x = np.stack(xs).astype(np.float32) if xs else np.zeros((0, 118), np.float32)
    return Labels(x, np.asarray(tcs, np.float64), np.asarray(tmins, np.float64), ids)


def labelled_loss(raw: torch.Tensor, tc: torch.Tensor, t_min: torch.Tensor, delta: float) -> torch.Tensor:
    """(B,) per-row loss: Huber(raw, Tc) where Tc is known; Huber(relu(raw − t_min), 0) where Tc < t_min (censored);
    Tc = 0 replay rows (tc 0, t_min 0): only raw > 0 is penalised, as in training."""
    known = torch.isfinite(tc)
    censored_raw = torch.relu(raw - torch.nan_to_num(t_min, nan=0.0))
    sc_side = torch.where(tc > 0, raw, torch.relu(raw))
    pred = torch.where(known, sc_side, censored_raw)
    target = torch.where(known, torch.nan_to_num(tc, nan=0.0), torch.zeros_like(raw))
    return F.huber_loss(pred, target, delta=delta, reduction="none")


def finetune(
    ens: TcEnsemble,
    lab: Labels,
    replay_x: np.ndarray,
    replay_tc: np.ndarray,
    config: UpdateConfig = UpdateConfig(),
    progress: Callable[[float, str], None] | None = None,
) -> list[Any]:
    """Fine-tuned copies of `ens`'s members (the ensemble itself is not changed); see the module docstring."""
    config.validate()
    rng = np.random.default_rng(config.seed)
    device = ens.device
    xm = torch.as_tensor(lab.x, device=device)
    tm = torch.as_tensor(lab.tc, dtype=torch.float32, device=device)
    lm = torch.as_tensor(lab.t_min, dtype=torch.float32, device=device)
    members = []
    total = len(ens.members) * config.steps
    for k, base in enumerate(ens.members):
        m = copy.deepcopy(base).to(device)
        m.eval()  # BatchNorm statistics stay those of training
        m.requires_grad_(True)
        opt = torch.optim.Adam(m.parameters(), lr=config.lr)
        for step in range(config.steps):
            j = rng.integers(0, len(replay_x), config.replay)
            xr = torch.as_tensor(replay_x[j], device=device)
            tr = torch.as_tensor(replay_tc[j], dtype=torch.float32, device=device)
            loss = labelled_loss(m.forward_raw(xr), tr, torch.zeros_like(tr), config.huber_delta).mean()
            if len(lab):
                meas = labelled_loss(m.forward_raw(xm), tm, lm, config.huber_delta).mean()
                loss = (loss + config.measured_weight * meas) / (1 + config.measured_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress is not None and (step % 10 == 0 or step == config.steps - 1):
                done = (k * config.steps + step + 1) / total
                progress(done, f"member {k + 1}/{len(ens.members)}, step {step + 1}/{config.steps}")
        m.eval().requires_grad_(False)
        members.append(m)
    return members


def boost_trees(trees: TreeModel, x: np.ndarray, tc: np.ndarray, rounds: int, seed: int = 0) -> TreeModel:
    """`trees` plus `rounds` boosting rounds fitted on the residuals tc − trees(x) (x: (N, 118), tc (N,) K)."""
    if rounds == 0 or not len(x):
        return trees
    feats = trees.features(x)
    residual = np.asarray(tc, np.float64) - trees.raw_features(feats)
    config = TreeConfig(max_iter=rounds, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=5, seed=seed)
    model = hist_gradient_boosting(config)
    model.fit(feats, residual)
    more = export_sklearn(model, feats.shape[1], trees.extended, embedding=trees.embedding, valence=trees.valence)
    n = len(trees.feature)
    return TreeModel(
        feature=np.concatenate([trees.feature, more.feature]),
        right=np.concatenate([trees.right, more.right + n]).astype(np.int32),
        value=np.concatenate([trees.value, more.value]),
        roots=np.concatenate([trees.roots, more.roots + n]).astype(np.int32),
        baseline=trees.baseline + more.baseline,
        n_features=trees.n_features,
        extended=trees.extended,
        embedding=trees.embedding,
        valence=trees.valence,
    )


def recalibrate(residual: np.ndarray, sigma: np.ndarray) -> dict[str, Any]:
    """Factor k on σ from measured superconductors' errors before the update (module docstring) and its
    leave-one-out ±1σ / ±2σ coverage; k = 1 (and coverage None) below MIN_CALIBRATION_ROWS rows."""
    z = np.abs(np.asarray(residual, np.float64)) / np.maximum(np.asarray(sigma, np.float64), 1e-6)
    n = len(z)
    if n < MIN_CALIBRATION_ROWS:
        return {"sigma_factor": 1.0, "n": n, "loo_cov1": None, "loo_cov2": None}
    loo = np.array([coverage_scale(np.delete(z, i)) for i in range(n)])
    return {
        "sigma_factor": coverage_scale(z),
        "n": n,
        "loo_cov1": float(np.mean(z <= loo)),
        "loo_cov2": float(np.mean(z <= 2 * loo)),
    }


def updated_ensemble(ens: TcEnsemble, members: list[Any], sigma_factor: float, note: dict[str, Any]) -> TcEnsemble:
    """A new TcEnsemble of `members` with `ens`'s calibration times `sigma_factor` and its card plus `note`."""
    new = TcEnsemble(members, card=copy.deepcopy(ens.card), path="")
    for attr in ("distance_scale_k", "neighbor_scale", "band_edges_l1", "band_factors"):
        setattr(new, attr, getattr(ens, attr))
    new.sigma_scale = ens.sigma_scale * sigma_factor
    new.distance_scale_k = ens.distance_scale_k * sigma_factor
    new.tc_scale = ens.tc_scale * sigma_factor
    cal = dict(new.card.get("calibration") or {})
    if cal:
        cal.update(sigma_scale=new.sigma_scale, distance_scale_k=new.distance_scale_k, tc_scale=new.tc_scale)
        new.card["calibration"] = cal
    new.card["sigma_scale"] = new.sigma_scale
    new.card["campaign_update"] = {**note, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return new.eval().requires_grad_(False)


def learn(
    ens: TcEnsemble,
    trees: TreeModel | None,
    lab: Labels,
    replay: tuple[np.ndarray, np.ndarray, np.ndarray],
    before: tuple[np.ndarray, np.ndarray],
    config: UpdateConfig = UpdateConfig(),
    note: dict[str, Any] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[TcEnsemble, TreeModel | None, dict[str, Any]]:
    """One update (module docstring): the σ factor from the measured superconductors' errors before it, the fine-tune,
    the new ensemble and the boosted trees. replay: the model's training rows (x (N, 118), Tc (N,) K, is
    superconductor (N,)); before: (Tc, σ) of `ens` for lab.x. Returns (new ensemble, trees or None, σ factor report).
    `ens` and `trees` are not changed."""
    say = progress or (lambda f, msg: None)
    x_tr, tc_tr, sc_tr = replay
    sc = lab.is_sc
    cal = recalibrate(lab.tc[sc] - before[0][sc], before[1][sc])
    members = finetune(ens, lab, x_tr, tc_tr, config, lambda f, msg: say(0.9 * f, msg))
    new = updated_ensemble(ens, members, cal["sigma_factor"], {**(note or {}), "sigma_recalibration": cal})
    if trees is not None:
        say(0.95, f"refitting the trees ({config.trees_rounds} more rounds)")
        x_sc = np.concatenate([x_tr[sc_tr], lab.x[sc]])
        y_sc = np.concatenate([tc_tr[sc_tr], lab.tc[sc]])
        trees = boost_trees(trees, x_sc, y_sc, config.trees_rounds, config.seed)
    return new, trees, cal


__all__ = [
    "DEFAULT_T_MIN_K",
    "Labels",
    "UpdateConfig",
    "boost_trees",
    "finetune",
    "labelled_loss",
    "labels",
    "learn",
    "recalibrate",
    "updated_ensemble",
]
