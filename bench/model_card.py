"""Model card of the committed checkpoints: one table, no neural-network training.

    python -m bench.model_card            # markdown table (a few minutes on 2 CPU cores)
    python -m bench.model_card --json     # the table, then ONE JSON line with the headline numbers
    python -m bench.model_card --quick    # trees with 30 rounds on 4,000 rows (tests, smoke checks)

Sections (one table, column "section"):

* random   checkpoints/tc_default.pt on its recorded split: SuperCon test MAE, R², precision at
           Tc > 0 K, σ coverage; beside the paper (MAE 4.12 K, R² 0.924) and, trained here on the
           same training rows, gradient-boosted trees (118 fractions) and 1-NN.
* jarvis   JARVIS-Leaderboard supercon_chem (3,283 test rows): MAE of checkpoints/tc_jarvis.pt if
           present (`gdmcd train --split jarvis ...`), the trees trained on the leaderboard's train rows,
           and the published entries. Rows that do not parse get the training median (a fallback
           value, as the leaderboard asks).
* time     checkpoints/tc_timesplit.pt (test: first reported >= 2010): R², MAE, ±1σ/±2σ coverage
           overall and far (L1 >= 0.2) from training, Spearman(σ, |error|), and R² without the
           hydride test superconductors (high-pressure phases no pre-2010 data could anticipate).
* oxygen   training/sanity.oxygen_response with the default model: Tc at nominal O vs at <= 50 % O.
* hydride  molecular/ionic hydrides (expected ~0 K) and the share of the XH1..XH10 grid above 100 K,
           for the default and the hydride model. Hydride figures are high-pressure estimates: the
           training data record no pressure.

Each section also reports the committed trees on element statistics beside its checkpoint
(`NAME.trees.pt`, `gdmcd trees`) and the consensus of the ResNet ensemble and the trees (model/trees.py).

A card without "calibration" gets (s, b) fitted on its validation split here (noted in the table).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench.baselines import split_metrics
from bench.common import add_doc_option, fmt, load_calibrated, tree_predictions, write_doc, write_results
from gdmcd_core.data.dataset import TEST
from gdmcd_core.data.jarvis import load_jarvis_rows
from gdmcd_core.data.paths import JARVIS_SPLIT_FILE, find_data_dir
from gdmcd_core.model.checkpoint import CHECKPOINT_DIR, load_checkpoint
from gdmcd_core.model.trees import DISAGREEMENT_RATIO, companion_trees, consensus, tc_if_superconducting
from gdmcd_core.training.evaluate import FAR_L1, evaluate_checkpoint
from gdmcd_core.training.metrics import regression_metrics
from gdmcd_core.training.sanity import binary_hydride_grid, hydride_sanity, oxygen_response, oxygen_scan
from gdmcd_core.training.testset_log import log_test_figures

warnings.filterwarnings("ignore", message="No Pauling electronegativity")

PAPER_RANDOM = {"mae_k": 4.12, "r2": 0.924}  # GDMCD paper, Table 1 (SuperCon + COD, random split)
# JARVIS-Leaderboard supercon_chem test MAE (K), as published there (data README, section 7).
JARVIS_LEADERBOARD_K = {
    "matminer random forest": 4.851,
    "matminer XGBoost": 4.930,
    "cfid_chem": 5.033,
    "ElemNet2_SC": 5.114,
    "matminer LightGBM": 5.152,
    "element_fraction_desc": 5.292,
    "BNet": 5.308,
    "BRNet": 5.437,
    "ElemNet2_TL": 5.494,
    "ElemNet1": 5.590,
    "IRNet_EF": 5.835,
}
GRID_HIGH_K = 100.0  # "high Tc" on the binary-hydride grid
COLUMNS = ("section", "entry", "figure", "value", "note")
MODEL_FILES = ("tc_default.pt", "tc_jarvis.pt", "tc_timesplit.pt", "tc_hydride.pt")  # the checkpoints of the card


class Card:
    """The rows of the one table and the headline numbers of the JSON line."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.headline: dict[str, object] = {}

    def add(self, section: str, entry: str, figure: str, value: object, note: str = "", spec: str = ".3f") -> None:
        self.rows.append((section, entry, figure, fmt(value, spec), note))

    def markdown(self) -> str:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in self.rows]  # | in a cell
        return "\n".join(lines)


def section_random(card: Card, ckpt_dir: Path, data_dir: str | None, quick: bool) -> None:
    path = ckpt_dir / "tc_default.pt"
    if not path.is_file():
        card.add("random", "ours", "status", "not found", str(path))
        return
    ens, ds, note = load_calibrated(path, data_dir)
    m = evaluate_checkpoint(ens, ds)
    label = f"ours ({ens.n_members} member{'s' * (ens.n_members > 1)})"
    n_note = f"{m['n_test_supercon']} SuperCon + {m['n_test_nonsc']} non-SC test rows, seed {ds.config.split_seed}"
    card.add("random", label, "MAE (K)", m["supercon_test_mae_k"], n_note, ".2f")
    card.add("random", label, "R²", m["supercon_test_r2"])
    card.add("random", label, "precision @ Tc > 0 K", m["test_precision"])
    card.add("random", label, "±1σ / ±2σ coverage", _pair(m, "coverage_1sigma", "coverage_2sigma"), note)
    card.add(
        "random", label, f"far (L1 ≥ {FAR_L1:g}) ±1σ / ±2σ", _pair(m, "far_coverage_1sigma", "far_coverage_2sigma")
    )
    _consensus_rows(card, "random", m, ens, ds)
    card.add("random", "paper (GDMCD)", "MAE (K) / R²", f"{PAPER_RANDOM['mae_k']:.2f} / {PAPER_RANDOM['r2']:.3f}")
    tr, te = ds.train_indices(), ds.indices(TEST)
    t0 = time.perf_counter()
    trees, nn = tree_predictions(ds.x[tr], ds.tc_k[tr], ds.x[te], quick)
    fit_note = f"trained here on the same {len(tr)} training rows, {time.perf_counter() - t0:.0f} s"
    for name, pred in (("gradient-boosted trees (118 fractions)", trees), ("1-NN (fractions)", nn)):
        b = split_metrics(ds, pred)
        card.add(
            "random", name, "MAE (K) / R²", f"{b['supercon_test_mae_k']:.2f} / {b['supercon_test_r2']:.3f}", fit_note
        )
        card.add("random", name, "precision @ Tc > 0 K", b["precision_at_0k"])
        card.headline[f"random_{'trees' if 'trees' in name else 'nn1'}_mae_k"] = b["supercon_test_mae_k"]
    card.headline.update(
        random_mae_k=m["supercon_test_mae_k"],
        random_r2=m["supercon_test_r2"],
        random_precision_0k=m["test_precision"],
        random_cov1=m.get("coverage_1sigma"),
        random_cov2=m.get("coverage_2sigma"),
        random_far_cov1=m.get("far_coverage_1sigma"),
        random_consensus_mae_k=m.get("consensus_supercon_test_mae_k"),
        random_consensus_r2=m.get("consensus_supercon_test_r2"),
        random_consensus_precision_0k=m.get("consensus_test_precision"),
    )


TREES_LABEL = "trees on element statistics (committed)"
CONSENSUS_LABEL = "consensus: ours + trees"


def _consensus_rows(card: Card, section: str, m: dict, ens, ds) -> None:
    """Rows for the committed trees, the consensus (model/trees.py) and the Tc if superconducting (model/hurdle.py)
    when the checkpoint has trees."""
    if m.get("consensus_supercon_test_mae_k") is None:
        card.add(section, CONSENSUS_LABEL, "status", "no trees", "fit them with `gdmcd trees --checkpoint ...`")
        return
    trees = companion_trees(ens)
    weight = f"the ResNet's weight {trees.consensus_weight:.1f}, fitted on the validation superconductors"
    for label, p in ((TREES_LABEL, "trees_"), (CONSENSUS_LABEL, "consensus_")):
        card.add(
            section,
            label,
            "MAE (K) / R²",
            f"{m[p + 'supercon_test_mae_k']:.2f} / {m[p + 'supercon_test_r2']:.3f}",
            weight if p == "consensus_" else "",
        )
        card.add(section, label, "precision @ Tc > 0 K", m[p + "test_precision"])
    test = ds.indices(TEST)
    sc = test[ds.is_supercon[test]]
    tc = tc_if_superconducting(ens.predict(ds.x[sc])[0], trees.predict(ds.x[sc]), trees.consensus_weight)
    b = regression_metrics(ds.tc_k[sc], tc)
    card.add(
        section,
        "Tc if superconducting (tc_if_sc_k)",
        "MAE (K) / R²",
        f"{b['mae']:.2f} / {b['r2']:.3f}",
        "what `gdmcd predict` prints for a superconductor: the consensus, the trees' Tc where the ResNet says 0 K",
    )
    card.headline[f"{section}_consensus_weight"] = trees.consensus_weight
    card.headline[f"{section}_tc_if_sc_mae_k"] = b["mae"]
    card.headline[f"{section}_tc_if_sc_r2"] = b["r2"]
    card.headline[f"{section}_element_trees_mae_k"] = m["trees_supercon_test_mae_k"]
    card.headline[f"{section}_element_trees_r2"] = m["trees_supercon_test_r2"]
    if m.get("disagreement_top_mae_k") is not None:
        share = f"{m['disagreement_top_share']:.0%}"
        card.add(
            section, "ours vs trees", "Spearman(|Tc − Tc_trees|, |error|)", m.get("disagreement_spearman_abs_error")
        )
        card.add(
            section,
            "ours vs trees",
            f"MAE where they disagree most ({share}) / elsewhere (K)",
            f"{m['disagreement_top_mae_k']:.2f} / {fmt(m.get('disagreement_rest_mae_k'), '.2f')}",
            "the ensemble's error on the superconductors",
        )
        card.headline[f"{section}_disagreement_spearman"] = m.get("disagreement_spearman_abs_error")
    if m.get("disagreement_false_positive_auc") is not None:
        card.add(
            section,
            "ours vs trees",
            f"share marked (|Tc − Tc_trees| > {DISAGREEMENT_RATIO:g} Tc): ensemble's false / true positives",
            _pair(m, "disagreement_flags_false_positive_share", "disagreement_flags_true_positive_share"),
            f"the app's speculative mark; AUC of the relative disagreement {m['disagreement_false_positive_auc']:.2f}",
        )
        card.headline[f"{section}_flags_false_positive_share"] = m["disagreement_flags_false_positive_share"]
        card.headline[f"{section}_flags_true_positive_share"] = m["disagreement_flags_true_positive_share"]


def _pair(m: dict, a: str, b: str) -> str:
    """Two shares as "0.702 / 0.895": three decimals, so a figure just under a target does not round onto it."""
    return f"{fmt(m.get(a), '.3f')} / {fmt(m.get(b), '.3f')}"


def jarvis_abs_errors(pred: np.ndarray, rows, fallback: float) -> np.ndarray:
    """|error| (K) of every test row; pred aligned with the readable test rows (parsed or estimated),
    fallback for the others."""
    test = rows.is_test
    full = np.full(int(test.sum()), fallback, dtype=float)
    full[(rows.parsed | rows.estimated)[test]] = pred
    return np.abs(full - rows.tc_k[test])


def jarvis_mae(pred: np.ndarray, rows, fallback: float) -> float:
    return float(jarvis_abs_errors(pred, rows, fallback).mean())


def _se_note(err: np.ndarray) -> str:
    """The MAE's standard error (sd of |error| / sqrt(n)): how far another test set of this size could move it."""
    return f"standard error of this MAE {err.std(ddof=1) / np.sqrt(len(err)):.2f} K"


def section_jarvis(card: Card, ckpt_dir: Path, data_dir: str | None, quick: bool) -> None:
    folder = Path(data_dir) if data_dir else find_data_dir((JARVIS_SPLIT_FILE,))
    rows = load_jarvis_rows(folder / JARVIS_SPLIT_FILE)
    train, test = rows.parsed & ~rows.is_test, (rows.parsed | rows.estimated) & rows.is_test
    fallback = float(np.median(rows.tc_k[train]))
    n_est, n_none = int((rows.is_test & rows.estimated).sum()), int((rows.is_test & ~test).sum())
    n_note = f"{int(rows.is_test.sum())} test rows: {n_est} read with an estimate, {n_none} unread -> {fallback:.1f} K"
    path = ckpt_dir / "tc_jarvis.pt"
    ours = both = element_trees = None
    if path.is_file():
        ens = load_checkpoint(path)
        tc = ens.predict(rows.x[test])[0]
        ours = jarvis_mae(tc, rows, fallback)
        se = _se_note(jarvis_abs_errors(tc, rows, fallback))
        trees = companion_trees(ens)
        data = ens.card.get("data_config", {})
        extra = [
            name
            for key, name in (("include_cod", "COD"), ("physical_negatives", "physical negatives"))
            if data.get(key)
        ]
        trained_on = "; trained on its train rows" + "".join(f" + {name}" for name in extra)
        card.add(
            "jarvis", f"ours ({ens.n_members} member(s))", "test MAE (K)", ours, f"{n_note}{trained_on}; {se}", ".2f"
        )
        if trees is not None:
            tc_trees = trees.predict(rows.x[test])
            element_trees = jarvis_mae(tc_trees, rows, fallback)
            card.add("jarvis", TREES_LABEL, "test MAE (K)", element_trees, "", ".2f")
            err = jarvis_abs_errors(consensus(tc, tc_trees, trees.consensus_weight), rows, fallback)
            both = float(err.mean())
            note = f"{_se_note(err)}; the ResNet's weight {trees.consensus_weight:.1f}, fitted on the validation rows"
            card.add("jarvis", CONSENSUS_LABEL, "test MAE (K)", both, note, ".3f")
            card.headline["jarvis_consensus_weight"] = trees.consensus_weight
        seconds = ", trees and consensus" if trees is not None else ""
        log_test_figures(ens.sha256, f"{path.name} (JARVIS-Leaderboard test rows): test MAE{seconds}")
    else:
        card.add("jarvis", "ours", "test MAE (K)", "not trained", f"no {path.name}; see bench/train_gpu.sh")
    trees, _ = tree_predictions(rows.x[train], rows.tc_k[train], rows.x[test], quick)
    tree_mae = jarvis_mae(trees, rows, fallback)
    card.add("jarvis", "gradient-boosted trees (118 fractions)", "test MAE (K)", tree_mae, n_note, ".2f")
    for name, mae in JARVIS_LEADERBOARD_K.items():
        card.add("jarvis", f"leaderboard: {name}", "test MAE (K)", mae, "published", ".3f")
    card.headline.update(
        jarvis_test_mae_k=ours,
        jarvis_trees_test_mae_k=tree_mae,  # the 118-fraction trees fitted here; the committed ones: element_trees
        jarvis_element_trees_test_mae_k=element_trees,
        jarvis_consensus_test_mae_k=both,
    )


def section_time(card: Card, ckpt_dir: Path, data_dir: str | None) -> None:
    path = ckpt_dir / "tc_timesplit.pt"
    if not path.is_file():
        card.add("time", "ours", "status", "not found", str(path))
        card.headline.update(time_r2=None, time_cov1=None, time_cov2=None, time_far_cov1=None)
        return
    ens, ds, note = load_calibrated(path, data_dir)
    m = evaluate_checkpoint(ens, ds)
    label = f"ours ({ens.n_members} member{'s' * (ens.n_members > 1)})"
    far_note = f"{m.get('n_test_supercon_far')} of {m['n_test_supercon']} test superconductors far"
    card.add("time", label, "MAE (K) / R²", f"{m['supercon_test_mae_k']:.2f} / {m['supercon_test_r2']:.3f}", far_note)
    folds = (m.get("calibration") or {}).get("sigma_cross_fitted_folds")
    if folds:
        note = f"σ fitted on these rows, reported {folds}-fold cross-fitted (each row's σ fitted on the other fold)"
    card.add("time", label, "±1σ / ±2σ coverage", _pair(m, "coverage_1sigma", "coverage_2sigma"), note)
    card.add("time", label, f"far (L1 ≥ {FAR_L1:g}) ±1σ / ±2σ", _pair(m, "far_coverage_1sigma", "far_coverage_2sigma"))
    card.add("time", label, "Spearman(σ, |error|)", m.get("spearman_sigma_abs_error"))
    card.add(
        "time", label, "far / near MAE (K)", f"{fmt(m.get('far_mae_k'), '.2f')} / {fmt(m.get('near_mae_k'), '.2f')}"
    )
    sigma_k = f"{fmt(m.get('mean_sigma_k'), '.2f')} / {fmt(m.get('far_mean_sigma_k'), '.2f')}"
    card.add("time", label, "mean σ all / far (K)", sigma_k)
    for b in m.get("mae_by_distance_l1", []):
        card.add(
            "time",
            label,
            f"L1 {b['l1_from']:g}–{min(b['l1_to'], 2):g}: MAE / mean σ (K), ±1σ / ±2σ",
            f"{b['mae_k']:.2f} / {fmt(b['mean_sigma_k'], '.2f')}, {fmt(b.get('cov1'), '.3f')} / "
            f"{fmt(b.get('cov2'), '.3f')}",
            f"{b['n']} rows",
        )
    cal = ens.card.get("calibration") or {}
    card.add("time", label, "σ fitted on", cal.get("fitted_on", "–"), f"latest year seen: {cal.get('max_year')}")
    _consensus_rows(card, "time", m, ens, ds)
    r2_wo, n_hyd = m.get("supercon_test_r2_without_hydrides"), m.get("n_test_supercon_hydrides")
    card.add(
        "time",
        label,
        "R² without hydrides",
        r2_wo,
        f"{n_hyd} hydride test superconductors left out (chem.composition.is_hydride: high-pressure phases such as LaH10, H3S, H2S, reported from 2015)",
    )
    card.headline.update(
        time_mae_k=m["supercon_test_mae_k"],
        time_r2=m["supercon_test_r2"],
        time_cov1=m.get("coverage_1sigma"),
        time_cov2=m.get("coverage_2sigma"),
        time_far_cov1=m.get("far_coverage_1sigma"),
        time_far_cov2=m.get("far_coverage_2sigma"),
        time_spearman=m.get("spearman_sigma_abs_error"),
        time_sigma_cross_fitted_folds=folds,
        # the calibration's part and the latest first-report year among its rows (None: not recorded; a calibration
        # fitted on the post-2010 test rows saw rows to 2024)
        time_calibration_part=cal.get("part"),
        time_calibration_max_year=cal.get("max_year"),
        time_band_coverage=[
            {k: b.get(k) for k in ("l1_from", "l1_to", "n", "cov1", "cov2")} for b in m.get("mae_by_distance_l1", [])
        ],
        time_members=ens.n_members,
        time_consensus_mae_k=m.get("consensus_supercon_test_mae_k"),
        time_consensus_r2=m.get("consensus_supercon_test_r2"),
        time_r2_without_hydrides=r2_wo,
    )


def section_oxygen(card: Card, ckpt_dir: Path) -> None:
    path = ckpt_dir / "tc_default.pt"
    if not path.is_file():
        return
    resp = oxygen_response(oxygen_scan(load_checkpoint(path).predict))
    for r in resp.itertuples():
        card.add(
            "oxygen",
            r.family,
            "Tc nominal O -> max at ≤ 50 % O (K)",
            f"{r.tc_nominal:.1f} -> {r.tc_low_oxygen_max:.1f}",
            "falls" if r.falls else "DOES NOT FALL",
        )
    card.headline.update(oxygen_falls=int(resp["falls"].sum()), oxygen_families=len(resp))


def section_hydrides(card: Card, ckpt_dir: Path) -> None:
    formulas, grid = binary_hydride_grid()
    for key, name in (("default", "tc_default.pt"), ("hydride", "tc_hydride.pt")):
        path = ckpt_dir / name
        if not path.is_file():
            card.add("hydride", key, "status", "not found", str(path))
            continue
        ens = load_checkpoint(path)
        sanity = hydride_sanity(ens.predict)
        worst = sanity.loc[sanity["tc_mean"].idxmax()]
        card.add(
            "hydride",
            key,
            "molecular/ionic hydrides: mean / max Tc (K)",
            f"{sanity['tc_mean'].mean():.1f} / {worst['tc_mean']:.1f}",
            f"max at {worst['formula']}; expected ~0 K",
        )
        share = float((ens.predict(grid)[0] > GRID_HIGH_K).mean())
        card.add(
            "hydride",
            key,
            f"XH1..XH10 grid share > {GRID_HIGH_K:g} K",
            share,
            f"{len(formulas)} binaries; high-pressure estimate (no pressure in the data)",
        )
        card.headline[f"hydride_grid_share_above_100k_{key}"] = share
        card.headline[f"hydride_sanity_max_k_{key}"] = float(worst["tc_mean"])


def report(numbers: dict) -> str:
    """The table of a run (`numbers`: rows, headline, quick, total_s), as printed and as docs/benchmarks/ holds it."""
    card = Card()
    card.rows = [tuple(r) for r in numbers["rows"]]
    quick = "QUICK (reduced trees) " if numbers.get("quick") else ""
    return f"{card.markdown()}\n\n{quick}run, {numbers['total_s']:.0f} s."


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Model card of the committed checkpoints (no training)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of headline numbers")
    p.add_argument("--quick", action="store_true", help="small tree baselines (smoke tests)")
    p.add_argument("--checkpoint-dir", default=str(CHECKPOINT_DIR), help="folder with tc_default.pt etc.")
    p.add_argument("--data-dir", default=None, help="data folder (default: as `gdmcd train`)")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for the trees (default 1)")
    add_doc_option(p, "model_card")
    a = p.parse_args(argv)
    ckpt_dir = Path(a.checkpoint_dir)
    card = Card()
    t0 = time.perf_counter()
    with threadpool_limits(limits=a.threads):
        section_random(card, ckpt_dir, a.data_dir, a.quick)
        section_jarvis(card, ckpt_dir, a.data_dir, a.quick)
        section_time(card, ckpt_dir, a.data_dir)
        section_oxygen(card, ckpt_dir)
        section_hydrides(card, ckpt_dir)
    log_test_figures(
        "-", "baselines fitted by the model card: trees on 118 fractions (random and JARVIS test rows), 1-NN (random)"
    )
    total = time.perf_counter() - t0
    numbers = {"rows": card.rows, "headline": card.headline, "quick": a.quick, "total_s": round(total, 1)}
    print(card.markdown())
    print(f"\n{'QUICK (reduced trees) ' if a.quick else ''}run, {total:.0f} s; checkpoints from {ckpt_dir}")
    if a.json:
        print(json.dumps({**card.headline, "quick": a.quick, "total_s": round(total, 1)}, default=float))
    if a.doc:
        used = [ckpt_dir / n for n in MODEL_FILES if (ckpt_dir / n).is_file()]
        write_results(a.doc, numbers, used)
        write_doc(a.doc, report(numbers), checkpoints=used)
    return 0


if __name__ == "__main__":
    sys.exit(main())
