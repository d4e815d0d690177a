"""Ray plumbing shared by the executors (design shards, ensemble members): connect, and a progress board.

Light on purpose: a Ray actor's process imports the module of its class, and this one imports no torch,
numpy or gdmcd_core package, so the Board actor starts in a second. Ray itself is imported lazily
(`import_ray`): gdmcd_core imports and runs in-process without it.

    connect(address="") -> ray      initialized, at `address`, else $GDMCD_RAY_ADDRESS, else Ray's default
                                    ($RAY_ADDRESS or a local Ray); RayUnavailableError / ConnectionError in one line
    Board                           the actor tasks report progress and their pid to, and read the stop flag from
"""

from __future__ import annotations

import os
import socket
from typing import Any

RAY_ADDRESS_ENV = "GDMCD_RAY_ADDRESS"
CONNECT_TIMEOUT_S = 5.0
TASK_RETRIES = 3  # Ray retries of a task whose worker died (a shard or an ensemble member starts over)


class RayUnavailableError(RuntimeError):
    """Ray is not installed."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "executor 'ray' needs Ray: pip install 'gdmcd-studio[ray]' (ray>=2.40), or use --executor local"
        ) from None
    return ray


def resolve_address(address: str = "") -> str:
    """The cluster to use: `address`, else $GDMCD_RAY_ADDRESS, else "" (Ray's default: $RAY_ADDRESS or a local Ray)."""
    return (address or os.environ.get(RAY_ADDRESS_ENV, "")).strip()


def _check_reachable(address: str) -> None:
    """ConnectionError (one line) unless host:port accepts a connection (ray:// and 'auto' are left to Ray)."""
    if "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError(f"Ray address {address!r}: write host:port, e.g. 10.0.0.1:6379")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(f"Ray cluster at {address} is unreachable ({exc.strerror or exc})") from None


def connect(address: str = "") -> Any:
    """The ray module, connected to `address` (see resolve_address) unless this process already is."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    addr = resolve_address(address)
    if addr:
        _check_reachable(addr)
    kw: dict[str, Any] = {} if addr else {"include_dashboard": False}
    try:
        ray.init(address=addr or None, logging_level="ERROR", log_to_driver=False, **kw)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConnectionError(f"cannot connect to Ray at {addr or 'a local instance'}: {line}") from None
    return ray


def ray_target(address: str = "", shards: int = 0) -> str:
    """Connect (see `connect`) and say where a sharded run goes, for a log line."""
    connect(address)
    n = f"{shards} shards" if shards else "a shard per worker"
    return f"Ray at {resolve_address(address) or 'a local instance'} ({n})"


class Board:
    """A Ray actor (ray.remote(Board)) that tasks report to: each task's latest report (opaque bytes: the actor
    never unpickles them, so its process imports nothing but this module), its worker pid, and a stop flag."""

    def __init__(self, n: int) -> None:
        self.reports: list[Any] = [None] * n
        self.pids: dict[int, int] = {}
        self.attempts = [0] * n
        self.stop = False

    def started(self, i: int, pid: int) -> bool:
        self.pids[i], self.reports[i] = pid, None
        self.attempts[i] += 1
        return self.stop

    def report(self, i: int, progress: bytes) -> bool:
        self.reports[i] = progress
        return self.stop

    def request_stop(self) -> None:
        self.stop = True

    def state(self) -> tuple[list[Any], dict[int, int], list[int]]:
        return list(self.reports), dict(self.pids), list(self.attempts)
