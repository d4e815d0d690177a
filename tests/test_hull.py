"""Convex-hull stability (gdmcd_core.design.stability.hull) on tiny in-test references; no data file needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdmcd_core.design.stability.hull import (
    HullReference,
    ReferenceEntry,
    formula_key,
    hull_accuracy,
    load_jarvis_entries,
)


def _ab_reference() -> HullReference:
    # A-B binary with AB on the hull at -1 eV/atom; A3B slightly above the A-AB tie line.
    entries = [
        ReferenceEntry({"Li": 1, "Cl": 1}, -1.0, "AB"),
        ReferenceEntry({"Li": 3, "Cl": 1}, -0.4, "A3B"),  # tie line at x_B=0.25: -0.5
    ]
    return HullReference(entries)


def test_stable_binary_on_hull_and_point_above() -> None:
    ref = _ab_reference()
    assert ref.e_hull({"Li": 1, "Cl": 1}, -1.0) == pytest.approx(0.0, abs=1e-9)
    assert ref.hull_energy({"Li": 1, "Cl": 1}) == pytest.approx(-1.0)
    assert ref.e_hull({"Li": 3, "Cl": 1}, -0.4) == pytest.approx(0.1)
    assert ref.e_hull({"Li": 1, "Cl": 3}, 0.0) == pytest.approx(0.5)  # tie line AB-Cl at x_B=0.75: -0.5
    # below the known hull: a new stable phase, e_hull 0 and a negative signed distance
    assert ref.e_hull({"Li": 1, "Cl": 2}, -1.0) == 0.0
    assert ref.hull_distance({"Li": 1, "Cl": 2}, -1.0) == pytest.approx(-1.0 + 2 / 3)


def test_subsystems_and_unknown_elements() -> None:
    ref = _ab_reference()
    # a ternary of Li-Cl-Nb: the Li-Cl binary still sets the hull; Nb has only its 0 eV reference.
    assert ref.hull_energy({"Li": 1, "Cl": 1, "Nb": 2}) == pytest.approx(-0.5)
    assert ref.e_hull({"Nb": 1, "Sn": 1}, 0.2) == pytest.approx(0.2)
    assert len(ref.entries_in({"Li", "Cl"})) == 4  # two elements + two compounds


def test_uncertainty_propagation() -> None:
    ref = _ab_reference()
    e, s = ref.e_hull_with_uncertainty({"Li": 1, "Cl": 3}, 0.0, 0.05)  # far above: sigma passes through
    assert e == pytest.approx(0.5) and s == pytest.approx(0.05)
    e, s = ref.e_hull_with_uncertainty({"Li": 1, "Cl": 1}, -1.5, 0.05)  # far below: 0 +- 0
    assert e == 0.0 and s == 0.0
    e, s = ref.e_hull_with_uncertainty({"Li": 1, "Cl": 1}, -1.0, 0.1)  # on the hull: half
    assert e == pytest.approx(0.0, abs=1e-9) and s == pytest.approx(0.05)
    es, ss = ref.e_hull_many([{"Li": 1, "Cl": 3}, {"Li": 1, "Cl": 1}], [0.0, -1.0], [0.05, 0.0])
    assert es.shape == ss.shape == (2,)
    with pytest.raises(ValueError):
        ref.e_hull_with_uncertainty({"Li": 1}, 0.0, -1.0)


def test_lowest_polymorph_is_kept() -> None:
    ref = HullReference([ReferenceEntry({"Li": 1, "Cl": 1}, -0.5), ReferenceEntry({"Li": 2, "Cl": 2}, -1.0)])
    assert len(ref) == 1 and ref.by_key[formula_key({"Li": 1, "Cl": 1})].e_form == -1.0


def _write_csv(path: Path) -> Path:
    path.write_text(
        "jid,formula,formation_energy_per_atom,optb88vdw_bandgap,ehull\n"
        "J1,LiCl,-1.0,5.0,0.0\n"
        "J2,Li2Cl2,-0.9,5.0,0.1\n"  # same reduced formula, higher energy: dropped
        "J3,Li3Cl,-0.3,0.0,0.2\n"
        "J4,LiCl3,0.2,0.0,0.7\n"
        "J5,Xx2O,-1.0,0.0,0.0\n"  # unknown element: skipped
        "J6,,-1.0,0.0,0.0\n"  # blank formula: skipped
        "J7,NaCl,na,0.0,0.0\n"  # no energy: skipped
        "J8,Li,0.0,0.0,0.0\n"
    )
    return path


def test_jarvis_loader_and_holdout_accuracy(tmp_path: Path) -> None:
    csv = _write_csv(tmp_path / "jarvis.csv")
    df = load_jarvis_entries(csv)
    assert sorted(df["jid"]) == ["J1", "J3", "J4", "J8"]
    assert df.set_index("jid").loc["J1", "e_form"] == -1.0
    ref = HullReference.from_jarvis(csv)
    assert ref.e_hull({"Li": 3, "Cl": 1}, -0.3) == pytest.approx(0.2)
    acc = hull_accuracy(10, seed=0, reference=ref)
    # LiCl held out: its own energy is below the Li-Cl line -> stable, as in the file; Li3Cl held
    # out sits 0.2 above the hull and LiCl3 0.7 above: unstable, as in the file.
    assert acc.n == 3 and acc.accuracy == 1.0
    assert acc.both_stable == 1 and acc.both_unstable == 2


def test_jarvis_loader_from_data_dir(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    _write_csv(tmp_path / "raw" / "jarvis_dft_3d_subset.csv")
    assert len(load_jarvis_entries(data_dir=tmp_path)) == 4
