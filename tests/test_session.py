"""`open_design`: the one way the CLI and the app open a design, and its one-line errors."""

from __future__ import annotations

import pytest
from design_helpers import one_thread, tiny_ensemble, tiny_reference  # noqa: F401  (autouse fixture)

from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.config.resources import InsufficientMemoryError
from gdmcd_core.design.session import DesignOpenError, open_design
from gdmcd_core.model.checkpoint import save_checkpoint

CFG = DesignConfig(n_candidates=4, init_mode="formulas", init_formulas=("MgB2", "Nb3Sn"), steps2=2, steps3=2)


@pytest.fixture()
def no_fe_model(monkeypatch):
    monkeypatch.setattr("gdmcd_core.model.formation_energy.load_formation_energy_model", lambda *a, **k: None)


def test_a_checkpoint_opens_onto_the_configs_device_with_its_starts(tmp_path, monkeypatch, no_fe_model) -> None:
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, list(tiny_ensemble().members), {"note": "test"})
    monkeypatch.setattr("gdmcd_core.data.reference.load_reference", lambda *a, **k: tiny_reference())
    opened = open_design(CFG, path)
    assert opened.checkpoint == path and opened.model.n_members == 2
    assert opened.engine.device.type == opened.device.type  # "auto": CUDA when present
    assert opened.config is CFG and len(opened.start) == CFG.n_candidates and opened.warnings == ()


def test_given_models_and_reference_are_used_as_they_are(no_fe_model) -> None:
    model, ref = tiny_ensemble(), tiny_reference()
    opened = open_design(CFG, model=model, reference=ref, new_run=False)
    assert opened.model is model and opened.reference is ref and opened.checkpoint is None
    assert opened.start is None  # resuming: the saved state has the compositions


def test_what_the_user_can_fix_is_one_line(tmp_path, no_fe_model) -> None:
    model, ref = tiny_ensemble(), tiny_reference()
    with pytest.raises(DesignOpenError, match="not found") as missing:
        open_design(CFG, tmp_path / "nope.pt", reference=ref)
    assert "\n" not in str(missing.value) and missing.value.option == ""
    with pytest.raises(DesignOpenError, match="formation-energy checkpoint"):
        open_design(DesignConfig(formation_energy_weight=10.0), model=model, reference=ref)
    with pytest.raises(DesignOpenError) as device:
        open_design(DesignConfig(device="tpu"), model=model, reference=ref)
    assert device.value.option == "device" and "tpu" in str(device.value)
    with pytest.raises(InsufficientMemoryError, match="needs ~"):
        open_design(DesignConfig(n_candidates=1_000_000), model=model, reference=ref)
