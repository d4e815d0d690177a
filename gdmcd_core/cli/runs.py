"""`gdmcd runs list|finalize|resume`: the run folders, and finishing runs a stop or a crash left open.

    gdmcd runs list [--root DIR]          every run folder with its status ("interrupted": its
                                          process is gone; "unreadable": with the reason)
    gdmcd runs finalize DIR               candidates.csv from DIR/state.npz (status "stopped")
    gdmcd runs resume DIR                 continue the loop from the saved compositions and step

finalize and resume use the checkpoint recorded in DIR/config.json (its SHA-256 must match) unless
--checkpoint is given, and refuse a folder whose lock a live process holds and a finished run (its
candidates.csv is final: one line, exit 2, every file left as it was). Also here: the signal
handling and output-folder checks `gdmcd design` shares with `gdmcd runs resume`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
PROG = "gdmcd runs"


def _fail(msg: str, code: int = EXIT_USAGE, prog: str = PROG) -> int:
    from gdmcd_core.util import printable  # messages quote run folders' files

    print(f"{prog}: error: {printable(msg)}", file=sys.stderr)
    return code


# -- shared with `gdmcd design` ----------------------------------------------------------------


def install_stop_signals(stop: threading.Event, prog: str) -> Callable[[], None]:
    """SIGINT and SIGTERM set `stop` (the loop ends between steps and the candidates found so far
    are written); a second Ctrl-C aborts (KeyboardInterrupt: the folder keeps state.npz for
    `gdmcd runs finalize`). Returns a function restoring the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not stop.is_set():
            stop.set()
            name = signal.Signals(signum).name
            print(f"\n{prog}: {name}: stopping after this step; the candidates found so far are kept", file=sys.stderr)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


def check_out_dir(out: Path, force: bool) -> str | None:
    """Why `gdmcd design` may not write into `out`, or None. A folder whose run lock a live process
    holds is refused even with --force; an unwritable place is refused before any work."""
    from gdmcd_core.design.runs.lock import LOCK_NAME, is_alive, odd_lock_path, read_lock

    if out.exists() and not out.is_dir():
        return f"--out {out} exists and is not a folder"
    if out.is_dir():
        if odd := odd_lock_path(out):
            return f"--out {out}: its {LOCK_NAME} is {odd}, not a lock file; remove it or pick another folder"
        lock = read_lock(out)
        if is_alive(lock):
            return f"--out {out} is in use by process {lock.pid} on {lock.host}; --force never writes into a live run"
        if any(out.iterdir()) and not force:
            return f"--out {out} exists and is not an empty folder; pick another or pass --force"
    parent = out if out.is_dir() else next((p for p in out.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"--out {out}: cannot write there (no permission to create files in {parent})"
    why = _cannot_create_in(parent)
    return f"--out {out}: cannot write there ({why})" if why else None


def _cannot_create_in(folder: Path) -> str | None:
    """Why no folder can be created in `folder` (tried: permission bits do not tell, e.g. in /proc as root), or None."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".gdmcd-probe-", dir=folder))
    except OSError as exc:
        return f"cannot create a folder in {folder}: {exc.strerror or type(exc).__name__}"
    return None


# -- the sub-commands --------------------------------------------------------------------------


def add_runs_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = p.add_subparsers(dest="runs_command", required=True)
    ls = sub.add_parser("list", help="every run folder under the runs root, newest first")
    ls.add_argument("--root", default=None, help="runs root (default $GDMCD_RUNS_DIR or ./runs)")
    for name, text in (
        ("finalize", "write DIR/candidates.csv from the state saved in DIR/state.npz"),
        ("resume", "continue the run in DIR from its saved compositions and step"),
    ):
        q = sub.add_parser(name, help=text)
        q.add_argument("dir", metavar="DIR", help="the run folder")
        q.add_argument("--checkpoint", metavar="PT", help="Tc model (default: the one recorded in DIR/config.json)")
        q.add_argument("--device", default=None, help="auto | cpu | cuda (default: the run's)")
        q.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle_runs)
    return p


def _cmd_list(a: argparse.Namespace) -> int:
    from gdmcd_core.design.runs import folder as runs
    from gdmcd_core.util import printable

    for r in runs.list_runs(a.root):
        best = f"{r.best_integer_formula} {r.best_integer_tc_k:.1f} K" if r.best_integer_formula else "-"
        steps = f"{r.steps_done}/{r.total_steps}" if r.total_steps else "-"
        extra = f"  ({r.problem})" if r.problem else ""
        named = "".join((f'  "{r.name}"' if r.name else "", f"  [{', '.join(map(str, r.tags))}]" if r.tags else ""))
        # every field but the step counts comes from the run's files (or its folder's name)
        print(printable(f"{r.run_id:32s} {r.status:12s} {steps:>13s}  {best}{named}{extra}"))
    return EXIT_OK


def _engine_for(run_dir: Path, a: argparse.Namespace):
    """A DesignEngine for the run's config and model. Raises ValueError (one line) for bad input."""
    from gdmcd_core.data.reference import load_reference
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.runs import folder as runs
    from gdmcd_core.design.runs.resume import config_from_run
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint
    from gdmcd_core.util import resolve_device

    cfg = config_from_run(run_dir)
    record = runs._read_json(run_dir / runs.CONFIG_FILE)
    device = resolve_device(a.device or cfg.device)
    ckpt = Path(a.checkpoint or record.get("checkpoint_path") or DEFAULT_CHECKPOINT)
    try:
        model = load_checkpoint(ckpt, device=device)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    used = record.get("checkpoint_sha256")
    if used and getattr(model, "sha256", used) != used:
        raise ValueError(f"{ckpt} (SHA-256 {model.sha256[:12]}…) is not the model this run used ({str(used)[:12]}…)")
    fe = None
    if cfg.formation_energy_weight > 0:
        from gdmcd_core.model.formation_energy import load_formation_energy_model

        try:
            fe = load_formation_energy_model(device=device)
        except (CheckpointError, OSError) as exc:
            raise ValueError(f"formation-energy model unavailable: {exc}") from None
    return DesignEngine(model, cfg, fe, reference=load_reference())


def _cmd_finish(a: argparse.Namespace) -> int:
    from gdmcd_core.design.runs import folder as runs
    from gdmcd_core.design.runs.lock import RunLockedError, is_alive, read_lock
    from gdmcd_core.design.runs.resume import finalize_run, refuse_finished, resume_run

    run_dir = Path(a.dir)
    if not ((run_dir / runs.CONFIG_FILE).is_file() or (run_dir / runs.STATUS_FILE).is_file()):
        return _fail(f"{run_dir} is not a run folder (no {runs.CONFIG_FILE})")
    lock = read_lock(run_dir)
    if is_alive(lock):
        return _fail(f"run {run_dir} is still running (process {lock.pid} on {lock.host}); stop it first")
    try:
        refuse_finished(run_dir)  # checked again under the run's lock by finalize_run / resume_run
    except ValueError as exc:
        return _fail(str(exc))
    if not (run_dir / runs.STATE_FILE).is_file():
        return _fail(f"{run_dir} has no {runs.STATE_FILE}: the run saved no state to finish from")
    if a.threads is not None:
        if a.threads < 1:
            return _fail(f"--threads must be >= 1, got {a.threads}")
        import torch

        torch.set_num_threads(a.threads)
    try:
        engine = _engine_for(run_dir, a)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    try:
        if a.runs_command == "finalize":
            table = finalize_run(engine, run_dir)
            print(
                f"{PROG}: wrote {len(table)} distinct candidates -> {run_dir / runs.CANDIDATES_FILE}", file=sys.stderr
            )
            return EXIT_OK
        stop = threading.Event()
        restore = install_stop_signals(stop, PROG)
        try:
            result = resume_run(engine, run_dir, stop_event=stop)
        finally:
            restore()
    except (RunLockedError, ValueError) as exc:
        return _fail(str(exc))
    print(
        f"{PROG}: {result.status} after {result.steps_done}/{result.total_steps} steps; "
        f"{len(result.candidates)} distinct candidates -> {run_dir / runs.CANDIDATES_FILE}",
        file=sys.stderr,
    )
    return EXIT_OK


def handle_runs(a: argparse.Namespace) -> int:
    if a.runs_command == "list":
        return _cmd_list(a)
    return _cmd_finish(a)
