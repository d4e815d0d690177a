"""The README's quick run read as a chemist would: its top 20 with parent and edit, and four counts.

    python -m bench.quick_run_phases --doc                 # run the quick design (~30 s), then count
    python -m bench.quick_run_phases --run runs/quick      # count an existing run folder

The quick run is `gdmcd design --out runs/quick --n-candidates 64 --steps2 200 --steps3 200 --threads 1` with the
committed checkpoint and every other option at its default. Its top `--top` (20) rows are counted for the design
issue's targets: mixtures (a known compound plus binaries, evidence/phases.py) at most 2, known superconductors at
most 2, every substitution within the site-fit threshold (evidence/site_fit.SITE_MISMATCH_MAX), at least 5
element sets. The counts are computed from the run's candidates.csv, whatever they are; `--doc` writes the top
rows and the counts to docs/benchmarks/quick_run.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import REPO, add_doc_option, write_doc
from bench.design_common import md_table
from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.design.evidence.site_fit import SITE_MISMATCH_MAX

QUICK_ARGS = ["--n-candidates", "64", "--steps2", "200", "--steps3", "200", "--threads", "1"]
TARGETS = {"mixtures": ("≤", 2), "known": ("≤", 2), "substitutions past the site-fit threshold": ("≤", 0)}
TARGETS["element sets"] = ("≥", 5)


def run_quick(out: Path) -> float:
    """Run the quick design into `out` (a fresh folder) through the CLI; returns its wall time in s."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"--out {out}: the folder is not empty; give a new one or read it with --run {out}")
    cmd = [sys.executable, "-m", "gdmcd_core.cli.main", "design", "--out", str(out), *QUICK_ARGS, "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.perf_counter() - t0


def counts(top: pd.DataFrame, trust_radius: float) -> dict[str, int]:
    """The four counts of the top rows, and beside them: rows adding a new cation without a site, rows failing a
    chemistry check, and rows whose reported start lies farther than the trust radius from their formula (L1)."""
    mismatch = pd.to_numeric(top.get("site_mismatch"), errors="coerce")
    misfit = top.get("site_misfit", pd.Series(False, index=top.index)).astype(bool)
    far = [
        np.abs(to_vector(a) - to_vector(b)).sum() > trust_radius
        for a, b in zip(top["initial_formula"], top["integer_formula"], strict=True)
    ]
    return {
        "mixtures": int(top["is_mixture"].astype(bool).sum()),
        "known": int(top["is_known"].astype(bool).sum()),
        "substitutions past the site-fit threshold": int((mismatch > SITE_MISMATCH_MAX).sum()),
        "element sets": len({frozenset(parse_formula(f)) for f in top["integer_formula"]}),
        "new cations without a site": int((misfit & ~(mismatch > SITE_MISMATCH_MAX)).sum()),
        "failing a chemistry check": int((~top["passes_chemistry_checks"].astype(bool)).sum()),
        f"start farther than the trust radius ({trust_radius:g})": int(sum(far)),
    }


def _met(name: str, value: int) -> str:
    if name not in TARGETS:
        return ""
    op, bound = TARGETS[name]
    ok = value <= bound if op == "≤" else value >= bound
    return f"{op} {bound}: {'met' if ok else 'missed'}"


def _parent(r: pd.Series) -> str:
    if not isinstance(r.get("parent_formula"), str) or not r["parent_formula"]:
        return "–"
    tc = f", {r['parent_tc_k']:.0f} K, {r['parent_year']:.0f}" if r.get("parent_source") == "supercon" else ""
    return f"{r['parent_formula']} ({r['parent_source']}{tc})"


def top_table(top: pd.DataFrame) -> str:
    rows = [
        [
            int(r["rank"]),
            r["integer_formula"],
            f"{r['integer_tc_k']:.1f} ± {r['integer_tc_std_k']:.1f}",
            _parent(r),
            str(r["edit"]).replace("|", "/"),
            "yes" if r["is_mixture"] else "",
            "yes" if r["is_known"] else "",
            "" if np.isnan(r["site_mismatch"]) else f"{100 * r['site_mismatch']:.0f} %",
            "yes" if bool(r.get("passes_chemistry_checks", True)) else "no",
            r["family"],
            r.get("path", ""),
        ]
        for _, r in top.iterrows()
    ]
    head = ["rank", "formula", "Tc ± σ (K)", "parent (source, Tc, year)", "edit", "mixture", "known"]
    return md_table([*head, "site mismatch", "passes checks", "family", "path"], rows)


def report(table: pd.DataFrame, n_top: int, wall_s: float | None, run_dir: Path) -> str:
    top = table.sort_values("rank").head(n_top)
    c = counts(top, float(_design(run_dir).get("trust_radius", 0.3)))
    count_rows = [[k, v, _met(k, v)] for k, v in c.items()]
    when = f" in {wall_s:.0f} s wall time" if wall_s is not None else ""
    lines = [
        f"`gdmcd design {' '.join(QUICK_ARGS)}` (every other option at its default), run folder `{run_dir.name}`"
        f"{when}: {len(table)} distinct candidates. The top {len(top)} by the run's ranking "
        "(evidence/candidates.py `rank_rows`: mixtures last, then site misfits, then failed chemistry checks, then "
        f"known superconductors, at most {_cap(run_dir)} per family before the other families):",
        "",
        md_table(["top-20 count", "value", "target"], count_rows),
        "",
        top_table(top),
        "",
        "Parent: the known compound the candidate is made from (evidence/phases.py: the main phase of a mixture or "
        "homologous series, else the simplest edit among the 10 nearest by L1). Site mismatch: the largest relative "
        "Shannon-radius difference of a substitution (evidence/site_fit.py; threshold "
        f"{SITE_MISMATCH_MAX:.0%}). A 'new cation without a site' is added to the parent rather than substituted.",
        "",
        _origin_text(table, top),
    ]
    return "\n".join(lines)


def _origin_text(table: pd.DataFrame, top: pd.DataFrame) -> str:
    """Where the rows came from: the search itself, or the site repairs and variants added after it
    (evidence/site_repair.py, DesignConfig.site_repair)."""
    kinds = {
        "site repair": "a misfit ion swapped for one that fits",
        "site variant": "one ion of a known superconductor swapped",
    }
    parts = []
    for key, what in kinds.items():
        n_all, n_top = (int(t["path"].astype(str).str.startswith(key).sum()) for t in (table, top))
        parts.append(f"{n_top} of the top {len(top)} ({n_all} of all {len(table)} rows) are {key}s ({what})")
    return "Origin: " + "; ".join(parts) + "; the rest come from the search itself (stage 2, stage 3, refinement)."


def _design(run_dir: Path) -> dict:
    """The run's design settings (config.json), {} where they cannot be read."""
    try:
        return json.loads((run_dir / "config.json").read_text()).get("design", {}) or {}
    except (OSError, ValueError):
        return {}


def _cap(run_dir: Path) -> str:
    return str(_design(run_dir).get("max_per_family", "max_per_family"))


def _checkpoint(run_dir: Path) -> list[str]:
    try:
        path = json.loads((run_dir / "config.json").read_text()).get("checkpoint_path", "")
    except (OSError, ValueError):
        return []
    return [path] if path and Path(path).is_file() else []


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="count this run folder instead of running the quick design")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "quick", help="where the quick run goes (new folder)")
    p.add_argument("--top", type=int, default=20, help="rows counted (default 20)")
    add_doc_option(p, "quick_run")
    args = p.parse_args(argv)
    run_dir, wall = (args.run, None) if args.run else (args.out, run_quick(args.out))
    table = pd.read_csv(run_dir / "candidates.csv")
    missing = [c for c in ("is_mixture", "is_known", "site_mismatch", "parent_formula", "edit") if c not in table]
    if missing:
        raise SystemExit(f"{run_dir / 'candidates.csv'} has no {missing[0]!r} column: a run from before the phases")
    text = report(table, args.top, wall, run_dir)
    print(text)
    if args.doc:
        print(write_doc(args.doc, text, checkpoints=_checkpoint(run_dir)))


if __name__ == "__main__":
    main()
