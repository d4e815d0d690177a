"""The clickable periodic table: a `go.Scatter` of square markers, one per element, at (column, period),
with the symbol in `customdata`, so that a click selects a point whose symbol the app can read (a heatmap
returns no points on click). Builds a `go.Figure` from plain data; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from gdmcd_app.figures import _base_layout
from gdmcd_core.chem.elements import element_table

BLOCK_COLORS = {"s": "#f6bd60", "p": "#a7c957", "d": "#84a9c0", "f": "#cdb4db"}
STATE_COLORS = {"pinned": "#2b8a3e", "excluded": "#495057"}
STATE_TEXT = {"pinned": "#ffffff", "excluded": "#ced4da"}
FREQ_COLORSCALE = "YlOrRd"
LAYOUTS = ("standard", "long")


DARK_TEXT, LIGHT_TEXT = "#212529", "#ffffff"
# WCAG relative luminance at which dark and white text have equal contrast: sqrt(1.05 * 0.05) - 0.05
LUMINANCE_SPLIT = 0.179


def relative_luminance(color: str) -> float:
    """WCAG relative luminance (0 black .. 1 white) of '#rrggbb' or 'rgb(r, g, b)'."""
    c = color.strip()
    if c.startswith("#") and len(c) == 7:
        rgb = [int(c[i : i + 2], 16) for i in (1, 3, 5)]
    elif c.startswith("rgb"):
        rgb = [float(v) for v in c[c.index("(") + 1 : c.index(")")].split(",")[:3]]
    else:
        raise ValueError(f"colour {color!r}: expected '#rrggbb' or 'rgb(r, g, b)'")
    lin = [(v / 255) / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def label_color(fill: str) -> str:
    """Dark text on light tiles, white text on dark ones (whichever contrasts more)."""
    return DARK_TEXT if relative_luminance(fill) > LUMINANCE_SPLIT else LIGHT_TEXT


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
            tcol = label_color(color)
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
