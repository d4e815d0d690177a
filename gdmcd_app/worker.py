"""A design run in a worker process of its own, so that the pages stay responsive while it goes.

A run in a thread of the server shares the server's interpreter lock with every page: a small model spends most of
its step in Python, so a page rendered during a run waited for the lock. `start_worker(task)` runs the design in a
child process instead (multiprocessing "spawn": a fresh interpreter, no state copied from the server's threads):

* the child lowers its priority (nice +JOB_NICE), keeps torch to the app's thread count, opens the design from the
  checkpoint's path (hash-checked as every load is) and runs it, or resumes it, writing the run folder as the CLI
  does; it sends ("phase", name), ("progress", dict) and finally ("done", status, message, n_rows) or
  ("failed", message) on a queue;
* the server's pump thread (jobs.py) feeds those messages into the Job the pages read, and says "failed" when the
  child ends without a result (killed, out of memory);
* a stop is a multiprocessing Event the child's loop checks between steps, as in-process; the child ignores
  SIGINT (a Ctrl-C of the server reaches it too), so a server stopped that way stops its runs between steps;
* on Linux the child gets SIGKILL when the thread that started it ends (prctl PR_SET_PDEATHSIG; that thread is the
  pump, which lives as long as the job), so a server that dies takes its runs with it: their folders read
  "interrupted" and resume from state.npz, as before.

The child imports the heavy modules itself; this module stays light, so that a spawn imports little.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

JOB_NICE = 10  # the worker's nice value above the server's: page requests are scheduled first
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the thread that started it ends (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _open_engine(task: dict[str, Any]) -> Any:
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.session import open_design

    config = DesignConfig.from_dict(task["config"])
    return open_design(config, task["checkpoint"], new_run=False).engine


def worker_main(task: dict[str, Any], queue: Any, stop_event: Any) -> None:
    """The child process: task = {"action": "run" | "resume", "config": DesignConfig dict, "checkpoint": path,
    "run_dir": path, "start": StartPoints or None, "threads": torch threads, "server_pid": the server's pid}."""
    _die_with_parent()
    if task.get("server_pid") and os.getppid() != task["server_pid"]:
        os._exit(1)  # the server died before the line above could ask to follow it: nothing to report to
    # Ctrl-C in the server's terminal reaches its whole process group: the server's exit handler stops the run
    # between steps (jobs.stop_all_jobs) so that it keeps what it found; the interrupt itself would cut it mid-step
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(JOB_NICE)
    except OSError:
        pass
    try:
        import torch

        torch.set_num_threads(max(1, int(task.get("threads") or 1)))
        from gdmcd_core.design.run import run_design
        from gdmcd_core.design.runs.resume import resume_run

        engine = _open_engine(task)
        progress = lambda p: queue.put(("progress", p.to_dict() if hasattr(p, "to_dict") else dict(vars(p))))  # noqa: E731
        if task["action"] == "resume":
            result = resume_run(engine, task["run_dir"], callback=progress, stop_event=stop_event)
        else:
            phase = lambda name: queue.put(("phase", name))  # noqa: E731
            result = run_design(engine, task["run_dir"], progress, stop_event, start=task["start"], phase=phase)
        table = getattr(result, "candidates", None)
        n_rows = 0 if table is None else len(table)
        queue.put(("done", getattr(result, "status", "finished"), getattr(result, "message", ""), n_rows))
    except BaseException as exc:  # the run folder is marked failed by the run itself; the page hears why
        queue.put(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        queue.close()
        queue.join_thread()  # the last message is in the pipe before the process ends (the server reads it)


def pump_messages(job: Any, queue: Any, proc: Any, join_s: float) -> None:
    """The server side: feed a worker process's messages into its job (jobs.Job) until it reports its end;
    "failed" when the process ends without one (killed, out of memory). Then wait up to join_s for it to exit."""
    import queue as queue_module

    while True:
        try:
            msg = queue.get(timeout=0.25)
        except queue_module.Empty:
            if proc.is_alive():
                continue
            try:
                msg = queue.get(timeout=1.0)  # what it put just before it ended
            except queue_module.Empty:
                job._finish("failed", f"the design process ended (exit code {proc.exitcode}) without a result")
                return
        kind = msg[0]
        if kind == "progress":
            job.on_progress(msg[1])
        elif kind == "phase":
            job.on_phase(msg[1])
        elif kind == "done":
            job._finish(msg[1], msg[2], n_found=msg[3])
            break
        elif kind == "failed":
            job._finish("failed", msg[1])
            break
    proc.join(join_s)


__all__ = ["JOB_NICE", "pump_messages", "worker_main"]
