"""`gdmcd classifier --checkpoint X.pt`: fit P(superconductor) trees on X's data and split (model/sc_classifier.py).

Saved beside the checkpoint (X.sc.pt and its card) unless --out names another file; `gdmcd predict`, the design
candidates and the app's Predict page then report P(SC), the Tc if superconducting and the expected Tc
(model/hurdle.py). The number of boosting rounds is chosen on the validation rows, and only validation figures
are computed (never the test rows). Every ClassifierConfig field is an option (--max-iter, --negative-weight, ...).
`--add-cod` adds the COD non-superconductors to the rows of a checkpoint whose ResNet trained without them (the
time-split model's Tc part): in the two-part answer P(SC) is the part that weighs them (at --negative-weight).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_classifier_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from gdmcd_core.model.sc_classifier import ClassifierConfig

    p.add_argument("--checkpoint", default=None, help="checkpoint whose data and split to use (default: tc_default.pt)")
    for f in fields(ClassifierConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    p.add_argument("--out", default=None, help="file to write (default: NAME.sc.pt beside the checkpoint)")
    p.add_argument(
        "--add-cod",
        action="store_true",
        help="fit on the checkpoint's rows plus the COD non-superconductors of the same split, where its ResNet "
        "trained without them",
    )
    p.add_argument("--threads", type=int, default=2, help="OpenMP threads for the fit (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder with the data files (default: as train)")
    p.add_argument("--json", action="store_true", help="print the validation figures as one JSON object")
    p.set_defaults(handler=handle_classifier)
    return p


def _network_call_metrics(ens: Any, ds: Any, rows: Any, y: Any) -> dict:
    """Precision and recall of the ensemble's own call (Tc > 0 K) on the same validation rows, for comparison."""
    from gdmcd_core.model.sc_classifier import validation_metrics

    mean, _ = ens.predict(ds.x[rows])
    m = validation_metrics(y, (mean > 0).astype(float))
    return {k: m[k] for k in ("n", "n_supercon", "precision", "recall")}


def _fit(a: argparse.Namespace) -> tuple[str, dict]:
    """Fit, save and return (path written, its card's fit fields)."""
    from pathlib import Path

    from threadpoolctl import threadpool_limits

    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
    from gdmcd_core.model.sc_classifier import (
        ClassifierConfig,
        classifier_card,
        classifier_path,
        classifier_rows,
        fit_classifier,
        labelled_rows,
        save_classifier,
        validation_metrics,
    )
    from gdmcd_core.training.evaluate import dataset_for

    config = ClassifierConfig(**{f.name: getattr(a, f.name) for f in fields(ClassifierConfig)}).validate()
    if a.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {a.threads}")
    ens = load_checkpoint(a.checkpoint or DEFAULT_CHECKPOINT)
    ds = dataset_for(ens, a.data_dir)
    added = a.add_cod and not ds.config.include_cod
    if added and isinstance(ens.card.get("hydride_config"), dict):
        raise ValueError("--add-cod is for Tc checkpoints trained without COD, not a hydride model")
    if added:  # the same split of the SuperCon rows (drawn before the COD rows'), the COD rows added
        from dataclasses import replace

        from gdmcd_core.data.dataset import build_dataset

        ds = build_dataset(replace(ds.config, include_cod=True), a.data_dir)
    rows = classifier_rows(ds, config.skip_valence_suspect)
    parts = [labelled_rows(ds, r, config.negative_weight) for r in rows]
    print(f"fitting up to {config.max_iter} rounds on {len(parts[0][1])} training rows ...", file=sys.stderr)
    t0 = time.perf_counter()
    with threadpool_limits(limits=a.threads):
        model, how = fit_classifier(parts[0], parts[1], config)
    fit = {
        **how,
        "fit_s": round(time.perf_counter() - t0, 1),
        "train_rows": len(parts[0][1]),
        "val_rows": len(parts[1][1]),
        # superconductor rows of the repair flag cu_valence_too_low left out of both (data/repair.py)
        "valence_suspect_skipped": sum(map(len, classifier_rows(ds, False))) - sum(map(len, rows)),
        "cod_added": added,  # the COD rows were added to the checkpoint's (--add-cod)
        "metrics_val": validation_metrics(parts[1][1], model.probability(parts[1][0])),
        "metrics_val_network_call": _network_call_metrics(ens, ds, rows[1], parts[1][1]),
    }
    out = Path(a.out) if a.out else classifier_path(ens.path)
    save_classifier(out, model, classifier_card(config, ens.card, fit))
    return str(out), fit


def handle_classifier(a: argparse.Namespace) -> int:
    from gdmcd_core.data.paths import DataNotFoundError
    from gdmcd_core.model.checkpoint import CheckpointError

    try:
        out, fit = _fit(a)
    except (CheckpointError, DataNotFoundError, ValueError, OSError) as exc:
        print(f"gdmcd classifier: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    m, net = fit["metrics_val"], fit["metrics_val_network_call"]
    if a.json:
        print(json.dumps({"classifier": out, "rounds": fit["rounds"], "metrics_val": m, "network_call": net}))
        return EXIT_OK
    print(f"{out}: {fit['rounds']} rounds (chosen on {fit['val_rows']} validation rows), {fit['fit_s']:.0f} s")
    print(
        f"  validation: precision {m['precision']:.3f}, recall {m['recall']:.3f} at P(SC) >= {m['threshold']:g}; "
        f"average precision {m['average_precision']:.3f}, log loss {m['log_loss']:.3f}"
    )
    print(f"  the ensemble's own call (Tc > 0 K): precision {net['precision']:.3f}, recall {net['recall']:.3f}")
    return EXIT_OK


__all__ = ["add_classifier_parser", "handle_classifier"]
