"""`gdmcd trees --checkpoint X.pt`: fit the element-statistics trees on X's data and split (model/trees.py).

The trees are saved beside the checkpoint (X.trees.pt and its card); `gdmcd evaluate`, `gdmcd predict`,
design candidates and the model card then report them and the consensus. Every TreeConfig field is an
option (--max-iter, --learning-rate, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields

EXIT_OK, EXIT_USAGE = 0, 2


def add_trees_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from gdmcd_core.model.trees import TreeConfig

    p.add_argument("--checkpoint", default=None, help="checkpoint whose data and split to use (default: tc_default.pt)")
    for f in fields(TreeConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    p.add_argument("--threads", type=int, default=2, help="OpenMP threads for the fit (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder with the data files (default: as train)")
    p.add_argument("--json", action="store_true", help="print the test figures as one JSON object")
    p.set_defaults(handler=handle_trees)
    return p


def handle_trees(a: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from gdmcd_core.data.paths import DataNotFoundError
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint, update_card
    from gdmcd_core.model.trees import TreeConfig, fit_trees, save_trees, training_rows, tree_card, trees_path
    from gdmcd_core.training.evaluate import dataset_for, evaluate_checkpoint, second_opinion_metrics

    try:
        config = TreeConfig(**{f.name: getattr(a, f.name) for f in fields(TreeConfig)}).validate()
        if a.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {a.threads}")
        ens = load_checkpoint(a.checkpoint or DEFAULT_CHECKPOINT)
        ds = dataset_for(ens, a.data_dir)
        rows = training_rows(ds, config)
        print(f"fitting {config.max_iter} trees on {len(rows)} training rows ...", file=sys.stderr)
        t0 = time.perf_counter()
        with threadpool_limits(limits=a.threads):
            trees = fit_trees(ds.x[rows], ds.tc_k[rows], config)
        out = trees_path(ens.path)
        save_trees(out, trees, tree_card(config, ens.card, time.perf_counter() - t0, len(rows)))
        metrics = evaluate_checkpoint(ens, ds)
        if "trees_error" in metrics:  # e.g. the checkpoint's card changed under us: the trees just saved are unusable
            raise CheckpointError(metrics["trees_error"])
        update_card(out, {"metrics_test": second_opinion_metrics(metrics)})  # the Model page reads them there
    except (CheckpointError, DataNotFoundError, ValueError, OSError) as exc:
        print(f"gdmcd trees: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    keys = ["supercon_test_mae_k", "supercon_test_r2", "test_precision"]
    report = {f"{p}{k}": metrics.get(f"{p}{k}") for p in ("", "trees_", "consensus_") for k in keys}
    if a.json:
        print(json.dumps({"trees": str(out), **report}))
    else:
        print(f"{out}: {trees.n_trees} trees, {len(trees.feature)} nodes")
        for name, p in (("resnet ensemble", ""), ("trees", "trees_"), ("consensus", "consensus_")):
            print(
                f"  {name:16s} SuperCon test MAE {report[p + keys[0]]:.2f} K, R² {report[p + keys[1]]:.3f}, "
                f"precision @ 0 K {report[p + keys[2]]:.3f}"
            )
    return EXIT_OK


__all__ = ["add_trees_parser", "handle_trees"]
