"""`make docs`: the pages of docs/benchmarks/ rendered from committed measurements, in seconds.

    python -m bench.docs            # what `make docs` runs

A benchmark takes minutes to hours of CPU, so its numbers are committed and the pages are rendered from them:

* NAME.md for every benchmark with a results file (bench/results/NAME.json, written by `python -m bench.NAME
  --doc`), through the benchmark's own `report`, so a page reads as the script prints it;
* checkpoints.md from the checkpoint cards (checkpoints/*.json: the metrics `gdmcd train`, `gdmcd evaluate` and
  `gdmcd trees` measured on each checkpoint's test split);
* data_repairs.md from the committed repair ledger (assets/data_repair_ledger.csv, written by `gdmcd ledger`);
* README.md, the index: every benchmark page, what it measures, when and with which checkpoint it was measured
  (flagged where that is no longer the committed checkpoint) and the command that measures it again.

Pages the benchmarks write themselves (no results file) are listed in the index and never touched here. Every
page starts with a stamp line: the source file, the date, the SHA-256 prefix of each checkpoint and the machine.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import discovery, model_card, stability_penalty, uncertainty_design
from bench.common import DOC_PAGES, DOCS_DIR, HASH_PREFIX, REPO, RESULTS_DIR, write_doc
from bench.design_common import md_table
from gdmcd_core.model.checkpoint import CHECKPOINT_DIR

LEDGER = REPO / "assets" / "data_repair_ledger.csv"
STAMP_SHA = re.compile(r"(\S+\.pt) sha256 ([0-9a-f]+)")
STAMP_DATE = re.compile(r"[Mm]easured (\d{4}-\d{2}-\d{2})")


RENDERERS: dict[str, Callable[[dict], str]] = {  # pages rendered from bench/results/NAME.json
    "model_card": model_card.report,
    "discovery": discovery.report,
    "uncertainty_design": uncertainty_design.report,
    "stability_penalty": stability_penalty.report,
    "stability_penalty_intermetallic": stability_penalty.report,
}
DERIVED = {"checkpoints": "checkpoints/*.json", "data_repairs": "assets/data_repair_ledger.csv"}  # rendered here too


def committed_date(path: Path) -> str | None:
    """The date of the last commit that touched `path` (None outside a git checkout or for a new file)."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", str(path)], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def current_hashes() -> dict[str, str]:
    """{checkpoint file name: SHA-256 prefix} of the committed checkpoints, from their cards."""
    out = {}
    for card in sorted(CHECKPOINT_DIR.glob("*.json")):
        digest = json.loads(card.read_text()).get("sha256")
        if digest and card.with_suffix(".pt").is_file():
            out[card.with_suffix(".pt").name] = digest[:HASH_PREFIX]
    return out


def stale_note(stamp: dict[str, Any], current: dict[str, str]) -> str:
    """A line saying which checkpoints of a stamp are no longer the committed ones ('' when all still are)."""
    old = [
        f"{name} (measured: sha256 {h}; committed now: {current[name]})"
        for name, h in stamp.get("checkpoints", {}).items()
        if name in current and current[name] != h
    ]
    if not old:
        return ""
    return f"> These numbers describe an earlier {', '.join(old)}: run the command above to measure the committed one."


def render_result(name: str, report: Callable[[dict], str], current: dict[str, str]) -> Path | None:
    """docs/benchmarks/NAME.md from bench/results/NAME.json through the benchmark's `report` (None without the file)."""
    source = RESULTS_DIR / f"{name}.json"
    if not source.is_file():
        return None
    numbers = json.loads(source.read_text())
    stamp = numbers.get("measured") or {"date": committed_date(source), "checkpoints": _hashes_in(numbers)}
    note = stale_note(stamp, current)
    body = f"{note}\n\n{report(numbers)}" if note else report(numbers)
    return write_doc(name, body, stamp=stamp, source=str(source.relative_to(REPO)))


def _hashes_in(numbers: dict) -> dict[str, str]:
    """Checkpoint hashes named in a result's model description ('…/tc_default.pt (… sha256 22c6e3640c3e)')."""
    m = re.search(r"(\w+\.pt)\b.*?sha256 ([0-9a-f]+)", str(numbers.get("model", "")))
    return {m.group(1): m.group(2)[:HASH_PREFIX]} if m else {}


TC_COLUMNS = [
    "checkpoint",
    "sha256",
    "created",
    "members",
    "split",
    "test rows (SC + non-SC)",
    "SC test MAE (K)",
    "R²",
    "precision @ Tc > 0 K",
    "recall @ Tc > 0 K",
    "±1σ / ±2σ",
    "far ±1σ / ±2σ",
    "training",
    "hardware",
]


def _num(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _pair(m: dict, a: str, b: str) -> str:
    return "–" if m.get(a) is None else f"{m[a]:.2f} / {m[b]:.2f}"


def tc_row(name: str, card: dict) -> list[object]:
    """One row of the Tc-checkpoint table: what the card records of its test split."""
    m = card.get("metrics_test", {})
    seconds = card.get("train_seconds")
    return [
        name,
        card["sha256"][:HASH_PREFIX],
        str(card.get("created", "–"))[:10],
        card.get("n_members", "–"),
        m.get("split", "–"),
        f"{m.get('n_test_supercon', '–')} + {m.get('n_test_nonsc', '–')}",
        _num(m.get("supercon_test_mae_k"), ".2f"),
        _num(m.get("supercon_test_r2"), ".3f"),
        _num(m.get("test_precision"), ".3f"),
        _num(m.get("recall_at_0k"), ".3f"),
        _pair(m, "coverage_1sigma", "coverage_2sigma"),
        _pair(m, "far_coverage_1sigma", "far_coverage_2sigma"),
        "–" if seconds is None else f"{seconds / 60:.0f} min",
        card.get("hardware", "not recorded"),
    ]


def trees_row(name: str, card: dict) -> list[object]:
    """One row of the trees table: the trees alone, the consensus and the speculative mark on the test split."""
    m = card.get("metrics_test", {})

    def mae_r2(p: str) -> str:
        if m.get(p + "supercon_test_mae_k") is None:
            return "–"
        r2 = m.get(p + "supercon_test_r2")
        return f"{m[p + 'supercon_test_mae_k']:.2f}" + ("" if r2 is None else f" / {r2:.3f}")

    return [
        name,
        card["sha256"][:HASH_PREFIX],
        str(card.get("created", "–"))[:10],
        card.get("train_rows", "–"),
        mae_r2("trees_"),
        _num(m.get("trees_test_precision"), ".3f"),
        mae_r2("consensus_"),
        _num(m.get("consensus_test_precision"), ".3f"),
        _pair(m, "disagreement_flags_false_positive_share", "disagreement_flags_true_positive_share"),
        _num(m.get("disagreement_false_positive_auc"), ".2f"),
    ]


def band_table(card: dict, key: str, lo: str, hi: str) -> str:
    """MAE (and mean σ where recorded) per band of the card's `key` list (Tc range in K or L1 distance)."""
    rows = [
        [f"{b[lo]:g}–{b[hi]:g}", b["n"], f"{b['mae_k']:.2f}", _num(b.get("mean_sigma_k"), ".2f")]
        for b in card.get("metrics_test", {}).get(key, [])
    ]
    return md_table(["band", "test superconductors", "MAE (K)", "mean σ (K)"], rows) if rows else ""


def checkpoints_markdown(cards: dict[str, dict]) -> str:
    """The checkpoints page: Tc checkpoints, their trees, per-band errors, the formation-energy surrogate."""
    tc = {n: c for n, c in cards.items() if str(c.get("kind", "tc_regressor")).startswith("tc_regressor")}
    trees = {n: c for n, c in cards.items() if c.get("kind") == "tc_trees"}
    parts = [
        "Test-split figures as each card records them (`gdmcd train`, `gdmcd evaluate --write-metrics`): the "
        "checkpoint's own split, σ as calibrated in the card. The model card page adds the baselines and the "
        "JARVIS figures with the leaderboard's handling of unreadable rows.",
        md_table(TC_COLUMNS, [tc_row(n, c) for n, c in tc.items()]),
        "## Trees on element statistics and the consensus (`gdmcd trees`)",
        md_table(
            [
                "trees",
                "sha256",
                "created",
                "training rows",
                "trees MAE (K) / R²",
                "trees precision",
                "consensus MAE (K) / R²",
                "consensus precision",
                "speculative mark: false / true positives",
                "AUC",
            ],
            [trees_row(n, c) for n, c in trees.items()],
        ),
    ]
    for name in ("tc_default.pt", "tc_timesplit.pt"):
        if name in tc:
            parts += [f"## {name}: error by Tc range", band_table(tc[name], "mae_by_tc_range", "tc_from_k", "tc_to_k")]
            parts += [
                f"## {name}: error and σ by L1 distance to the nearest training superconductor",
                band_table(tc[name], "mae_by_distance_l1", "l1_from", "l1_to"),
            ]
    parts += [formation_energy_markdown(cards.get("formation_energy.pt"))]
    return "\n\n".join(p for p in parts if p)


def formation_energy_markdown(card: dict | None) -> str:
    """The surrogate's test figures against predicting the training mean."""
    if card is None:
        return ""
    m, rows = card.get("metrics", {}), card.get("n_rows", {})
    table = md_table(
        ["sha256", "target", "train / val / test rows", "test MAE (eV/atom)", "test R²", "train-mean MAE (eV/atom)"],
        [
            [
                card["sha256"][:HASH_PREFIX],
                card.get("target", "–"),
                f"{rows.get('train', '–')} / {rows.get('val', '–')} / {rows.get('test', '–')}",
                _num(m.get("test_mae_ev_atom"), ".3f"),
                _num(m.get("test_r2"), ".3f"),
                _num(m.get("baseline_train_mean_test_mae_ev_atom"), ".3f"),
            ]
        ],
    )
    return f"## formation_energy.pt: the formation-energy surrogate\n\n{table}"


def render_checkpoints(current: dict[str, str]) -> Path:
    cards = {
        p.with_suffix(".pt").name: json.loads(p.read_text())
        for p in sorted(CHECKPOINT_DIR.glob("*.json"))
        if p.with_suffix(".pt").is_file()
    }
    dates = sorted(str(c["created"])[:10] for c in cards.values() if c.get("created"))
    machines = sorted({str(c["hardware"]) for c in cards.values() if c.get("hardware")})
    stamp = {
        "date": f"{dates[0]} to {dates[-1]} (each card's own date below)" if dates else None,
        "checkpoints": current,
        "machine": "; ".join(machines) + " (the cards that record it)",
    }
    return write_doc("checkpoints", checkpoints_markdown(cards), stamp=stamp, source=DERIVED["checkpoints"])


def render_repairs() -> Path:
    """Rows per repair rule and action in the ledger, with the first row's reason as an example."""
    with LEDGER.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    counts = Counter((r["rule"], r["action"]) for r in rows)
    example = {}
    for r in rows:
        example.setdefault(r["rule"], r["reason"])
    table = md_table(
        ["rule", "rows", "action", "example (first row of the ledger)"],
        [[rule, n, action, example[rule].replace("|", "\\|")] for (rule, action), n in counts.items()],
    )
    note = (
        f"{len(rows)} ledger rows; a row dropped by an earlier rule is not counted again. The ledger is the output of "
        "`gdmcd ledger --out assets/data_repair_ledger.csv` (the rules: gdmcd_core/data/repair.py)."
    )
    stamp = {"date": committed_date(LEDGER), "checkpoints": {}, "machine": "no model involved"}
    return write_doc("data_repairs", f"{table}\n\n{note}", stamp=stamp, source=DERIVED["data_repairs"])


def page_status(name: str, current: dict[str, str]) -> str:
    """'DATE, NAME.pt sha256-prefix' from a page's stamp line, flagged where a checkpoint is not the committed one;
    'not measured yet' without a page."""
    page = DOCS_DIR / f"{name}.md"
    if not page.is_file():
        return "not measured yet: run the command"
    stamp = next((line for line in page.read_text().splitlines() if line.startswith("> ")), "")
    date = STAMP_DATE.search(stamp)
    shas = [
        f"{n} {h}" + ("" if current.get(n, h).startswith(h[:HASH_PREFIX]) else " (an earlier checkpoint)")
        for n, h in STAMP_SHA.findall(stamp)
    ]
    return (date.group(1) if date else "date not recorded") + "".join(f", {s}" for s in shas)


def render_index(current: dict[str, str]) -> Path:
    """docs/benchmarks/README.md: every page, what it measures, its stamp's date and checkpoints, its command."""
    rows = [
        [
            f"[{page.title}]({name}.md)" if (DOCS_DIR / f"{name}.md").is_file() else page.title,
            page.what,
            page_status(name, current),
            f"`{page.command}`",
        ]
        for name, page in DOC_PAGES.items()
    ]
    intro = (
        "Every table here was written by the script that measured it, under a stamp line (date, SHA-256 prefix "
        "of each checkpoint, machine). `make docs` re-renders the pages that have committed results "
        "(bench/results/*.json, the checkpoint cards, the repair ledger) in seconds; the other pages are written "
        "only by their benchmark, run with `--doc`. A page measured with a checkpoint that is no longer the "
        "committed one is flagged below: its command measures the current one."
    )
    table = md_table(["page", "what it measures", "measured (date, checkpoint sha256)", "command"], rows)
    path = DOCS_DIR / "README.md"
    path.write_text(
        "<!-- Written by `make docs` (bench/docs.py): edit the script, not this page. -->\n"
        f"# Benchmarks and measured tables\n\n{intro}\n\n{table}\n"
    )
    return path


def main() -> None:
    current = current_hashes()
    written = [render_result(name, report, current) for name, report in RENDERERS.items()]
    written += [render_checkpoints(current), render_repairs(), render_index(current)]
    for path in written:
        if path is not None:
            print(path.relative_to(REPO))


if __name__ == "__main__":
    main()
