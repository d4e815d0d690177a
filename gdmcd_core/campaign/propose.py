"""The next batch: add a design run's candidates to a campaign, and choose a diverse batch among them.

The default selection ("diverse") is greedy on an adjusted score, one slot at a time:

    score = Tc − κ·σ − diversity_k · max(0, 1 − d / diversity_radius) − parent_k · [shares a parent phase]

The other strategies change the first term: "greedy" is Tc − κσ without the diversity terms, "ucb" Tc + κσ, and
"thompson" one draw from N(Tc, σ²) per candidate, drawn afresh for every slot (the ensemble's posterior read as a
normal; with the diversity terms).

Tc and σ (K) are the run's predicted Tc of the integer formula and its ensemble spread; d is the L1 distance between
atomic-fraction vectors (0..2) to the nearest composition already chosen in this batch, measured, or that failed to
form; "shares a parent phase" means its `parent_formula` (the phase-analysis column, when the run has it) is that of a
chosen or measured composition. Never proposed: a composition measured (any outcome, pending included), one in an
earlier batch, and one within L1 NOT_FORMED_RADIUS of a composition that failed to form.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gdmcd_core.campaign import store
from gdmcd_core.chem.composition import FormulaError, to_vector

ScoreFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
KAPPA = 1.0
DIVERSITY_K = 20.0
DIVERSITY_RADIUS = 0.5
PARENT_K = 10.0
NOT_FORMED_RADIUS = 0.05
# candidates.csv columns read (first present wins): formula, Tc (K), σ (K)
FORMULA_COLUMNS = ("integer_formula", "formula")
TC_COLUMNS = ("integer_tc_k", "tc_k")
SIGMA_COLUMNS = ("integer_tc_std_k", "sigma_k", "tc_std_k")


STRATEGIES = ("diverse", "greedy", "ucb", "thompson")


@dataclass(frozen=True)
class Settings:
    strategy: str = "diverse"  # STRATEGIES: see base_scores; greedy leaves out the diversity terms
    kappa: float = KAPPA
    diversity_k: float = DIVERSITY_K
    diversity_radius: float = DIVERSITY_RADIUS
    parent_k: float = PARENT_K
    not_formed_radius: float = NOT_FORMED_RADIUS

    def validate(self) -> Settings:
        if self.strategy not in STRATEGIES:
            raise store.CampaignError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.kappa < 0 or self.diversity_radius <= 0 or self.not_formed_radius < 0:
            raise store.CampaignError("kappa and not_formed_radius must be >= 0 and diversity_radius > 0")
        return self


def _first(row: dict, names: tuple[str, ...]) -> str:
    return next((row[n] for n in names if (row.get(n) or "").strip()), "")


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _flag(text: str | None) -> int | None:
    t = (text or "").strip().lower()
    return {"true": 1, "1": 1, "false": 0, "0": 0}.get(t)


def candidate_rows(csv_path: Path) -> list[dict]:
    """The proposal rows of a run's candidates.csv (rows without a formula or predicted Tc are skipped)."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        formula, tc = _first(r, FORMULA_COLUMNS).strip(), _float(_first(r, TC_COLUMNS))
        if not formula or tc is None:
            continue
        out.append(
            {
                "formula": formula,
                "tc_k": tc,
                "sigma_k": _float(_first(r, SIGMA_COLUMNS)),
                "parent_formula": (r.get("parent_formula") or "").strip() or None,
                "is_mixture": _flag(r.get("is_mixture")),
                "is_known": _flag(r.get("is_known")),
            }
        )
    return out


def add_run(conn: sqlite3.Connection, name: str, run_dir: str | Path) -> int:
    """Add a finished run folder's candidates to campaign `name`; returns how many proposal rows were stored."""
    cid = store.campaign_id(conn, name)
    run_dir = Path(run_dir).resolve()
    cands = run_dir / "candidates.csv"
    if not cands.is_file():
        raise store.CampaignError(f"{run_dir} has no candidates.csv (finish the run first: `gdmcd runs finalize`)")
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    try:
        rows = candidate_rows(cands)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise store.CampaignError(f"cannot read {cands}: {exc}") from None
    sha = config.get("checkpoint_sha256") if isinstance(config, dict) else None
    run = {"run_id": run_dir.name, "run_dir": str(run_dir), "checkpoint_sha256": sha}
    return store.add_proposals(conn, cid, run, rows)


# -- the selection -----------------------------------------------------------------------------


def _vector(formula: str) -> np.ndarray | None:
    try:
        return to_vector(formula)
    except FormulaError:
        return None


def open_pool(conn: sqlite3.Connection, cid: int) -> list[dict]:
    """The campaign's candidates that a batch could still take (default settings): not measured, not sent, not
    next to a composition that failed to form."""
    return open_candidates(_pool(conn, cid), _history(conn, cid), Settings())


def _pool(conn: sqlite3.Connection, cid: int) -> list[dict]:
    """The campaign's candidates, one per formula (its highest predicted Tc), with their vectors."""
    best: dict[str, dict] = {}
    for r in conn.execute("SELECT * FROM proposals WHERE campaign_id = ? ORDER BY tc_k DESC, id", (cid,)):
        if r["formula"] not in best and (x := _vector(r["formula"])) is not None:
            best[r["formula"]] = {**dict(r), "x": x}
    return list(best.values())


def _history(conn: sqlite3.Connection, cid: int) -> dict:
    """Vectors of what was measured, failed to form or sent before, and the parent phases measured."""
    measured, failed = [], []
    for m in store.current_measurements(conn, cid):
        if (x := _vector(m["formula"])) is not None:
            (failed if m["outcome"] == "not_formed" else measured).append((m["formula"], x))
    sql = "SELECT p.formula FROM batch_items i JOIN proposals p ON p.id = i.proposal_id WHERE p.campaign_id = ?"
    sent = [(f, x) for (f,) in conn.execute(sql, (cid,)) if (x := _vector(f)) is not None]
    return {"measured": measured, "failed": failed, "sent": sent}


def _min_distance(xs: np.ndarray, others: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(P,) L1 distance of each row of xs (P, 118) to its nearest of `others` (inf: none), and that one's index."""
    d = np.full(len(xs), np.inf)
    near = np.full(len(xs), -1)
    for j, (_, o) in enumerate(others):
        dj = np.abs(xs - o).sum(axis=1)
        better = dj < d
        d[better], near[better] = dj[better], j
    return d, near


def open_candidates(pool: list[dict], history: dict, s: Settings) -> list[dict]:
    """The pool without what was measured or sent before and without what lies within L1 not_formed_radius of a
    composition that failed to form."""
    if not pool:
        return []
    xs = np.stack([c["x"] for c in pool])
    d_done, _ = _min_distance(xs, history["measured"] + history["sent"])
    d_failed, _ = _min_distance(xs, history["failed"])
    keep = (d_done >= 1e-6) & (d_failed > s.not_formed_radius)
    return [c for c, k in zip(pool, keep, strict=True) if k]


def base_scores(tc: np.ndarray, sigma: np.ndarray, s: Settings, rng: np.random.Generator | None = None) -> np.ndarray:
    """(P,) score of each open candidate before diversity, in K, by strategy: diverse and greedy Tc − κσ, ucb
    Tc + κσ, thompson one draw from N(Tc, σ²) (σ unknown: 0)."""
    sigma = np.nan_to_num(np.asarray(sigma, np.float64), nan=0.0)
    if s.strategy == "ucb":
        return tc + s.kappa * sigma
    if s.strategy == "thompson":
        return tc + sigma * (rng or np.random.default_rng()).standard_normal(len(tc))
    return tc - s.kappa * sigma


def _reason(c: dict, s: Settings, base: float, closeness: float, d: float, near: str, shares: bool) -> str:
    sigma = c["sigma_k"]
    sig = f"{sigma:.1f}" if sigma is not None else "unknown (taken as 0)"
    what = {"ucb": "Tc + κσ", "thompson": "a draw from N(Tc, σ²)"}.get(s.strategy, "Tc − κσ")
    reason = f"{s.strategy}: {what} with Tc {c['tc_k']:.1f} K, σ {sig} K: {base:.1f} K"
    if closeness > 0:
        reason += f"; −{closeness:.1f} K for L1 {d:.3f} to {near}"
    if shares:
        reason += f"; −{s.parent_k:.1f} K for sharing parent {c['parent_formula']}"
    return reason + f"; score {base - closeness - (s.parent_k if shares else 0.0):.1f} K"


def choose(pool: list[dict], history: dict, n: int, s: Settings, rng: np.random.Generator | None = None) -> list[dict]:
    """Greedy selection of up to `n` candidates, one slot at a time (see the module docstring). The diversity terms
    apply to every strategy but greedy; thompson draws afresh for every slot."""
    open_ = open_candidates(pool, history, s)
    if not open_:
        return []
    seen = list(history["measured"] + history["failed"])
    by_formula = {c["formula"]: c for c in pool}
    parents = {p for f, _ in seen if (p := (by_formula.get(f) or {}).get("parent_formula"))}
    xs = np.stack([c["x"] for c in open_])
    tc = np.array([c["tc_k"] for c in open_], np.float64)
    sigma = np.array([np.nan if c["sigma_k"] is None else c["sigma_k"] for c in open_], np.float64)
    parent = np.array([c["parent_formula"] or "" for c in open_], object)
    d, near = _min_distance(xs, seen)
    taken = np.zeros(len(open_), bool)
    diverse = s.strategy != "greedy"
    chosen: list[dict] = []
    base = base_scores(tc, sigma, s, rng)
    while len(chosen) < min(n, len(open_)):
        if s.strategy == "thompson" and chosen:
            base = base_scores(tc, sigma, s, rng)
        closeness = s.diversity_k * np.clip(1.0 - d / s.diversity_radius, 0.0, None) if diverse else np.zeros_like(d)
        shares = np.array([bool(p) and p in parents for p in parent]) if diverse else np.zeros(len(open_), bool)
        score = np.where(taken, -np.inf, base - closeness - s.parent_k * shares)
        i = int(np.argmax(score))
        c = open_[i]
        name = seen[near[i]][0] if near[i] >= 0 else ""
        reason = _reason(c, s, float(base[i]), float(closeness[i]), float(d[i]), name, bool(shares[i]))
        chosen.append({**c, "score_k": float(score[i]), "reason": reason})
        taken[i] = True
        seen.append((c["formula"], c["x"]))
        dn = np.abs(xs - c["x"]).sum(axis=1)
        closer = dn < d
        d[closer], near[closer] = dn[closer], len(seen) - 1
        if c["parent_formula"]:
            parents.add(c["parent_formula"])
    return chosen


def rescored(pool: list[dict], score_fn: ScoreFn) -> list[dict]:
    """The pool with Tc and σ (K) from `score_fn` ((P, 118) fractions -> (Tc (P,), σ (P,))), e.g. a campaign's
    latest model version, instead of the predictions its design runs recorded."""
    if not pool:
        return pool
    tc, sigma = score_fn(np.stack([c["x"] for c in pool]))
    return [{**c, "tc_k": float(t), "sigma_k": float(g)} for c, t, g in zip(pool, tc, sigma, strict=True)]


def propose(
    conn: sqlite3.Connection,
    name: str,
    n: int,
    s: Settings | None = None,
    score_fn: ScoreFn | None = None,
    seed: int | None = None,
) -> list[dict]:
    """Choose and record (a new round and its batch) the next batch of campaign `name`; returns its rows.
    score_fn: re-predict the candidates (the campaign's latest model version); seed: thompson's draws."""
    s = (s or Settings()).validate()
    if n < 1:
        raise store.CampaignError(f"--n must be >= 1, got {n}")
    cid = store.campaign_id(conn, name)
    pool = _pool(conn, cid)
    if not pool:
        raise store.CampaignError(f"campaign {name!r} has no candidates (add a run: `gdmcd campaign add-run`)")
    if score_fn is not None:
        pool = rescored(pool, score_fn)
    chosen = choose(pool, _history(conn, cid), n, s, np.random.default_rng(seed))
    with conn:
        number = conn.execute("SELECT COUNT(*) FROM rounds WHERE campaign_id = ?", (cid,)).fetchone()[0] + 1
        rid = store.insert(conn, "rounds", {"campaign_id": cid, "number": number, "created": time.time()})
        settings = json.dumps({"n": n, **s.__dict__}, sort_keys=True)
        batch = {"campaign_id": cid, "round_id": rid, "strategy": s.strategy, "settings_json": settings}
        bid = store.insert(conn, "batches", {**batch, "created": time.time()})
        for slot, c in enumerate(chosen, 1):
            item = {"batch_id": bid, "proposal_id": c["id"], "slot": slot, "score_k": c["score_k"]}
            store.insert(conn, "batch_items", {**item, "reason": c["reason"]})
    keys = ("formula", "tc_k", "sigma_k", "score_k", "run_id", "parent_formula", "reason")
    return [{k: c[k] for k in keys} for c in chosen]
