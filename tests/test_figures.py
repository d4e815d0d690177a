"""Figure builders: structure (tiles, labels, traces, axes), not pixels."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from gdmcd_app import data, figures, ptable
from gdmcd_core.chem.elements import N_ELEMENTS, element_table, symbols
from gdmcd_core.training.metrics import mae_by_range


def _tiles(fig: go.Figure) -> go.Scatter:
    return fig.data[0]


@pytest.mark.parametrize("layout", ptable.LAYOUTS)
def test_periodic_table_has_118_labelled_clickable_tiles(layout: str) -> None:
    fig = ptable.periodic_table(layout=layout)
    t = _tiles(fig)
    assert isinstance(t, go.Scatter)
    assert len(t.x) == len(t.y) == N_ELEMENTS
    assert list(t.customdata) == list(symbols())  # the symbol a click returns
    assert list(t.text) == list(symbols())
    assert t.marker.symbol == "square"
    positions = set(zip(t.x, t.y, strict=True))
    assert len(positions) == N_ELEMENTS  # no two tiles overlap
    for e, hover in zip(element_table(), t.hovertext, strict=True):
        assert e.name in hover and f"Z = {e.z}" in hover
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # period 1 at the top


def test_tile_positions() -> None:
    assert ptable.tile_position(1) == (1.0, 1.0)  # H
    assert ptable.tile_position(2) == (18.0, 1.0)  # He
    assert ptable.tile_position(71) == (3.0, 6.0)  # Lu in group 3
    assert ptable.tile_position(57) == (3.0, 8.5)  # La starts the lanthanide row
    assert ptable.tile_position(102) == (16.0, 9.5)  # No ends the actinide row
    assert ptable.tile_position(2, "long") == (32.0, 1.0)
    assert ptable.tile_position(58, "long") == (4.0, 6.0)  # Ce in the long form
    with pytest.raises(ValueError, match="layout"):
        ptable.tile_position(1, "round")


def test_periodic_table_block_and_state_colours() -> None:
    fig = ptable.periodic_table(states={"H": "pinned", "O": "excluded"})
    colors = dict(zip(symbols(), _tiles(fig).marker.color, strict=True))
    assert colors["H"] == ptable.STATE_COLORS["pinned"]
    assert colors["O"] == ptable.STATE_COLORS["excluded"]
    assert colors["Na"] == ptable.BLOCK_COLORS["s"]
    assert colors["Fe"] == ptable.BLOCK_COLORS["d"]
    assert colors["Ce"] == ptable.BLOCK_COLORS["f"]
    hover = dict(zip(symbols(), _tiles(fig).hovertext, strict=True))
    assert "pinned" in hover["H"] and "excluded" in hover["O"] and "free" in hover["Fe"]


def test_periodic_table_frequency_colours_and_colorbar() -> None:
    counts = {"Cu": 5000, "O": 9000, "H": 10}
    fig = ptable.periodic_table(color_by="frequency", values=counts, states={"H": "pinned"})
    colors = dict(zip(symbols(), _tiles(fig).marker.color, strict=True))
    assert colors["Cu"] != colors["O"]  # graded by count
    assert colors["H"] == ptable.STATE_COLORS["pinned"]  # state wins over frequency
    assert colors["Xe"] == "#f1f3f5"  # no entries: pale
    assert len(fig.data) == 2 and fig.data[1].marker.showscale  # the colour bar
    assert fig.data[1].customdata is None  # the colour-bar trace gives no clickable points
    assert "SuperCon entries: 5,000" in dict(zip(symbols(), _tiles(fig).hovertext, strict=True))["Cu"]
    with pytest.raises(ValueError, match="color_by"):
        ptable.periodic_table(color_by="mass")


def _series(n: int = 30, steps2: int = 20) -> dict[str, np.ndarray]:
    step = np.arange(1, n + 1)
    return {
        "step": step,
        "stage": np.where(step <= steps2, 2, 3),
        "alpha": np.where(step <= steps2, 0.0, (step - steps2) * 10.0),
        "tc_best_k": 50 + step * 1.0,
        "tc_median_k": 30 + step * 0.5,
        "tc_q10_k": 20 + step * 0.2,
        "tc_q90_k": 40 + step * 0.8,
        "int_loss_median": 1.0 / step,
    }


def _vlines(fig: go.Figure) -> list:
    return [s for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1]


def test_tc_trace_band_median_best_and_stage3_line() -> None:
    fig = figures.tc_trace(_series(), stage3_step=20, target_tc=300)
    names = [t.name for t in fig.data]
    assert names == ["q10", "q10–q90", "median", "best"]
    assert fig.data[1].fill == "tonexty"
    assert list(fig.data[3].y[:2]) == [51.0, 52.0]
    assert [s.x0 for s in _vlines(fig)] == [20]
    assert fig.layout.yaxis.title.text == figures.TC_LABEL
    # the stage-3 line is left out until the run has reached it (it would squash the data)
    assert _vlines(figures.tc_trace(_series(10), stage3_step=20)) == []


def test_loss_alpha_trace_uses_two_axes() -> None:
    fig = figures.loss_alpha_trace(_series(), stage3_step=20)
    assert [t.name for t in fig.data] == ["L_integer (median)", "α"]
    assert fig.data[1].yaxis == "y2"
    assert fig.layout.yaxis2.overlaying == "y"


def test_alpha_ramp_preview_matches_the_schedule() -> None:
    step, alpha = data.alpha_schedule(5, 5, 100.0)
    fig = figures.alpha_ramp(step, alpha, stage3_step=5)
    assert list(fig.data[0].y) == [0, 0, 0, 0, 0, 0, 25, 50, 75, 100]
    assert len(_vlines(fig)) == 1


def test_composition_area_stacks_one_trace_per_element() -> None:
    steps = np.array([0, 10, 20])
    fr = {"Cu": np.array([0.5, 0.4, 0.3]), "O": np.array([0.5, 0.5, 0.5]), "other": np.array([0.0, 0.1, 0.2])}
    fig = figures.composition_area(steps, fr, stage3_step=10, title="x")
    assert [t.name for t in fig.data] == ["Cu", "O", "other"]
    assert {t.stackgroup for t in fig.data} == {"x"}
    assert fig.layout.yaxis.title.text == figures.FRACTION_LABEL
    assert len(_vlines(fig)) == 1


def test_composition_area_marks_the_integer_formula_drawn_last() -> None:
    steps = np.array([0, 10, 20, 21])  # the last point: the integer formula, after the loop
    fr = {"Nb": np.array([0.4, 0.3, 0.35, 0.375]), "V": np.array([0, 0, 0, 0.125]), "H": np.full(4, 0.5)}
    fig = figures.composition_area(steps, fr, stage3_step=10, integer_step=21)
    assert [t.name for t in fig.data] == ["Nb", "V", "H"]
    assert sorted(s.x0 for s in _vlines(fig)) == [10, 21]
    assert "integer formula" in [a.text for a in fig.layout.annotations]
    assert len(_vlines(figures.composition_area(steps, fr))) == 0  # no line unless asked


def test_candidate_path_fractions_over_tc_with_the_integer_point() -> None:
    steps = np.array([0, 10, 20, 21])
    fr = {"Nb": np.array([0.4, 0.3, 0.35, 0.375]), "V": np.array([0, 0, 0, 0.125]), "H": np.full(4, 0.5)}
    tc = np.array([5.0, 8.0, 9.0, 9.5])
    fig = figures.candidate_path(steps, fr, tc, integer_tc=(9.5, 1.5), stage3_step=10, title="Nb3VH4")
    area = [t for t in fig.data if t.stackgroup == "x"]
    assert [t.name for t in area] == ["Nb", "V", "H"]  # every element of the integer formula, V included
    assert all(t.xaxis == "x" and t.yaxis == "y" for t in area)  # top panel
    assert list(area[1].y) == [0, 0, 0, 0.125] and list(area[1].x) == [0, 10, 20, 21]
    line, point = [t for t in fig.data if t.stackgroup != "x"]
    assert line.yaxis == "y2" and list(line.x) == [0, 10, 20] and list(line.y) == [5.0, 8.0, 9.0]  # the loop's Tc
    assert list(point.x) == [21] and list(point.y) == [9.5] and list(point.error_y.array) == [1.5]
    assert fig.layout.yaxis.title.text == figures.FRACTION_LABEL and fig.layout.yaxis2.title.text == figures.TC_LABEL
    assert fig.layout.xaxis2.title.text == figures.STEP_LABEL
    xs = [s.x0 for s in _vlines(fig)]
    assert xs.count(21) == 2 and xs.count(10) == 2  # integer step and stage 3, in both panels
    assert {"integer formula", "stage 3"} <= {a.text for a in fig.layout.annotations}
    plain = figures.candidate_path(steps[:3], {k: v[:3] for k, v in fr.items()}, tc[:3])
    assert len(plain.data) == 4 and 21 not in [s.x0 for s in _vlines(plain)]  # no integer point: none drawn


def test_candidate_lines_one_per_label() -> None:
    fig = figures.candidate_lines({"#1": ([0, 1], [1, 2]), "#2": ([0, 1], [3, 4])}, stage3_step=5)
    assert [t.name for t in fig.data] == ["#1", "#2"]
    assert _vlines(fig) == []


def test_tc_before_after_counts_and_diagonal() -> None:
    fig = figures.tc_before_after([10, 20, 30], [15, 10, 40])
    assert fig.data[0].name == "no change" and list(fig.data[0].x) == list(fig.data[0].y)
    assert len(fig.data[1].x) == 3
    assert "2 up, 1 down" in fig.layout.title.text


def test_element_count_change_histogram() -> None:
    fig = figures.element_count_change([0, 1, 1, 2, 2, 2])
    bar = fig.data[0]
    assert list(bar.x) == [0, 1, 2] and list(bar.y) == [1, 2, 3]
    empty = figures.element_count_change([])
    assert len(empty.data[0].x) == 0


def test_parity_and_error_by_range() -> None:
    fig = figures.parity_plot([1, 50, 100], [2, 45, 90], [1, 2, 3])
    assert fig.data[1].error_y.array is not None
    assert fig.layout.yaxis.scaleanchor == "x"
    rows = mae_by_range(np.array([5.0, 20.0, 50.0, 100.0]), np.array([6.0, 25.0, 50.0, 80.0]))
    fig = figures.error_by_range(rows)
    assert list(fig.data[0].x) == ["0–10 K", "10–30 K", "30–77 K", "77–300 K"]
    assert list(fig.data[0].y) == [1.0, 5.0, 0.0, 20.0]


def test_every_chart_in_the_app_passes_a_config_and_results_export_svg() -> None:
    """Every st.plotly_chart call names its config; result figures use figures.PLOT_CONFIG, whose camera saves SVG."""
    import ast
    from pathlib import Path

    from gdmcd_app.figures import PLOT_CONFIG

    assert PLOT_CONFIG["toImageButtonOptions"]["format"] == "svg" and PLOT_CONFIG["displaylogo"] is False
    calls, with_shared = [], 0
    for path in Path("gdmcd_app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "plotly_chart":
                kw = {k.arg: k.value for k in node.keywords}
                calls.append((path.name, node.lineno, "config" in kw))
                with_shared += "config" in kw and ast.unparse(kw["config"]) == "figures.PLOT_CONFIG"
    assert calls and all(has for _, _, has in calls), [c for c in calls if not c[2]]
    assert with_shared >= len(calls) - 2  # the periodic table and the α preview hide the modebar


def test_a_campaigns_measured_rows_are_drawn_before_and_after_the_update() -> None:
    rows = [
        {"formula": "Nb3Sn", "measured_k": 18.0, "model": "before", "predicted_k": 9.0},
        {"formula": "Nb3Sn", "measured_k": 18.0, "model": "after", "predicted_k": 15.0},
    ]
    fig = figures.measured_before_after(rows)
    assert [t.name for t in fig.data] == ["y = x", "before the update", "after the update"]
    assert list(fig.data[1].y) == [9.0] and list(fig.data[2].y) == [15.0] and fig.data[0].x[1] >= 18.0
