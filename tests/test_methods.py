"""Search methods behind DesignConfig.method (gdmcd_core.design.search.methods) with tiny models and data."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from design_helpers import (  # noqa: F401  (one_thread: autouse fixture)
    ISSUE_CANDIDATE_COLUMNS,
    one_thread,
    rank_groups,
    tiny_ensemble,
    tiny_reference,
)

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, index_of
from gdmcd_core.design import DesignConfig, DesignEngine
from gdmcd_core.design.config.presets import PAPER_SETTINGS
from gdmcd_core.design.objective.constraints import PIN_TOL
from gdmcd_core.design.search import methods as M
from gdmcd_core.design.search.mutation import SearchSpace, mutate

NON_GRADIENT = ("evolution", "random", "database")
LOAD_KNOWN = M.load_known_compositions  # the real loader (the autouse fixture patches the module attribute)
KNOWN = """
    CuO BaCuO2 Ba2CuO3 CaCuO2 SrCuO2 NaCl SiO2 YBa2Cu3O7 MgO Al2O3 Nb2O5 BaO
    CaO SrO LaAlO3 SrTiO3 BaTiO3 Fe2O3 HgO Y2O3 CuAl2O4 La2O3 PbO NbC
""".split()


def known() -> M.KnownCompositions:
    x = np.stack([to_vector(f) for f in KNOWN]).astype(np.float32)
    return M.KnownCompositions(x, np.asarray([f"test: {f}" for f in KNOWN]))


@pytest.fixture(autouse=True)
def tiny_database(monkeypatch):
    """The database method screens KNOWN instead of the data files."""
    monkeypatch.setattr(M, "load_known_compositions", lambda data_dir=None: known())


def config(method: str, **kw) -> DesignConfig:
    base = dict(n_candidates=6, steps2=3, steps3=3, init_min_tc=0.0, method=method, seed=3)
    return DesignConfig(**(base | kw))


def run(method: str, run_dir=None, **kw):
    engine = DesignEngine(tiny_ensemble(), config(method, **kw), reference=tiny_reference())
    return engine, engine.run(run_dir)


CONSTRAINTS = {
    "exact": dict(pins=("O=0.5",), pin_mode="exact", exclude=("Hg", "Y"), max_elements=3),
    "at-least": dict(pins=("O>=0.25",), exclude=("Hg", "Ba"), max_elements=3),
    "cap only": dict(exclude=("Cu",), max_elements=2),
}


@pytest.mark.parametrize("case", sorted(CONSTRAINTS))
@pytest.mark.parametrize("method", ("gradient",) + NON_GRADIENT)
def test_constraints_hold(method: str, case: str) -> None:
    kw = CONSTRAINTS[case]
    engine, res = run(method, **kw)
    c = engine.constraints
    assert len(res.candidates) > 0
    assert c.violation(res.x_final).max() <= PIN_TOL
    for f in res.candidates["integer_formula"]:
        a = parse_formula(f)
        x = to_vector(f)
        assert not set(a) & set(kw["exclude"]), f
        assert len(a) <= kw["max_elements"], f
        for p in c.pins:
            got = x[index_of(p.symbol)]
            assert (got == pytest.approx(p.fraction, abs=1e-9)) if p.mode == "exact" else got >= p.fraction - 1e-9, f


@pytest.mark.parametrize("method", NON_GRADIENT)
def test_run_folder_like_gradient(method: str, tmp_path) -> None:
    _, grad = run("gradient", tmp_path / "g")
    _, res = run(method, tmp_path / method)
    g = pd.read_csv(tmp_path / "g" / "candidates.csv")
    t = pd.read_csv(tmp_path / method / "candidates.csv")
    fixed = [c for c in g.columns if not c.startswith("frac_")]
    assert [c for c in t.columns if not c.startswith("frac_")] == fixed
    assert ISSUE_CANDIDATE_COLUMNS <= set(t.columns)
    assert res.status == "finished" and len(t) == len(res.candidates) > 0
    assert (tmp_path / method / "trajectory.npz").is_file()
    assert t["rank"].tolist() == list(range(1, len(t) + 1))
    for _, group in t.groupby(rank_groups(t)):  # credible-first, phase tiers, family cap
        assert np.all(np.diff(group["score_k"].to_numpy()) <= 1e-6)
    traj = res.trajectory
    assert len(traj.step) == res.steps_done
    # the archive keeps the best by score; with the paper's settings the score is Tc, so best Tc never drops
    _, plain = run(method, **PAPER_SETTINGS)
    assert np.all(np.diff(plain.trajectory.tc_best_k) >= -1e-4)
    assert traj.snap_x.shape[1] == len(res.x_final)


@pytest.mark.parametrize("method", ("gradient",) + NON_GRADIENT)
def test_equal_budget_counted_on_the_model(method: str) -> None:
    """Every method passes B x (steps2 + steps3 + refine_steps) compositions through the model while it searches;
    the gradient's B x (steps2 + steps3) with a backward pass, then at most B x refine_steps in its refinement."""
    cfg = config(method, steps2=4, steps3=2)
    engine = DesignEngine(tiny_ensemble(), cfg, reference=tiny_reference())
    rows = {"all": 0, "grad": 0}

    def hook(_m, inputs, _out):
        rows["all"] += inputs[0].shape[0]
        rows["grad"] += inputs[0].shape[0] if inputs[0].requires_grad else 0

    handle = engine.scorer.fused.stem.register_forward_hook(hook)  # all members run in this one network
    sp = engine.start_points()
    budget = len(sp) * cfg.budget_steps
    try:
        if method == "gradient":
            engine.optimize(sp)
            assert rows["grad"] == len(sp) * cfg.total_steps
            checks = len(sp) * (2 + cfg.steps3 // cfg.select_every + 1)  # the no-grad integer-formula checks
            assert rows["all"] <= budget + checks
        else:
            state = M.run_search(engine, sp, known=M.KnownCompositions(np.repeat(known().x, 20, 0), np.arange(480)))
            assert rows["all"] == state.evaluations == budget == state.budget
            assert rows["grad"] == 0
    finally:
        handle.remove()


def test_database_budget_and_pool() -> None:
    cfg = config("database", steps2=1, steps3=1, refine_steps=0)
    engine = DesignEngine(tiny_ensemble(), cfg, reference=tiny_reference())
    sp = engine.start_points()
    small = M.run_search(engine, sp)  # 24 known, minus the 4 in the tiny reference, minus unseen elements
    x, idx, counts = M.database_pool(engine, known())
    assert counts["n_training_supercon"] == 4 and small.evaluations == min(len(x), 12) == 12
    assert {f"test: {KNOWN[i]}" for i in idx} >= set(small.labels)
    assert not {f"test: {f}" for f in ("YBa2Cu3O7", "SiO2", "NaCl", "Fe2O3")} & {f"test: {KNOWN[i]}" for i in idx}


@pytest.mark.parametrize("method", NON_GRADIENT)
def test_seeded_run_repeats(method: str) -> None:
    a = run(method)[1].candidates
    b = run(method)[1].candidates
    pd.testing.assert_frame_equal(a, b)
    c = run(method, seed=11, steps2=5, steps3=5)[1].candidates
    d = run(method, seed=11, steps2=5, steps3=5)[1].candidates
    pd.testing.assert_frame_equal(c, d)


def test_evolution_improves_on_its_starts() -> None:
    _, res = run("evolution", steps2=10, steps3=10, n_candidates=8)
    t = res.candidates
    assert t["integer_tc_k"].iloc[0] >= t["initial_tc_k"].max() - 1e-3


@pytest.mark.parametrize("method", NON_GRADIENT)
def test_progress_and_stop(method: str) -> None:
    engine = DesignEngine(tiny_ensemble(), config(method, steps2=20, steps3=20), reference=tiny_reference())
    stop = threading.Event()
    seen = []

    def cb(p) -> None:
        seen.append(p)
        stop.set()

    res = engine.run(callback=cb, stop_event=stop)
    assert seen[-1].done and not any(p.done for p in seen[:-1])
    assert res.status == "stopped" and res.steps_done < 40 and len(res.candidates) > 0


def test_config_method_field() -> None:
    with pytest.raises(ValueError, match="method"):
        DesignConfig(method="annealing")
    cfg = DesignConfig(method="evolution")
    assert DesignConfig.from_toml(cfg.to_toml()).method == "evolution"
    assert DesignConfig().method == "gradient"
    with pytest.raises(ValueError, match="run_search"):
        M.run_search(DesignEngine(tiny_ensemble(), config("gradient"), reference=tiny_reference()), None)


def test_search_space_at_least_pins() -> None:
    h, la, y = index_of("H"), index_of("La"), index_of("Y")
    allowed = np.ones(N_ELEMENTS, bool)
    allowed[y] = False
    space = SearchSpace(allowed, {h: 0.5}, max_elements=2, atleast={h})
    x = space.repair(np.stack([to_vector(f) for f in ("LaH10", "YH6", "LaH", "La")]), np.random.default_rng(0))
    assert space.violation(x).max() < 1e-9 and (x[:, h] >= 0.5).all() and (x[:, y] == 0).all()
    np.testing.assert_allclose(x[0], to_vector("LaH10"))  # already inside: unchanged
    z = mutate(np.repeat(x, 20, 0), space, np.random.default_rng(1), p_swap=0.5, p_add=0.5, p_remove=0.3)
    assert space.violation(z).max() < 1e-9 and ((z > 0).sum(1) <= 2).all()
    assert not np.allclose(z[:, la], np.repeat(x[:, la], 20))
    with pytest.raises(ValueError):
        SearchSpace(allowed, {h: 0.5}, atleast={la})


def test_known_compositions_loader(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "raw").mkdir()
    cod = pd.DataFrame({"formula": ["Cu1O1", "Si12O24", "Mg1O1"], "tc_k": 0.0, "comp_key": ["a", "b", "c"]})
    cod.to_csv(tmp_path / "cod_nonsc_inorganic_konno2009.csv", index=False)
    jv = pd.DataFrame({"jid": ["J1", "J2", "J3", "J4"], "formula": ["SiO2", "NbN", "Xx2", None]})
    jv.to_csv(tmp_path / "raw" / "jarvis_dft_3d_subset.csv", index=False)
    got = LOAD_KNOWN(tmp_path)
    assert LOAD_KNOWN(str(tmp_path)) is got  # cached per process
    assert list(got.label) == ["COD: Cu1O1", "COD: Si12O24", "COD: Mg1O1", "JARVIS J2: NbN"]
    np.testing.assert_allclose(got.x[3], to_vector("NbN"), atol=1e-7)
