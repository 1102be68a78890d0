"""The look every figure shares: palette, labels, axes and the figure frame. Plain plotly, no gradio.

Figures are built as plain dicts and validated once by go.Figure(spec): plotly's incremental update_*
API costs ~50 ms per call, too slow to redraw three plots at every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

METHOD_LABELS = {
    "ode": "ODE baseline",
    "base": "Base sampler",
    "bon": "BoN",
    "sop": "SoP",
    "smc": "SMC",
    "code": "CoDe",
    "svdd": "SVDD",
    "rbf": "RBF",
}
PROCESS_LABELS = {"linear-ode": "Linear-ODE", "linear-sde": "Linear-SDE", "vp-ode": "VP-ODE", "vp-sde": "VP-SDE"}
LAYERS = ("density", "tilted", "pruned", "x0", "baseline")  # what the 2-D paths plot can show
DEFAULT_LAYERS = ("density", "tilted", "pruned", "baseline")

# One palette for every plot (colour-blind safe pairs; the method is always blue, the baseline purple).
C_METHOD = "#2563eb"
C_BASELINE = "#7c3aed"
C_BON = "#ea580c"
C_PATH = "rgba(71, 85, 105, 0.45)"
C_PRUNED = "rgba(220, 38, 38, 0.55)"
C_PRUNED_EDGE = "rgba(220, 38, 38, 0.18)"
C_RETURNED = "#f59e0b"
C_TARGET = "#dc2626"
C_TILTED = "#ea580c"
C_X0 = "rgba(13, 148, 136, 0.6)"
C_QUOTA = "#cbd5e1"
C_ROLLOVER = "#f97316"
C_STEP = "#111827"  # the scrubbed step: rings, the marked bar, the cut line
FONT = {"family": "IBM Plex Sans, Inter, Arial, sans-serif", "size": 13, "color": "#1f2937"}


def label(method: str | None, process: str | None = None) -> str:
    name = METHOD_LABELS.get(method or "", method or "?")
    if process is None or method == "ode":
        return name
    return f"{name} · {PROCESS_LABELS.get(process, process)}"



AXIS_STYLE = {
    "gridcolor": "#eceff3",
    "linecolor": "#9ca3af",
    "zerolinecolor": "#d1d5db",
    "ticks": "outside",
    "tickcolor": "#9ca3af",
    "showline": True,
    "automargin": True,
    "title": {"font": {"size": 13}},
}


def axis(title: str, **kwargs: Any) -> dict[str, Any]:
    return {**AXIS_STYLE, **kwargs, "title": {"text": title, "font": {"size": 13}}}


def figure(
    data: list[dict[str, Any]],
    title: str,
    subtitle: str | None = None,
    *,
    height: int = 460,
    legend: dict[str, Any] | None = None,
    margin: dict[str, int] | None = None,
    annotations: list[dict] | None = None,
    **layout: Any,
) -> go.Figure:
    spec = dict(
        title={
            "text": f"<b>{title}</b>",
            "x": 0.0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1.0,
            "yanchor": "top",
            "yref": "container",
            "pad": {"t": 14},
            "font": {"size": 16},
            "subtitle": {"text": subtitle or "", "font": {"size": 12, "color": "#6b7280"}},
        },
        template="none",  # a named template is deep-copied for every figure; the style is set here instead
        paper_bgcolor="white",
        plot_bgcolor="white",
        font=FONT,
        height=height,
        margin={"l": 70, "r": 24, "t": 90 if subtitle else 66, "b": 60, **(margin or {})},
        hoverlabel={"font": {"size": 12}},
        legend={
            "bgcolor": "rgba(255,255,255,0.9)",
            "bordercolor": "#e5e7eb",
            "borderwidth": 1,
            "font": {"size": 12},
            **(legend or {}),
        },
        annotations=annotations or [],
        **layout,
    )
    return go.Figure({"data": data, "layout": spec})


def subplot_title(text: str, x: float, y: float, note: str = "") -> dict[str, Any]:
    return {
        "text": f"<b>{text}</b>" + (f"<br><span style='font-size:12px;color:#6b7280'>{note}</span>" if note else ""),
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 13, "color": "#374151"},
    }


def empty_figure(title: str, message: str, height: int = 460) -> go.Figure:
    note = {
        "text": message,
        "x": 0.5,
        "y": 0.5,
        "xref": "paper",
        "yref": "paper",
        "showarrow": False,
        "font": {"size": 14, "color": "#6b7280"},
    }
    return figure([], title, height=height, annotations=[note], xaxis={"visible": False}, yaxis={"visible": False})


def segments(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y arrays drawing one line per row a[i] -> b[i], separated by NaN gaps (one trace, many lines)."""
    n = a.shape[0]
    xs = np.full(3 * n, np.nan)
    ys = np.full(3 * n, np.nan)
    xs[0::3], xs[1::3] = a[:, 0], b[:, 0]
    ys[0::3], ys[1::3] = a[:, 1], b[:, 1]
    return xs, ys
