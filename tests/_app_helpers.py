"""Helpers for the web-app tests: a tiny untrained checkpoint (made in a second, not trained) and
the environment the app reads (tiny data folder, checkpoint, runs folder)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_data

from gdmcd_core.data.dataset import DataConfig
from gdmcd_core.model.checkpoint import save_checkpoint
from gdmcd_core.model.resnet import ModelConfig, TcResNet

TINY_MODEL = ModelConfig(width=4, layers=(1,))
TINY_DATA = DataConfig(fractions=(0.6, 0.2, 0.2))


def make_tiny_checkpoint(path: Path, members: int = 2) -> Path:
    """A K-member ensemble of tiny random ResNets saved with save_checkpoint, with a card like a real one."""
    torch.manual_seed(0)
    models = [TcResNet(TINY_MODEL).eval() for _ in range(members)]
    card = {
        "kind": "tc_regressor",
        "data_config": TINY_DATA.to_dict(),
        "dataset_counts": {"supercon": 24, "cod": 20},
        "metrics_test": {
            "supercon_test_mae_k": 12.5,
            "supercon_test_r2": 0.1,
            "test_precision": 0.8,
            "n_test_supercon": 5,
        },
        "created": "2025-11-25T00:00:00Z",
        "hardware": "test",
        "train_seconds": 1.0,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, models, card)
    return path


@contextmanager
def tiny_app_env(folder: Path) -> Iterator[dict[str, str]]:
    """Set GDMCD_DATA_DIR, XDG_CACHE_HOME, GDMCD_CHECKPOINT and GDMCD_RUNS_DIR under `folder`."""
    env = {
        "GDMCD_DATA_DIR": str(write_tiny_data(folder / "data")),
        "XDG_CACHE_HOME": str(folder / "cache"),
        "GDMCD_CHECKPOINT": str(make_tiny_checkpoint(folder / "ckpt" / "tiny.pt")),
        "GDMCD_RUNS_DIR": str(folder / "runs"),
        # the app sets torch's thread count process-wide; keep the test process's own setting
        "GDMCD_TORCH_THREADS": str(torch.get_num_threads()),
        "GDMCD_WARM_UP": "0",  # no background loading of a data folder that the next test replaces
    }
    from gdmcd_core.data.reference import load_reference

    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        load_reference.cache_clear()  # the reference data is cached per process by data_dir=None
        try:
            yield env
        finally:
            load_reference.cache_clear()
