"""What a campaign holds, as rows for a page or a report: its timeline, its measurements, its model versions.

Read-only views over the store (campaign/store.py); the app's Campaign page and `gdmcd campaign status` show them.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gdmcd_core.campaign import store

DISCOVERY_TC_K = 20.0  # a measured superconductor at or above this counts as a discovery in the timeline


def campaign_names(conn: sqlite3.Connection) -> list[str]:
    return [r["name"] for r in conn.execute("SELECT name FROM campaigns ORDER BY created DESC, id DESC")]


def timeline(conn: sqlite3.Connection, cid: int) -> list[dict[str, Any]]:
    """One row per round: its batch (strategy, size) and what was measured in it (by outcome, discoveries)."""
    rows = []
    measured = [dict(m) for m in store.current_measurements(conn, cid)]
    for r in conn.execute("SELECT * FROM rounds WHERE campaign_id = ? ORDER BY number", (cid,)):
        batch = conn.execute(
            "SELECT b.strategy, COUNT(i.id) AS n FROM batches b LEFT JOIN batch_items i ON i.batch_id = b.id "
            "WHERE b.round_id = ? GROUP BY b.id ORDER BY b.id DESC LIMIT 1",
            (r["id"],),
        ).fetchone()
        mine = [m for m in measured if m["round_id"] == r["id"]]
        rows.append(
            {
                "round": r["number"],
                "strategy": batch["strategy"] if batch else "",
                "proposed": batch["n"] if batch else 0,
                "measured": len(mine),
                "superconducting": sum(m["outcome"] == "superconducting" for m in mine),
                "no_transition": sum(m["outcome"] == "no_transition" for m in mine),
                "not_formed": sum(m["outcome"] == "not_formed" for m in mine),
                f"Tc ≥ {DISCOVERY_TC_K:g} K": sum(
                    m["outcome"] == "superconducting" and (m["tc_k"] or 0) >= DISCOVERY_TC_K for m in mine
                ),
            }
        )
    return rows


def measurements(conn: sqlite3.Connection, cid: int) -> list[dict[str, Any]]:
    """The current measurements (corrections applied), oldest first, with their round number."""
    numbers = {
        r["id"]: r["number"] for r in conn.execute("SELECT id, number FROM rounds WHERE campaign_id = ?", (cid,))
    }
    keys = ("id", "formula", "outcome", "tc_k", "t_min_k", "pressure_gpa", "sample_id", "date", "unproposed")
    return [
        {"round": numbers.get(m["round_id"]), **{k: m[k] for k in keys}} for m in store.current_measurements(conn, cid)
    ]


def versions(conn: sqlite3.Connection, cid: int) -> list[dict[str, Any]]:
    """Model versions, oldest first: number, SHA-256, how many measurements, MAE on them before and after."""
    out = []
    for n, r in enumerate(conn.execute("SELECT * FROM model_versions WHERE campaign_id = ? ORDER BY id", (cid,)), 1):
        metrics = json.loads(r["metrics_json"])
        out.append(
            {
                "version": n,
                "sha256": r["sha256"][:12],
                "measurements": len(json.loads(r["measurement_ids_json"])),
                "MAE before (K)": metrics.get("mae_before_k"),
                "MAE after (K)": metrics.get("mae_after_k"),
                "σ factor": (metrics.get("sigma_recalibration") or {}).get("sigma_factor"),
                "seconds": metrics.get("seconds"),
            }
        )
    return out


def _latest_metrics(conn: sqlite3.Connection, cid: int) -> dict[str, Any]:
    """The metrics recorded with the campaign's latest model version ({} before the first update)."""
    row = conn.execute(
        "SELECT metrics_json FROM model_versions WHERE campaign_id = ? ORDER BY id DESC LIMIT 1", (cid,)
    ).fetchone()
    return json.loads(row["metrics_json"]) if row is not None else {}


def predicted_vs_measured(conn: sqlite3.Connection, cid: int) -> list[dict[str, Any]]:
    """Measured superconductors of the latest update with the prediction before and after it (K)."""
    metrics = _latest_metrics(conn, cid)
    formulas = {m["id"]: m["formula"] for m in store.current_measurements(conn, cid)}
    out = []
    for m in metrics.get("measured", []):
        if m.get("tc_k") is None:
            continue
        name = formulas.get(m["measurement_id"], "")
        out.append({"formula": name, "measured_k": m["tc_k"], "model": "before", "predicted_k": m["before_k"]})
        out.append({"formula": name, "measured_k": m["tc_k"], "model": "after", "predicted_k": m["after_k"]})
    return out


def ranking_moves(conn: sqlite3.Connection, cid: int) -> list[dict[str, Any]]:
    """The top open candidates after the latest update, with their rank and Tc before and after it."""
    return _latest_metrics(conn, cid).get("ranking_moves", [])


__all__ = ["campaign_names", "measurements", "predicted_vs_measured", "ranking_moves", "timeline", "versions"]
