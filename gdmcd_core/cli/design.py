"""`gdmcd design --out DIR [options]`: a design run from the terminal.

`add_design_parser(p)` adds the sub-command's options to its parser (cli/main.py calls it);
`handle_design(args) -> int` runs it in four steps: `parse_design` (the config), `open_for_cli`
(design.session.open_design, as the app opens a run), `run_with_progress`, `report`. Options
override the values of `--config FILE` (a TOML or JSON DesignConfig), which override the
defaults. Every bad option (unknown element, pins summing over 1, an element both pinned and
excluded, an empty N range, a formula that does not parse, a missing checkpoint) prints one line
on stderr and exits with status 2 before any optimization.
Ctrl-C or SIGTERM stops the run between steps and still writes the candidates found so far (a
second Ctrl-C aborts; the folder keeps state.npz for `gdmcd runs finalize` / `gdmcd runs resume`).
A request that cannot fit in memory (--n-candidates 1000000, --n-range 1-100000000) is refused
before anything is allocated, saying how much it needs.

Examples:
    gdmcd design --out runs/cuprate --init YBa2Cu3O7 HgBa2Ca2Cu3O8 --n-candidates 64
    gdmcd design --out runs/hydride --init-mode hydride --pin H=0.5 --n-range 4-24 --n-candidates 512
    gdmcd design --out runs/safe --exclude radioactive,toxic --objective lcb --kappa 1
    gdmcd design --out runs/big --n-candidates 4096 --executor ray --address 10.0.0.1:6379 --shards 8
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import Field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gdmcd_core.cli.runs import check_out_dir, install_stop_signals
from gdmcd_core.design.config.config import config_fields
from gdmcd_core.design.objective.constraints import PIN_MODES, Pin
from gdmcd_core.design.session import one_line
from gdmcd_core.util_ray import RayUnavailableError, ray_target

if TYPE_CHECKING:
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.loop.step_log import Progress
    from gdmcd_core.design.runs.result import DesignResult
    from gdmcd_core.design.session import OpenDesign

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
PROG = "gdmcd design"
# Columns of the ranked table printed on the terminal (candidates.csv has them all).
TABLE_COLUMNS = (
    "rank",
    "integer_formula",
    "n_atoms",
    "integer_tc_k",
    "integer_tc_std_k",
    "integer_tc_trees_k",
    "delta_tc_k",
    "rounded_tc_k",
    "in_supercon",
    "elements_seen_in_training",
    "nearest_supercon_formula",
    "nearest_supercon_tc_k",
    "parent_formula",
    "edit",
    "is_mixture",
    "is_known",
    "site_mismatch",
)
FAMILIES_SHOWN = 8  # families listed above the terminal table (evidence/diversity.families_summary)
# A process that reached `handle_design` at most this long after it started was started for this command (imports
# take seconds, more on a busy machine): its summary counts from the process's start. A longer-lived process (a
# notebook, a test session) counts from the call.
STARTUP_MAX_S = 30.0
FILTER_HELP = (
    "keep only candidates passing a check (repeatable): {keys}; writes DIR/candidates_filtered.csv "
    "(candidates.csv keeps every row)"
)


DESCRIPTION = """\
Optimize B compositions at once against the frozen Tc model (stage 2: raise Tc towards
--target-tc; stage 3: also pull the fractions to whole atoms for a cell of N atoms), then write
the ranked integer formulas to DIR/candidates.csv with the run's config, trajectory and log.
Ctrl-C stops between steps and still writes what was found.

examples:
  gdmcd design --out runs/cuprate --init YBa2Cu3O7 HgBa2Ca2Cu3O8 --n-candidates 64
  gdmcd design --out runs/hydride --init-mode hydride --pin H=0.5 --n-range 4-24
  gdmcd design --out runs/safe --exclude radioactive,toxic --objective lcb --kappa 1
"""


class UsageError(ValueError):
    """A bad command-line option (exit status 2)."""


def _one_line_error(parser: argparse.ArgumentParser):
    def error(message: str) -> None:  # argparse's own errors: one line, status 2
        print(f"{PROG}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    return error


def _help_with_estimate(parser: argparse.ArgumentParser, filter_option: argparse.Action):
    plain = parser.format_help

    def format_help() -> str:  # computed only when help is shown, never when the parser is built
        from gdmcd_core.design.config.speed import time_estimate
        from gdmcd_core.design.evidence.filters import CANDIDATE_FILTERS

        filter_option.help = FILTER_HELP.format(keys=", ".join(CANDIDATE_FILTERS))
        parser.epilog = time_estimate()
        return plain()

    return format_help


def parse_n_range(text: str) -> dict[str, Any]:
    """'4-24' -> n_min/n_max; '8' -> one N; '4,8,12' -> an explicit set. Raises UsageError."""
    t = text.strip()
    try:
        if "," in t:
            vals = tuple(int(v) for v in t.split(",") if v.strip())
            if not vals:
                raise ValueError
            return {"n_values": vals}
        if "-" in t:
            lo, hi = (int(v) for v in t.split("-", 1))
        else:
            lo = hi = int(t)
    except ValueError:
        raise UsageError(f"--n-range {text!r}: write MIN-MAX (4-24), one N (8) or a list (4,8,12)") from None
    if lo < 1 or hi < lo:
        raise UsageError(f"--n-range {text!r} is empty: need 1 <= MIN <= MAX")
    return {"n_min": lo, "n_max": hi, "n_values": ()}


def add_design_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `design` sub-command's description and options to its parser p; returns p."""
    p.description, p.formatter_class = DESCRIPTION, argparse.RawDescriptionHelpFormatter
    p.error = _one_line_error(p)  # type: ignore[method-assign]
    g = p.add_argument_group("run")
    g.add_argument(
        "--out", required=True, metavar="DIR", help="run folder to write (config, candidates.csv, trajectory, log)"
    )
    g.add_argument("--config", metavar="FILE", help="DesignConfig as TOML or JSON; options below override it")
    g.add_argument("--checkpoint", metavar="PT", help="Tc model checkpoint (default checkpoints/tc_default.pt)")
    g.add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads (default: torch's; 1 is fastest on a busy machine)"
    )
    g.add_argument("--force", action="store_true", help="write into --out even if it is not empty")
    g.add_argument("--top", type=int, default=10, help="rows of the ranked table to print (default 10)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    filter_option = g.add_argument("--filter", action="append", default=[], metavar="KEY")  # help: when shown
    p.format_help = _help_with_estimate(p, filter_option)  # type: ignore[method-assign]
    groups = {
        "start": p.add_argument_group("start compositions"),
        "constraints": p.add_argument_group("constraints"),
        "optimization": p.add_argument_group("optimization"),
        "run": g,
    }
    s, c = groups["start"], groups["constraints"]
    s.add_argument("--init", nargs="+", metavar="FORMULA", help="start formulas (implies --init-mode formulas)")
    c.add_argument(
        "--pin",
        action="append",
        metavar="EL=FRAC",
        help="pin an element's fraction (repeatable); EL>=FRAC forces at-least",
    )
    c.add_argument("--pin-mode", choices=PIN_MODES, help="mode of pins written EL=FRAC (default at-least)")
    c.add_argument(
        "--exclude", action="append", metavar="EL,EL", help="exclude elements; also the words radioactive, toxic"
    )
    c.add_argument("--include-unseen", action="store_true", help="allow elements that occur in no training composition")
    c.add_argument(
        "--free-elements",
        action="store_true",
        help="let a candidate gain elements beyond its start's count (default: elements may be swapped, not added)",
    )
    groups["optimization"].add_argument(
        "--n-range", metavar="4-24", help="allowed atoms per cell N: MIN-MAX, one N, or a list 4,8,12 (default 4-24)"
    )
    for f in config_fields():  # every other DesignConfig field, by its type and metadata
        add_field_option(groups[f.metadata["group"]], f)
    p.set_defaults(handler=handle_design, func=handle_design)
    return p


def add_field_option(group: Any, f: Field) -> None:
    """`--field-name VALUE` for a DesignConfig field; its default shows in --help, None means "not given"."""
    flag = "--" + f.name.replace("_", "-")
    meta = f.metadata
    help_text = f"{meta['help']} (default: {f.default})"
    if isinstance(f.default, bool):
        group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        return
    kind = type(f.default)
    group.add_argument(flag, type=kind, choices=meta.get("choices"), default=None, metavar=None, help=help_text)


def config_from_args(args: argparse.Namespace) -> DesignConfig:
    """DesignConfig from --config plus the options given. Raises UsageError / ValueError."""
    from gdmcd_core.design.config.config import DesignConfig

    base = _config_file(args.config) if args.config else {}
    over: dict[str, Any] = {
        f.name: getattr(args, f.name) for f in config_fields() if getattr(args, f.name, None) is not None
    }
    if args.init:
        over["init_formulas"] = list(args.init)
        over.setdefault("init_mode", "formulas")
    if args.pin:
        mode = args.pin_mode
        over["pins"] = [Pin.parse(t, mode) for t in args.pin]
    if args.exclude:
        over["exclude"] = [tok for e in args.exclude for tok in e.replace(",", " ").split()]
    if args.include_unseen:
        over["exclude_unseen"] = False
    if args.free_elements:
        over["keep_element_count"] = False
    if args.n_range:
        over.update(parse_n_range(args.n_range))
    merged = {**base, **over}
    _check_request_size(merged)
    try:
        return DesignConfig.from_dict(merged)
    except TypeError as exc:  # a wrong type that slipped past the field checks
        raise UsageError(one_line(exc)) from None


def _config_file(name: str) -> dict[str, Any]:
    """The --config file's DesignConfig as a dict. Raises UsageError."""
    from gdmcd_core.design.config.config import DesignConfig

    path = Path(name)
    if not path.is_file():
        raise UsageError(f"--config {name}: no such file")
    try:
        return DesignConfig.load(path).to_dict()
    except (ValueError, TypeError, AttributeError, OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {name}: {one_line(exc)}") from None


def _check_request_size(d: dict[str, Any]) -> None:
    """Refuse a run too big for this machine's memory before DesignConfig builds its N range."""
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.config.resources import check_design_request, count_n_values

    dflt = DesignConfig.__dataclass_fields__
    get = lambda k: d.get(k, dflt[k].default)  # noqa: E731
    try:
        b, steps = int(get("n_candidates")), int(get("steps2")) + int(get("steps3"))
        m = count_n_values(tuple(int(n) for n in get("n_values") or ()), int(get("n_min")), int(get("n_max")))
    except (TypeError, ValueError):
        return  # wrong types: DesignConfig names the field
    if b >= 1 and m >= 1:
        check_design_request(b, m, steps, int(get("record_every")) if isinstance(get("record_every"), int) else 10)


def _fail(msg: str, code: int = EXIT_USAGE) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return code


def command_started() -> float:
    """When this command began, on time.perf_counter's clock: the process's start where the OS says (Linux
    /proc) and it is at most STARTUP_MAX_S ago (Python's start and the imports are part of the command's
    wall time), else now."""
    now = time.perf_counter()
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # not Linux
        return now
    return now - age if 0.0 <= age <= STARTUP_MAX_S else now


def handle_design(args: argparse.Namespace) -> int:
    """Run `gdmcd design`: parse, open, run, report; returns the exit status."""
    from gdmcd_core.design.runs.lock import RunLockedError

    args.started = getattr(args, "started", None) or command_started()  # the summary's wall time counts from here
    try:
        cfg = parse_design(args)
        opened, where = open_for_cli(cfg, args)
    except ValueError as exc:  # UsageError, FormulaError, DesignConfig validation, DesignOpenError, memory
        return _fail(str(exc))
    from gdmcd_core.design.distributed.executor import ClusterFailedError

    try:
        result = run_with_progress(opened, where, args)
    except (RunLockedError, PermissionError) as exc:  # raced with another writer / unwritable: nothing run
        return _fail(one_line(exc))
    except ClusterFailedError as exc:  # the Ray cluster broke before any shard returned: the folder says failed
        return _fail(f"{one_line(exc)}; the run in {args.out} is marked failed", EXIT_FAIL)
    report(result, Path(args.out), args)
    if result.status == "failed":  # a broken Ray cluster: the candidates of the shards that returned were written
        print(f"{PROG}: error: {result.message}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def parse_design(args: argparse.Namespace) -> DesignConfig:
    """The run's DesignConfig, with the options that are not config fields checked. Raises ValueError."""
    cfg = config_from_args(args)
    why = check_out_dir(Path(args.out), args.force)
    if why:
        raise UsageError(why)
    if args.top < 0:
        raise UsageError(f"--top must be >= 0, got {args.top}")
    from gdmcd_core.design.evidence.filters import CANDIDATE_FILTERS

    unknown = [k for k in args.filter if k not in CANDIDATE_FILTERS]
    if unknown:
        raise UsageError(f"--filter {unknown[0]!r} is not one of {', '.join(CANDIDATE_FILTERS)}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    return cfg


def open_for_cli(cfg: DesignConfig, args: argparse.Namespace) -> tuple[OpenDesign, str]:
    """(the opened design, where it runs: its device or the Ray cluster). Raises ValueError (one line)."""
    from gdmcd_core.design.session import DesignOpenError, open_design

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        opened = open_design(cfg, args.checkpoint)
    except DesignOpenError as exc:
        if exc.option:
            raise UsageError(f"--{exc.option.replace('_', '-')}: {exc}") from None
        raise
    try:  # connect to Ray now: a missing Ray or an unreachable cluster is one line, before any folder
        where = ray_target(cfg.address, cfg.shards) if cfg.executor == "ray" else str(opened.engine.device)
    except (RayUnavailableError, ConnectionError) as exc:
        raise UsageError(str(exc)) from None
    return opened, where


def run_with_progress(opened: OpenDesign, where: str, args: argparse.Namespace) -> DesignResult:
    """engine.run into --out with a progress bar; Ctrl-C / SIGTERM stop it between steps."""
    engine, cfg = opened.engine, opened.config
    stop = threading.Event()
    restore = install_stop_signals(stop, PROG)
    print(
        f"{PROG}: {len(opened.start)} candidates on {where}, model {opened.checkpoint} "
        f"({getattr(opened.model, 'n_members', 1)} member(s)); {engine.constraints.describe()}",
        file=sys.stderr,
    )
    for warning in opened.warnings:  # data that is not the model's, a formation-energy model left out
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        # no tqdm <remaining>: it assumes the mean step time; the run's own ETA (Progress.eta_s) is in the postfix
        fmt = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"
        bar = tqdm(
            total=cfg.total_steps, unit="step", desc="design", file=sys.stderr, dynamic_ncols=True, bar_format=fmt
        )
    try:
        return engine.run(Path(args.out), callback=_progress_callback(bar), stop_event=stop, start=opened.start)
    finally:
        if bar is not None:
            bar.close()
        restore()


def _progress_callback(bar: Any) -> Callable[[Progress], None]:
    """The engine's callback: each step's numbers on the progress bar (nothing without one)."""

    def on_progress(p: Progress) -> None:
        if bar is None:
            return
        eta = f"ETA {int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}" if p.eta_s == p.eta_s else "ETA …"  # NaN: not yet
        bar.set_postfix_str(
            f"stage {p.stage} best {p.tc_best_k:.1f} K median {p.tc_median_k:.1f} K L_int {p.int_loss_median:.3f}, "
            f"{eta}",
            refresh=False,
        )
        bar.update(p.step - bar.n)

    return on_progress


def report(result: DesignResult, out: Path, args: argparse.Namespace) -> None:
    """The --filter table (written to DIR/candidates_filtered.csv), the top rows, and the one-line summary: the
    command's wall time (from args.started, see command_started) with the optimization loop's in brackets."""
    shown = result.candidates
    if args.filter:
        from gdmcd_core.design.evidence.filters import filter_candidates
        from gdmcd_core.util import atomic_write_bytes
        from gdmcd_core.util_io import csv_bytes

        shown = filter_candidates(result.candidates, args.filter)
        atomic_write_bytes(out / "candidates_filtered.csv", csv_bytes(shown))
        print(
            f"{PROG}: {len(shown)} of {len(result.candidates)} candidates pass {', '.join(args.filter)}",
            file=sys.stderr,
        )
    print_families(shown, args.top)
    print_table(shown, args.top)
    started = getattr(args, "started", None)  # handle_design sets it; without it, the loop's time is all there is
    wall = time.perf_counter() - started if started is not None else result.elapsed_s
    print(
        f"{PROG}: {result.status} after {result.steps_done}/{result.total_steps} steps in {wall:.1f} s "
        f"(the optimization loop {result.elapsed_s:.1f} s); "
        f"{len(result.candidates)} distinct candidates -> {out / 'candidates.csv'}",
        file=sys.stderr,
    )


def print_families(table, top: int) -> None:
    """The families summary above the table: family, count, best Tc and best rank of the first FAMILIES_SHOWN
    families (diversity.families_summary)."""
    if top <= 0 or table is None or "family" not in table.columns or not len(table):
        return
    from gdmcd_core.design.evidence.diversity import families_summary

    fam = families_summary(table)
    print(f"families: {len(fam)} in {len(table)} candidates (the first {min(len(fam), FAMILIES_SHOWN)} by rank)")
    print(fam.head(FAMILIES_SHOWN).to_string(index=False, float_format=lambda v: f"{v:.1f}"))


def print_table(table, top: int) -> None:
    """The first `top` rows of a candidate table, in the columns a terminal has room for."""
    if top <= 0 or table is None or not len(table):
        return
    view = table[[c for c in TABLE_COLUMNS if c in table.columns]].head(top)
    print(view.to_string(index=False, float_format=lambda v: f"{v:.1f}", formatters=_formatters(view)))


def _formatters(view) -> dict:
    """site_mismatch as a percentage (empty without a substitution); other floats as the table's default."""
    if "site_mismatch" not in view.columns:
        return {}
    return {"site_mismatch": lambda v: "" if v != v else f"{100 * v:.0f} %"}


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: `python -m gdmcd_core.cli.design --out DIR ...` (same options)."""
    parser = argparse.ArgumentParser(prog="gdmcd")
    sub = parser.add_subparsers(dest="command", required=True)
    add_design_parser(sub.add_parser("design"))
    args = parser.parse_args(["design", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
