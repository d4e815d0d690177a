"""Hostile input and damaged files: one clear line (exit 2) from the CLI, a ValueError naming the input from the
library, never a traceback, an unbounded message, a raw escape sequence or a silently changed run.

In-process, on tiny untrained checkpoints and a tiny data folder: seconds in all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import one_line_exit_2
from conftest import write_tiny_data

from gdmcd_core.chem.formula_syntax import MAX_BRACKET_DEPTH, QUOTE_LIMIT, FormulaError, parse_amounts
from gdmcd_core.cli.main import main
from gdmcd_core.data.dataset import load_table
from gdmcd_core.data.paths import SUPERCON_FILE, DataFileError
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs.state import RunState, StateError
from gdmcd_core.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, update_card
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.util import printable

pytestmark = pytest.mark.fault

NESTED = "(" * 5000 + "Fe" + ")" * 5000
LONG = "Fe" * 500_000 + "x"  # a megabyte that does not parse
MAX_ERROR_CHARS = 600  # far below the inputs above: the message quotes a bounded prefix


def design(tmp_path: Path, ckpt: Path, *extra: str) -> list[str]:
    return ["design", "--out", str(tmp_path / "out"), "--checkpoint", str(ckpt), "--no-progress", *extra]


TINY_RUN = ("--n-candidates", "2", "--steps2", "2", "--steps3", "2", "--top", "0")


def tiny_run(tmp_path: Path, ckpt: Path, capsys) -> Path:
    assert main(design(tmp_path, ckpt, *TINY_RUN)) == 0, capsys.readouterr().err
    capsys.readouterr()
    return tmp_path / "out"


def as_stopped(out: Path) -> Path:
    """The run folder marked "stopped" (finalize and resume refuse a finished run before reading its files)."""
    st = json.loads((out / runs.STATUS_FILE).read_text())
    (out / runs.STATUS_FILE).write_text(json.dumps({**st, "status": "stopped"}))
    return out


# -- 1, 2. formulas: bounded nesting, bounded messages -------------------------------------------------------


def test_nested_formula_is_a_formula_error_naming_the_depth() -> None:
    assert parse_amounts("(" * MAX_BRACKET_DEPTH + "Fe" + ")" * MAX_BRACKET_DEPTH) == {"Fe": 1.0}
    with pytest.raises(FormulaError, match=f"nested deeper than {MAX_BRACKET_DEPTH}"):
        parse_amounts(NESTED)
    with pytest.raises(FormulaError, match="nested deeper"):
        DesignConfig(init_mode="formulas", init_formulas=(NESTED,))


def test_nested_formula_predict_is_one_line(capsys) -> None:
    err = one_line_exit_2(capsys, ["predict", NESTED], "nested deeper than")
    assert len(err) < MAX_ERROR_CHARS


@pytest.mark.parametrize(
    "formula",
    [LONG, "MgB2 " * 200_000, "Fe0" + "0" * 100_000, "Fe" + "1" * 100_000 + ".5.5", "Fe" + "1" * 10**5 + "e5"],
)
def test_long_formula_is_quoted_as_a_bounded_prefix(formula) -> None:
    with pytest.raises(FormulaError) as info:
        parse_amounts(formula)
    msg = str(info.value)
    assert len(msg) < MAX_ERROR_CHARS and "\n" not in msg, msg
    assert f"({len(formula)} characters)" in msg and formula[:QUOTE_LIMIT] in msg


def test_long_formula_predict_is_one_short_line(capsys) -> None:
    err = one_line_exit_2(capsys, ["predict", LONG], "1000001 characters")
    assert len(err) < MAX_ERROR_CHARS


# -- 3. --out where no folder can be made ------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
def test_out_under_proc_is_one_line(tmp_path, ckpt, capsys) -> None:
    argv = ["design", "--out", "/proc/x", "--checkpoint", str(ckpt), "--no-progress"]
    one_line_exit_2(capsys, argv, "--out /proc/x", "cannot")
    with pytest.raises(PermissionError, match="cannot create the run folder /proc/x"):
        runs.RunWriter("/proc/x")


# -- 4. a pin without its fraction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pin, needle",
    [
        ({"symbol": "H"}, "has no 'fraction'"),
        ({"fraction": 0.5}, "has no 'symbol'"),
        ({"symbol": "H", "fraction": None}, "pin"),
    ],
)
def test_pin_without_fraction_is_a_value_error_naming_it(pin, needle) -> None:
    with pytest.raises(ValueError, match=needle) as info:
        DesignConfig(pins=(pin,))
    assert "{'" in str(info.value) or "pin" in str(info.value)


def test_pin_without_fraction_in_a_config_file_is_one_line(tmp_path, ckpt, capsys) -> None:
    (tmp_path / "pins.toml").write_text('pins = [{symbol = "H"}]\n')
    one_line_exit_2(capsys, design(tmp_path, ckpt, "--config", str(tmp_path / "pins.toml")), "--config", "'fraction'")


def test_pin_without_fraction_in_a_runs_config_is_one_line(tmp_path, ckpt, capsys) -> None:
    out = as_stopped(tiny_run(tmp_path, ckpt, capsys))
    cfg = json.loads((out / runs.CONFIG_FILE).read_text())
    cfg["design"]["pins"] = [{"symbol": "H"}]
    (out / runs.CONFIG_FILE).write_text(json.dumps(cfg))
    one_line_exit_2(capsys, ["runs", "finalize", str(out), "--no-progress"], "config.json", "'fraction'")


# -- 5. a state.npz whose compositions are not compositions --------------------------------------------------


def test_state_scaled_to_huge_values_is_refused_on_load(tmp_path, ckpt, capsys) -> None:
    out = as_stopped(tiny_run(tmp_path, ckpt, capsys))
    path = out / runs.STATE_FILE
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["x"] = arrays["x"] * 1e308
    np.savez(path, **arrays)
    with pytest.raises(StateError, match="state.npz: x row 0 is not a composition"):
        RunState.load(path)
    for command in ("finalize", "resume"):
        one_line_exit_2(capsys, ["runs", command, str(out), "--no-progress"], "state.npz", "not a composition")


# -- 6. evaluate --write-metrics on a card with fields of the wrong type --------------------------------------


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("metrics_test", [1, 2], "metrics_test is a list"),
        ("filled_later", "yesterday", "filled_later is a str"),
        ("filled_later", {"earlier": 3}, "filled_later.earlier is a int"),
    ],
)
def test_write_metrics_on_a_card_with_wrong_types_is_one_line(ckpt, capsys, field, value, needle) -> None:
    update_card(ckpt, {field: value})
    one_line_exit_2(capsys, ["evaluate", "--checkpoint", str(ckpt), "--write-metrics"], needle)
    assert json.loads(ckpt.with_suffix(".json").read_text())[field] == value  # the card is left as it was


# -- 7. a data file without its formula column -------------------------------------------------------------


def test_data_file_without_formula_column_is_one_line(tmp_path, ckpt, capsys) -> None:
    data = Path(write_tiny_data(tmp_path / "data"))
    sc = pd.read_csv(data / SUPERCON_FILE).rename(columns={"formula": "composition"})
    sc.to_csv(data / SUPERCON_FILE, index=False)
    with pytest.raises(DataFileError, match=f"{SUPERCON_FILE}: no 'formula' column"):
        load_table(data / SUPERCON_FILE)
    one_line_exit_2(capsys, design(tmp_path, ckpt, *TINY_RUN), SUPERCON_FILE, "'formula'")
    assert not (tmp_path / "out").exists()


# -- 8. names from files never reach the terminal raw ---------------------------------------------------------


def test_printable_escapes_control_and_bidi_characters() -> None:
    assert printable("YBa₂Cu₃O₇ 92 K, µ") == "YBa₂Cu₃O₇ 92 K, µ"
    shown = printable("a\x1b]0;owned\x07\x1b[2J\nb\u202ec\x9b")
    assert shown == "a\\x1b]0;owned\\x07\\x1b[2J\\x0ab\\u202ec\\x9b"


def test_runs_list_prints_no_escape_sequence(tmp_path, capsys) -> None:
    root = tmp_path / "runs"
    p = runs.create_run_dir(root, "evil")
    (p / runs.STATUS_FILE).write_text(json.dumps({"status": "finished"}))
    (p / "meta.json").write_text(json.dumps({"name": "\x1b]0;owned\x07\x1b[2Jhi", "tags": ["x"]}))
    assert main(["runs", "list", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "evil" in out and "\\x1b]0;owned" in out
    assert not any(ord(c) < 32 and c != "\n" for c in out), repr(out)


# -- 9. a checkpoint's kind is checked against its weights ----------------------------------------------------


def _relabelled(path: Path, output_relu: bool, kind: str) -> Path:
    torch.manual_seed(0)
    model = TcResNet(ModelConfig(width=4, layers=(1,), head_bias=0.0, output_relu=output_relu)).eval()
    save_checkpoint(path, [model], {"kind": kind})  # a hash-valid card that lies about the weights
    return path


def test_formation_energy_weights_relabelled_as_tc_are_refused(tmp_path, ckpt, capsys) -> None:
    fake = _relabelled(tmp_path / "fe_as_tc.pt", output_relu=False, kind="tc_regressor")
    with pytest.raises(CheckpointError, match="signed output"):
        load_checkpoint(fake)
    one_line_exit_2(capsys, ["predict", "MgB2", "--checkpoint", str(fake)], "signed output")
    one_line_exit_2(capsys, design(tmp_path, fake, *TINY_RUN), "signed output")


def test_tc_weights_relabelled_as_formation_energy_are_refused(tmp_path) -> None:
    from gdmcd_core.model.formation_energy import load_formation_energy_model

    fake = _relabelled(tmp_path / "tc_as_fe.pt", output_relu=True, kind="formation_energy")
    with pytest.raises(CheckpointError, match="ReLU output"):
        load_formation_energy_model(fake)


# -- 10. inputs that make a run pointless --------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--target-tc", "-100"], ["target_tc", "above 0"]),
        (["--target-tc", "0"], ["target_tc"]),
        (["--init-mode", "hydride", "--exclude", "H"], ["hydride", "H is excluded"]),
        (["--init", "OgH2"], ["OgH2", "Og: noble gas or radioactive"]),
        (["--init", "MgB2", "--exclude", "B"], ["MgB2", "B: excluded"]),
        (["--init", "RbH2", "--no-exclude-implausible"], ["RbH2", "Rb: never seen in training"]),
    ],
)
def test_pointless_runs_are_refused(tmp_path, ckpt, capsys, extra, needles) -> None:
    one_line_exit_2(capsys, design(tmp_path, ckpt, *TINY_RUN, *extra), *needles)
    assert not (tmp_path / "out").exists()


def test_config_refuses_starts_the_constraints_would_change() -> None:
    with pytest.raises(ValueError, match="target_tc"):
        DesignConfig(target_tc=-100)
    with pytest.raises(ValueError, match="H is excluded"):
        DesignConfig(init_mode="hydride", exclude=("H",))
    with pytest.raises(ValueError, match="'OgH2' holds excluded element"):
        DesignConfig(init_mode="formulas", init_formulas=("OgH2",))
    # pinned exactly is not excluded: the start keeps its other elements and the pin sets H
    DesignConfig(init_mode="formulas", init_formulas=("LaH10",), pins=("H=0.5",), pin_mode="exact")


# -- 11. design on data that is not the model's ----------------------------------------------------------------


def test_design_warns_when_the_data_differs_from_the_models(tmp_path, ckpt, capsys) -> None:
    from gdmcd_core.design.session import open_design

    update_card(ckpt, {"data_checksums": {SUPERCON_FILE: "0" * 64}})
    cfg = DesignConfig(n_candidates=2, steps2=2, steps3=2, hull_columns=False)
    opened = open_design(cfg, ckpt)
    assert any(SUPERCON_FILE in w and "differ" in w for w in opened.warnings), opened.warnings
    assert main(design(tmp_path, ckpt, *TINY_RUN)) == 0
    err = capsys.readouterr().err
    assert f"warning: data file(s) {SUPERCON_FILE} differ" in err, err
