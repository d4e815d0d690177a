"""The next batch: add a design run's candidates to a campaign, and choose a diverse batch among them.

The default selection is greedy on an adjusted score, one slot at a time:

    score = Tc − κ·σ − diversity_k · max(0, 1 − d / diversity_radius) − parent_k · [shares a parent phase]

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gdmcd_core.campaign import store
from gdmcd_core.chem.composition import FormulaError, to_vector

KAPPA = 1.0
DIVERSITY_K = 20.0
DIVERSITY_RADIUS = 0.5
PARENT_K = 10.0
NOT_FORMED_RADIUS = 0.05
# candidates.csv columns read (first present wins): formula, Tc (K), σ (K)
FORMULA_COLUMNS = ("integer_formula", "formula")
TC_COLUMNS = ("integer_tc_k", "tc_k")
SIGMA_COLUMNS = ("integer_tc_std_k", "sigma_k", "tc_std_k")


@dataclass(frozen=True)
class Settings:
    kappa: float = KAPPA
    diversity_k: float = DIVERSITY_K
    diversity_radius: float = DIVERSITY_RADIUS
    parent_k: float = PARENT_K
    not_formed_radius: float = NOT_FORMED_RADIUS


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


def _nearest(x: np.ndarray, others: list[tuple[str, np.ndarray]]) -> tuple[str, float]:
    if not others:
        return "", math.inf
    d = np.abs(np.stack([o for _, o in others]) - x).sum(axis=1)
    i = int(np.argmin(d))
    return others[i][0], float(d[i])


def _allowed(c: dict, history: dict, s: Settings) -> bool:
    for key in ("measured", "sent"):
        if _nearest(c["x"], history[key])[1] < 1e-6:
            return False
    return _nearest(c["x"], history["failed"])[1] > s.not_formed_radius


def _adjusted(c: dict, seen: list[tuple[str, np.ndarray]], parents: set[str], s: Settings) -> tuple[float, str]:
    sigma = c["sigma_k"]
    base = c["tc_k"] - s.kappa * (sigma or 0.0)
    near, d = _nearest(c["x"], seen)
    closeness = s.diversity_k * max(0.0, 1.0 - d / s.diversity_radius)
    shares = bool(c["parent_formula"]) and c["parent_formula"] in parents
    score = base - closeness - (s.parent_k if shares else 0.0)
    sig = f"{sigma:.1f}" if sigma is not None else "unknown (taken as 0)"
    reason = f"Tc {c['tc_k']:.1f} K − κσ (σ {sig} K) = {base:.1f} K"
    if closeness > 0:
        reason += f"; −{closeness:.1f} K for L1 {d:.3f} to {near}"
    if shares:
        reason += f"; −{s.parent_k:.1f} K for sharing parent {c['parent_formula']}"
    return score, reason + f"; score {score:.1f} K"


def choose(pool: list[dict], history: dict, n: int, s: Settings) -> list[dict]:
    """Greedy diversity-aware selection of up to `n` candidates (see the module docstring)."""
    open_ = [c for c in pool if _allowed(c, history, s)]
    seen = history["measured"] + history["failed"]
    by_formula = {c["formula"]: c for c in pool}
    parents = {p for f, _ in seen if (p := (by_formula.get(f) or {}).get("parent_formula"))}
    chosen: list[dict] = []
    while open_ and len(chosen) < n:
        scored = [(*_adjusted(c, seen, parents, s), i) for i, c in enumerate(open_)]
        score, reason, i = max(scored, key=lambda t: (t[0], -t[2]))
        c = open_.pop(i)
        chosen.append({**c, "score_k": score, "reason": reason})
        seen.append((c["formula"], c["x"]))
        if c["parent_formula"]:
            parents.add(c["parent_formula"])
    return chosen


def propose(conn: sqlite3.Connection, name: str, n: int, s: Settings | None = None) -> list[dict]:
    """Choose and record (a new round and its batch) the next batch of campaign `name`; returns its rows."""
    s = s or Settings()
    if n < 1:
        raise store.CampaignError(f"--n must be >= 1, got {n}")
    cid = store.campaign_id(conn, name)
    pool = _pool(conn, cid)
    if not pool:
        raise store.CampaignError(f"campaign {name!r} has no candidates (add a run: `gdmcd campaign add-run`)")
    chosen = choose(pool, _history(conn, cid), n, s)
    with conn:
        number = conn.execute("SELECT COUNT(*) FROM rounds WHERE campaign_id = ?", (cid,)).fetchone()[0] + 1
        rid = store.insert(conn, "rounds", {"campaign_id": cid, "number": number, "created": time.time()})
        settings = json.dumps({"n": n, **s.__dict__}, sort_keys=True)
        batch = {"campaign_id": cid, "round_id": rid, "strategy": "diverse", "settings_json": settings}
        bid = store.insert(conn, "batches", {**batch, "created": time.time()})
        for slot, c in enumerate(chosen, 1):
            item = {"batch_id": bid, "proposal_id": c["id"], "slot": slot, "score_k": c["score_k"]}
            store.insert(conn, "batch_items", {**item, "reason": c["reason"]})
    keys = ("formula", "tc_k", "sigma_k", "score_k", "run_id", "parent_formula", "reason")
    return [{k: c[k] for k in keys} for c in chosen]
