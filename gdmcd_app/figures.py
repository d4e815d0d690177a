"""Plotly figure builders for the web app. Each takes plain data and returns a `go.Figure`.

No Streamlit, no model, no file access: the pages compute the data (gdmcd_app.data) and lay the
figures out. Axis labels and colours have one source of truth here.

The clickable periodic table lives in ptable.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

TC_LABEL = "Tc (K)"
STEP_LABEL = "step"
INT_LOSS_LABEL = "L_integer (median)"
ALPHA_LABEL = "α"
FRACTION_LABEL = "atomic fraction"

BEST_COLOR, MEDIAN_COLOR, BAND_COLOR = "#d6336c", "#1c7ed6", "rgba(28, 126, 214, 0.18)"
STAGE3_COLOR = "#868e96"
INTEGER_COLOR = "#2b8a3e"  # the integer formula, after the loop
STAGE3_LINE = dict(color=STAGE3_COLOR, dash="dash", width=1)  # where stage 3 began
INTEGER_LINE = dict(color=INTEGER_COLOR, dash="dot", width=1.5)  # where the integer formula is drawn
_FONT = "Inter, Helvetica, Arial, sans-serif"
# Legends go under the x axis: Plotly's toolbar (modebar) sits at the top right and covered legends drawn there.
# st.plotly_chart(config=PLOT_CONFIG) for every result figure: the modebar stays (zoom, pan) and its camera button
# saves an SVG, vector art for a paper; no Plotly logo.
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "svg", "filename": "gdmcd_figure"}}
LEGEND_BELOW = dict(orientation="h", y=-0.3, x=0, xanchor="left", yanchor="top")
LEGEND_RIGHT = dict(x=1.02, y=0.5, xanchor="left", yanchor="middle")  # a long legend: right, centred, below the bar


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
    _labelled_vline(fig, stage3_step, "stage 3", STAGE3_LINE, "top right")


def _labelled_vline(fig: go.Figure, x: float, text: str, line: dict, position: str, **where: Any) -> None:
    """A vertical line at step `x` in plotly line style `line`, with a small label `text` in the line's colour at
    `position` ("top left", ...); `where`: the subplot row and column it is drawn in."""
    fig.add_vline(
        x=x,
        line=line,
        annotation_text=text,
        annotation_position=position,
        annotation_font=dict(size=10, color=line["color"]),
        **where,
    )


def _stage3_marker(fig: go.Figure, stage3_step: int, text: str, xanchor: str, yanchor: str, **where: Any) -> None:
    """A dashed line at the step where stage 3 began, labelled `text` at the top of the plot (the label's
    xanchor/yanchor place it beside the line's top); `where`: the subplot rows and column the line crosses."""
    fig.add_vline(x=stage3_step, line=STAGE3_LINE, **where)
    fig.add_annotation(
        x=stage3_step,
        y=1,
        xref="x",
        yref="paper",
        text=text,
        showarrow=False,
        xanchor=xanchor,
        yanchor=yanchor,
        font=dict(size=10, color=STAGE3_COLOR),
    )


# -- traces over the steps -----------------------------------------------------------------------


def _arr(series: Mapping[str, Sequence[float]], key: str) -> np.ndarray:
    return np.asarray(series.get(key, ()), dtype=float)


def _line(x: Any, y: Any, name: str, **style: Any) -> go.Scatter:
    """A trace drawn as lines; `style`: line, fill, yaxis, ... (plotly's Scatter arguments)."""
    return go.Scatter(x=x, y=y, mode="lines", name=name, **style)


def tc_trace(
    series: Mapping[str, Sequence[float]],
    stage3_step: int | None = None,
    target_tc: float | None = None,
    title: str | None = "Predicted Tc across candidates",
    height: int = 300,
) -> go.Figure:
    """Tc over the steps: best (max), median, and the q10–q90 band across candidates.

    series: step, tc_best_k, tc_median_k, tc_q10_k, tc_q90_k — (T,) each (data.series_*).
    """
    step = _arr(series, "step")
    fig = go.Figure()
    fig.add_trace(_line(step, _arr(series, "tc_q10_k"), "q10", line=dict(width=0), showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        _line(step, _arr(series, "tc_q90_k"), "q10–q90", line=dict(width=0), fill="tonexty", fillcolor=BAND_COLOR)
    )
    fig.add_trace(_line(step, _arr(series, "tc_median_k"), "median", line=dict(color=MEDIAN_COLOR, width=2)))
    fig.add_trace(_line(step, _arr(series, "tc_best_k"), "best", line=dict(color=BEST_COLOR, width=2)))
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
    return _base_layout(fig, height, title, legend=LEGEND_BELOW)


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
        _line(step, _arr(series, "int_loss_median"), "L_integer (median)", line=dict(color="#5f3dc4", width=2))
    )
    fig.add_trace(_line(step, _arr(series, "alpha"), "α", line=dict(color="#e67700", width=2, dash="dot"), yaxis="y2"))
    _stage3_line(fig, stage3_step, step)
    fig.update_layout(
        xaxis=dict(title=dict(text=STEP_LABEL)),
        yaxis=dict(title=dict(text=INT_LOSS_LABEL), rangemode="tozero"),
        yaxis2=dict(
            title=dict(text=ALPHA_LABEL),
            overlaying="y",
            side="right",
            rangemode="tozero",
            showgrid=False,
            **_round_axis(_arr(series, "alpha")),
        ),
    )
    return _base_layout(fig, height, title, legend=LEGEND_BELOW)


def round_ticks(hi: float, n: int = 4) -> list[float]:
    """About n round tick values from 0 to hi: steps of 1, 2, 2.5 or 5 × 10^k (0, 500, 1000, 1500 for hi = 1389)."""
    hi = float(hi)
    if not np.isfinite(hi) or hi <= 0:
        return [0.0]
    raw = hi / max(n, 1)
    mag = 10.0 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [float(v) for v in np.arange(0.0, hi + step * 1e-9, step)]


def _round_axis(values: np.ndarray, n: int = 3) -> dict:
    """tickvals/ticktext of round numbers for an axis showing `values` ({} when there is nothing to show)."""
    v = np.asarray(values, dtype=float)
    if not v.size or not np.isfinite(v).any() or np.nanmax(v) <= 0:
        return {}
    ticks = round_ticks(float(np.nanmax(v)), n)
    return dict(tickvals=ticks, ticktext=[f"{t:,.4g}" for t in ticks])


def alpha_ramp(
    step: Sequence[float], alpha: Sequence[float], stage3_step: int | None = None, height: int = 220
) -> go.Figure:
    """The α schedule (data.alpha_schedule) as a preview plot: round ticks, the stage-3 start marked."""
    x, y = np.asarray(step, dtype=float), np.asarray(alpha, dtype=float)
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="lines",
            line=dict(color="#e67700", width=2),
            fill="tozeroy",
            name="α",
            hovertemplate="step %{x:,}: α = %{y:.3g}<extra></extra>",
        )
    )
    if stage3_step is not None and len(x) and x.max() >= stage3_step:
        # inside the plot, left of the line's top: clear of the axes and their titles
        _stage3_marker(fig, stage3_step, "stage 3 →", xanchor="right", yanchor="top")
    x_hi = float(x.max()) if len(x) else 1.0
    y_hi = float(np.nanmax(y)) if len(y) and np.nanmax(y) > 0 else 1.0
    xt, yt = round_ticks(x_hi), round_ticks(y_hi, 3)
    fig.update_xaxes(title_text=STEP_LABEL, tickvals=xt, ticktext=[f"{v:,.0f}" for v in xt], range=[0, x_hi])
    fig.update_yaxes(title_text=ALPHA_LABEL, tickvals=yt, ticktext=[f"{v:,.4g}" for v in yt], range=[0, y_hi * 1.08])
    _base_layout(fig, height, None, showlegend=False)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
    return fig


def _area_traces(steps: Sequence[float], fractions: Mapping[str, Sequence[float]]) -> list[go.Scatter]:
    """One stacked-area trace per element ("other" grey), in the order given (the first at the bottom)."""
    palette = qualitative.Plotly + qualitative.Set2
    return [
        go.Scatter(
            x=np.asarray(steps),
            y=np.asarray(y, dtype=float),
            mode="lines",
            stackgroup="x",
            name=sym,
            legendgroup=sym,
            line=dict(width=0.5, color="#ced4da" if sym == "other" else palette[k % len(palette)]),
            hovertemplate=f"{sym}: %{{y:.3f}}<extra></extra>",
        )
        for k, (sym, y) in enumerate(fractions.items())
    ]


def _integer_line(fig: go.Figure, integer_step: float | None, **where: Any) -> None:
    """A dotted line at the step where the integer formula is drawn (after the loop: rounding and refinement)."""
    if integer_step is None:
        return
    _labelled_vline(fig, integer_step, "integer formula", INTEGER_LINE, "top left", **where)


def composition_area(
    steps: Sequence[float],
    fractions: Mapping[str, Sequence[float]],
    stage3_step: int | None = None,
    title: str | None = None,
    height: int = 320,
    integer_step: float | None = None,
) -> go.Figure:
    """Stacked area of one candidate's element fractions over the steps (data.candidate_composition); with
    `integer_step`, the last point is the integer formula (drawn at that step, marked by a dotted line)."""
    fig = go.Figure(_area_traces(steps, fractions))
    _stage3_line(fig, stage3_step, steps)
    _integer_line(fig, integer_step)
    fig.update_xaxes(title_text=STEP_LABEL)
    fig.update_yaxes(title_text=FRACTION_LABEL, range=[0, 1.0])
    # legend in trace order: the largest final fractions (bottom of the stack) first
    return _base_layout(fig, height, title, hovermode="x unified", legend=dict(traceorder="normal", **LEGEND_RIGHT))


def candidate_path(
    steps: Sequence[float],
    fractions: Mapping[str, Sequence[float]],
    tc_k: Sequence[float],
    integer_tc: tuple[float, float] | None = None,
    stage3_step: int | None = None,
    title: str | None = None,
    height: int = 480,
) -> go.Figure:
    """One candidate's path: its element fractions stacked over the steps (top) and its model Tc (bottom), from
    the start through stage 2 and stage 3; with `integer_tc` = (Tc, σ) in K, the last point of `steps`,
    `fractions` and `tc_k` is the integer formula, marked by a dotted line and drawn with its ±σ bar.

    steps (S,), fractions {symbol: (S,)} (data.candidate_composition with `final`), tc_k (S,) in K.
    """
    from plotly.subplots import make_subplots

    x, tc = np.asarray(steps, dtype=float), np.asarray(tc_k, dtype=float)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.06)
    for trace in _area_traces(x, fractions):
        fig.add_trace(trace, row=1, col=1)
    n_loop = len(x) - (1 if integer_tc is not None else 0)  # the points the loop recorded
    fig.add_trace(
        _line(x[:n_loop], tc[:n_loop], "Tc (model)", line=dict(color=MEDIAN_COLOR, width=2), showlegend=False),
        row=2,
        col=1,
    )
    if integer_tc is not None and len(x):
        tc_int, sd = (float(v) for v in integer_tc)
        fig.add_trace(
            go.Scatter(
                x=[x[-1]],
                y=[tc_int],
                mode="markers",
                name="integer formula",
                marker=dict(color=INTEGER_COLOR, size=9, symbol="diamond"),
                error_y=dict(type="data", array=[sd if np.isfinite(sd) else 0.0], visible=True, color=INTEGER_COLOR),
                hovertemplate="integer formula: %{y:.1f} K<extra></extra>",
                showlegend=False,
            ),
            row=2,
            col=1,
        )
        _integer_line(fig, float(x[-1]), row=1, col=1)
        fig.add_vline(x=float(x[-1]), line=INTEGER_LINE, row=2, col=1)
    if stage3_step is not None and len(x) and np.nanmax(x) >= stage3_step:
        _stage3_marker(fig, stage3_step, "stage 3", xanchor="left", yanchor="bottom", row="all", col=1)
    fig.update_yaxes(title_text=FRACTION_LABEL, range=[0, 1.0], row=1, col=1)
    fig.update_yaxes(title_text=TC_LABEL, row=2, col=1)
    fig.update_xaxes(title_text=STEP_LABEL, row=2, col=1)
    return _base_layout(fig, height, title, hovermode="x unified", legend=dict(traceorder="normal", **LEGEND_RIGHT))


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
    return _base_layout(fig, height, title, hovermode="x unified", legend=LEGEND_RIGHT)


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


def measured_before_after(rows: Sequence[Mapping[str, Any]], height: int = 380) -> go.Figure:
    """A campaign's measured superconductors: predicted Tc before and after the latest model update against the
    measured Tc, with y = x (rows as campaign/report.py predicted_vs_measured gives them)."""
    fig = go.Figure()
    hi = max([1.0] + [float(r["measured_k"]) for r in rows] + [float(r["predicted_k"]) for r in rows]) * 1.05
    fig.add_trace(
        go.Scatter(
            x=[0, hi], y=[0, hi], mode="lines", line=dict(color="#adb5bd", dash="dash"), name="y = x", hoverinfo="skip"
        )
    )
    for which, color in (("before", STAGE3_COLOR), ("after", MEDIAN_COLOR)):
        mine = [r for r in rows if r["model"] == which]
        fig.add_trace(
            go.Scatter(
                x=[r["measured_k"] for r in mine],
                y=[r["predicted_k"] for r in mine],
                text=[r["formula"] for r in mine],
                mode="markers",
                marker=dict(size=8, color=color),
                name=f"{which} the update",
                hovertemplate="%{text}<br>measured %{x:.1f} K<br>predicted %{y:.1f} K<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="measured Tc (K)", range=[0, hi], constrain="domain")
    fig.update_yaxes(title_text="predicted Tc (K)", range=[0, hi], scaleanchor="x", scaleratio=1, constrain="domain")
    return _base_layout(fig, height, "Measured superconductors: predicted before and after", legend=LEGEND_BELOW)


def error_by_range(rows: Sequence[Mapping[str, float]], height: int = 300) -> go.Figure:
    """MAE per true-Tc range: rows [{tc_from_k, tc_to_k, n, mae_k}] (training/metrics.mae_by_range)."""
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
