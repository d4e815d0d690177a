"""Non-gradient search baselines (gdmcd_core.design.search.baselines) with a cheap synthetic score."""

from __future__ import annotations

import numpy as np
import pytest

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, index_of
from gdmcd_core.design.search.baselines import (
    Scoring,
    SearchSpace,
    database_search,
    evolution_search,
    mutate,
    objective_value,
    random_search,
)

CU, OX, BA, Y, HG = (index_of(s) for s in ("Cu", "O", "Ba", "Y", "Hg"))
STARTS = np.stack([to_vector(f) for f in ("YBa2Cu3O7", "La2CuO4", "NbN", "MgB2", "HgBa2CuO4")])


class CountingScore:
    """Tc = 100 x_Cu + 50 x_O + 150 x_Hg (K); std = 100 x_Hg + 1: Hg looks best but is uncertain."""

    def __init__(self) -> None:
        self.rows = 0
        self.calls = 0

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert x.shape[1] == N_ELEMENTS
        self.rows += len(x)
        self.calls += 1
        return 100 * x[:, CU] + 50 * x[:, OX] + 150 * x[:, HG], 100 * x[:, HG] + 1.0


def _start_best(score: CountingScore, objective: str = "lcb") -> float:
    tc, std = CountingScore()(STARTS)
    return float(objective_value(tc, std, objective).max())


def _run(method: str, budget: int, seed: int = 0, **kw):  # noqa: ANN202
    score = CountingScore()
    rng = np.random.default_rng(seed)
    if method == "random":
        res = random_search(STARTS, score, budget, rng, **kw)
    else:
        res = evolution_search(STARTS, score, budget, rng, population=32, **kw)
    return res, score


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_improves_and_respects_budget(method: str) -> None:
    res, score = _run(method, 600)
    assert res.n_evaluated == score.rows <= 600
    assert res.score[0] > _start_best(score) + 1.0
    assert np.all(np.diff(res.score) <= 1e-12)  # ranked
    np.testing.assert_allclose(res.x.sum(1), 1.0, atol=1e-9)
    assert (res.x >= 0).all()
    assert res.trace[-1, 0] == res.n_evaluated and np.all(np.diff(res.trace[:, 1]) >= 0)
    assert len(np.unique(np.round(res.x, 4), axis=0)) == len(res.x)


def test_evolution_beats_random_on_the_same_budget() -> None:
    ev = [_run("evolution", 800, seed)[0].score[0] for seed in range(3)]
    rs = [_run("random", 800, seed)[0].score[0] for seed in range(3)]
    assert np.mean(ev) > np.mean(rs)


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_pins_exclusions_and_cap(method: str) -> None:
    allowed = np.ones(N_ELEMENTS, bool)
    allowed[[HG, OX]] = False
    pins = {BA: 0.2}
    space = SearchSpace(allowed, pins, 3)
    res, _ = _run(method, 400, space=space)
    assert space.violation(res.x).max() < 1e-9
    assert np.all(res.x[:, BA] == pytest.approx(0.2, abs=1e-12))
    assert np.all(res.x[:, [HG, OX]] == 0)
    assert ((res.x > 0).sum(1) <= 3).all()
    assert res.x[0, CU] > 0.7  # the best fills the free 0.8 mostly with Cu


def test_objective_changes_ranking() -> None:
    mean, _ = _run("evolution", 600, scoring=Scoring(objective="mean"))
    lcb, _ = _run("evolution", 600, scoring=Scoring(objective="lcb", kappa=1.0))
    assert mean.x[0, HG] > 0.5 > lcb.x[0, HG]  # Hg is rewarded by the mean, penalized by its uncertainty
    assert lcb.x[0, CU] > 0.5


def test_small_budget_and_many_starts() -> None:
    score = CountingScore()
    res = random_search(np.repeat(STARTS, 10, axis=0), score, 5, np.random.default_rng(0))
    assert res.n_evaluated == score.rows == 5
    with pytest.raises(ValueError):
        random_search(STARTS, score, 0, np.random.default_rng(0))
    with pytest.raises(ValueError):
        random_search(STARTS, score, 10, np.random.default_rng(0), scoring=Scoring(objective="best"))


def test_mutate_stays_in_space() -> None:
    allowed = np.zeros(N_ELEMENTS, bool)
    allowed[[CU, OX, BA, Y]] = True
    space = SearchSpace(allowed, {Y: 0.1}, max_elements=3)
    x = space.repair(np.repeat(STARTS, 50, axis=0), np.random.default_rng(0))
    y = mutate(x, space, np.random.default_rng(1), p_swap=0.5, p_add=0.5, p_remove=0.3)
    assert space.violation(x).max() < 1e-9 and space.violation(y).max() < 1e-9
    assert not np.allclose(x, y)


def test_search_space_validation() -> None:
    allowed = np.ones(N_ELEMENTS, bool)
    allowed[HG] = False
    with pytest.raises(ValueError):
        SearchSpace(allowed, {HG: 0.1})
    with pytest.raises(ValueError):
        SearchSpace(allowed, {CU: 0.7, OX: 0.5})
    with pytest.raises(ValueError):
        SearchSpace(allowed, {CU: 0.5, OX: 0.2}, max_elements=2)


def test_database_search() -> None:
    rows = ["CuO", "Cu2O", "HgO", "BaCuO2", "YBa2Cu3O7", "NaCl", "Cu2O", "Ba2Cu4O6", "Ba"]
    x = np.stack([to_vector(f) for f in rows])
    allowed = np.ones(N_ELEMENTS, bool)
    allowed[HG] = False
    score = CountingScore()
    res = database_search(x, score, 100, space=SearchSpace(allowed, {BA: 0.25}, max_elements=3))
    # HgO excluded; "Ba" has nothing besides the pin; YBa2Cu3O7 + nothing new has 4 elements; Cu2O twice.
    assert res.info["n_excluded"] == 1 and res.info["n_pin_mismatch"] == 1
    assert res.info["n_over_cap"] == 1 and res.info["n_duplicates"] == 1
    assert res.n_evaluated == score.rows == len(res.x) == 5
    assert np.all(res.x[:, HG] == 0) and np.allclose(res.x[:, BA], 0.25)
    assert ((res.x > 0).sum(1) <= 3).all()
    nacl = res.x[res.x[:, index_of("Na")] > 0][0]  # pins set, the rest keeps its ratio
    assert nacl[index_of("Na")] == pytest.approx(0.375) and nacl[index_of("Cl")] == pytest.approx(0.375)
    # 'filter': only BaCuO2 already has Ba at 0.25 (Ba2Cu4O6: 0.17, YBa2Cu3O7: 0.15, Ba: 1)
    res_f = database_search(x, CountingScore(), 100, space=SearchSpace(allowed, {BA: 0.25}), pin_policy="filter")
    assert len(res_f.x) == 1 and res_f.info["n_pin_mismatch"] == 7
    np.testing.assert_allclose(res_f.x[0], to_vector("BaCuO2"))
    # budget: only 2 of the kept rows are scored
    score2 = CountingScore()
    res2 = database_search(x, score2, 2, space=SearchSpace(allowed))
    assert score2.rows == 2 == res2.n_evaluated and res2.info["n_not_scored"] > 0
