"""The Runs page's table and comparison as plain functions (no Streamlit): rows with readable numbers,
tag filter, what the compared runs share and where they differ.

TC_FORMAT is the number format of every Tc the page shows ("154.0 K")."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gdmcd_app.data import series_from_trajectory
from gdmcd_app.job_view import finite, fmt_k
from gdmcd_core.design.runs import folder as runs

TC_FORMAT = "%.1f K"


def all_tags(infos: Iterable[runs.RunInfo]) -> list[str]:
    """Every tag used by the runs, sorted."""
    return sorted({t for r in infos for t in r.tags})


def with_tags(infos: Sequence[runs.RunInfo], tags: Iterable[str]) -> list[runs.RunInfo]:
    """The runs carrying every one of `tags` (all runs when no tag is chosen)."""
    wanted = set(tags)
    return [r for r in infos if wanted <= set(r.tags)]


def fmt_created(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if finite(t) and t > 0 else ""


def run_rows(infos: Iterable[runs.RunInfo], status_of: Callable[[runs.RunInfo], str]) -> list[dict[str, Any]]:
    """One row per run for the Runs table; `status_of` gives the status every page shows."""
    return [
        {
            "run": r.run_id,
            "name": r.name,
            "tags": ", ".join(r.tags),
            "status": status_of(r),
            "created": fmt_created(r.created),
            "candidates": r.n_candidates,
            "steps": f"{r.steps_done:,}/{r.total_steps:,}" if r.total_steps else "",
            "top-ranked formula": r.best_integer_formula,
            "its Tc": fmt_k(r.best_integer_tc_k),  # "154.0 K", "—" when there is none
            "settings": r.summary if r.status != runs.UNREADABLE else r.problem,
        }
        for r in infos
    ]


def run_label(info: runs.RunInfo) -> str:
    """'20251125-061500-a1b2c3 · hydrides · finished' for pickers."""
    return " · ".join(x for x in (info.run_id, info.name, info.status) if x)


def short_label(info: runs.RunInfo) -> str:
    """A column header for a run: its name with the id's last six characters, else its id."""
    return f"{info.name} ({info.run_id[-6:]})" if info.name else info.run_id


@dataclass
class Comparison:
    """What the Runs page compares: best-Tc curves {run id: (steps, best Tc)}, the top-ranked candidate
    of each run (rows), and each run's design settings {short label: design dict}."""

    best_lines: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    tops: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, dict] = field(default_factory=dict)


def compare_runs(loaded: Mapping[str, runs.LoadedRun]) -> Comparison:
    """The comparison of the runs {run id: loaded run}."""
    out = Comparison()
    for rid, run in loaded.items():
        out.settings[short_label(run.info)] = run.config.get("design") or {}
        if run.trajectory is not None and len(run.trajectory.step):
            s = series_from_trajectory(run.trajectory)
            out.best_lines[rid] = (s["step"], s["tc_best_k"])
        if run.candidates is not None and len(run.candidates):
            top = run.candidates.iloc[0]
            out.tops.append(
                {
                    "run": rid,
                    "top-ranked formula": top["integer_formula"],
                    "Tc": float(top["integer_tc_k"]),
                    "candidates": len(run.candidates),
                }
            )
    return out
