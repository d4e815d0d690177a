"""What `gdmcd evaluate` writes into a checkpoint's card (never the .pt file), each write stamped with by what,
when and which code version."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from gdmcd_core.model.checkpoint import update_card
from gdmcd_core.training.evaluate import second_opinion_metrics
from gdmcd_core.util import code_version


def _stamp(by: str) -> dict:
    return {"by": by, "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "code_version": code_version()}


def write_calibrated_card(ens, metrics: dict) -> None:
    """Write the refitted calibration and the test metrics evaluated with it into the card, saying by what."""
    stamp = _stamp("gdmcd evaluate --write-calibration")
    updates = {"calibration": ens.card["calibration"], "sigma_scale": ens.sigma_scale, "metrics_test": metrics}
    ens.card = update_card(ens.path, {**updates, "recalibrated": stamp})
    print(f"gdmcd: card {ens.path}: calibration and test metrics rewritten", file=sys.stderr)


def card_fields_problem(card: dict, path: object) -> str:
    """'' or one line naming a card field that --write-metrics merges into but that has the wrong type
    (metrics_test and filled_later objects, filled_later's "earlier" a list)."""
    for key in ("metrics_test", "filled_later"):
        value = card.get(key)
        if value is not None and not isinstance(value, dict):
            return f"card of {path}: {key} is a {type(value).__name__}, not an object; fix or remove it by hand"
    earlier = (card.get("filled_later") or {}).get("earlier", [])
    if not isinstance(earlier, list):
        return (
            f"card of {path}: filled_later.earlier is a {type(earlier).__name__}, not a list; fix or remove it by hand"
        )
    return ""


def write_missing_metrics(ens, ds, metrics: dict) -> None:
    """Add the metrics and dataset counts the card lacks (never overwriting recorded ones), saying by what.

    The trees' and the consensus' figures are not the checkpoint's: they live in the trees' card (`gdmcd
    trees`), and any an earlier version wrote here are removed (listed under filled_later "removed").
    Raises ValueError (one line) for a card whose fields have the wrong type (`card_fields_problem`)."""
    problem = card_fields_problem(ens.card, ens.path)
    if problem:
        raise ValueError(problem)
    recorded = dict(ens.card.get("metrics_test") or {})
    removed = sorted(second_opinion_metrics(recorded))
    recorded = {k: v for k, v in recorded.items() if k not in removed}
    theirs = second_opinion_metrics(metrics)
    own = {k: v for k, v in metrics.items() if k not in theirs}
    added = {k: v for k, v in own.items() if k not in recorded}
    updates: dict = {"metrics_test": {**recorded, **added}}
    if not ens.card.get("dataset_counts"):
        updates["dataset_counts"] = ds.counts()
    filled = sorted(added) + (["dataset_counts"] if "dataset_counts" in updates else [])
    earlier = ens.card.get("filled_later")
    history = [*earlier.get("earlier", []), {k: v for k, v in earlier.items() if k != "earlier"}] if earlier else []
    stamp = {**_stamp("gdmcd evaluate --write-metrics"), "fields": filled, "earlier": history}
    if removed:
        stamp["removed"] = {"fields": removed, "why": "the trees' figures: kept in the trees' card (gdmcd trees)"}
    updates["filled_later"] = stamp
    ens.card = update_card(ens.path, updates)
    print(f"gdmcd: card {ens.path}: filled {len(filled)} field(s), removed {len(removed)}", file=sys.stderr)


__all__ = ["card_fields_problem", "write_calibrated_card", "write_missing_metrics"]
