"""The "substitution" search method: data-mined ionic substitution (gdmcd_core/design/search/substitution.py) of
known superconductors, ranked by a tiny model behind DesignConfig.method."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from design_helpers import one_thread, tiny_ensemble, tiny_reference  # noqa: F401  (autouse fixture)

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, index_of
from gdmcd_core.design import DesignConfig, DesignEngine
from gdmcd_core.design.objective.constraints import PIN_TOL
from gdmcd_core.design.search import methods as M
from gdmcd_core.design.search import substitution as S
from gdmcd_core.design.search.mutation import SearchSpace

EDIT = re.compile(r"([^\s,]+) for ([^\s,]+)")


def config(**kw) -> DesignConfig:
    base = dict(n_candidates=6, steps2=3, steps3=3, init_min_tc=0.0, method="substitution", seed=3)
    return DesignConfig(**(base | kw))


def engine(**kw) -> DesignEngine:
    return DesignEngine(tiny_ensemble(), config(**kw), reference=tiny_reference())


def ion_names(formula: str) -> dict[str, str]:
    table = S.lambda_table()
    return {s: table.names[i] for s, i in S.assign_species(parse_formula(formula)).items()}


def test_oxidation_states_of_known_superconductors() -> None:
    assert ion_names("YBa2Cu3O7") == {"Y": "Y3+", "Ba": "Ba2+", "Cu": "Cu2+", "O": "O2-"}
    assert ion_names("Tl2Ba2CaCu2O8")["Tl"] == "Tl3+"  # Tl3+ balances the formula exactly, Tl+ does not
    assert ion_names("BaFe2As2") == {"Ba": "Ba2+", "Fe": "Fe2+"}  # As3- is not in the table: As stays
    assert ion_names("Nb3Sn") == {"Nb": "Nb5+", "Sn": "Sn4+"}  # intermetallic: the ions seen most often


def test_lambda_table_is_a_conditional_probability() -> None:
    t = S.lambda_table()
    np.testing.assert_allclose(t.p.sum(1), 1.0)
    ca, sr = t.names.index("Ca2+"), t.names.index("Sr2+")
    assert t.p[ca, sr] > S.MIN_PROBABILITY > t.p[t.names.index("O2-"), ca]


def test_proposals_follow_the_table_and_keep_the_charge() -> None:
    t = S.lambda_table()
    parents = np.stack([to_vector(f) for f in ("HgBa2Ca2Cu3O8", "BaFe2As2", "YBa2Cu3O7")])
    space = SearchSpace(np.ones(N_ELEMENTS, bool))
    props, counts = S.proposals(parents, space)
    assert counts["n_single"] > 0 and counts["n_double"] > 0 and len(props) == counts["n_single"] + counts["n_double"]
    on = props.src >= 0
    assert on[:, 0].all() and (props.n_edits == on.sum(1)).all()
    assert (t.p[props.src[on], props.dst[on]] >= S.MIN_PROBABILITY).all()
    assert (t.element[props.src[on]] != t.element[props.dst[on]]).all()
    assert not (t.element[props.src[on]] == index_of("As")).any()  # no ion of As in the table
    x = props.compositions(parents, np.arange(len(props)))
    np.testing.assert_allclose(x.sum(1), 1.0)
    assert ((x > 0).sum(1) == (parents[props.parent] > 0).sum(1)).all()  # same element count as the parent
    dq = np.zeros(len(props))
    for k in range(props.src.shape[1]):
        s, d, ok = props.src[:, k], props.dst[:, k], props.src[:, k] >= 0
        amount = parents[props.parent, t.element[np.where(ok, s, 0)]]
        dq += np.where(ok, amount * (t.charge[d] - t.charge[s]), 0.0)
    np.testing.assert_allclose(dq, 0.0, atol=1e-6)
    assert (np.diff(props.n_edits) >= 0).all()  # singles first, each kind by decreasing probability
    for n in (1, 2):
        assert (np.diff(props.probability[props.n_edits == n]) <= 1e-12).all()
    singles = {props.edit(i) for i in np.flatnonzero((props.parent == 0) & (props.n_edits == 1))}
    assert "Sr2+ for Ca2+" in singles and "Cd2+ for Hg2+" in singles


def test_uniform_proposals_cover_every_allowed_element() -> None:
    allowed = np.ones(N_ELEMENTS, bool)
    allowed[index_of("Sr")] = False
    space = SearchSpace(allowed)
    props = S.uniform_proposals(np.stack([to_vector("MgB2")]), space, np.random.default_rng(0))
    assert len(props) == 2 * (N_ELEMENTS - 1 - 2)  # Mg and B, each by any allowed element but Mg and B
    assert "Sr" not in {props.names[d] for d in props.dst[:, 0]}


@pytest.mark.parametrize(
    "kw",
    [
        dict(exclude=("Ba", "Hg"), max_elements=4),
        dict(pins=("O>=0.25",), exclude=("Ba",), max_elements=4),
        dict(pins=("O=0.5",), pin_mode="exact", max_elements=4),
        dict(exclude=("Cu",), max_elements=2),
    ],
)
def test_runs_within_the_constraints(kw) -> None:
    e = engine(**kw)
    res = e.run()
    t = res.candidates
    c = e.constraints
    assert res.status == "finished" and len(t) > 0
    assert c.violation(res.x_final).max() <= PIN_TOL
    for f in t["integer_formula"]:
        a = parse_formula(f)
        assert not set(a) & set(kw.get("exclude", ())), f
        assert len(a) <= kw["max_elements"], f
        for p in c.pins:
            got = to_vector(f)[index_of(p.symbol)]
            assert (got == pytest.approx(p.fraction, abs=1e-9)) if p.mode == "exact" else got >= p.fraction - 1e-9
    names = set(S.lambda_table().names)
    for source in t["source"]:
        assert source.startswith("substitution of ")
        edits = EDIT.findall(source)
        assert 1 <= len(edits) <= 2 and all(new in names and old in names for new, old in edits), source


def test_no_parent_fits_the_constraints() -> None:
    with pytest.raises(ValueError, match="no lambda substitution"):
        engine(pins=("O=0.5",), pin_mode="exact", exclude=("Hg", "Y"), max_elements=3).run()


def test_evaluations_counted_against_the_budget() -> None:
    """The hook sees exactly the rows the method reports: the parents' Tc and the substitutions it scored."""
    for steps, exhausted in ((2, False), (200, True)):
        e = engine(steps2=steps, steps3=0, refine_steps=0)
        rows = {"all": 0, "grad": 0}

        def hook(_m, inputs, _out, rows=rows):
            rows["all"] += inputs[0].shape[0]
            rows["grad"] += inputs[0].shape[0] if inputs[0].requires_grad else 0

        handle = e.scorer.fused.stem.register_forward_hook(hook)
        try:
            state = M.run_search(e, e.start_points())
        finally:
            handle.remove()
        assert rows["all"] == state.evaluations and rows["grad"] == 0
        assert state.budget == 6 * steps
        assert (state.evaluations < state.budget) if exhausted else (state.evaluations == state.budget)
        if exhausted:  # every proposal made: nothing scored twice, no training superconductor scored
            keys = M.composition_keys(state.x_final)
            assert len(set(keys)) == len(keys)
            assert not set(keys) & set(M.composition_keys(tiny_reference().sc_x))


def test_run_folder_and_seeded_repeat(tmp_path) -> None:
    res = engine().run(tmp_path / "sub")
    t = pd.read_csv(tmp_path / "sub" / "candidates.csv")
    assert len(t) == len(res.candidates) > 0 and (tmp_path / "sub" / "trajectory.npz").is_file()
    assert t["rank"].tolist() == list(range(1, len(t) + 1))
    pd.testing.assert_frame_equal(res.candidates, engine().run().candidates)


def test_uniform_edit_table_is_the_baseline() -> None:
    e = engine()
    state = M.run_search(e, e.start_points(), edit_table="uniform")
    assert state.info["edit_table"] == "uniform" and state.evaluations == state.budget
    with pytest.raises(ValueError, match="edit_table"):
        M.run_search(e, e.start_points(), edit_table="nearest")


def test_cli_design_substitution(tmp_path, capsys, monkeypatch) -> None:
    """`gdmcd design --method substitution` runs like the other methods (tiny model and reference)."""
    from gdmcd_core.cli import design as cli_design
    from gdmcd_core.model.checkpoint import save_checkpoint

    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, list(tiny_ensemble().members), {"note": "test"})
    monkeypatch.setattr("gdmcd_core.data.reference.load_reference", lambda *a, **k: tiny_reference())
    monkeypatch.setattr("gdmcd_core.model.formation_energy.load_formation_energy_model", lambda *a, **k: None)
    out = tmp_path / "run"
    argv = ["--out", str(out), "--checkpoint", str(ckpt), "--method", "substitution", "--n-candidates", "6"]
    argv += ["--steps2", "4", "--steps3", "4", "--init-min-tc", "0", "--no-progress", "--exclude", "Hg"]
    assert cli_design.main(argv) == 0
    t = pd.read_csv(out / "candidates.csv")
    assert len(t) >= 1 and t["source"].str.startswith("substitution of ").all()
    assert not any("Hg" in parse_formula(f) for f in t["integer_formula"])
    assert "finished" in capsys.readouterr().err
