"""Chemistry in the design objective and the candidate table: valence terms, default
exclusions, the element cap, the trust region, family interpolation, the e_hull columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from design_helpers import LinearTc, one_thread, tiny_ensemble, tiny_reference  # noqa: F401  (autouse fixture)

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import implausible_symbols, index_of, noble_gas_symbols
from gdmcd_core.chem.valence import (
    anion_former_mask,
    cu_valence_plausible,
    typical_valences,
    valence_bounds,
)
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.config.presets import PAPER_SETTINGS
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.design.evidence.filters import filter_candidates
from gdmcd_core.design.loop import starts as init
from gdmcd_core.design.objective import loss as obj
from gdmcd_core.design.stability import energy as stability
from gdmcd_core.design.stability.hull import HullReference, ReferenceEntry

FAST = {"steps2": 15, "steps3": 15, "n_candidates": 6, "record_every": 5, "hull_columns": False}
TOL = 1e-6


def _x(*formulas: str) -> torch.Tensor:
    return torch.tensor(np.stack([to_vector(f) for f in formulas]), dtype=torch.float32)


def _tempting_w() -> torch.Tensor:
    """Tc weights that reward noble gases and radioactive elements most."""
    w = torch.linspace(0, 30, 118)
    for s in implausible_symbols():
        w[index_of(s)] = 500.0
    return w


def _engine(model, **kw) -> DesignEngine:
    return DesignEngine(model.eval(), DesignConfig(**{**FAST, **kw}), reference=tiny_reference())


def test_valence_term_zero_when_balanced_positive_when_oxygen_starved() -> None:
    bounds = (*valence_bounds(), anion_former_mask())
    p = obj.valence_penalty(_x("YBa2Cu3O7", "NaCl", "Nb3Sn", "HgBa2Ca2Cu3O0.5"), bounds)
    assert p[0] == 0 and p[1] == 0 and p[2] == 0  # balanced, balanced, intermetallic
    assert p[3] > 0.5
    loss = obj.design_loss(torch.full((4,), 400.0), 300.0, chemistry=1000.0 * p)
    assert loss[:3].abs().max() == 0 and loss[3] == pytest.approx(1000.0 * float(p[3]))


def test_cu_valence_term_matches_the_plausibility_check() -> None:
    formulas = ["YBa2Cu3O7", "La1.85Sr0.15CuO4", "Nd1.85Ce0.15CuO4", "HgBa2Ca2Cu3O8", "YBa2Cu3O6", "Ba2YCu5HgO13"]
    formulas += ["CuFe2O4", "Nb3Sn", "NaCl", "La5Cu3O12"]
    p = obj.cu_penalty(_x(*formulas), typical_valences())
    for f, v in zip(formulas, p.tolist(), strict=True):
        ok = cu_valence_plausible(parse_formula(f))
        assert (v == 0) == (ok is not False), f  # zero exactly when plausible or undefined
    assert p[formulas.index("Ba2YCu5HgO13")] > 0.01  # over-oxidized: formal Cu +3.4


def test_default_exclusions_hold_unless_pinned() -> None:
    c = DesignConfig().constraints(unseen=())
    assert set(implausible_symbols()) <= set(c.excluded)
    assert set(noble_gas_symbols()) | {"U", "Th", "Pu", "Tc", "Pm", "Po"} <= set(c.excluded)
    res = _engine(LinearTc(_tempting_w()), exclude_unseen=False, steps2=40, steps3=10, lr=0.05, max_elements=0).run()
    bad = [index_of(s) for s in implausible_symbols()]
    for x in (res.x_start, res.x_stage2, res.x_final):
        assert (x[:, bad] == 0).all()
    for f in res.candidates["integer_formula"]:
        assert not set(parse_formula(f)) & set(implausible_symbols()), f
    # a pinned radioactive element is allowed (and the others stay excluded)
    cfg = DesignConfig(**FAST, pins=["U>=0.1"], exclude_unseen=False)
    assert "U" not in cfg.constraints().excluded and "Th" in cfg.constraints().excluded
    res = DesignEngine(LinearTc(_tempting_w()).eval(), cfg, reference=tiny_reference()).run()
    assert (res.x_final[:, index_of("U")] >= 0.1 - TOL).all()
    assert all("U" in parse_formula(f) for f in res.candidates["integer_formula"])
    # switched off: the paper's behaviour
    assert not DesignConfig(exclude_implausible=False).constraints().implausible


def test_max_elements_holds_for_integer_formulas() -> None:
    w = torch.rand(118, generator=torch.Generator().manual_seed(0)) * 50  # many elements worth adding
    for cap in (3, 6):
        eng = _engine(LinearTc(w), max_elements=cap, keep_element_count=False, init_mode="mixed", lr=0.05)
        res = eng.run()
        assert ((res.x_final > 0).sum(1) <= cap).all()
        assert all(len(parse_formula(f)) <= cap for f in res.candidates["integer_formula"])
        assert all(len(parse_formula(f)) <= cap for f in res.candidates["rounded_formula"])
    assert DesignConfig().max_elements == 6


def test_trust_region_keeps_candidates_near_their_start() -> None:
    w = torch.linspace(0, 30, 118)
    w[index_of("Nb")] = 300.0  # pure Nb is far from every start
    far = _engine(
        LinearTc(w), steps2=60, steps3=0, lr=0.05, distance_weight=0.0, valence_weight=0.0, cu_valence_weight=0.0
    )
    near = _engine(
        LinearTc(w), steps2=60, steps3=0, lr=0.05, distance_weight=2000.0, trust_radius=0.2, cu_valence_weight=0.0
    )
    d_far = np.abs(far.run().x_stage2 - far.run().x_start).sum(1)
    r = near.run()
    d_near = np.abs(r.x_stage2 - r.x_start).sum(1)
    assert d_near.max() < 0.2 + 0.05 < np.median(d_far)
    x0 = torch.tensor(r.x_start, dtype=torch.float32)
    assert obj.trust_region_excess(x0, x0, 0.0).abs().max() == 0


def test_family_interpolation_stays_within_one_element() -> None:
    ref = tiny_reference()
    rng = np.random.default_rng(0)
    pool = init.StartPool.of(ref, 1.0)
    sp = init.interpolate(pool, 64, rng, partners="family", max_elements=6)
    for lab in sp.label:
        a, b = (parse_formula(t.split("*", 1)[1]) for t in lab.split(" + "))
        union = set(a) | set(b)
        assert len(union) <= max(len(a), len(b)) + 1 and len(union) <= 6, lab
    n_any = (init.interpolate(pool, 64, rng, partners="any").x > 0).sum(1)
    assert (sp.x > 0).sum(1).mean() < n_any.mean()


def test_lcb_default_works_with_a_single_model() -> None:
    assert DesignConfig().objective == "lcb"
    res = _engine(LinearTc(torch.linspace(0, 30, 118)), steps2=5, steps3=5).run()
    assert (res.candidates["integer_tc_std_k"] == 0).all()


def test_candidate_table_chemistry_columns(monkeypatch) -> None:
    # tiny hull: NaCl on the hull at -2 eV/atom; the toy surrogate gives -2 eV/atom to every composition
    hull = HullReference([ReferenceEntry({"Na": 1, "Cl": 1}, -2.0), ReferenceEntry({"Y": 1, "O": 1}, -3.0)])
    monkeypatch.setattr(stability, "default_hull_reference", lambda: hull)
    fe = LinearTc(torch.full((118,), -2.0)).eval()
    fe.card = {"metrics": {"test_mae_ev_atom": 0.1}}
    cfg = DesignConfig(**{**FAST, "hull_columns": True})
    res = DesignEngine(tiny_ensemble(), cfg, fe, reference=tiny_reference()).run()
    t = res.candidates
    for col in ("charge_neutral", "cu_valence", "cu_valence_plausible", "e_hull_ev_atom", "e_hull_sigma_ev_atom"):
        assert col in t.columns, col
    assert t["e_hull_ev_atom"].notna().all() and (t["e_hull_ev_atom"] >= 0).all()
    assert t["e_hull_sigma_ev_atom"].between(0, 0.1 + 1e-9).all()
    cu = [cu_valence_plausible(parse_formula(f)) for f in t["integer_formula"]]
    assert [pd.NA if v is None else v for v in cu] == [v for v in t["cu_valence_plausible"].tolist()]
    # no formation-energy model: the e_hull columns exist, empty
    res = _engine(tiny_ensemble()).run()
    assert res.candidates["e_hull_ev_atom"].isna().all() and "charge_neutral" in res.candidates.columns


def test_hull_columns_of_a_known_stable_binary() -> None:
    ref = HullReference([ReferenceEntry({"Li": 1, "Cl": 1}, -1.0), ReferenceEntry({"Li": 3, "Cl": 1}, -0.4)])
    h = stability.hull_columns(["LiCl", "Li3Cl", "LiCl"], np.array([-1.0, -0.4, np.nan]), 0.05, ref)
    assert h["e_hull_ev_atom"][0] == pytest.approx(0.0, abs=1e-9) and h["e_hull_ev_atom"][1] == pytest.approx(0.1)
    assert h["e_hull_sigma_ev_atom"][1] == pytest.approx(0.05) and np.isnan(h["e_hull_ev_atom"][2])
    assert stability.hull_columns(["LiCl"], None, 0.05, ref)["e_hull_ev_atom"].isna().all()


def test_stable_filter_uses_energy_above_hull() -> None:
    t = pd.DataFrame({"integer_formula": ["A", "B", "C", "D"], "e_hull_ev_atom": [0.0, 0.1, 0.3, np.nan]})
    t["formation_energy_ev_atom"] = [1.0, -1.0, -1.0, -1.0]  # no longer what "stable" reads
    assert list(filter_candidates(t, ["stable"])["integer_formula"]) == ["A", "B"]


def test_default_top_candidates_have_no_noble_gas() -> None:
    res = _engine(tiny_ensemble(), exclude_unseen=False, n_candidates=8).run()
    top = res.candidates.head(5)["integer_formula"]
    assert len(top) and not any(set(parse_formula(f)) & set(noble_gas_symbols()) for f in top)


def test_paper_settings_switch_the_chemistry_off() -> None:
    cfg = DesignConfig(**PAPER_SETTINGS)
    assert cfg.valence_weight == cfg.cu_valence_weight == cfg.distance_weight == 0 and cfg.max_elements == 0
    assert not cfg.constraints().implausible and cfg.objective == "mean"


def test_candidates_failing_a_chemistry_check_rank_after_those_that_pass():
    import pandas as pd

    from gdmcd_core.design.evidence.candidates import _passes_checks, rank_rows

    table = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "integer_formula": ["Ba2Cu3O", "YBa2Cu3O7", "MgB2", "H4"],
            "only_pinned_elements": [False, False, False, True],
            "charge_neutral": pd.array([False, True, pd.NA, True], dtype="boolean"),
            "cu_valence_plausible": pd.array([False, True, pd.NA, pd.NA], dtype="boolean"),
        }
    )
    assert _passes_checks(table).tolist() == [False, True, True, True]  # an empty check counts as passed
    ranked = rank_rows(table.assign(passes_chemistry_checks=_passes_checks(table)), credible_first=True)
    assert ranked["integer_formula"].tolist() == ["YBa2Cu3O7", "MgB2", "Ba2Cu3O", "H4"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4]


def test_chemistry_penalty_in_one_pass_equals_the_separate_terms() -> None:
    x = _x("YBa2Cu3O7", "YBa2Cu3O4", "HgBa2Ca2Cu3O12", "MgB2", "LaFeAsO", "Nb3Sn", "RbBa4Cu3HO13").requires_grad_(True)
    x0 = _x("YBa2Cu3O7", "YBa2Cu3O7", "HgBa2Ca2Cu3O8", "MgB2", "LaFeAsO", "Nb3Sn", "YBa2Cu3O7")
    from gdmcd_core.chem.valence import anion_former_mask, typical_valences, valence_bounds

    fused = obj.ChemistryPenalty("cpu", torch.float32, 3000.0, 1000.0, 100.0, 0.3)(x, x0)
    separate = (
        3000.0 * obj.valence_penalty(x, (*valence_bounds(), anion_former_mask()))
        + 1000.0 * obj.cu_penalty(x, typical_valences())
        + 100.0 * obj.trust_region_excess(x, x0, 0.3)
    )
    assert torch.allclose(fused, separate, rtol=1e-5, atol=1e-4)
    assert (fused[[1, 2, 6]] > 0).all() and fused[[0, 3, 5]].abs().max() < 1e-6  # starved, over-oxidized; fine
    g1 = torch.autograd.grad(fused.sum(), x, retain_graph=True)[0]
    g2 = torch.autograd.grad(separate.sum(), x)[0]
    assert torch.allclose(g1, g2, rtol=1e-4, atol=1e-3)
    assert not obj.ChemistryPenalty("cpu", torch.float32, 0.0, 0.0, 0.0, 0.3).active


def test_chemistry_penalty_value_and_gradient_by_hand_equal_autograd() -> None:
    """The loop's fast path (ChemistryPenalty.gradient) equals the autograd gradient of the penalty,
    on cuprates inside and outside the Cu window (both sides), valence-starved and over-oxidized formulas."""
    x = _x(*"YBa2Cu3O7 YBa2Cu3O4 HgBa2Ca2Cu3O12 MgB2 LaFeAsO Nb3Sn RbBa4Cu3HO13 La2CuO2 Cu2O".split())
    x0 = _x(*"YBa2Cu3O7 YBa2Cu3O7 HgBa2Ca2Cu3O8 MgB2 LaFeAsO Nb3Sn YBa2Cu3O7 La2CuO4 CuO".split())
    for weights in [(3000.0, 1000.0, 100.0), (3000.0, 0.0, 0.0), (0.0, 1000.0, 0.0), (0.0, 0.0, 100.0)]:
        pen = obj.ChemistryPenalty("cpu", torch.float32, *weights, 0.3)
        xg = x.clone().requires_grad_(True)
        want = pen(xg, x0)
        (want_g,) = torch.autograd.grad(want.sum(), xg)
        got_g = pen.gradient(x, x0)
        assert torch.allclose(got_g, want_g, rtol=1e-5, atol=1e-4), weights
        assert (want > 0).any() and (got_g != 0).any(), weights  # every term is active somewhere


def test_candidates_get_the_trees_second_opinion_when_the_checkpoint_has_trees(monkeypatch) -> None:
    from types import SimpleNamespace

    import gdmcd_core.design.evidence.candidates as candidates_module

    res = _engine(tiny_ensemble()).run()
    assert "integer_tc_trees_k" not in res.candidates.columns  # no trees beside the model
    trees = SimpleNamespace(predict=lambda x: np.full(len(x), 10.0))
    monkeypatch.setattr(candidates_module, "second_opinion", lambda model: (trees, ""))
    t = _engine(tiny_ensemble()).run().candidates
    assert (t["integer_tc_trees_k"] == 10.0).all()
    expected = np.where(t["integer_tc_k"] > 0, (t["integer_tc_k"] + 10.0) / 2, 0.0)
    np.testing.assert_allclose(t["integer_tc_consensus_k"], expected, rtol=1e-6)
    # not used for ranking: the same run without trees ranks the same formulas in the same order
    assert t["integer_formula"].tolist() == res.candidates["integer_formula"].tolist()
