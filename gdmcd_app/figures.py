"""Plotly figure builders for the web app. Each takes plain data and returns a `go.Figure`.

No Streamlit, no model, no file access: the pages compute the data (see app_data) and lay the
figures out. Axis labels and colours have one source of truth here.

The periodic table is a `go.Scatter` of square markers, one per element, at (column, period),
with the symbol in `customdata`, so that a click selects a point whose symbol the app can read
(a heatmap returns no points on click).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from gdmcd_core.chem.elements import element_table

TC_LABEL = "Tc (K)"
STEP_LABEL = "step"
INT_LOSS_LABEL = "L_integer (median)"
ALPHA_LABEL = "α"
FRACTION_LABEL = "atomic fraction"

BLOCK_COLORS = {"s": "#f6bd60", "p": "#a7c957", "d": "#84a9c0", "f": "#cdb4db"}
STATE_COLORS = {"pinned": "#2b8a3e", "excluded": "#495057"}
STATE_TEXT = {"pinned": "#ffffff", "excluded": "#ced4da"}
FREQ_COLORSCALE = "YlOrRd"
BEST_COLOR, MEDIAN_COLOR, BAND_COLOR = "#d6336c", "#1c7ed6", "rgba(28, 126, 214, 0.18)"
STAGE3_COLOR = "#868e96"
LAYOUTS = ("standard", "long")
_FONT = "Inter, Helvetica, Arial, sans-serif"


def _base_layout(fig: go.Figure, height: int, title: str | None = None, **kw: Any) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        title=dict(text=title, x=0.01, font=dict(size=14)) if title else None,
        font=dict(family=_FONT, size=12),
        template="plotly_white",
        **kw,
    )
    return fig


def _stage3_line(fig: go.Figure, stage3_step: int | None, x: Sequence[float] | np.ndarray | None = None) -> None:
    """A dashed line where stage 3 began, drawn only once the data `x` has reached it."""
    if stage3_step is None:
        return
    xs = np.asarray(x if x is not None else [], dtype=float)
    if xs.size == 0 or not np.isfinite(xs).any() or np.nanmax(xs) < stage3_step:
        return
    fig.add_vline(
        x=stage3_step,
        line=dict(color=STAGE3_COLOR, dash="dash", width=1),
        annotation_text="stage 3",
        annotation_position="top right",
        annotation_font=dict(size=10, color=STAGE3_COLOR),
    )


# -- periodic table ------------------------------------------------------------------------------


def tile_position(z: int, layout: str = "standard") -> tuple[float, float]:
    """(x, y) of element Z: "long" = the 32-column table the model sees (column 1..32, period 1..7);
    "standard" = 18 groups with the f-block (La..Yb, Ac..No) in two rows below (y 8.5, 9.5)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    e = element_table()[z - 1]
    if layout == "long":
        return float(e.column), float(e.period)
    if e.block == "f":
        return float(e.column), e.period + 2.5  # column 3..16 in the long form
    return float(e.group), float(e.period)


def periodic_table(
    states: Mapping[str, str] | None = None,
    color_by: str = "block",
    values: Mapping[str, float] | None = None,
    value_label: str = "SuperCon entries",
    layout: str = "standard",
    notes: Mapping[str, str] | None = None,
    height: int | None = None,
) -> go.Figure:
    """A clickable periodic table: 118 square tiles, symbol in customdata.

    states: {symbol: "pinned" | "excluded"}, drawn in STATE_COLORS (other elements are free);
    color_by: "block" (s/p/d/f) or "frequency" (`values`, e.g. SuperCon entries per element, on a
    log colour scale; elements without a value are pale); notes: extra hover text per symbol.
    """
    if color_by not in ("block", "frequency"):
        raise ValueError(f"color_by must be 'block' or 'frequency', got {color_by!r}")
    states = states or {}
    values = values or {}
    notes = notes or {}
    table = element_table()
    vmax = max([float(v) for v in values.values() if v > 0], default=1.0)
    xs, ys, fill, text_color, line_color, line_width, hover, custom, labels = [], [], [], [], [], [], [], [], []
    for e in table:
        x, y = tile_position(e.z, layout)
        state = states.get(e.symbol, "free")
        v = float(values.get(e.symbol, 0.0))
        if state in STATE_COLORS:
            color, tcol = STATE_COLORS[state], STATE_TEXT[state]
        elif color_by == "frequency":
            if v > 0:
                color = sample_colorscale(FREQ_COLORSCALE, [np.log1p(v) / np.log1p(vmax)])[0]
            else:
                color = "#f1f3f5"
            tcol = "#212529"
        else:
            color, tcol = BLOCK_COLORS[e.block], "#212529"
        h = f"<b>{e.name}</b> ({e.symbol})<br>Z = {e.z} · {e.block}-block"
        if values:
            h += f"<br>{value_label}: {int(v):,}" if float(v).is_integer() else f"<br>{value_label}: {v:.3g}"
        h += f"<br>{state}"
        if e.symbol in notes:
            h += f" {notes[e.symbol]}"
        xs.append(x)
        ys.append(y)
        fill.append(color)
        text_color.append(tcol)
        line_color.append("#1b5e20" if state == "pinned" else "#ffffff")
        line_width.append(3 if state == "pinned" else 1)
        hover.append(h)
        custom.append(e.symbol)
        labels.append(e.symbol)
    n_cols = 32 if layout == "long" else 18
    n_rows = 7 if layout == "long" else 9.5
    size = 24 if layout == "long" else 34
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            text=labels,
            customdata=custom,
            textfont=dict(color=text_color, size=11 if layout == "long" else 13),
            marker=dict(symbol="square", size=size, color=fill, line=dict(color=line_color, width=line_width)),
            hovertext=hover,
            hoverinfo="text",
            name="elements",
            showlegend=False,
        )
    )
    if color_by == "frequency" and values:
        # an empty trace carries the colour bar (log scale, labelled in counts)
        ticks = [t for t in (1, 10, 100, 1000, 10000) if t <= vmax] or [1]
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                hoverinfo="skip",
                showlegend=False,
                marker=dict(
                    colorscale=FREQ_COLORSCALE,
                    cmin=0,
                    cmax=float(np.log1p(vmax)),
                    color=[0],
                    showscale=True,
                    colorbar=dict(
                        title=dict(text=value_label, side="right"),
                        tickvals=[float(np.log1p(t)) for t in ticks],
                        ticktext=[f"{t:,}" for t in ticks],
                        thickness=10,
                        len=0.6,
                    ),
                ),
            )
        )
    fig.update_xaxes(visible=False, range=[0.4, n_cols + 0.6], fixedrange=True)
    fig.update_yaxes(visible=False, range=[n_rows + 0.6, 0.4], fixedrange=True)
    legend = "  ".join(f"<span style='color:{STATE_COLORS[s]}'>■</span> {s}" for s in ("pinned", "excluded"))
    fig.add_annotation(
        text=f"click an element: free → pinned → excluded → free   {legend}",
        x=0.5,
        y=1.0,
        xref="paper",
        yref="paper",
        xanchor="center",
        yanchor="bottom",
        showarrow=False,
        font=dict(size=11, color="#495057"),
    )
    _base_layout(
        fig,
        height or (300 if layout == "long" else 440),
        clickmode="event+select",
        dragmode=False,
        hovermode="closest",
    )
    fig.update_layout(margin=dict(l=5, r=5, t=24, b=5))
    return fig


# -- live and recorded run traces ------------------------------------------------------------------


def _arr(series: Mapping[str, Sequence[float]], key: str) -> np.ndarray:
    return np.asarray(series.get(key, ()), dtype=float)


def tc_trace(
    series: Mapping[str, Sequence[float]],
    stage3_step: int | None = None,
    target_tc: float | None = None,
    title: str | None = "Predicted Tc across candidates",
    height: int = 300,
) -> go.Figure:
    """Tc over the steps: best (max), median, and the q10–q90 band across candidates.

    series: step, tc_best_k, tc_median_k, tc_q10_k, tc_q90_k — (T,) each (app_data.series_*).
    """
    step = _arr(series, "step")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=step,
            y=_arr(series, "tc_q10_k"),
            mode="lines",
            line=dict(width=0),
            name="q10",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=step,
            y=_arr(series, "tc_q90_k"),
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor=BAND_COLOR,
            name="q10–q90",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=step, y=_arr(series, "tc_median_k"), mode="lines", line=dict(color=MEDIAN_COLOR, width=2), name="median"
        )
    )
    fig.add_trace(
        go.Scatter(x=step, y=_arr(series, "tc_best_k"), mode="lines", line=dict(color=BEST_COLOR, width=2), name="best")
    )
    if target_tc is not None:
        fig.add_hline(
            y=target_tc,
            line=dict(color="#adb5bd", dash="dot", width=1),
            annotation_text=f"target {target_tc:g} K",
            annotation_font=dict(size=10),
        )
    _stage3_line(fig, stage3_step, step)
    fig.update_xaxes(title_text=STEP_LABEL)
    fig.update_yaxes(title_text=TC_LABEL)
    return _base_layout(
        fig, height, title, legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom")
    )


def loss_alpha_trace(
    series: Mapping[str, Sequence[float]],
    stage3_step: int | None = None,
    title: str | None = "Integer loss and α",
    height: int = 300,
) -> go.Figure:
    """Median L_integer (left axis) and α (right axis) over the steps."""
    step = _arr(series, "step")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=step,
            y=_arr(series, "int_loss_median"),
            mode="lines",
            line=dict(color="#5f3dc4", width=2),
            name="L_integer (median)",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=step,
            y=_arr(series, "alpha"),
            mode="lines",
            line=dict(color="#e67700", width=2, dash="dot"),
            name="α",
            yaxis="y2",
        )
    )
    _stage3_line(fig, stage3_step, step)
    fig.update_layout(
        xaxis=dict(title=dict(text=STEP_LABEL)),
        yaxis=dict(title=dict(text=INT_LOSS_LABEL), rangemode="tozero"),
        yaxis2=dict(title=dict(text=ALPHA_LABEL), overlaying="y", side="right", rangemode="tozero", showgrid=False),
    )
    return _base_layout(
        fig, height, title, legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom")
    )


def alpha_ramp(
    step: Sequence[float], alpha: Sequence[float], stage3_step: int | None = None, height: int = 160
) -> go.Figure:
    """The α schedule (app_data.alpha_schedule) as a small preview plot."""
    fig = go.Figure(
        go.Scatter(
            x=np.asarray(step),
            y=np.asarray(alpha),
            mode="lines",
            line=dict(color="#e67700", width=2),
            fill="tozeroy",
            name="α",
        )
    )
    _stage3_line(fig, stage3_step, step)
    fig.update_xaxes(title_text=STEP_LABEL)
    fig.update_yaxes(title_text=ALPHA_LABEL)
    _base_layout(fig, height, None, showlegend=False)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
    return fig


def composition_area(
    steps: Sequence[float],
    fractions: Mapping[str, Sequence[float]],
    stage3_step: int | None = None,
    title: str | None = None,
    height: int = 320,
) -> go.Figure:
    """Stacked area of one candidate's element fractions over the steps (app_data.candidate_composition)."""
    fig = go.Figure()
    palette = qualitative.Plotly + qualitative.Set2
    for k, (sym, y) in enumerate(fractions.items()):
        color = "#ced4da" if sym == "other" else palette[k % len(palette)]
        fig.add_trace(
            go.Scatter(
                x=np.asarray(steps),
                y=np.asarray(y, dtype=float),
                mode="lines",
                stackgroup="x",
                name=sym,
                line=dict(width=0.5, color=color),
                hovertemplate=f"{sym}: %{{y:.3f}}<extra></extra>",
            )
        )
    _stage3_line(fig, stage3_step, steps)
    fig.update_xaxes(title_text=STEP_LABEL)
    fig.update_yaxes(title_text=FRACTION_LABEL, range=[0, 1.0])
    # legend in trace order: the largest final fractions (bottom of the stack) first
    return _base_layout(fig, height, title, hovermode="x unified", legend=dict(traceorder="normal"))


def candidate_lines(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    y_title: str = TC_LABEL,
    stage3_step: int | None = None,
    title: str | None = None,
    height: int = 300,
    log_y: bool = False,
) -> go.Figure:
    """One line per label: {label: (steps, values)} (several candidates, or several runs)."""
    fig = go.Figure()
    for label, (x, y) in series.items():
        fig.add_trace(go.Scatter(x=np.asarray(x), y=np.asarray(y, dtype=float), mode="lines", name=str(label)))
    all_x = np.concatenate([np.asarray(x, dtype=float) for x, _ in series.values()]) if series else np.zeros(0)
    _stage3_line(fig, stage3_step, all_x)
    fig.update_xaxes(title_text=STEP_LABEL)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear")
    return _base_layout(fig, height, title, hovermode="x unified")


def tc_before_after(
    before: Sequence[float], after: Sequence[float], height: int = 360, title: str | None = None
) -> go.Figure:
    """Paper Fig. 4a: Tc before vs after optimization, one point per candidate, with y = x."""
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    n_up, n_down = int((a > b).sum()), int((a < b).sum())
    hi = float(np.nanmax(np.concatenate([b, a, [1.0]]))) * 1.05
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, hi],
            y=[0, hi],
            mode="lines",
            line=dict(color="#adb5bd", dash="dash"),
            name="no change",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=b,
            y=a,
            mode="markers",
            marker=dict(size=6, color=np.where(a >= b, MEDIAN_COLOR, BEST_COLOR), opacity=0.7),
            name="candidates",
            hovertemplate="before %{x:.1f} K<br>after %{y:.1f} K<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Tc before optimization (K)", range=[0, hi])
    fig.update_yaxes(title_text="Tc after stage 2 (K)", range=[0, hi])
    t = title or f"Tc before vs after stage 2: {n_up} up, {n_down} down"
    return _base_layout(fig, height, t, showlegend=False)


def element_count_change(decrease: Sequence[int], height: int = 300, title: str | None = None) -> go.Figure:
    """Paper Fig. 4b: histogram of (elements before - elements after); positive = fewer elements."""
    d = np.asarray(decrease, dtype=int)
    vals, counts = np.unique(d, return_counts=True) if len(d) else (np.zeros(0, int), np.zeros(0, int))
    fig = go.Figure(
        go.Bar(
            x=vals,
            y=counts,
            marker_color=MEDIAN_COLOR,
            hovertemplate="%{x:+d} elements: %{y} candidates<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="decrease in number of elements (before − after)", dtick=1)
    fig.update_yaxes(title_text="candidates")
    return _base_layout(fig, height, title or "Change in the number of elements", showlegend=False)


# -- model page ---------------------------------------------------------------------------------


def parity_plot(
    tc_true: Sequence[float], tc_pred: Sequence[float], tc_std: Sequence[float] | None = None, height: int = 420
) -> go.Figure:
    """Predicted vs true Tc on the test split, with y = x (error bars = ensemble sd when given)."""
    t, p = np.asarray(tc_true, dtype=float), np.asarray(tc_pred, dtype=float)
    hi = float(np.nanmax(np.concatenate([t, p, [1.0]]))) * 1.05
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, hi], y=[0, hi], mode="lines", line=dict(color="#adb5bd", dash="dash"), name="y = x", hoverinfo="skip"
        )
    )
    err = (
        dict(
            type="data",
            array=np.asarray(tc_std, dtype=float),
            visible=True,
            thickness=0.5,
            color="rgba(28,126,214,0.3)",
        )
        if tc_std is not None
        else None
    )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=p,
            mode="markers",
            marker=dict(size=4, color=MEDIAN_COLOR, opacity=0.5),
            error_y=err,
            name="test compositions",
            hovertemplate="true %{x:.1f} K<br>predicted %{y:.1f} K<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="true Tc (K)", range=[0, hi], constrain="domain")
    fig.update_yaxes(title_text="predicted Tc (K)", range=[0, hi], scaleanchor="x", scaleratio=1, constrain="domain")
    return _base_layout(fig, height, "Parity on the test split", showlegend=False)


def error_by_range(rows: Sequence[Mapping[str, float]], height: int = 300) -> go.Figure:
    """MAE per true-Tc range: rows [{tc_from_k, tc_to_k, n, mae_k}] (evaluate / app_data.mae_by_tc_range)."""
    labels = [f"{r['tc_from_k']:g}–{r['tc_to_k']:g} K" for r in rows]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[r["mae_k"] for r in rows],
            text=[f"n = {int(r['n']):,}" for r in rows],
            textposition="outside",
            marker_color=MEDIAN_COLOR,
            hovertemplate="%{x}: MAE %{y:.2f} K<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="true Tc range")
    fig.update_yaxes(title_text="MAE (K)", rangemode="tozero")
    return _base_layout(fig, height, "Error by Tc range", showlegend=False)
