"""Helpers for the web-app tests: a tiny untrained checkpoint (made in a second, not trained), the
environment the app reads (tiny data folder, checkpoint, runs folder), and AppTests of the app's pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_data
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from gdmcd_core.data.dataset import DataConfig
from gdmcd_core.model.checkpoint import save_checkpoint
from gdmcd_core.model.resnet import ModelConfig, TcResNet

REPO = Path(__file__).resolve().parent.parent
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


def app_test(name: str, timeout: float = 90) -> AppTest:
    """An AppTest of the whole app (name "app": app.py, the navigation and sidebar) or of one page alone
    (its url path, e.g. "design": the `render()` of gdmcd_app/views/design.py)."""
    if name == "app":
        return AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    script = f"from gdmcd_app.views import {name}\n\n{name}.render()\n"
    return AppTest.from_string(script, default_timeout=timeout)


def switch_page(at: AppTest, url_path: str) -> AppTest:
    """Open another page of the app in `at` (call `run()` next), as the sidebar's link does.

    The app's pages are functions registered by url path; AppTest.switch_page finds pages by file only,
    so the page is named by its hash, which Streamlit derives from the url path (st.Page._script_hash).
    """
    at._page_hash = calc_hash(url_path)
    return at


# A small run of the tiny model through the app's job registry: H >= 0.5 pinned, O excluded, a few steps.
SMALL_RUN = dict(
    n_candidates=4,
    init_mode="formulas",
    init_formulas=("MgB2", "Nb3Sn"),
    pins=("H>=0.5",),
    exclude=("O",),
    n_min=4,
    n_max=8,
    steps2=10,
    steps3=10,
    record_every=2,
    max_elements=3,
)


def finished_small_run(env: dict[str, str]) -> str:
    """Run `SMALL_RUN` in the app's runs folder (env from `tiny_app_env`) to the end; its run id."""
    from gdmcd_app.jobs import JobRegistry
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.model.checkpoint import load_checkpoint

    job = JobRegistry(env["GDMCD_RUNS_DIR"]).start(load_checkpoint(env["GDMCD_CHECKPOINT"]), DesignConfig(**SMALL_RUN))
    job.join(120)
    assert job.snapshot().status == "finished", job.snapshot().error
    return job.job_id
