"""The ResNet's weight in its consensus with the trees, fitted on validation superconductors.

The consensus (model/trees.py) and the Tc if superconducting (model/hurdle.py) mix the ensemble's Tc and the trees'
where the ensemble says Tc > 0 K: w · Tc_resnet + (1 − w) · Tc_trees. The even mean (w = 0.5) was a prior; which
family is more accurate differs by checkpoint (on the time split's pre-2010 validation rows the trees' MAE is 4.8 K
against the ResNet's 7.6 K), so `gdmcd trees` fits w per checkpoint on the checkpoint's own validation
superconductors: the w on the grid WEIGHTS with the lowest MAE of the Tc if superconducting (ties: the one nearest
the even mean). The weight is stored in the trees' card (`consensus_weight`, with the MAE at every grid weight under
`consensus_weight_fit`); trees whose card has none keep the even mean. No test row is used; for the time-split
checkpoint the validation rows are first reported before 2010.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gdmcd_core.model.trees import EVEN_WEIGHT, tc_if_superconducting

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))  # the ResNet's weight, 0 (trees alone) to 1 (ResNet alone)


def fit_consensus_weight(tc_net: np.ndarray, tc_trees: np.ndarray, tc_true: np.ndarray) -> dict[str, Any]:
    """{"consensus_weight": w, "consensus_weight_fit": {...}} from the ensemble's and the trees' Tc and the measured
    Tc (K) of validation superconductors: the grid weight with the lowest MAE (module docstring)."""
    tc_net, tc_trees, tc_true = (np.asarray(v, np.float64) for v in (tc_net, tc_trees, tc_true))
    if len(tc_true) == 0:
        raise ValueError("no validation superconductors to fit the consensus weight on")
    mae = {w: float(np.abs(tc_if_superconducting(tc_net, tc_trees, w) - tc_true).mean()) for w in WEIGHTS}
    best = min(WEIGHTS, key=lambda w: (round(mae[w], 9), abs(w - EVEN_WEIGHT)))
    fit = {"part": "validation", "rows": int(len(tc_true)), "mae_k_by_weight": {f"{w:.1f}": mae[w] for w in WEIGHTS}}
    return {"consensus_weight": best, "consensus_weight_fit": fit}


def consensus_weight_for(ens: Any, ds: Any, trees: Any) -> dict[str, Any]:
    """`fit_consensus_weight` on the validation superconductors of an ensemble's dataset (training/evaluate.py's
    `dataset_for`) with its trees."""
    from gdmcd_core.data.dataset import VAL

    idx = ds.indices(VAL)
    rows = idx[ds.is_supercon[idx]]
    tc_net, _ = ens.predict(ds.x[rows])
    return fit_consensus_weight(tc_net, trees.predict(ds.x[rows]), ds.tc_k[rows])


__all__ = ["WEIGHTS", "consensus_weight_for", "fit_consensus_weight"]
