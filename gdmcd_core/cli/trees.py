"""`gdmcd trees --checkpoint X.pt`: fit the element-statistics trees on X's data and split (model/trees.py).

The trees are saved beside the checkpoint (X.trees.pt and its card); `gdmcd evaluate`, `gdmcd predict`,
design candidates and the model card then report them and the consensus. Every TreeConfig field is an
option (--max-iter, --learning-rate, ...). After the fit, the ResNet's weight in the consensus is fitted on the
checkpoint's validation superconductors (training/consensus_weight.py) and written into the trees' card;
`--reweight` refits only that weight for the trees already beside the checkpoint.
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
    p.add_argument(
        "--reweight",
        action="store_true",
        help="keep the trees beside the checkpoint; refit only the ResNet's weight in the consensus",
    )
    p.add_argument("--json", action="store_true", help="print the test figures as one JSON object")
    p.set_defaults(handler=handle_trees)
    return p


def handle_trees(a: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from gdmcd_core.data.paths import DataNotFoundError
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint, update_card
    from gdmcd_core.model.trees import TreeConfig, trees_path
    from gdmcd_core.training.consensus_weight import consensus_weight_for
    from gdmcd_core.training.evaluate import dataset_for, evaluate_checkpoint, second_opinion_metrics

    try:
        config = TreeConfig(**{f.name: getattr(a, f.name) for f in fields(TreeConfig)}).validate()
        if a.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {a.threads}")
        ens = load_checkpoint(a.checkpoint or DEFAULT_CHECKPOINT)
        ds = dataset_for(ens, a.data_dir)
        out = trees_path(ens.path)
        with threadpool_limits(limits=a.threads):
            trees = _existing(ens) if a.reweight else _fit(ens, ds, config, out)
        weight = consensus_weight_for(ens, ds, trees)
        update_card(out, weight)
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
        print(json.dumps({"trees": str(out), "consensus_weight": weight["consensus_weight"], **report}))
    else:
        w, mae = weight["consensus_weight"], weight["consensus_weight_fit"]["mae_k_by_weight"]
        print(
            f"{out}: {trees.n_trees} trees, {len(trees.feature)} nodes; the ResNet's weight in the consensus "
            f"{w:.1f} (validation MAE of the Tc if superconducting {mae[f'{w:.1f}']:.2f} K; even mean "
            f"{mae['0.5']:.2f} K)"
        )
        for name, p in (("resnet ensemble", ""), ("trees", "trees_"), ("consensus", "consensus_")):
            print(
                f"  {name:16s} SuperCon test MAE {report[p + keys[0]]:.2f} K, R² {report[p + keys[1]]:.3f}, "
                f"precision @ 0 K {report[p + keys[2]]:.3f}"
            )
    return EXIT_OK


def _fit(ens, ds, config, out):
    """Fit the trees on the checkpoint's training rows and save them beside it (their card without a weight yet)."""
    from gdmcd_core.model.trees import fit_trees, save_trees, training_rows, tree_card

    rows = training_rows(ds, config)
    print(f"fitting {config.max_iter} trees on {len(rows)} training rows ...", file=sys.stderr)
    t0 = time.perf_counter()
    trees = fit_trees(ds.x[rows], ds.tc_k[rows], config)
    save_trees(out, trees, tree_card(config, ens.card, time.perf_counter() - t0, len(rows)))
    return trees


def _existing(ens):
    """The trees already beside the checkpoint (--reweight); CheckpointError where there are none."""
    from gdmcd_core.model.checkpoint import CheckpointError
    from gdmcd_core.model.trees import companion_trees, trees_path

    trees = companion_trees(ens)
    if trees is None:
        raise CheckpointError(f"no trees at {trees_path(ens.path)} to reweight; run gdmcd trees without --reweight")
    return trees


__all__ = ["add_trees_parser", "handle_trees"]
