"""The data the web app's pages show, computed here so that the pages hold widgets and layout only.

Nothing here imports Streamlit. Three groups:

* model: which checkpoint the app uses (`$GDMCD_CHECKPOINT`, else checkpoints/tc_default.pt),
  a one-line description of it, predictions for typed/uploaded formulas, test-split predictions
  for the parity plot;
* runs: the series the figure builders draw, taken from a live job's progress rows or from a run
  folder's trajectory (Tc statistics per step, one candidate's composition over the steps, the
  Tc before/after stage 2 and the change in the number of elements, paper Fig. 4);
* tables: the candidate table for the screen (results_table.py holds its columns and export).

Arrays: x (B, 118) fractions; Tc in K.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gdmcd_app.inputs import pretty_formula
from gdmcd_core.chem.composition import FRACTION_EPS, FormulaError, to_vector
from gdmcd_core.chem.elements import symbols
from gdmcd_core.design.loop.step_log import Progress
from gdmcd_core.design.loop.trajectory import STEP_FIELDS
from gdmcd_core.design.objective.loss import alpha_ramp
from gdmcd_core.model.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT
from gdmcd_core.model.trees import EVEN_WEIGHT, consensus

CHECKPOINT_ENV = "GDMCD_CHECKPOINT"
THREADS_ENV = "GDMCD_TORCH_THREADS"
# torch CPU threads for the app process. Design runs use small batches; on this shared 2-core
# CPU under load one thread ran an 8-candidate run ~10x faster than two (OpenMP threads waiting
# on each other) and a 256-candidate run as fast. Override with $GDMCD_TORCH_THREADS.
DEFAULT_CPU_THREADS = 1
# Composition traces group elements whose fraction never reaches this into "other".
MIN_SHOWN_FRACTION = 0.02
# Progress/trajectory series keys (the names Progress and runs.Trajectory use).
# Trace columns shared by live progress and recorded trajectories: the step statistics a Progress report carries.
SERIES_KEYS = tuple(k for k in STEP_FIELDS if k in {f.name for f in fields(Progress)})

# -- model -------------------------------------------------------------------------------------


def default_checkpoint() -> Path:
    """$GDMCD_CHECKPOINT if set, else checkpoints/tc_default.pt."""
    env = os.environ.get(CHECKPOINT_ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_CHECKPOINT


def configure_torch_threads() -> int:
    """Set torch's CPU thread count for this process ($GDMCD_TORCH_THREADS, else DEFAULT_CPU_THREADS
    when no GPU is present; unchanged with a GPU). Returns the count in effect."""
    import torch

    env = os.environ.get(THREADS_ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        torch.set_num_threads(int(env))
    elif not env and not torch.cuda.is_available():
        torch.set_num_threads(DEFAULT_CPU_THREADS)
    return torch.get_num_threads()


def available_checkpoints() -> list[Path]:
    """The Tc checkpoints the app may offer: the default first, then other Tc models in checkpoints/."""
    out = [default_checkpoint()]
    if CHECKPOINT_DIR.is_dir():
        for p in sorted(CHECKPOINT_DIR.glob("*.pt")):
            card = p.with_suffix(".json")
            try:
                kind = json.loads(card.read_text()).get("kind", "tc_regressor") if card.is_file() else None
            except (OSError, ValueError):
                kind = None
            if str(kind).startswith("tc_regressor") and p.resolve() not in out:  # also the hydride model
                out.append(p.resolve())
    return out


@dataclass(frozen=True)
class ModelInfo:
    """What the sidebar says about the model in use."""

    name: str  # checkpoint file stem
    architecture: str  # "compact ResNet (width 32, blocks 1-1-1-1)" or "ResNet18"
    members: int
    device: str  # "CPU" or "CUDA (device name)"
    n_parameters: int
    sha256: str

    @property
    def label(self) -> str:
        ens = f"ensemble of {self.members}" if self.members > 1 else "single model (no uncertainty)"
        return f"{self.architecture} · {ens} · {self.device}"


def describe_model(model: Any) -> ModelInfo:
    """A loaded TcEnsemble -> ModelInfo."""
    from gdmcd_core.model.resnet import RESNET18

    cfg = model.config
    if cfg == RESNET18:
        arch = "ResNet18"
    else:
        arch = f"compact ResNet (width {cfg.width}, blocks {'-'.join(map(str, cfg.layers))})"
    dev = model.device
    if dev.type == "cuda":
        import torch

        dname = f"CUDA ({torch.cuda.get_device_name(dev)})"
    else:
        dname = "CPU"
    n_params = sum(p.numel() for p in model.members[0].parameters())
    return ModelInfo(
        name=Path(getattr(model, "path", "") or "model").stem,
        architecture=arch,
        members=int(model.n_members),
        device=dname,
        n_parameters=int(n_params),
        sha256=str(getattr(model, "sha256", "")),
    )


def predict_formulas(
    model: Any, formulas: Sequence[str], trees: Any = None, classifier: Any = None, reference: Any = None
) -> pd.DataFrame:
    """Tc of each formula; a formula that does not parse gets its message in `error` (others still run).

    Columns: row (1-based), formula, tc_k, tc_std_k (NaN where the row failed), error ("" if fine); with
    `trees` (model/trees.py) also tc_trees_k and tc_consensus_k after tc_std_k; with `classifier`
    (model/sc_classifier.py) the two-part answer as `gdmcd predict` gives it (hurdle.with_two_part).
    reference: the model's training superconductors (evaluate.training_reference_for), whose nearest one gives σ
    its distance and neighbour terms, as in `gdmcd predict`; None: σ without them.
    """
    from gdmcd_core.model.hurdle import with_two_part

    table = _predict_table(model, formulas, trees, reference)
    w = getattr(trees, "consensus_weight", EVEN_WEIGHT)  # the ResNet's weight in its consensus with the trees
    return table if classifier is None else with_two_part(table, model.has_uncertainty, classifier.probability, w)


def _predict_table(model: Any, formulas: Sequence[str], trees: Any = None, reference: Any = None) -> pd.DataFrame:
    """predict_formulas without the two-part columns."""
    rows: list[dict[str, Any]] = []
    good_idx, vecs = [], []
    for i, f in enumerate(formulas):
        text = str(f).strip()
        row = {"row": i + 1, "formula": text, "tc_k": np.nan, "tc_std_k": np.nan, "error": ""}
        try:
            vecs.append(to_vector(text))
            good_idx.append(i)
        except FormulaError as exc:
            row["error"] = str(exc)
        rows.append(row)
    if vecs:
        x = np.stack(vecs).astype(np.float32)
        if reference is not None and getattr(model, "has_extra_sigma_terms", False):
            distance, tc_nn = reference.supercon_neighbors(x)
            mean, std = model.predict(x, distance=distance, neighbor_tc=tc_nn)
        else:
            mean, std = model.predict(x)
        for i, m, s in zip(good_idx, mean, std, strict=True):
            rows[i]["tc_k"] = float(m)
            rows[i]["tc_std_k"] = float(s)
    table = pd.DataFrame(rows, columns=["row", "formula", "tc_k", "tc_std_k", "error"])
    if trees is None:
        return table
    tc_trees = np.full(len(rows), np.nan)
    if vecs:
        tc_trees[good_idx] = trees.predict(np.stack(vecs).astype(np.float32))
    table.insert(4, "tc_trees_k", tc_trees)
    both = consensus(table["tc_k"], tc_trees, trees.consensus_weight)
    table.insert(5, "tc_consensus_k", np.where(np.isnan(tc_trees), np.nan, both))
    return table


def with_training_checks(table: pd.DataFrame, ref: Any, why: str = "") -> pd.DataFrame:
    """A `predict_formulas` table with `parsed_formula` (the composition scored, as `gdmcd predict` prints it)
    after `formula`, and `warning` (the CLI's warning text, evaluate.prediction_warnings; "" where none) before
    `error`, for the rows that parsed. ref, why: evaluate.training_reference_for of the model's card."""
    from gdmcd_core.chem.composition import format_amounts, parse_formula
    from gdmcd_core.training.evaluate import prediction_warnings

    ok = (table["error"] == "").to_numpy()
    formulas = table["formula"].astype(str).tolist()
    parsed, warnings = [""] * len(table), [""] * len(table)
    rows = np.flatnonzero(ok)
    if len(rows):
        x = np.stack([to_vector(formulas[i]) for i in rows]).astype(np.float32)
        for i, w in zip(rows, prediction_warnings(x, ref, why), strict=True):
            parsed[i], warnings[i] = format_amounts(parse_formula(formulas[i])), w or ""
    out = table.copy()
    out.insert(out.columns.get_loc("formula") + 1, "parsed_formula", parsed)
    out.insert(out.columns.get_loc("error"), "warning", warnings)
    return out


def test_split_predictions(model: Any) -> dict[str, np.ndarray]:
    """Per-row predictions on the checkpoint's own test split (see evaluate.test_predictions).

    Raises FileNotFoundError (data files missing) or ValueError (card without a data config).
    """
    from gdmcd_core.training.evaluate import test_predictions

    return test_predictions(model)


METRIC_LABELS = {
    "supercon_test_mae_k": ("MAE on SuperCon test (K)", "{:.2f}"),
    "supercon_test_rmse_k": ("RMSE on SuperCon test (K)", "{:.2f}"),
    "supercon_test_r2": ("R² on SuperCon test", "{:.3f}"),
    "supercon_nonhydride_test_mae_k": ("MAE on SuperCon non-hydride test (K)", "{:.2f}"),
    "test_precision": ("Precision (Tc > 0 K)", "{:.3f}"),
    "recall_at_0k": ("Recall (Tc > 0 K)", "{:.3f}"),
    "trees_supercon_test_mae_k": ("MAE of the trees on element statistics (K)", "{:.2f}"),
    "consensus_supercon_test_mae_k": ("MAE of the consensus, ensemble + trees (K)", "{:.2f}"),
    "consensus_supercon_test_r2": ("R² of the consensus", "{:.3f}"),
    "consensus_weight": ("The network's weight in the consensus (fitted on validation rows)", "{:.1f}"),
    "coverage_1sigma": ("Share of test points within ±1σ", "{:.2f}"),
    "coverage_2sigma": ("Share of test points within ±2σ", "{:.2f}"),
    "spearman_sigma_abs_error": ("Spearman(σ, |error|)", "{:.2f}"),
    "n_test_supercon": ("SuperCon test compositions", "{:,}"),
    "n_test_nonsc": ("Non-superconductor test compositions", "{:,}"),
    # how the speculative mark (the trees' Tc far from the network's) splits the compositions the ensemble calls
    # superconductors (evaluate.consensus_metrics)
    "disagreement_flags_false_positive_share": ("False positives (Tc > 0 K) the trees mark speculative", "{:.2f}"),
    "disagreement_flags_true_positive_share": ("True positives (Tc > 0 K) the trees mark speculative", "{:.2f}"),
}


def metrics_table(card: Mapping[str, Any], trees_card: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The card's headline test metrics as a two-column table (metric, value), with the trees' and the
    consensus' figures from the card of the trees beside the checkpoint (`gdmcd trees` writes them there)."""
    metrics = {
        **(card.get("metrics_test") or card.get("metrics") or {}),
        **((trees_card or {}).get("metrics_test") or {}),
        "consensus_weight": (trees_card or {}).get("consensus_weight"),
    }
    rows = []
    for key, (label, fmt) in METRIC_LABELS.items():
        v = metrics.get(key)
        if isinstance(v, (int, float)) and np.isfinite(v):
            rows.append({"metric": label, "value": fmt.format(v)})
    return pd.DataFrame(rows, columns=["metric", "value"])


# -- element statistics ------------------------------------------------------------------------


def element_counts(x: np.ndarray) -> dict[str, int]:
    """How many compositions (rows of x (N, 118)) contain each element (elements with 0 left out)."""
    counts = (np.asarray(x) > 0).sum(0)
    syms = symbols()
    return {syms[i]: int(c) for i, c in enumerate(counts) if c > 0}


@lru_cache(maxsize=4)
def _supercon_counts(data_dir: str) -> dict[str, int]:
    from gdmcd_core.data.dataset import load_table
    from gdmcd_core.data.paths import SUPERCON_FILE

    _, x = load_table(Path(data_dir) / SUPERCON_FILE)
    return element_counts(x)


def supercon_element_counts() -> dict[str, int]:
    """Element frequencies in SuperCon ({} if the data files are not available)."""
    from gdmcd_core.data.paths import SUPERCON_FILE, find_data_dir

    try:
        return dict(_supercon_counts(str(find_data_dir((SUPERCON_FILE,), download=False))))
    except (OSError, ValueError, KeyError):
        return {}


# -- series for live and recorded runs ---------------------------------------------------------


def alpha_schedule(steps2: int, steps3: int, alpha_max: float) -> tuple[np.ndarray, np.ndarray]:
    """(step (T,), alpha (T,)) over steps 1..steps2+steps3: 0 in stage 2, then linear 0 -> alpha_max
    over stage 3 (objective.alpha_ramp, the rule the engine uses)."""
    s2, s3 = max(int(steps2), 0), max(int(steps3), 0)
    step = np.arange(1, s2 + s3 + 1)
    ramp = [alpha_ramp(k, s3, float(alpha_max)) for k in range(s3)]
    return step, np.concatenate([np.zeros(s2), np.asarray(ramp, dtype=float)])


def series_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Progress rows (dicts with SERIES_KEYS) -> {key: (T,) array}; missing values are NaN."""
    rows = list(rows)
    return {k: np.array([float(r.get(k, np.nan)) for r in rows], dtype=float) for k in SERIES_KEYS}


def series_from_trajectory(traj: Any) -> dict[str, np.ndarray]:
    """A runs.Trajectory -> the same {key: (T,) array} as series_from_rows."""
    return {k: np.asarray(getattr(traj, k), dtype=float) for k in SERIES_KEYS}


def stage3_start(config: Mapping[str, Any] | Any) -> int | None:
    """Steps done when stage 3 began (steps2), or None if the run has no stage 3."""
    get = config.get if isinstance(config, Mapping) else lambda k, d=None: getattr(config, k, d)
    s2, s3 = int(get("steps2", 0) or 0), int(get("steps3", 0) or 0)
    return s2 if s3 > 0 else None


def _snapshot_at(traj: Any, step: int) -> int:
    """Index of the last snapshot taken at or before `step` steps done."""
    idx = np.flatnonzero(np.asarray(traj.snap_step) <= step)
    return int(idx[-1]) if len(idx) else 0


def candidate_steps_x(
    traj: Any, i: int, final: tuple[float, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate i's snapshots: (steps (S,), fractions (S, 118)); with `final` = (step, x (118,)) one more
    point appended: the integer formula the run reported, whose elements the rounding or the integer
    refinement may have added (they are zero in every snapshot)."""
    steps = np.asarray(traj.snap_step, dtype=float)
    x = np.asarray(traj.snap_x[:, i], dtype=np.float64).reshape(len(steps), -1)  # (S, 118)
    if final is not None:
        steps = np.append(steps, float(final[0]))
        x = np.vstack([x, np.asarray(final[1], dtype=np.float64).reshape(1, -1)])
    return steps, x


def candidate_composition(
    traj: Any, i: int, min_fraction: float = MIN_SHOWN_FRACTION, final: tuple[float, np.ndarray] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Candidate i's fractions over the snapshots: (steps (S,), {symbol: (S,)}), ordered by the
    final fraction, largest first (then by peak), so the stack's bottom is what the run ended on.

    final: (step, x (118,)) of the integer formula, drawn as the last point (candidate_steps_x), so an
    element only the rounding added is shown. Elements never above `min_fraction` are summed into "other"
    (so every column sums to 1).
    """
    steps, x = candidate_steps_x(traj, i, final)
    syms = symbols()
    if len(x) == 0:
        return steps, {}
    peak = x.max(0)
    order = np.lexsort((-peak, -x[-1]))  # primary key: final fraction, then peak
    shown = [j for j in order if peak[j] >= min_fraction]
    out = {syms[j]: x[:, j] for j in shown}
    rest = np.setdiff1d(np.flatnonzero(peak > FRACTION_EPS), shown)
    if len(rest):
        out["other"] = x[:, rest].sum(1)
    return steps, out


def last_composition(traj: Any, i: int) -> str:
    """Candidate i's composition at the last snapshot (the end of the loop) as a formula of fractions, 3 decimals
    (snapshots are stored as float16: about 3 significant digits)."""
    from gdmcd_core.chem.composition import format_vector

    return format_vector(np.asarray(traj.snap_x[-1, i], dtype=np.float64)) if len(traj.snap_step) else ""


def integer_point(traj: Any, row: Mapping[str, Any]) -> tuple[float, np.ndarray] | None:
    """(step, x (118,)) at which a candidate-table row's integer formula is drawn after its trajectory: one step
    after the last snapshot (the rounding and the integer refinement come after the loop), or the row's
    `integer_step` when that is later (a formula the refinement found). None when the formula does not parse."""
    try:
        x = to_vector(str(row.get("integer_formula", "")))
    except FormulaError:
        return None
    last = float(np.max(traj.snap_step)) if len(traj.snap_step) else 0.0
    step = _number(row.get("integer_step"))
    return (max(last + 1.0, step) if np.isfinite(step) else last + 1.0), x


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def snapshot_stage(step: float, steps2: int) -> str:
    """'start' (step 0), 'stage 2' (up to `steps2` steps done) or 'stage 3' for a snapshot taken after `step` steps."""
    return "start" if step <= 0 else "stage 2" if step <= steps2 else "stage 3"


def candidate_path(traj: Any, row: Mapping[str, Any], steps2: int) -> pd.DataFrame:
    """One candidate's path as a table: a row per snapshot of its trajectory column (row["candidate"]), then
    the integer formula (stage "integer", at `integer_point`).

    Columns: step (steps done), stage (snapshot_stage, or "integer"), tc_k (model Tc, K), tc_std_k (σ, K: only
    the integer formula's is recorded), integer_loss (L_integer of the snapshot's composition), then frac_<El>
    (atomic fractions) for every element present at some point, largest in the integer formula first.
    """
    i = int(row["candidate"])
    final = integer_point(traj, row)
    steps, x = candidate_steps_x(traj, i, final)
    n = len(traj.snap_step)
    stage = [snapshot_stage(s, steps2) for s in steps[:n]] + (["integer"] if final is not None else [])
    tc = np.asarray(traj.snap_tc_k[:, i], dtype=float)
    loss = np.asarray(traj.snap_int_loss[:, i], dtype=float)
    extra = 1 if final is not None else 0
    table = pd.DataFrame(
        {
            "step": steps.astype(int),
            "stage": stage,
            "tc_k": np.append(tc, [_number(row.get("integer_tc_k"))] * extra),
            "tc_std_k": np.append(np.full(n, np.nan), [_number(row.get("integer_tc_std_k"))] * extra),
            "integer_loss": np.append(loss, [np.nan] * extra),
        }
    )
    present = np.flatnonzero(x.max(0) > FRACTION_EPS) if len(x) else np.zeros(0, int)
    present = present[np.lexsort((-x[:, present].max(0), -x[-1, present]))] if len(present) else present
    syms = symbols()
    fracs = pd.DataFrame({f"frac_{syms[j]}": np.round(x[:, j], 4) for j in present}, index=table.index)
    return pd.concat([table, fracs], axis=1)


def trajectory_table(traj: Any) -> pd.DataFrame:
    """The run's per-step statistics (trajectory.npz's STEP_FIELDS: step, stage, α, Tc best/median/q10/q90 in K,
    mean hinge in K, median L_integer) as a table, one row per step recorded."""
    return pd.DataFrame({k: np.asarray(getattr(traj, k)) for k in STEP_FIELDS})


def candidates_over_steps(traj: Any, labels: Mapping[int, str]) -> pd.DataFrame:
    """Tc (K) and L_integer of the candidates `labels` ({trajectory column: label}) at every snapshot, one row
    per candidate and snapshot: candidate, label, step, tc_k, integer_loss."""
    steps = np.asarray(traj.snap_step)
    parts = [
        pd.DataFrame(
            {
                "candidate": int(i),
                "label": label,
                "step": steps,
                "tc_k": np.asarray(traj.snap_tc_k[:, int(i)], dtype=float),
                "integer_loss": np.asarray(traj.snap_int_loss[:, int(i)], dtype=float),
            }
        )
        for i, label in labels.items()
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["candidate", "label", "step"])


def candidate_series(
    traj: Any, candidates: Sequence[int], field: str = "tc_k"
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{candidate: (steps (S,), values (S,))} of snapshot Tc ("tc_k") or integer loss ("int_loss")."""
    arr = traj.snap_tc_k if field == "tc_k" else traj.snap_int_loss
    steps = np.asarray(traj.snap_step)
    return {int(i): (steps, np.asarray(arr[:, int(i)], dtype=float)) for i in candidates}


def stage2_change(traj: Any, steps2: int) -> dict[str, np.ndarray]:
    """Per candidate, start vs end of stage 2 (paper Fig. 4): tc_before_k, tc_after_k (B,), and
    n_elements_before, n_elements_after, element_decrease (before - after; positive = fewer elements)."""
    if len(traj.snap_step) == 0:
        z = np.zeros(0)
        return {"tc_before_k": z, "tc_after_k": z, "n_elements_before": z, "n_elements_after": z, "element_decrease": z}
    j = _snapshot_at(traj, steps2)
    n0 = (np.asarray(traj.snap_x[0], np.float32) > FRACTION_EPS).sum(1)
    n1 = (np.asarray(traj.snap_x[j], np.float32) > FRACTION_EPS).sum(1)
    return {
        "tc_before_k": np.asarray(traj.snap_tc_k[0], float),
        "tc_after_k": np.asarray(traj.snap_tc_k[j], float),
        "n_elements_before": n0,
        "n_elements_after": n1,
        "element_decrease": n0 - n1,
    }


# -- candidate tables --------------------------------------------------------------------------


def display_candidates(table: pd.DataFrame, all_columns: bool = False) -> pd.DataFrame:
    """The candidate table for the screen: derived columns added, default columns first, formulas with
    subscripts (results_table.results_view + for_screen, no filters)."""
    from gdmcd_app.results_table import for_screen, results_view

    return for_screen(results_view(table, (), all_columns))


def candidate_label(row: Mapping[str, Any]) -> str:
    """'#1 Nb₃Sn (23.1 K)' for a candidate-table row."""
    return f"#{int(row['rank'])} {pretty_formula(str(row['integer_formula']))} ({float(row['integer_tc_k']):.1f} K)"


def candidate_labels(table: pd.DataFrame | None, n_batch: int) -> dict[int, str]:
    """{candidate index: label} of a run's candidates in the table's (ranked) order; "candidate i" for
    each of the `n_batch` candidates when the run has no table yet."""
    if table is not None and len(table) and "candidate" in table.columns:
        labels: dict[int, str] = {}
        for _, r in table.iterrows():  # a refined row shares its lineage's index: the best-ranked row names it
            if int(r["candidate"]) < n_batch:
                labels.setdefault(int(r["candidate"]), candidate_label(r))
        return labels
    return {i: f"candidate {i}" for i in range(n_batch)}
