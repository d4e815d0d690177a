"""The design loop: invariants at every step, known optima, determinism, stop, run outputs."""

from __future__ import annotations

import json
import re
import threading

import numpy as np
import pytest
import torch
from design_helpers import (  # noqa: F401  (one_thread: autouse fixture)
    ISSUE_CANDIDATE_COLUMNS,
    LinearTc,
    one_thread,
    rank_groups,
    tiny_ensemble,
    tiny_reference,
)
from torch import nn

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import index_of
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.config.presets import PAPER_SETTINGS
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.design.loop.step_log import Progress
from gdmcd_core.design.objective.constraints import Pin
from gdmcd_core.design.runs.folder import load_run

TOL = 1e-6
H, NB, SN, CU, OX = (index_of(s) for s in ("H", "Nb", "Sn", "Cu", "O"))
FAST = {"steps2": 20, "steps3": 20, "n_candidates": 6, "record_every": 5, "hull_columns": False}


def _w() -> torch.Tensor:
    w = torch.linspace(0, 30, 118)
    w[NB], w[SN], w[H] = 100.0, 80.0, 10.0
    return w


class Recording(nn.Module):
    """Wraps a model and keeps every composition it is asked about."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[np.ndarray] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().double().numpy().copy())
        return self.inner(x)


def _engine(model: nn.Module, **kw) -> DesignEngine:
    return DesignEngine(model.eval(), DesignConfig(**{**FAST, **kw}), reference=tiny_reference())


@pytest.mark.parametrize("method", ["project", "relu"])
def test_stage2_reaches_the_known_optimum_and_never_lowers_mean_tc(method: str) -> None:
    paper = {**PAPER_SETTINGS, "constraint_method": method}  # the optimizer alone: no trust region, no cap
    eng = _engine(LinearTc(_w()), steps2=60, steps3=0, lr=0.05, n_candidates=16, **paper)
    res = eng.run()
    w = _w().double().numpy()
    tc0, tc2 = res.x_start @ w, res.x_stage2 @ w
    assert tc2.mean() >= tc0.mean()
    assert (tc2 >= tc0 - 1e-6).all()  # a linear objective on a convex set: no candidate gets worse
    if method == "project":  # the projection can bring in any allowed element: pure Nb (100 K)
        assert np.median(tc2) > 99.0
    else:  # relu(p) never revives an element whose p <= 0: the best vertex of each start's elements
        best = np.where(res.x_start > 0, w, -np.inf).max(1)
        assert np.median(tc2 - best) > -1.0
    # excluding Nb moves the optimum to Sn
    res = _engine(LinearTc(_w()), steps2=60, steps3=0, lr=0.05, exclude=["Nb"], **paper).run()
    assert (res.x_stage2[:, NB] == 0).all()
    if method == "project":
        assert np.median(res.x_stage2 @ w) > 79.0


@pytest.mark.parametrize("method", ["project", "relu"])
@pytest.mark.parametrize("mode", ["at-least", "exact"])
def test_every_step_stays_a_composition_with_pins_and_exclusions(method: str, mode: str) -> None:
    model = Recording(LinearTc(_w()))
    eng = _engine(
        model,
        pins=[Pin("H", 0.5), Pin("O", 0.125)],
        pin_mode=mode,
        exclude=["Nb", "Cu"],
        max_elements=4,
        constraint_method=method,
    )
    res = eng.run()
    c = eng.constraints
    assert len(model.seen) >= FAST["steps2"] + FAST["steps3"]
    for x in model.seen:  # every composition the model saw, every step of both stages
        assert c.violation(x).max() < TOL
        assert (x[:, NB] == 0).all() and (x[:, CU] == 0).all()
    for x in (res.x_start, res.x_stage2, res.x_final):
        assert c.violation(x).max() < TOL
    # outputs: integer formulas honour the pins and exclusions too
    for f, n in zip(res.candidates["integer_formula"], res.candidates["n_atoms"], strict=True):
        v = to_vector(f)
        assert v[NB] == 0 and v[CU] == 0 and (v > 0).sum() <= 4
        if mode == "exact":
            assert abs(v[H] - 0.5) < TOL and abs(v[OX] - 0.125) < TOL and n % 8 == 0
        else:
            assert v[H] >= 0.5 - TOL and v[OX] >= 0.125 - TOL


@pytest.mark.parametrize("kind", ["int", "es"])
def test_integer_formula_atom_count_is_allowed_and_reproduces_fractions(kind: str) -> None:
    eng = _engine(tiny_ensemble(), integer_loss=kind, n_min=4, n_max=12, alpha_max=100.0)
    res = eng.run()
    t = res.candidates
    assert len(t) >= 1 and t["n_atoms"].isin(eng.allowed_ns).all()
    for f, n in zip(t["integer_formula"], t["n_atoms"], strict=True):
        amounts = to_vector(f) * n
        frac = np.abs(amounts - np.round(amounts))
        assert (frac > 1e-6).sum() <= (0 if kind == "int" else 2)
        assert abs(amounts.sum() - n) < 1e-9
    assert t["integer_formula"].is_unique  # deduplicated
    # ranked by score (LCB by default) within each tier: chemistry checks, mixtures, misfits, known, family cap
    for _, group in t.groupby(rank_groups(t), sort=False):
        assert group["score_k"].is_monotonic_decreasing
    for _, tier in t.groupby(["is_mixture", "site_misfit"], sort=False):  # within a phase tier, passing rows first
        passes = tier["passes_chemistry_checks"]
        assert not passes.iloc[: passes.sum()].eq(False).any()
    assert (t["integer_tc_std_k"] >= 0).all()


def test_stage3_pulls_compositions_to_the_grid() -> None:
    eng = _engine(LinearTc(_w()), init_mode="interpolate", steps2=20, steps3=100, alpha_max=1000.0, lr=0.01)
    res = eng.run()
    tr = res.trajectory
    assert tr.int_loss_median[-1] < 0.5 * tr.int_loss_median[19] + 1e-9
    assert tr.alpha[19] == 0 and tr.alpha[20] == 0 and tr.alpha[-1] == pytest.approx(1000.0)


def test_seeded_runs_repeat_exactly() -> None:
    a = _engine(tiny_ensemble(), seed=7, init_mode="mixed").run()
    b = _engine(tiny_ensemble(), seed=7, init_mode="mixed").run()
    assert np.array_equal(a.x_final, b.x_final) and np.array_equal(a.x_start, b.x_start)
    assert a.candidates.equals(b.candidates)
    c = _engine(tiny_ensemble(), seed=8, init_mode="mixed").run()
    assert not np.array_equal(a.x_start, c.x_start)


def test_stop_keeps_partial_results(tmp_path) -> None:
    stop = threading.Event()
    reports: list[Progress] = []

    def cb(p: Progress) -> None:
        reports.append(p)
        if p.step >= 1:
            stop.set()

    eng = _engine(tiny_ensemble())
    res = eng.run(tmp_path / "r", callback=cb, stop_event=stop)
    assert res.status == "stopped" and 1 <= res.steps_done < res.total_steps
    assert len(res.candidates) >= 1 and reports[-1].done
    run = load_run(tmp_path / "r")
    assert run.info.status == "stopped" and run.candidates is not None and len(run.candidates) == len(res.candidates)
    assert run.trajectory is not None and len(run.trajectory.step) == res.steps_done


def test_progress_and_run_folder(tmp_path) -> None:
    reports: list[Progress] = []
    model = tiny_ensemble()
    model.sha256, model.path = "abc123", "checkpoints/tiny.pt"
    res = _engine(model, seed=3).run(tmp_path / "run", callback=reports.append)
    assert reports and reports[-1].done and reports[-1].step == reports[-1].total_steps == 40
    assert {p.stage for p in reports} <= {2, 3}
    assert all(p.tc_q10_k <= p.tc_median_k <= p.tc_q90_k <= p.tc_best_k + 1e-6 for p in reports)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["checkpoint_sha256"] == "abc123" and cfg["code_version"]
    assert DesignConfig.from_dict(cfg["design"]) == res.config
    run = load_run(tmp_path / "run")
    assert run.info.status == "finished" and run.status["status"] == "finished"
    tr = run.trajectory
    assert tr.snap_x.shape[1:] == (6, 118) and tr.snap_step[0] == 0 and tr.snap_step[-1] == 40
    assert ISSUE_CANDIDATE_COLUMNS <= set(run.candidates.columns)
    assert any(c.startswith("frac_") for c in run.candidates.columns)


def test_model_is_not_modified() -> None:
    model = tiny_ensemble()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _engine(model).run()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_lcb_score_never_above_the_mean() -> None:
    res = _engine(tiny_ensemble(members=3), objective="lcb", kappa=2.0).run()
    t = res.candidates
    assert (t["score_k"] <= t["integer_tc_k"] + 1e-9).all()
    for _, group in t.groupby(rank_groups(t), sort=False):
        assert group["score_k"].is_monotonic_decreasing


def test_formation_energy_penalty_steers_away() -> None:
    e = torch.full((118,), -0.1)
    e[NB] = 2.0  # Nb-rich compositions are "unstable" for this toy surrogate
    fe = LinearTc(e).eval()
    base = _engine(LinearTc(_w()), steps2=60, steps3=0, lr=0.05).run()
    eng = DesignEngine(
        LinearTc(_w()).eval(),
        DesignConfig(**{**FAST, "steps2": 60, "steps3": 0, "lr": 0.05, "formation_energy_weight": 1000.0}),
        fe,
        reference=tiny_reference(),
    )
    pen = eng.run()
    assert pen.x_stage2[:, NB].mean() < base.x_stage2[:, NB].mean()
    assert "formation_energy_ev_atom" in pen.candidates.columns


def test_hydride_grid_start() -> None:
    eng = _engine(tiny_ensemble(), init_mode="hydride", pins=["H=0.5"], n_candidates=100000, steps2=2, steps3=2)
    sp = eng.start_points()
    k = int(eng.constraints.free_mask.sum()) - 1  # allowed elements besides H
    assert len(sp) == 9 * k + k * (k - 1) // 2
    assert (sp.x[:, H] >= 0.5).all()
    ternary = [lab for lab in sp.label if re.fullmatch(r"hydride grid: H2[A-Z][a-z]?[A-Z][a-z]?", lab)]
    assert len(set(ternary)) == k * (k - 1) // 2  # every pair of allowed elements once, at H0.5
    assert "hydride grid: H2YLa" in ternary and "hydride grid: HLa" in sp.label  # H2YLa (Z order) and LaH


def test_config_round_trips() -> None:
    cfg = DesignConfig(
        pins=["H>=0.5", Pin("O", 0.25, "exact")],
        exclude="Hg,Tl",
        n_values=(8, 4),
        seed=5,
        init_mode="formulas",
        init_formulas=("YBa2Cu3O7",),
        objective="lcb",
        kappa=0.5,
    )
    assert DesignConfig.from_json(cfg.to_json()) == cfg
    assert DesignConfig.from_toml(cfg.to_toml()) == cfg
    assert cfg.ns == (4, 8)
    with pytest.raises(ValueError, match="unknown design option"):
        DesignConfig.from_dict({"n_candidatez": 3})


def test_best_integer_selection_never_worse_than_final_or_rounding() -> None:
    eng = _engine(tiny_ensemble(), seed=2, n_min=4, n_max=12)
    st = eng.optimize(eng.start_points())
    best = eng.integer_scores(st.integer, st.x_start)  # scores with the objective's penalties
    assert (best >= eng.integer_scores(eng.integerize(st.x_final), st.x_start) - 1e-9).all()
    assert (best >= eng.integer_scores(eng.integerize(st.x_stage2), st.x_start) - 1e-9).all()  # the rounding
    assert ((st.integer_step >= FAST["steps2"]) & (st.integer_step <= FAST["steps2"] + FAST["steps3"])).all()
    final = _engine(tiny_ensemble(), seed=2, n_min=4, n_max=12, integer_select="final")
    sf = final.optimize(final.start_points())
    assert sf.integer.formulas == final.integerize(sf.x_final).formulas


def test_keep_element_count_caps_each_candidate_at_its_start() -> None:
    w = torch.rand(118, generator=torch.Generator().manual_seed(0)) * 50  # many elements worth adding
    model = Recording(LinearTc(w))
    eng = _engine(model, init_mode="dataset", steps2=40, steps3=0, lr=0.05, **PAPER_SETTINGS)
    res = eng.run()
    n_start = (res.x_start > 1e-9).sum(1)
    for x in model.seen[:40]:  # every step's compositions (later calls score the table's formulas)
        assert ((x > 0).sum(1) <= n_start).all()
    free = _engine(
        LinearTc(w), init_mode="dataset", steps2=40, steps3=0, lr=0.05, keep_element_count=False, **PAPER_SETTINGS
    ).run()
    assert ((free.x_stage2 > 0).sum(1) > n_start).any()  # without the cap the projection adds elements


def test_formulas_of_pinned_elements_alone_rank_last():
    """A hydride search must not put pure hydrogen above real hydrides."""
    import numpy as np

    from gdmcd_core.chem.composition import to_vector
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.evidence.candidates import build_candidates, candidate_context
    from tests.design_helpers import tiny_ensemble, tiny_reference

    cfg = DesignConfig(pins=("H>=0.5",), n_candidates=2, steps2=1, steps3=1)
    engine = DesignEngine(tiny_ensemble(), cfg, reference=tiny_reference())
    x = np.stack([to_vector("H4"), to_vector("LaH10")])
    table = build_candidates(candidate_context(engine), x, ["H4", "LaH10"], x, x, engine.integerize(x))
    pinned_only = table["only_pinned_elements"].tolist()  # (site variants of LaH10 may add rows above it)
    assert pinned_only[-1] and not any(pinned_only[:-1])
    assert set(table["integer_formula"].iloc[-1]) <= set("H0123456789")
    assert "La" in table["integer_formula"].iloc[0]


def test_loop_adam_equals_torch_adam() -> None:
    """design.adam.Adam (the loop's in-place Adam) follows torch.optim.Adam step for step, to float32 rounding."""
    from gdmcd_core.design.objective.adam import Adam

    g = torch.Generator().manual_seed(0)
    p_ref = torch.rand(8, 118, generator=g).requires_grad_(True)
    p = p_ref.detach().clone()
    p_start = p.clone()
    ref, ours = torch.optim.Adam([p_ref], lr=0.01), Adam(p, lr=0.01)
    for _ in range(25):
        grad = torch.randn(8, 118, generator=g)
        p_ref.grad = grad.clone()
        ref.step()
        ours.step(grad)
    assert torch.allclose(p, p_ref.detach(), atol=1e-6)
    assert (p - p_start).abs().max() > 0.1  # it moved


def test_best_integer_batches_and_rescoring_only_changed_formulas_keep_the_best() -> None:
    """BestInteger queues checks, scores them in batches and rescores only formulas that changed since the same
    candidate's previous check; the kept formula, score and step equal a check-by-check evaluation."""
    from gdmcd_core.design.loop.best_integer import BestInteger
    from gdmcd_core.design.objective.integer_loss import integerize

    rng = np.random.default_rng(0)
    B, ns = 6, list(range(4, 13))
    x = rng.dirichlet(np.ones(3), size=B)
    xs = np.zeros((B, 118))
    xs[:, [8, 29, 55]] = x  # O, Cu, Ba
    checks = [xs + 0.0]
    for _ in range(5):  # small moves: many candidates keep their formula from one check to the next
        y = np.clip(checks[-1] + rng.normal(0, 0.01, checks[-1].shape) * (checks[-1] > 0), 0, None)
        checks.append(y / y.sum(1, keepdims=True))
    weights = rng.normal(size=118)
    scored = []

    def score_fn(integ, candidate):
        scored.append(len(candidate))
        return integ.fractions @ weights + candidate * 0.01

    best = BestInteger(lambda x, with_formulas: integerize(x, ns, with_formulas=with_formulas), score_fn, 2 * B)
    for step, c in enumerate(checks):
        best.consider(step, c)
    integ, step = best.result()
    every = [integerize(c, ns, with_formulas=False) for c in checks]
    s = np.stack([e.fractions @ weights + np.arange(B) * 0.01 for e in every])  # (checks, B)
    first_best = s.argmax(0)  # the earliest check reaching the maximum
    assert step.tolist() == first_best.tolist()
    assert np.allclose(best.score, s.max(0))
    assert all((integ.amounts[b] == every[first_best[b]].amounts[b]).all() for b in range(B))
    assert sum(scored) < len(checks) * B  # unchanged formulas were not scored again


def test_step_log_rows_equal_per_step_statistics() -> None:
    """StepLog's batched rows equal the per-step statistics computed one step at a time, across forced flushes."""
    from gdmcd_core.design.loop.step_log import StepLog
    from gdmcd_core.design.loop.trajectory import STEP_FIELDS, TrajectoryRecorder

    g = torch.Generator().manual_seed(0)
    rec = TrajectoryRecorder(9)
    log = StepLog(rec, target_tc=100.0, capacity=4)  # 10 steps: two forced flushes and a final one
    want = []
    for step in range(1, 11):
        tc, score, il = torch.rand(9, generator=g) * 150, torch.rand(9, generator=g) * 150, torch.rand(9, generator=g)
        log.add(step, 2 if step <= 5 else 3, 0.1 * step, tc, score, il)
        q = torch.quantile(tc, torch.tensor([0.1, 0.5, 0.9]))
        hinge = torch.relu(100.0 - score).mean()
        want.append([step, 2 if step <= 5 else 3, 0.1 * step, tc.max(), q[0], q[1], q[2], hinge, il.median()])
    assert len(rec.rows["step"]) == 8  # flushed at capacity, twice
    log.flush()
    fields = "step stage alpha tc_best_k tc_q10_k tc_median_k tc_q90_k hinge_mean_k int_loss_median".split()
    got = np.array([rec.rows[k] for k in fields]).T
    assert set(rec.rows) == set(STEP_FIELDS)
    assert np.allclose(got, np.array([[float(v) for v in row] for row in want]), atol=1e-4)


def test_candidates_csv_carries_the_reduced_formula(tmp_path) -> None:
    """candidates.csv has reduced_formula beside integer_formula: the integer formula over the gcd of its amounts."""
    import pandas as pd

    from gdmcd_core.chem.composition import parse_formula

    _engine(tiny_ensemble()).run(run_dir=tmp_path / "r")
    table = pd.read_csv(tmp_path / "r" / "candidates.csv")
    cols = list(table.columns)
    assert cols.index("reduced_formula") == cols.index("integer_formula") + 1 and len(table)
    for full, red in zip(table["integer_formula"], table["reduced_formula"], strict=True):
        a, b = parse_formula(full), parse_formula(red)
        ratio = [a[s] / b[s] for s in a]
        assert set(a) == set(b) and max(ratio) - min(ratio) < 1e-9 and min(ratio) >= 1


def test_the_sigma_design_ranks_by_grows_with_the_distance_to_known_superconductors() -> None:
    """A model calibrated with a distance term (b = 20 K per unit L1): the loop's σ for a reference composition is
    the spread term alone, for a composition far from every reference one it adds b · d."""
    from design_helpers import FORMULAS, constant_ensemble

    card = {"calibration": {"sigma_scale": 1.0, "distance_scale_k": 20.0, "neighbor_scale": 0.0}}
    ens = constant_ensemble((10.0, 14.0), card)  # spread 2 K wherever
    engine = _engine(ens, objective="lcb")
    near = to_vector(FORMULAS[0])[None]
    far = to_vector("Xe")[None]
    _, sd_near = engine.predict(near)
    _, sd_far = engine.predict(far)
    d_far = float(np.abs(far - np.stack([to_vector(f) for f in FORMULAS])).sum(1).min())
    assert sd_near[0] == pytest.approx(2.0, abs=1e-4)
    assert sd_far[0] == pytest.approx(np.hypot(2.0, 20.0 * d_far), rel=1e-4) and sd_far[0] > 10 * sd_near[0]


def test_the_sigma_design_ranks_by_has_the_neighbour_term_of_its_calibration() -> None:
    """A model calibrated with the neighbour term (g = 0.5): at a reference composition the loop's σ adds half
    the gap between its Tc (12 K) and that reference superconductor's measured Tc."""
    from design_helpers import FORMULAS, constant_ensemble

    card = {"calibration": {"sigma_scale": 1.0, "distance_scale_k": 0.0, "neighbor_scale": 0.5}}
    ens = constant_ensemble((10.0, 14.0), card)  # mean 12 K, spread 2 K wherever
    engine = _engine(ens, objective="lcb")
    x = np.stack([to_vector(f) for f in FORMULAS])
    _, tc_nn = engine.reference.supercon_neighbors(x)
    _, sd = engine.predict(x)
    assert np.allclose(sd, np.hypot(2.0, 0.5 * np.abs(12.0 - tc_nn)), rtol=1e-4)
    assert len(set(np.round(sd, 3))) > 1  # the references' Tc differ, and so does σ
