"""Baselines a user would pick instead of the neural Tc model, on the model's own splits.

    PYTHONPATH=. .venv/bin/python bench/baselines.py            # markdown table
    PYTHONPATH=. .venv/bin/python bench/baselines.py --json     # one JSON object

Splits are exactly those of `gdmcd_core.data.dataset.build_dataset`: `DataConfig(split="random",
split_seed=0)` (paper S2) and `DataConfig(split="time")` (SuperCon first_year < 2010 train,
>= 2010 test; COD rows split at random). Models:

* `gbt`          scikit-learn HistGradientBoostingRegressor on the 118 element fractions + 24
                 fraction-weighted element statistics (`gdmcd_core.chem.element_features`), trained on
                 `Dataset.train_indices()` (SuperCon x3 + COD), predictions clipped at 0 K.
* `gbt_sc_only`  the same trees trained on the SuperCon training rows only (no COD), to show what
                 the COD non-superconductors do to precision (paper S3).
* `1nn`          Tc of the nearest training composition (Euclidean distance on fractions).

Reported on the test split: SuperCon MAE / RMSE (K) and R², precision/recall of
"superconductor" (Tc > t) for t = 0, 1, 5 K on all test rows (SuperCon + COD), and fit time.
Everything runs single-threaded (a shared 2-core CPU); the whole script takes about a minute or two.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import sklearn
from sklearn.neighbors import KNeighborsRegressor
from threadpoolctl import threadpool_limits

from bench.common import add_doc_option, write_doc
from gdmcd_core.chem.element_features import feature_matrix
from gdmcd_core.data.dataset import TEST, TRAIN, DataConfig, Dataset, build_dataset
from gdmcd_core.model.trees import hist_gradient_boosting
from gdmcd_core.training.metrics import THRESHOLDS_K, regression_metrics, threshold_metrics

SPLITS = {"random": DataConfig(split="random", split_seed=0), "time": DataConfig(split="time")}


@dataclass(frozen=True)
class GbtConfig:
    """HistGradientBoostingRegressor settings (fixed, not tuned on the test split)."""

    max_iter: int = 400  # boosting rounds (no early stopping: its random holdout would contain SuperCon replicas)
    learning_rate: float = 0.1
    max_leaf_nodes: int = 63
    min_samples_leaf: int = 10
    l2_regularization: float = 0.0
    seed: int = 0


Predictor = Callable[[np.ndarray], np.ndarray]


def fit_gbt(features: np.ndarray, y: np.ndarray, cfg: GbtConfig) -> Predictor:
    """Trees on (N, F) features -> predictor of Tc in K (clipped at 0 K, since Tc >= 0)."""
    model = hist_gradient_boosting(cfg)
    model.fit(features, y)
    return lambda f: np.clip(model.predict(f), 0.0, None)


def fit_1nn(x: np.ndarray, y: np.ndarray) -> Predictor:
    """1-nearest-neighbour lookup on (N, 118) fractions: the Tc of the closest training composition."""
    model = KNeighborsRegressor(n_neighbors=1, algorithm="brute", n_jobs=1)
    model.fit(x, y)
    return model.predict


def split_metrics(ds: Dataset, pred: np.ndarray) -> dict:
    """Metrics of `pred` (aligned with the test rows of `ds`)."""
    idx = ds.indices(TEST)
    y, sc = ds.tc_k[idx], ds.is_supercon[idx]
    reg = regression_metrics(y[sc], pred[sc])
    out = {"supercon_test_mae_k": reg["mae"], "supercon_test_rmse_k": reg["rmse"], "supercon_test_r2": reg["r2"]}
    return {**out, **threshold_metrics(y, pred, THRESHOLDS_K)}


def run_split(name: str, config: DataConfig, gbt: GbtConfig, log: Callable[[str], None]) -> tuple[list[dict], dict]:
    """All baselines on one split -> (result rows, split description)."""
    ds = build_dataset(config)
    t0 = time.perf_counter()
    feats = feature_matrix(ds.x)
    feature_s = time.perf_counter() - t0
    train_rep = ds.train_indices()  # SuperCon replicated x supercon_replicas, COD once
    train_sc_rep = train_rep[ds.is_supercon[train_rep]]
    train_unique = ds.indices(TRAIN)
    test = ds.indices(TEST)
    y_test = ds.tc_k[test]
    info = {
        "split": name,
        "data_config": config.to_dict(),
        "counts": ds.counts(),
        "data_checksums": ds.checksums,
        "feature_s": round(feature_s, 2),
        "test_positive_rate": {f"{t:g}k": float((y_test > t).mean()) for t in THRESHOLDS_K},
    }
    plans: list[tuple[str, str, np.ndarray, Callable[[np.ndarray], Predictor], np.ndarray]] = [
        ("gbt", "SuperCon x3 + COD", train_rep, lambda i: fit_gbt(feats[i], ds.tc_k[i], gbt), feats),
        ("gbt_sc_only", "SuperCon x3", train_sc_rep, lambda i: fit_gbt(feats[i], ds.tc_k[i], gbt), feats),
        ("1nn", "SuperCon + COD (unique)", train_unique, lambda i: fit_1nn(ds.x[i], ds.tc_k[i]), ds.x),
    ]
    rows = []
    for model, train_desc, idx, fit, inputs in plans:
        log(f"[{name}] fitting {model} on {len(idx)} rows ...")
        t0 = time.perf_counter()
        predict = fit(idx)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = np.asarray(predict(inputs[test]), dtype=np.float64)
        predict_s = time.perf_counter() - t0
        row = {"split": name, "model": model, "train_rows": int(len(idx)), "train_data": train_desc}
        row.update(split_metrics(ds, pred))
        row.update({"fit_s": round(fit_s, 2), "predict_s": round(predict_s, 2)})
        rows.append(row)
        log(
            f"[{name}] {model}: MAE {row['supercon_test_mae_k']:.2f} K, R2 {row['supercon_test_r2']:.3f}, fit {fit_s:.1f} s"
        )
    return rows, info


def markdown(rows: list[dict], infos: list[dict]) -> str:
    head = (
        "| split | model | train rows | fit s | SC MAE (K) | SC RMSE (K) | SC R² | P@0K | R@0K | P@1K | R@1K | P@5K | R@5K |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    for r in rows:
        pr = " | ".join(f"{r[f'{k}_at_{t:g}k']:.3f}" for t in THRESHOLDS_K for k in ("precision", "recall"))
        lines.append(
            f"| {r['split']} | {r['model']} | {r['train_rows']} | {r['fit_s']:.1f} | {r['supercon_test_mae_k']:.2f} "
            f"| {r['supercon_test_rmse_k']:.2f} | {r['supercon_test_r2']:.3f} | {pr} |"
        )
    notes = []
    for info in infos:
        c = info["counts"]
        rate = ", ".join(f"Tc > {k[:-1]} K: {v:.3f}" for k, v in info["test_positive_rate"].items())
        notes.append(
            f"- {info['split']} split: test = {c['test_supercon']} SuperCon + {c['test_nonsc']} COD rows; "
            f"precision of calling every test row a superconductor ({rate})"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Tc baselines (trees, 1-NN) on the model's random and time splits")
    p.add_argument("--split", choices=sorted(SPLITS), nargs="+", default=["random", "time"])
    p.add_argument("--max-iter", type=int, default=GbtConfig.max_iter, help="boosting rounds of the trees")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (default 1: shared CPU)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    add_doc_option(p, "baselines")
    args = p.parse_args(argv)
    if args.max_iter < 1 or args.threads < 1:
        p.error(f"--max-iter and --threads must be >= 1, got {args.max_iter} and {args.threads}")
    gbt = GbtConfig(max_iter=args.max_iter)
    log = (lambda s: print(s, file=sys.stderr)) if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    t_all = time.perf_counter()
    rows: list[dict] = []
    infos: list[dict] = []
    with threadpool_limits(limits=args.threads):
        for name in args.split:
            r, info = run_split(name, SPLITS[name], gbt, log)
            rows += r
            infos.append(info)
    total_s = time.perf_counter() - t_all
    env = {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "threads": args.threads,
        "total_s": round(total_s, 1),
    }
    if args.json:
        print(json.dumps({"gbt_config": asdict(gbt), "results": rows, "splits": infos, "environment": env}, indent=2))
        return 0
    tables = f"{markdown(rows, infos)}\n\nGBT: {asdict(gbt)}; sklearn {sklearn.__version__}, {args.threads} thread(s), total {total_s:.0f} s"
    print(tables)
    if args.doc:
        write_doc(args.doc, tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
