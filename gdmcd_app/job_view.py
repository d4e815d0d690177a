"""What the pages say about a run, as plain functions (no Streamlit): testable alone.

* `run_status` — the one status every page and the sidebar show for a run: the live job's (this
  server's registry) when there is one, else the run folder's (`runs.run_status`: "interrupted" as
  soon as the process that wrote it is gone);
* `progress_view` — the live panel's line: the starting phases until the loop reports, then step,
  stage, best Tc and the run's ETA (Progress.eta_s: each stage at its own measured rate, the warm-up step
  never counted, design/loop/eta.py); never a NaN;
* `settings_diff` / `form_vs_run` — which settings differ between runs, or between the form and the
  run on screen (the form never silently shows other settings than the run it sits above);
* `open_run_id` — the run a page points to when it was given none (a fresh tab, a restarted server).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gdmcd_app.form import canonical_config
from gdmcd_core.design.config.config import DesignConfig, config_fields, field_label
from gdmcd_core.design.run import PHASES as RUN_PHASES
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs.meta import read_meta

ACTIVE = ("starting", "running")
STATUS_NOTES = {
    "running": "running",
    "interrupted": "stopped without finishing: its process is gone (server restarted or killed). Its saved "
    "state can be finalized or resumed on the Runs page.",
    "failed": "failed",
    "stopped": "stopped by the user; its candidates were built from the compositions reached",
    "finished": "finished",
}
LABELS = {f.name: field_label(f) for f in config_fields(generic_only=False)}

# The run's phases as the live panel names them: the app's worker process starting (jobs.py), then run_design's.
PHASES = {"worker": "starting the design process (model and data)", **RUN_PHASES}


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt_k(v: Any, digits: int = 1) -> str:
    """A temperature for the page: '154.0 K', or '—' when there is none (NaN, missing)."""
    return f"{float(v):.{digits}f} K" if finite(v) else "—"


def fmt_duration(seconds: float) -> str:
    """'45 s', '3 min 20 s', '2 h 05 min'."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# -- status ---------------------------------------------------------------------------------------


def run_status(snapshot: Any | None, info: runs.RunInfo | None) -> str:
    """The status to show for a run, on every page: the job of this server when it has one
    ("starting" reads as "running"), else the run folder's. "unknown" when neither exists."""
    if snapshot is not None:
        return "running" if snapshot.status in ACTIVE else snapshot.status
    return info.status if info is not None else "unknown"


def folder_info(run_id: str, root: str | Path | None = None) -> runs.RunInfo | None:
    """The run folder's RunInfo, or None (bad id, no such folder, unreadable)."""
    try:
        return runs.run_info(run_id, root)
    except (ValueError, OSError):
        return None


def newest_run_id(root: str | Path | None = None) -> str | None:
    """The run folder written to last (its status.json, else its folder's mtime), or None."""
    base = runs.runs_root(root)
    best, best_t = None, -math.inf
    try:
        entries = list(base.iterdir())
    except OSError:
        return None
    for p in entries:
        if not runs.RUN_ID_RE.match(p.name) or p.is_symlink() or not p.is_dir():
            continue
        try:
            st = p / runs.STATUS_FILE
            t = st.stat().st_mtime if st.is_file() else p.stat().st_mtime
        except OSError:
            continue
        if t > best_t:
            best, best_t = p.name, t
    return best


def open_run_id(active_ids: Sequence[str], root: str | Path | None = None, interrupted: bool = False) -> str | None:
    """The run a page shows when it was given none: this server's newest active job, else the run
    folder written to last if it is running in another process (or, with `interrupted`, if its
    process died: after a server restart every page says so)."""
    if active_ids:
        return active_ids[-1]
    rid = newest_run_id(root)
    info = folder_info(rid, root) if rid else None
    wanted = ("running", "interrupted") if interrupted else ("running",)
    return rid if info is not None and info.status in wanted else None


# -- progress -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressView:
    """The live panel's bar (fraction 0..1, text), the phases so far (label, state) and whether the
    charts have anything to draw."""

    fraction: float
    text: str
    phases: tuple[tuple[str, str], ...]
    has_points: bool


def phase_list(current: str, looping: bool) -> tuple[tuple[str, str], ...]:
    """((label, "done" | "now" | "todo"), ...) of the run's phases, the current one marked."""
    names = list(PHASES)
    if looping and current in ("", "first_step"):
        current = "loop"
    order = [*names[:-1], "loop", names[-1]]
    labels = {**PHASES, "loop": "optimization loop"}
    at = order.index(current) if current in order else -1
    return tuple((labels[n], "done" if i < at else "now" if i == at else "todo") for i, n in enumerate(order))


def progress_view(snapshot: Any, now: float | None = None) -> ProgressView:
    """The live panel for a job snapshot (see jobs.JobSnapshot)."""
    now = time.time() if now is None else now
    p = snapshot.progress or {}
    phase = snapshot.phase or ""
    since = f" ({fmt_duration(now - snapshot.phase_started)})" if snapshot.phase_started else ""
    head = f"Run {snapshot.job_id}"
    if not p:  # nothing from the loop yet: say which part of the start is under way
        label = PHASES.get(phase, "starting")
        return ProgressView(0.0, f"{head}: {label}…{since}", phase_list(phase, False), False)
    step, total = int(p.get("step", 0)), max(int(p.get("total_steps", 0) or 0), 1)
    if p.get("done") or phase == "candidates":
        text = f"{head}: {PHASES['candidates']} (integer formulas, novelty and validity checks)…{since}"
    else:
        eta = p.get("eta_s")  # the engine's (design/loop/eta.py); NaN until each stage it needs was measured
        eta_text = f"ETA {fmt_duration(eta)}" if finite(eta) and eta >= 0 else "ETA estimating…"
        text = f"{head}: step {step:,}/{total:,} · stage {p.get('stage', 2)} · best Tc {fmt_k(p.get('tc_best_k'))} · {eta_text}"
    if snapshot.stop_requested:
        text += " · stopping…"
    n_points = sum(1 for r in snapshot.history if finite(r.get("tc_best_k")))
    return ProgressView(min(step / total, 1.0), text, phase_list(phase, True), n_points >= 2)


# -- settings -------------------------------------------------------------------------------------


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_show(x) if not isinstance(x, dict) else _pin(x) for x in v) or "—"
    if v is None or v == "":
        return "—"
    return str(v)


def _pin(d: Mapping[str, Any]) -> str:
    op = "=" if d.get("mode") == "exact" else "≥"
    return f"{d.get('symbol')}{op}{float(d.get('fraction', 0)):g}"


def normalized(design: Mapping[str, Any]) -> dict[str, Any]:
    """A run's design settings as DesignConfig writes them (lists, pin dicts); the dict as it is
    if it is not a valid DesignConfig (a run from another version)."""
    try:
        return DesignConfig.from_dict(dict(design)).to_dict()
    except (ValueError, TypeError):
        return dict(design)


def settings_diff(configs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """Rows {"setting": label, <name>: value, ...} for the design settings that differ between the
    given runs ({name: design dict}); the same settings in every run give no rows."""
    norm = {name: normalized(d) for name, d in configs.items()}
    keys = list(dict.fromkeys(k for d in norm.values() for k in d))
    rows = []
    for k in keys:
        shown = {name: _show(d.get(k)) for name, d in norm.items()}
        if len(set(shown.values())) > 1:
            rows.append({"setting": LABELS.get(k, k), **shown})
    return rows


def form_vs_run(form_config: DesignConfig | None, run_design: Mapping[str, Any]) -> list[dict[str, str]]:
    """The settings where the form differs from the run on screen (rows as in `settings_diff`, with
    columns "form" and "run"); one row "form" when the form does not make a valid config. The run is
    compared as the form would write it (form.canonical_config): the same run spelt otherwise is no diff."""
    if form_config is None:
        return [{"setting": "form", "form": "has errors (see above)", "run": "valid"}]
    try:
        run = canonical_config(DesignConfig.from_dict(dict(run_design))).to_dict()
    except (ValueError, TypeError):  # a run from another version: compared as it is
        run = dict(run_design)
    return settings_diff({"form": form_config.to_dict(), "run": run})


def describe_diff(rows: Sequence[Mapping[str, str]], limit: int = 4) -> str:
    """'Stage-2 steps 500 (run: 60), Candidates 64 (run: 16) and 2 more'."""
    parts = [f"{r['setting']} {r['form']} (run: {r['run']})" for r in rows[:limit]]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(parts) + more


def folder_meta_name(run_id: str, root: str | Path | None = None) -> str:
    """The run's name from its meta.json ("" when it has none or the id is not valid)."""
    try:
        return read_meta(runs.run_path(run_id, root)).name
    except ValueError:
        return ""


def ranking_text(design: Mapping[str, Any]) -> str:
    """How the run's table is ranked, in words, from its design settings (config.json's "design", not the
    whole config): Tc − κσ under the lcb objective, else predicted Tc (as design.evidence.candidates
    .candidate_context ranks)."""
    d = normalized(design) if isinstance(design, Mapping) else {}
    k = d.get("kappa", 1.0)
    kappa = (float(k) if finite(k) else 1.0) if d.get("objective", "lcb") == "lcb" else 0.0
    if kappa > 0:
        score = f"Tc − {'' if kappa == 1 else f'{kappa:g}'}σ"
        text = f"ranked by {score} of the integer formula (objective lcb, κ = {kappa:g})"
    else:
        text = f"ranked by predicted Tc of the integer formula (objective {d.get('objective', 'lcb')})"
    if d.get("valence_weight", 0) or d.get("cu_valence_weight", 0):
        text += "; formulas that fail a chemistry check (charge neutrality, Cu valence) come after those that pass"
    return text + phase_ranking_text(design if isinstance(design, Mapping) else {})


def phase_ranking_text(design: Mapping[str, Any]) -> str:
    """The phase tiers and family cap of a run's ranking (evidence/candidates.py rank_rows), from the settings
    its config.json records: a run written before these settings existed was ranked without them."""
    tiers = [
        name
        for key, name in (("mixtures_last", "mixtures"), ("misfits_last", "site misfits"), ("known_last", "known SC"))
        if design.get(key) is True
    ]
    text = f"; then {', '.join(tiers)} after the others" if tiers else ""
    cap = design.get("max_per_family")
    if isinstance(cap, int) and cap > 0:
        text += f"; at most {cap} per family before the other families' candidates"
    if design.get("site_repair") is True:
        text += "; rows whose path says 'site repair' or 'site variant' were added after the search (site_repair.py)"
    return text
