"""Shared pieces of the benchmarks: where their tables go (`write_doc`, `write_results`), loading a checkpoint
with its calibrated σ, tree / 1-NN baselines (bench/baselines.py) on any training rows, and number formatting.

Every benchmark prints its tables; with `--doc` it also writes them into `docs/benchmarks/NAME.md` under a
stamp line (date, SHA-256 prefix of each checkpoint, machine), and the scripts whose numbers `make docs`
re-renders also write them into `bench/results/NAME.json` with the same stamp.

Nothing here trains a neural network. A checkpoint whose card has no "calibration" (cards written
before the distance-aware σ) gets (s, b) fitted on its own validation split at bench time, and the
returned note says so.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gdmcd_core.data.dataset import Dataset
from gdmcd_core.model.checkpoint import card_path, load_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.training.calibration import calibrate
from gdmcd_core.training.evaluate import dataset_for
from gdmcd_core.util import sha256_file

REPO = Path(__file__).resolve().parents[1]
DOCS_DIR = REPO / "docs" / "benchmarks"  # one page per benchmark, written by write_doc
RESULTS_DIR = REPO / "bench" / "results"  # the numbers `make docs` renders (bench/docs.py)
HASH_PREFIX = 12  # hex digits of a SHA-256 shown in a stamp: enough to tell checkpoints apart
ABSOLUTE_CHECKPOINTS = re.compile(r"/\S*/(checkpoints/)")  # a path of the measuring machine: shown from checkpoints/

QUICK_TREE_ROUNDS = 30  # --quick: boosting rounds of the trees (full: GbtConfig.max_iter = 400)
QUICK_TRAIN_ROWS = 4000  # --quick: trees and 1-NN fit on at most this many (seeded) training rows


def load_calibrated(path: str | Path, data_dir: str | None = None) -> tuple[TcEnsemble, Dataset, str]:
    """(ensemble, its own dataset and split, calibration note). Fits (s, b) on validation if the card has none."""
    ens = load_checkpoint(path)
    ds = dataset_for(ens, data_dir)
    if "calibration" in ens.card:
        return ens, ds, f"calibration from the card ({ens.card['calibration'].get('fitted_on', '?')})"
    if not ens.has_uncertainty:
        return ens, ds, "single model: no σ"
    cal = calibrate(ens, ds)
    cal.apply_to(ens)
    return ens, ds, f"calibration fitted at bench time on {cal.fitted_on} (card has none)"


def validation_superconductors(path: str | Path) -> tuple[TcEnsemble, Dataset, np.ndarray, np.ndarray]:
    """(ensemble, its dataset, its validation superconductor rows, the ensemble's Tc on them) of a checkpoint."""
    from gdmcd_core.data.dataset import VAL

    ens = load_checkpoint(path)
    ds = dataset_for(ens)
    val = ds.indices(VAL)
    val = val[ds.is_supercon[val]]
    net, _ = ens.predict(ds.x[val])
    return ens, ds, val, net


def subsample(idx: np.ndarray, n_max: int | None, seed: int = 0) -> np.ndarray:
    """At most n_max rows of idx, seeded, order kept (all of them when n_max is None)."""
    if n_max is None or len(idx) <= n_max:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, n_max, replace=False))


def tree_predictions(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, quick: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """HistGradientBoosting on the 118 fractions and 1-NN (L2 on fractions): test predictions in K (trees, 1-NN)."""
    from bench.baselines import GbtConfig, fit_1nn, fit_gbt  # here: bench.baselines itself imports this module

    rows = subsample(np.arange(len(y_train)), QUICK_TRAIN_ROWS if quick else None)
    cfg = GbtConfig(max_iter=QUICK_TREE_ROUNDS) if quick else GbtConfig()
    trees = fit_gbt(x_train[rows], y_train[rows], cfg)
    nn = fit_1nn(x_train[rows], y_train[rows])
    return np.asarray(trees(x_test), float), np.asarray(nn(x_test), float)


def fmt(v: object, spec: str = ".3f") -> str:
    """A number for a table cell; '–' for None/NaN, strings as they are."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, bool | str):
        return str(v)
    return format(v, spec)


@dataclass(frozen=True)
class DocPage:
    """A page of docs/benchmarks/: its title, what it measures, and the command that writes it."""

    title: str
    what: str
    command: str


DOC_PAGES = {  # every page of docs/benchmarks/ but the index: write_doc takes its title and command from here
    "model_card": DocPage(
        "Model card: the committed checkpoints on their test splits",
        "MAE, R², precision, σ coverage on the random, JARVIS and time splits, beside trees, 1-NN, the paper and "
        "the leaderboard; oxygen and hydride sanity checks",
        "python -m bench.model_card --doc",
    ),
    "discovery": DocPage(
        "Discovery: which search proposes superconductors reported after the training data",
        "precision, recall, targets and new element sets hit at K = 10, 50, 200 of the five search methods and three "
        "baselines at equal forward-pass equivalents, over 10 start sets with bootstrap intervals, from the "
        "time-split ensemble (settings frozen in bench/discovery.toml)",
        "python -m bench.discovery --json --doc",
    ),
    "quick_run": DocPage(
        "The quick run read as a chemist would: parent, edit, mixtures, known compounds",
        "the README's quick run (64 candidates, 200 + 200 steps): its top 20 with parent and edit, and the counts of "
        "mixtures, known superconductors, site misfits and element sets",
        "python -m bench.quick_run_phases --doc",
    ),
    "campaign": DocPage(
        "Simulated campaigns: the closed loop on the time split",
        "discoveries (Tc ≥ 20 K, ≥ 40 K) and distinct element sets after 10 rounds of 20 from a pool of post-2010 "
        "compositions and held-out non-superconductors, closed loop (diverse, greedy), open loop and random, 5 seeds",
        "python -m bench.campaign --json --doc",
    ),
    "tree_features": DocPage(
        "Tree features: which element embedding, chosen on validation rows",
        "validation MAE of the trees and of the consensus with each element embedding of the elementembeddings wheel "
        "added to the element statistics, JARVIS and time splits",
        "python -m bench.tree_features --doc",
    ),
    "valence_features": DocPage(
        "Oxygen-aware valence features for the trees and the classifier, chosen on validation rows",
        "validation MAE of the trees and the consensus, and the classifier's log loss, precision and recall, without "
        "and with the valence features (anion share, O per cation, charge window, formal Cu valence); YBa2Cu3O_y scan",
        "python -m bench.valence_features --doc",
    ),
    "inner_split": DocPage(
        "Time-split variants chosen before 2010 (inner split)",
        "R² and MAE on 2005–2009 superconductors of network variants (branch, embedding, loss) trained before 2005",
        "python -m bench.inner_split PT [PT ...] --doc",
    ),
    "time_calibration": DocPage(
        "Time-split σ: its form and size, chosen before 2010",
        "σ fitted on one 5-year window by one inner model, scored on the next by the next (1995→2000, 2000→2005), "
        "for each coverage rule, third term and band choice",
        "python -m bench.time_calibration --models PT PT [PT ...] --doc",
    ),
    "keep_share_inner": DocPage(
        "Refinement share on pre-2010 data (inner split)",
        "the integer refinement's KEEP_SHARE scored on 2005–2009 superconductors by a model trained before 2005",
        "python -m bench.keep_share_inner --doc",
    ),
    "uncertainty_design": DocPage(
        "Uncertainty-aware design: mean vs lower confidence bound",
        "the same starts optimized for the ensemble mean and for Tc − κσ",
        "python -m bench.uncertainty_design --doc",
    ),
    "stability_penalty": DocPage(
        "Stability penalty: default starts",
        "the formation-energy penalty w·relu(E_f) on the default (cuprate-rich) starts",
        "python -m bench.stability_penalty --doc",
    ),
    "stability_penalty_intermetallic": DocPage(
        "Stability penalty: an intermetallic search",
        "the same penalty with the anion formers excluded, where it matters",
        "python -m bench.stability_penalty --exclude O,F,Cl,Br,I,S,Se,Te,N --doc stability_penalty_intermetallic",
    ),
    "design_throughput": DocPage(
        "Design throughput: the loop against the bare model",
        "candidate-steps/s of the loop and of forward + backward alone, for a member and the fused or rotating "
        "ensemble",
        "python -m bench.design_throughput --doc",
    ),
    "ensemble_modes": DocPage(
        "Ensemble modes: σ after fusing, and what rotating costs a design",
        "the fused network's mean and σ against the members one by one; a design run fused vs rotate",
        "python -m bench.ensemble_modes --doc",
    ),
    "scale": DocPage(
        "Scale-out: in-process and on Ray",
        "candidate-steps/s in-process and with 1 and 2 Ray workers; with --device cuda the GPU rows",
        "python -m bench.scale --starts 1024 --steps 100 --doc",
    ),
    "reproduce_paper": DocPage(
        "Paper reproduction",
        "our numbers beside the GDMCD paper's Tables 1, 2, 6, 7, 8 and its worked examples, at reduced sizes",
        "python -m bench.reproduce_paper --doc",
    ),
    "model_accuracy": DocPage(
        "Tc model accuracy per checkpoint and member",
        "SuperCon test MAE and R², precision and recall at 0, 1 and 5 K for every committed Tc checkpoint",
        "python -m bench.model_accuracy --doc",
    ),
    "baselines": DocPage(
        "Baselines on the same splits",
        "gradient-boosted trees (with and without the non-superconductors) and 1-NN on the random and time splits",
        "python -m bench.baselines --doc",
    ),
    "model_speed": DocPage(
        "Tc model architectures: size and speed",
        "parameters, MFLOP per forward, training samples/s and design candidate-steps/s of ResNet18 and the "
        "compact variants",
        "python -m bench.model_speed --threads 2 --doc",
    ),
    "integerization": DocPage(
        "Integerization (paper Table 2)",
        "the Tc lost when stage-2 compositions are made integer: rounding, L_int^N and L_int,ES^N",
        "python -m bench.integerization --member 0 --steps3 300 --threads 1 --doc",
    ),
    "lr_sweep": DocPage(
        "Learning rate (paper Table 7)",
        "percentiles of the stage-2 Tc change at learning rates 0.01 and 0.0001",
        "python -m bench.lr_sweep --member 0 --doc",
    ),
    "design_speed": DocPage(
        "Design speed and the constraint methods",
        "loop speed against the bare model; projection (element count kept or free) against relu reparameterization",
        "python -m bench.design_speed --member 0 --doc",
    ),
    "cleaning_reproduction": DocPage(
        "Cleaning reproduction",
        "the cleaning code run on the raw public files against the shared cleaned CSVs",
        "python -m bench.cleaning_reproduction --doc",
    ),
    "checkpoints": DocPage(
        "The committed checkpoints, from their cards",
        "test-split figures each checkpoint card records (gdmcd train, gdmcd evaluate, gdmcd trees)",
        "make docs",
    ),
    "data_repairs": DocPage(
        "Data repairs, from the committed ledger",
        "rows per repair rule of the SuperCon table (gdmcd ledger)",
        "gdmcd ledger --out assets/data_repair_ledger.csv && make docs",
    ),
}


def add_doc_option(p: argparse.ArgumentParser, name: str) -> None:
    """--doc [NAME]: also write the tables into docs/benchmarks/NAME.md (default NAME: `name`)."""
    p.add_argument(
        "--doc",
        nargs="?",
        const=name,
        default=None,
        metavar="NAME",
        help=f"also write the tables into docs/benchmarks/NAME.md, stamped with date, checkpoint hash and machine "
        f"(NAME default {name})",
    )


def machine() -> str:
    """CPU count, torch threads (and GPU) where torch is in use, platform: the machine part of a stamp."""
    parts = [f"{os.cpu_count()} CPUs"]
    torch = sys.modules.get("torch")  # a benchmark has imported it; the docs renderer has no need to
    if torch is not None:
        parts.append(f"{torch.get_num_threads()} torch threads")
        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
        parts.append(f"torch {torch.__version__}")
    parts.append(f"{platform.system()} {platform.machine()}, Python {platform.python_version()}")
    return ", ".join(parts)


def checkpoint_hashes(checkpoints: Iterable[Any]) -> dict[str, str]:
    """{file name: SHA-256 prefix} of loaded models (their `.path` and `.sha256`) or checkpoint paths (the hash
    their card records; the file's own hash when there is no card)."""
    out: dict[str, str] = {}
    for c in checkpoints:
        if hasattr(c, "sha256"):
            if not c.sha256:  # a model built in memory (--tiny): no checkpoint to name
                continue
            name, digest = Path(getattr(c, "path", None) or "model").name, c.sha256
        else:
            path = Path(c)
            card = card_path(path)
            digest = json.loads(card.read_text()).get("sha256") if card.is_file() else None
            digest = digest or sha256_file(path)
            name = path.name
        out[name] = str(digest)[:HASH_PREFIX]
    return out


def measured(checkpoints: Iterable[Any] = ()) -> dict[str, Any]:
    """The stamp of a measurement made now: UTC date, checkpoint hashes, machine, and the command that made it."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "checkpoints": checkpoint_hashes(checkpoints),
        "machine": machine(),
        "command": invocation(),
    }


def invocation() -> str:
    """The command line this process was started with, as `python -m MODULE ARGS` where it was run so."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None else ["python", sys.argv[0]]
    return shlex.join(head + sys.argv[1:])


def stamp_line(stamp: dict[str, Any], source: str | None = None) -> str:
    """One markdown line: when and on what the numbers were measured, and the command that measures them again."""
    models = ", ".join(f"{n} sha256 {h}" for n, h in stamp.get("checkpoints", {}).items()) or "no checkpoint"
    head = f"Rendered by `make docs` from {source} · measured" if source else "Measured"
    when, where = stamp.get("date") or "on a date not recorded", stamp.get("machine") or "machine not recorded"
    return f"> {head} {when} · {models} · {where} · regenerate: `{stamp['command']}`"


def write_doc(
    name: str,
    markdown: str,
    *,
    checkpoints: Iterable[Any] = (),
    stamp: dict[str, Any] | None = None,
    source: str | None = None,
) -> Path:
    """Write docs/benchmarks/NAME.md: its title (DOC_PAGES), a stamp line, then `markdown`, the tables as the script
    prints them.

    checkpoints: loaded models or checkpoint paths the numbers come from (their hashes go into the stamp).
    stamp: a recorded stamp (`measured`) instead of one made now, its command defaulting to the page's in DOC_PAGES;
    source: the results file it was rendered from."""
    page = DOC_PAGES.get(name) or DocPage(name.replace("_", " "), "", invocation())
    stamp = {"command": page.command, **(stamp if stamp is not None else measured(checkpoints))}
    by = "`make docs` (bench/docs.py)" if source else f"`{stamp['command']}`"
    body = ABSOLUTE_CHECKPOINTS.sub(r"\1", markdown.strip())
    text = (
        f"<!-- Written by {by} through bench.common.write_doc: edit the script, not this page. -->\n"
        f"# {page.title}\n\n{stamp_line(stamp, source)}\n\n{body}\n"
    )
    DOCS_DIR.mkdir(parents=True, exist_ok=True)
    path = DOCS_DIR / f"{name}.md"
    path.write_text(text)
    return path


class _Tee(io.TextIOBase):
    """A text stream writing to several others."""

    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def printed() -> Iterator[io.StringIO]:
    """What the block prints, in a buffer (it still reaches stdout): the tables a benchmark writes with --doc."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        yield buffer


def write_results(name: str, numbers: dict[str, Any], checkpoints: Iterable[Any] = ()) -> Path:
    """Write bench/results/NAME.json: the numbers and their stamp (`measured`), for `make docs` to render."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(
        json.dumps({**numbers, "measured": measured(checkpoints)}, indent=2, default=float, ensure_ascii=False) + "\n"
    )
    return path


def publish(numbers: dict[str, Any], markdown: str, args: Any, checkpoints: Iterable[Any] = ()) -> None:
    """A measuring script's ending: print the report; `--json FILE` writes the numbers there; `--doc NAME` writes
    bench/results/NAME.json (stamped) and the docs page NAME."""
    print("\n" + markdown)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(numbers, fh, indent=2)
    if args.doc:
        write_results(args.doc, numbers, checkpoints)
        write_doc(args.doc, markdown, checkpoints=checkpoints)
