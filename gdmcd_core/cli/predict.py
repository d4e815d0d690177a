"""`gdmcd predict FORMULA ...`: Tc of formulas, as the two-part answer of model/hurdle.py.

Per formula: P(superconductor) (the classifier beside the checkpoint, model/sc_classifier.py; null without one),
the Tc if superconducting and the expected Tc, each with σ (null where unknown, e.g. a one-member checkpoint),
the call (superconductor / not a superconductor / uncertain) with its interval, the ensemble's own Tc and σ, the
trees' Tc and the consensus (null without trees), the pressure asked for and the training-set checks. The models
have no pressure input: `--pressure-gpa` above 0, and every hydrogen-rich formula, get a warning that the value is
high-pressure and out of the model's scope.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


def add_predict_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("formulas", nargs="+", metavar="FORMULA")
    p.add_argument("--checkpoint", default=None)
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of {formula, parsed_formula, pressure_gpa, p_superconductor, tc_if_sc_k, "
        "tc_if_sc_std_k, tc_k, tc_std_k, call, tc_low_k, tc_high_k, tc_ensemble_k, tc_ensemble_std_k, tc_trees_k, "
        "tc_consensus_k, distance_to_training, unseen_elements, high_pressure, warning} (null where unknown: "
        "p_superconductor and call without a classifier, tc_trees_k and tc_consensus_k without trees, σ for one "
        "member)",
    )
    p.add_argument(
        "--pressure-gpa",
        type=float,
        default=0.0,
        help="pressure (GPa) the Tc is asked at (default 0, ambient). The model has no pressure input: the value "
        "is echoed and any Tc at a pressure above 0 is labelled high-pressure, out of the model's scope",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None, help="data folder for the training-set checks (default: as train)")
    p.set_defaults(handler=handle_predict)
    return p


def _num(v: Any, digits: int = 3, sigma: bool = False) -> float | None:
    from gdmcd_core.model.hurdle import json_number

    return json_number(v, digits, sigma)


def predict_rows(
    ens: Any,
    good: list[str],
    x: Any,
    data_dir: str | None = None,
    seconds: tuple[Any, Any] = (None, None),
    pressure_gpa: float = 0.0,
) -> list[dict]:
    """One JSON-ready row per parsed formula (x: (B, 118) fractions); seconds = (trees or None, classifier or None)
    beside the checkpoint."""

    from gdmcd_core.chem.composition import format_amounts, is_hydride, parse_formula
    from gdmcd_core.model.hurdle import two_part
    from gdmcd_core.model.trees import EVEN_WEIGHT, consensus
    from gdmcd_core.training.evaluate import prediction_warnings, training_reference_for

    trees, classifier = seconds
    ref, why = training_reference_for(ens.card, data_dir)
    dist, tc_nn = ref.supercon_neighbors(x) if ref is not None else (None, None)
    mean, std = ens.predict(x, distance=dist, neighbor_tc=tc_nn)
    tc_trees = trees.predict(x) if trees is not None else None
    p = classifier.probability(x) if classifier is not None else None
    weight = trees.consensus_weight if trees is not None else EVEN_WEIGHT
    parts = two_part(mean, std if ens.has_uncertainty else None, tc_trees, p, weight)
    both = consensus(mean, tc_trees, weight) if trees is not None else None
    warnings = prediction_warnings(x, ref, why, dist, pressure_gpa)
    hydride = is_hydride(x)
    rows = []
    for i, f in enumerate(good):
        rows.append(
            {
                "formula": f,
                "parsed_formula": format_amounts(parse_formula(f)),
                "pressure_gpa": pressure_gpa,
                "p_superconductor": None if p is None else _num(p[i], 4),
                "tc_if_sc_k": _num(parts.tc_if_sc_k[i]),
                "tc_if_sc_std_k": _num(parts.tc_if_sc_std_k[i], sigma=True),
                "tc_k": _num(parts.tc_k[i]),
                "tc_std_k": _num(parts.tc_std_k[i], sigma=True),
                "call": parts.call[i],
                "tc_low_k": _num(parts.tc_low_k[i]),
                "tc_high_k": _num(parts.tc_high_k[i]),
                "tc_ensemble_k": _num(mean[i]),
                "tc_ensemble_std_k": _num(std[i], sigma=True) if ens.has_uncertainty else None,
                "tc_trees_k": None if tc_trees is None else _num(tc_trees[i]),
                "tc_consensus_k": None if both is None else _num(both[i]),
                "distance_to_training": None if dist is None else _num(dist[i], 4),
                "unseen_elements": ref.unseen_elements(x[i]) if ref is not None else None,
                "high_pressure": bool(pressure_gpa > 0 or hydride[i]),
                "warning": warnings[i],
            }
        )
    return rows


def row_text(r: dict) -> str:
    """The line `gdmcd predict` prints for a row of `predict_rows` (σ through hurdle.plus_minus: never '± 0.0')."""
    from gdmcd_core.model.hurdle import SC, plus_minus

    second = (
        "" if r["tc_trees_k"] is None else f"   trees {r['tc_trees_k']:.1f} K, consensus {r['tc_consensus_k']:.1f} K"
    )
    scored = f"   (scored as {r['parsed_formula']})"
    if r["p_superconductor"] is None:
        return f"{r['formula']:30s} {plus_minus(r['tc_k'], r['tc_std_k'], 2)}{second}{scored}"
    span = ""
    if r["call"] != SC and r["tc_high_k"] is not None:
        span = f", {r['tc_low_k']:.0f}–{r['tc_high_k']:.0f} K"
    return (
        f"{r['formula']:30s} P(SC) {r['p_superconductor']:.2f}, Tc if SC {plus_minus(r['tc_if_sc_k'], r['tc_if_sc_std_k'])}, "
        f"expected {plus_minus(r['tc_k'], r['tc_std_k'])}: {r['call']}{span}{second}{scored}"
    )


def _seconds(ens: Any) -> tuple[Any, Any]:
    """(trees, classifier) beside the checkpoint; an unusable one is said on stderr and left out."""
    from gdmcd_core.model.sc_classifier import companion_classifier
    from gdmcd_core.model.trees import second_opinion

    trees, why = second_opinion(ens)
    if why:
        print(f"gdmcd: warning: no second opinion from trees: {why}", file=sys.stderr)
    classifier, why = companion_classifier(ens)
    if why:
        print(f"gdmcd: warning: no P(superconductor): {why}", file=sys.stderr)
    return trees, classifier


def _fail(msg: str) -> int:
    from gdmcd_core.util import printable

    print(f"gdmcd: error: {printable(msg)}", file=sys.stderr)
    return EXIT_USAGE


def handle_predict(a: argparse.Namespace) -> int:
    import numpy as np

    from gdmcd_core.chem.composition import FormulaError, to_vector
    from gdmcd_core.design.config.config import MAX_PRESSURE_GPA
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint
    from gdmcd_core.util import resolve_device

    if not (math.isfinite(a.pressure_gpa) and 0 <= a.pressure_gpa <= MAX_PRESSURE_GPA):
        return _fail(f"--pressure-gpa must be a pressure in GPa from 0 to {MAX_PRESSURE_GPA:g}, got {a.pressure_gpa}")
    good, vecs, bad = [], [], []
    for f in a.formulas:
        try:
            vecs.append(to_vector(f))
            good.append(f)
        except FormulaError as exc:
            bad.append(str(exc))
    rows = []
    if good:
        try:
            ens = load_checkpoint(Path(a.checkpoint) if a.checkpoint else DEFAULT_CHECKPOINT, resolve_device(a.device))
        except (CheckpointError, ValueError) as exc:
            return _fail(str(exc))
        x = np.stack(vecs).astype(np.float32)
        rows = predict_rows(ens, good, x, a.data_dir, _seconds(ens), a.pressure_gpa)
    if a.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(row_text(r))
            if r["warning"]:
                print(f"  warning: {r['warning']}")
    for msg in bad:
        print(f"gdmcd: error: {msg}", file=sys.stderr)
    return EXIT_USAGE if bad else 0


__all__ = ["add_predict_parser", "handle_predict", "predict_rows", "row_text"]
