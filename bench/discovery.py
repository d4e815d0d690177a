"""Discovery benchmark: does a search method, run from data reported before 2010, propose the superconductors
reported since, at equal compute, better than simple baselines?

    python -m bench.discovery --json          # every seed of bench/discovery.toml; writes bench/results/discovery.json
    python -m bench.discovery --seeds 1       # the first seed only: a timing run (prints, writes nothing)
    python -m bench.discovery --json --doc    # also docs/benchmarks/discovery.md

Every setting is frozen in bench/discovery.toml (its SHA-256 is printed and stored); nothing in it was chosen by
looking at the targets. Model: checkpoints/tc_timesplit.pt, trained on SuperCon compositions first reported before
2010 (and COD non-superconductors). Where its card's σ calibration saw a row from 2010 on (earlier cards: fitted on
the post-2010 rows), σ is refitted here on the pre-2010 validation rows; the committed card's, carried over from an
inner time split (max_year 2009), is used as it is.

Targets (bench/discovery_metrics.py): superconductors first reported from 2010 on that lie farther than L1 0.1 from
every composition reported before (doping variants of known compounds do not count). A candidate within L1 0.05
of a target hits it. Reported for K = 10, 50, 200: precision@K, recall@K, target hits@K and element-set hits@K
(new chemical systems proposed), as the mean over the seeds (one start set each) with a bootstrap 95 % interval.

Arms, each ranked by the candidate table's own ranking:

* methods (`DesignConfig.method`): gradient, evolution, random, database, substitution. The gradient runs with the
  frozen [design] settings; a hook on the model counts its forward-pass equivalents (a row with a backward pass
  counts 3), and every other method gets that many model evaluations. The database method screens the COD 2009
  list only (known compounds reported before 2010): JARVIS-DFT, which the product also screens, was built after
  2010 and holds compositions of many targets. So "database" is also the pre-2010 database-screen baseline.
* baselines: "rounded starts" (the gradient with 1 + 1 steps and no refinement: the starts made integer and
  ranked), "uniform substitution" (each start's nearest known superconductors with one element replaced by any
  allowed element, scored at the same budget: the substitution method without its lambda table; with it, it is
  the substitution method), and "random draw" (K candidates drawn at random from the union of every arm's
  candidates of the seed: the exact expectation).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from bench import discovery_metrics as dm
from bench.common import REPO, RESULTS_DIR, add_doc_option, load_calibrated, measured, write_doc
from bench.design_common import md_table
from gdmcd_core.data.dataset import SPLIT_NAMES, TEST, TIME_SPLIT_YEAR, VAL, Dataset, load_table
from gdmcd_core.data.paths import COD_FILE, find_data_dir
from gdmcd_core.data.reference import ReferenceData, reference_from_dataset
from gdmcd_core.design import DesignConfig, DesignEngine
from gdmcd_core.design.evidence.candidates import build_candidates, candidate_context
from gdmcd_core.design.loop import refine
from gdmcd_core.design.search import substitution
from gdmcd_core.design.search.baselines import DEDUP_DECIMALS
from gdmcd_core.design.search.methods import KnownCompositions, composition_keys, run_search
from gdmcd_core.training.calibration import Calibration, calibrate
from gdmcd_core.training.testset_log import log_test_figures

warnings.filterwarnings("ignore", message="No Pauling electronegativity")
CONFIG = Path(__file__).with_name("discovery.toml")
RESULTS = RESULTS_DIR / "discovery.json"
RUN_FIELDS = ("seed", "method", "device")  # set per run, not frozen in the [design] table
SECTIONS = ("model", "targets", "seeds", "budget", "baselines", "bootstrap", "code", "design")
METHODS = ("gradient", "evolution", "random", "database", "substitution")
BASELINES = ("rounded_starts", "uniform_substitution", "random_draw")
LABELS = {
    "rounded_starts": "baseline: rounded starts",
    "uniform_substitution": "baseline: nearest SC + one uniform substitution",
    "random_draw": "baseline: random draw from the union",
    "database": "database (COD 2009 only)",
}
CREDIBILITY_TOP = 20
CREDIBILITY_KEYS = ("tc_k", "sigma_k", "pct_charge_neutral", "cuprates", "mean_elements")


# DesignConfig fields added after discovery.toml was frozen, with the value that keeps the frozen benchmark's
# behaviour (the file and its SHA-256 stay as they were scored): site_repair (evidence/site_repair.py) did not
# exist, so no repaired or variant rows.
ADDED_LATER = {"site_repair": False}


@dataclass(frozen=True)
class Settings:
    """bench/discovery.toml, checked: raw (the parsed file), sha256 (of its bytes), design (the [design] table as a
    DesignConfig, seed 0, method gradient)."""

    path: Path
    sha256: str
    raw: dict
    design: DesignConfig

    @classmethod
    def load(cls, path: str | Path = CONFIG) -> Settings:
        p = Path(path)
        try:
            blob = p.read_bytes()
            raw = tomllib.loads(blob.decode())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SystemExit(f"cannot read the benchmark settings {p}: {exc}") from None
        absent = [k for k in SECTIONS if not isinstance(raw.get(k), dict)]
        if absent:
            raise SystemExit(f"the benchmark settings {p} lack the section(s) {absent}")
        names = {f.name for f in fields(DesignConfig)} - set(RUN_FIELDS)
        design = {**ADDED_LATER, **raw["design"]}
        missing, unknown = sorted(names - set(design)), sorted(set(design) - names)
        if missing or unknown:
            raise SystemExit(
                f"{p} [design] must freeze every DesignConfig field but {RUN_FIELDS}: missing {missing}, unknown {unknown}"
            )
        return cls(p, hashlib.sha256(blob).hexdigest(), raw, DesignConfig.from_dict(design))

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(int(k) for k in self.raw["targets"]["ks"])

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.raw["seeds"]["seeds"])

    def summary(self, values: list[float]) -> dict:
        b = self.raw["bootstrap"]
        return dm.bootstrap_summary(values, int(b["resamples"]), int(b["seed"]), float(b["level"]))


CODE_CONSTANTS: dict[str, Callable[[], float]] = {
    "keep_share": lambda: refine.KEEP_SHARE,
    "substitution_min_probability": lambda: substitution.MIN_PROBABILITY,
    "substitution_parent_tiers": lambda: substitution.PARENT_TIERS,
}


def check_code(settings: Settings) -> None:
    """SystemExit when a code constant the settings freeze has another value in the code."""
    for name, value in settings.raw["code"].items():
        now = CODE_CONSTANTS[name]()
        if not math.isclose(float(now), float(value)):
            raise SystemExit(f"{settings.path} freezes {name} = {value}, but the code has {now}: rerun and update both")


@dataclass(frozen=True)
class Inputs:
    """What every seed uses: the model, the reference (the time split's training rows), the targets and the
    COD 2009 pool of the database method."""

    model: Any
    ref: ReferenceData
    targets: dm.Targets
    cod: KnownCompositions
    n_earlier: int


def targets_of(ds: Dataset, settings: Settings) -> tuple[dm.Targets, int]:
    """The targets of a time-split dataset (its TEST SuperCon rows against all others) and the earlier count."""
    if ds.config.split != "time" or int(settings.raw["targets"]["first_year"]) != TIME_SPLIT_YEAR:
        raise SystemExit(
            f"the discovery benchmark needs a time split at {settings.raw['targets']['first_year']}; "
            f"the checkpoint's data has split {ds.config.split!r} at {TIME_SPLIT_YEAR}"
        )
    later = ds.is_supercon & (ds.split == TEST)
    earlier = ds.is_supercon & ~later
    t = settings.raw["targets"]
    return dm.discovery_targets(ds.x, ds.tc_k, ds.formula, earlier, later, float(t["min_l1_to_known"])), int(
        earlier.sum()
    )


def cod_pool(data_dir: str | None = None) -> KnownCompositions:
    """The COD 2009 list (compositions reported up to 2009), one row per composition."""
    folder = Path(data_dir) if data_dir else find_data_dir((COD_FILE,), download=False)
    cod, x = load_table(folder / COD_FILE)
    x = np.asarray(x, np.float32)
    _, first = np.unique(np.round(x, DEDUP_DECIMALS), axis=0, return_index=True)
    keep = np.sort(first)
    return KnownCompositions(x[keep], np.asarray([f"COD: {f}" for f in cod["formula"].astype(str)])[keep])


def prepare(settings: Settings, data_dir: str | None, device: str) -> tuple[Inputs, str]:
    """Load the model (σ refitted on pre-2010 validation rows when the card's saw the targets), data and targets."""
    path = REPO / settings.raw["model"]["checkpoint"]
    model, ds, note = load_calibrated(path, data_dir)
    if Calibration.from_card(model.card).part == SPLIT_NAMES[TEST]:
        cal = calibrate(model, ds, VAL)
        cal.apply_to(model)
        note = f"σ recalibrated here on {cal.fitted_on} (the card's calibration saw the post-2010 targets)"
    targets, n_earlier = targets_of(ds, settings)
    desc = f"{settings.raw['model']['checkpoint']} ({model.n_members} member(s), sha256 {model.sha256[:12]}; {note})"
    return Inputs(model.to(device), reference_from_dataset(ds), targets, cod_pool(data_dir), n_earlier), desc


# -- running the arms --------------------------------------------------------------------------------------------


def run_arm(model, cfg: DesignConfig, ref: ReferenceData, start, **search: Any) -> dict:
    """One run: its candidate table, the passes through the model while it searched and its wall time.

    search: keyword arguments of run_search (known=, edit_table=); without them the run is `engine.run`."""
    engine = DesignEngine(model, cfg, reference=ref)
    t0 = time.perf_counter()
    with dm.count_passes(engine.scorer.fused) as counter:  # the one network every method calls

        def on_progress(p) -> None:
            if p.done:
                counter.freeze()

        if search:
            state = run_search(engine, start, callback=on_progress, **search)
            table = build_candidates(
                candidate_context(engine),
                x_start=state.x_start,
                start_labels=state.labels,
                x_stage2=state.x_stage2,
                x_final=state.x_final,
                integer=state.integer,
                integer_step=state.integer_step,
            )
        else:
            table = engine.run(start=start, callback=on_progress).candidates
    return {"table": table, "passes": counter.counts(), "wall_s": time.perf_counter() - t0}


def budget_config(design: DesignConfig, seed: int, method: str, budget: int, b: int) -> DesignConfig:
    """A non-gradient method's config: B x (steps2 + steps3) = the budget rounded down to whole generations of B."""
    steps = max(1, budget // b)
    return design.replace(seed=seed, method=method, steps2=steps // 2, steps3=steps - steps // 2, refine_steps=0)


def run_seed(inp: Inputs, settings: Settings, seed: int, arms: tuple[str, ...], device: str) -> dict[str, dict]:
    """Every arm but the random draw, on the start set of `seed`; the gradient first (it sets the budget)."""
    design = settings.design.replace(device=device)
    grad_cfg = design.replace(seed=seed, method="gradient")
    start = DesignEngine(inp.model, grad_cfg, reference=inp.ref).start_points()
    runs = {"gradient": run_arm(inp.model, grad_cfg, inp.ref, start)}
    _log(seed, "gradient", runs["gradient"])
    budget, b = runs["gradient"]["passes"]["forward_equivalents"], len(start)
    s2, s3 = settings.raw["baselines"]["rounded_steps"]
    plans: dict[str, tuple[DesignConfig, dict]] = {
        "substitution": (budget_config(design, seed, "substitution", budget, b), {}),
        "uniform_substitution": (budget_config(design, seed, "substitution", budget, b), {"edit_table": "uniform"}),
        "database": (budget_config(design, seed, "database", budget, b), {"known": inp.cod}),
        "rounded_starts": (design.replace(seed=seed, steps2=s2, steps3=s3, refine_steps=0), {}),
        "evolution": (budget_config(design, seed, "evolution", budget, b), {}),
        "random": (budget_config(design, seed, "random", budget, b), {}),
    }
    for name, (cfg, search) in plans.items():
        if name in arms:
            runs[name] = run_arm(inp.model, cfg, inp.ref, start, **search)
            _log(seed, name, runs[name])
    return runs


def _log(seed: int, name: str, run: dict) -> None:
    p = run["passes"]
    print(
        f"seed {seed} {name}: {run['wall_s']:.0f} s, {p['forward_equivalents']:,} forward-pass equivalents "
        f"({p['forward_rows']:,} forward rows, {p['backward_rows']:,} with a backward pass), "
        f"{len(run['table'])} candidates",
        flush=True,
    )


def ranked_x(table) -> np.ndarray:
    """(C, 118) the integer formulas of a candidate table in rank order."""
    return dm.formula_vectors(list(table.sort_values("rank")["integer_formula"]))


def score_seed(runs: dict[str, dict], targets: dm.Targets, settings: Settings) -> dict[str, dict]:
    """Per arm: the ranking metrics, the compute and what it hit; plus the random draw from the union."""
    ks, hit_l1 = settings.ks, float(settings.raw["targets"]["hit_l1"])
    out: dict[str, dict] = {}
    union: dict[bytes, np.ndarray] = {}
    for name, r in runs.items():
        x = ranked_x(r["table"])
        m = dm.match(x, targets, hit_l1)
        hit_rows = m.pair_t[m.pair_c < max(ks)]
        cred = dm.credibility(r["table"], CREDIBILITY_TOP)
        out[name] = {
            **dm.ranking_metrics(m, targets, ks),
            "forward_equivalents": float(r["passes"]["forward_equivalents"]),
            "n_candidates": float(len(x)),
            "wall_s": float(r["wall_s"]),
            "hit_targets": sorted({str(targets.formula[j]) for j in hit_rows}),
            **{f"top{CREDIBILITY_TOP}_{k}": float(cred[k]) for k in CREDIBILITY_KEYS},
        }
        for k, row in zip(composition_keys(x), x, strict=True):
            union.setdefault(k, row)
    ux = np.stack(list(union.values())) if union else np.zeros((0, 118))
    out["random_draw"] = {**dm.random_draw_metrics(dm.match(ux, targets, hit_l1), targets, ks), "n_candidates": len(ux)}
    return out


def aggregate(per_seed: list[dict[str, dict]], settings: Settings) -> dict[str, dict]:
    """Per arm: every numeric entry summarized over seeds (`Settings.summary`), hit targets counted over seeds."""
    names = [a for a in (*METHODS, *BASELINES) if all(a in s for s in per_seed)]
    out: dict[str, dict] = {}
    for name in names:
        rows = [s[name] for s in per_seed]
        entry: dict[str, Any] = {"kind": "method" if name in METHODS else "baseline"}
        for key, value in rows[0].items():
            if isinstance(value, float | int) and all(np.isfinite(float(r[key])) for r in rows):
                entry[key] = settings.summary([float(r[key]) for r in rows])
        if "hit_targets" in rows[0]:
            entry["hit_targets"] = dict(Counter(f for r in rows for f in r["hit_targets"]).most_common())
        out[name] = entry
    return out


# -- the report ----------------------------------------------------------------------------------------------------


def _ci(d: dict | None, spec: str = ".2f") -> str:
    if not d or d.get("mean") is None:
        return "–"
    return f"{d['mean']:{spec}} [{d['ci_low']:{spec}}, {d['ci_high']:{spec}}]"


def _metric_table(arms: dict, metrics: tuple[str, ...], ks: list[int], spec: str) -> str:
    head = ["arm"] + [f"{m.replace('_', ' ')}@{k}" for m in metrics for k in ks]
    rows = [
        [LABELS.get(a, a)] + [_ci(e.get(f"{m}_at_{k}"), spec) for m in metrics for k in ks] for a, e in arms.items()
    ]
    return md_table(head, rows)


def _compute_table(arms: dict) -> str:
    rows = [
        [LABELS.get(a, a)] + [_ci(e.get(k), ".0f") for k in ("forward_equivalents", "n_candidates", "wall_s")]
        for a, e in arms.items()
        if a != "random_draw"
    ]
    return md_table(["arm", "forward-pass equivalents", "distinct candidates", "wall s"], rows)


def _hits_list(arms: dict, seeds: int) -> str:
    found: dict[str, list[str]] = {}
    for a, e in arms.items():
        for f, n in e.get("hit_targets", {}).items():
            found.setdefault(f, []).append(f"{LABELS.get(a, a)} ({n}/{seeds})")
    if not found:
        return "No arm hit a target in its top 200 in any seed."
    return md_table(["target hit (top 200)", "by (seeds)"], [[f, "; ".join(v)] for f, v in sorted(found.items())])


def _credibility_table(arms: dict) -> str:
    keys = [f"top{CREDIBILITY_TOP}_{k}" for k in CREDIBILITY_KEYS]
    rows = [[LABELS.get(a, a)] + [_ci(e.get(k), ".1f") for k in keys] for a, e in arms.items() if a != "random_draw"]
    return md_table(["arm", "Tc K", "σ K", "% charge-neutral", "cuprates", "elements"], rows)


def report(numbers: dict) -> str:
    """The report of a run from its numbers (`main`'s JSON), as printed and as docs/benchmarks/ holds it."""
    if "config_sha256" not in numbers:
        return legacy_report(numbers)
    s, arms, ks = numbers["settings"], numbers["arms"], numbers["settings"]["targets"]["ks"]
    d = s["design"]
    head = (
        f"Model: {numbers.get('model', 'not recorded')}\n\n"
        f"Settings: {numbers['config_file']} (sha256 {numbers['config_sha256']}); {len(numbers['seeds'])} seeds "
        f"(start sets) of {d['n_candidates']} starts ({d['init_mode']}); gradient {d['steps2']} + {d['steps3']} steps "
        f"+ {d['refine_steps']} refinement evaluations per start, every other method at the gradient's measured "
        f"forward-pass equivalents. {numbers['n_targets']} targets (SuperCon first reported >= "
        f"{s['targets']['first_year']}, L1 > {s['targets']['min_l1_to_known']} from all {numbers['n_earlier_supercon']:,} "
        f"earlier compositions) in {numbers['n_new_element_sets']} new element sets; hit = L1 <= "
        f"{s['targets']['hit_l1']}. Cells: mean over seeds [bootstrap {s['bootstrap']['level']:.0%} interval]."
    )
    return "\n\n".join(
        [
            head,
            "Precision and recall:",
            _metric_table(arms, ("precision", "recall"), ks, ".3f"),
            "Targets and new element sets found:",
            _metric_table(arms, ("target_hits", "element_set_hits"), ks, ".2f"),
            "Compute per seed (a row with a backward pass counts 3):",
            _compute_table(arms),
            "Targets hit:",
            _hits_list(arms, len(numbers["seeds"])),
            f"Credibility of the top {CREDIBILITY_TOP} (mean per seed):",
            _credibility_table(arms),
        ]
    )


def legacy_report(numbers: dict) -> str:
    """A results file of the benchmark's earlier definition (no frozen settings): its hits, marked superseded."""
    ks = [k.removeprefix("hits_at_") for k in numbers if k.startswith("hits_at_")]
    rows = [[m] + [numbers[f"hits_at_{k}"][m] for k in ks] for m in numbers[f"hits_at_{ks[0]}"]] if ks else []
    return (
        "> Superseded: these numbers were measured under the benchmark's earlier definition (targets within L1 0.05 of "
        "pre-2010 compounds counted, JARVIS-DFT in the database pool, the gradient given 2.6x the compute of the "
        "others). Run `python -m bench.discovery --json --doc` for the current one.\n\n"
        + (md_table(["method"] + [f"hits@{k}" for k in ks], rows) if rows else "")
    )


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, float | np.floating):
        return None if math.isnan(float(o)) else float(o)
    return o


# -- entry points --------------------------------------------------------------------------------------------------


def run_benchmark(inp: Inputs, settings: Settings, seeds: tuple[int, ...], arms: tuple[str, ...], device: str) -> dict:
    """Every seed, scored and aggregated: the numbers `main` prints (without model, timing and stamp)."""
    per_seed = []
    for seed in seeds:
        per_seed.append(score_seed(run_seed(inp, settings, seed, arms, device), inp.targets, settings))
    return {
        "config_file": str(settings.path.relative_to(REPO))
        if settings.path.is_relative_to(REPO)
        else str(settings.path),
        "config_sha256": settings.sha256,
        "settings": settings.raw,
        "seeds": list(seeds),
        "n_targets": len(inp.targets),
        "n_new_element_sets": len(inp.targets.new_sets),
        "n_earlier_supercon": inp.n_earlier,
        "arms": aggregate(per_seed, settings),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(CONFIG), help="the frozen settings (default bench/discovery.toml)")
    p.add_argument("--seeds", type=int, default=None, help="run only the first N seeds of the settings (timing)")
    p.add_argument(
        "--arms",
        default=",".join(a for a in (*METHODS, *BASELINES) if a != "random_draw"),
        help="comma-separated arms to run (the gradient always runs: it sets the budget)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true", help="end with one JSON line and write it to --out")
    p.add_argument("--out", default=str(RESULTS), help="where --json writes (default bench/results/discovery.json)")
    add_doc_option(p, "discovery")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = Settings.load(args.config)
    check_code(settings)
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    bad = sorted(set(arms) - set(METHODS) - set(BASELINES))
    if bad:
        raise SystemExit(f"unknown arms {bad}; choose from {METHODS + BASELINES}")
    seeds = settings.seeds[: args.seeds] if args.seeds else settings.seeds
    t0 = time.perf_counter()
    inp, desc = prepare(settings, args.data_dir, args.device)
    print(f"config sha256 {settings.sha256}; setup {time.perf_counter() - t0:.0f} s; {len(inp.targets)} targets")
    numbers = run_benchmark(inp, settings, seeds, arms, args.device)
    log_test_figures(
        getattr(inp.model, "sha256", "") or "-",
        f"post-2010 targets: hits, precision and recall of {len(arms)} arms (settings sha256 {settings.sha256[:12]})",
    )
    numbers = _jsonable({**numbers, "model": desc, "total_s": round(time.perf_counter() - t0, 1)})
    print("\n" + report(numbers))
    numbers["measured"] = measured([inp.model])
    if args.json:
        text = json.dumps(numbers, ensure_ascii=False)
        print(text)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n")
    if args.doc:
        write_doc(args.doc, report(numbers), stamp=numbers["measured"])
    return numbers


if __name__ == "__main__":
    main()
