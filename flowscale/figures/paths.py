"""Particle paths in the 2-D playground: the density, the paths x_t from noise (t = 1) to data (t = 0),
pruned candidates, the ODE baseline, the returned sample's lineage and the reward's target.

Reads a Trace (and the world's background picture data); at a scrubbed step k it draws the run as it
stood when step k was done and rings the candidates of step k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from flowscale.figures.background import background_png
from flowscale.figures.image_paths import image_paths_figure
from flowscale.figures.particles import MAX_MARKERS, PathSets, edges, markers, paths_figure, split_paths
from flowscale.figures.style import (
    C_BASELINE,
    C_METHOD,
    C_PATH,
    C_PRUNED,
    C_PRUNED_EDGE,
    C_RETURNED,
    C_STEP,
    C_TARGET,
    C_TILTED,
    C_X0,
    axis,
    empty_figure,
)
from flowscale.trace import Trace

LAYERS = ("density", "tilted", "pruned", "x0", "baseline")  # what the 2-D paths plot can show
DEFAULT_LAYERS = ("density", "tilted", "pruned", "baseline")


def trajectories_figure(
    trace: Trace | None,
    *,
    background: dict[str, Any] | None = None,
    baseline: Trace | None = None,
    layers: Sequence[str] = DEFAULT_LAYERS,
    step: int | None = None,
) -> go.Figure:
    """Particle paths: over the 2-D density in the playground; reward and latent paths in image worlds."""
    if trace is None or (len(trace.candidates) == 0 and background is None):
        return empty_figure(
            "Particle paths", "Press Run to watch the particles move from noise (t = 1) to data (t = 0).", height=720
        )
    if trace.image_world:
        return image_paths_figure(trace, step)
    return paths_2d_figure(trace, background, baseline, layers, step)


def _background_layers(background: dict[str, Any], layers: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """The density picture and its legend entries."""
    if not ("density" in layers or "tilted" in layers):
        return [], []
    lo, hi = background["extent"]
    image = {
        "source": background_png(background, "density" in layers, "tilted" in layers),
        "xref": "x", "yref": "y", "x": lo, "y": hi, "sizex": hi - lo, "sizey": hi - lo,
        "sizing": "stretch", "layer": "below", "opacity": 1.0,
    }
    tilted_name = f"reward-tilted target p(x)·e^(r/λ), λ = {background['lam']:g}"
    legend = [
        {"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": name,
         "marker": {"symbol": "square", "size": 12, "color": colour, "opacity": 0.7}}
        for key, name, colour in (("density", "data density p(x)", "#7ea6d8"), ("tilted", tilted_name, C_TILTED))
        if key in layers
    ]
    return [image], legend


def _particles(rows: PathSets, layers: Sequence[str], reward_name: str, finished: bool) -> list[dict]:
    cands = rows.cands
    data: list[dict[str, Any]] = []
    xs, ys = edges(cands, cands.states, np.concatenate([rows.continued, rows.current]))
    data.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "line": {"color": C_PATH, "width": 1},
                 "name": "particle paths x_t (t: 1 → 0)", "hoverinfo": "skip"})
    if "pruned" in layers and len(rows.pruned):
        ex, ey = edges(cands, cands.states, rows.pruned)
        data.append({"type": "scatter", "x": ex, "y": ey, "mode": "lines",
                     "line": {"color": C_PRUNED_EDGE, "width": 1}, "hoverinfo": "skip", "showlegend": False})
        shown = rows.pruned[-MAX_MARKERS:]  # thousands of SVG markers redrawn every step would stall the browser
        more = f" (newest {MAX_MARKERS} of {len(rows.pruned)})" if len(rows.pruned) > MAX_MARKERS else ""
        data.append(markers(cands, cands.states, shown, "pruned / rejected candidates" + more,
                            {"symbol": "x", "size": 6, "color": C_PRUNED}, reward_name))
    if "x0" in layers:
        data.append({"type": "scatter", "x": cands.x0[:, 0], "y": cands.x0[:, 1], "mode": "markers",
                     "name": "x̂0 predictions (what the reward scores)", "marker": {"size": 4, "color": C_X0},
                     "hoverinfo": "skip"})
    if rows.step is not None:
        data.append(markers(cands, cands.states, rows.current, f"candidates of step {rows.step}",
                            {"size": 11, "color": "rgba(0,0,0,0)", "line": {"color": C_STEP, "width": 2.5}},
                            reward_name))
    name = "final particles" if finished and rows.step is None else "current particles"
    data.append(markers(cands, cands.states, rows.current, name,
                        {"size": 7, "color": C_METHOD, "line": {"color": "white", "width": 1}}, reward_name))
    return data


def _baseline(baseline: Trace) -> dict[str, Any]:
    b = baseline.candidates
    order = np.argsort(b.steps, kind="stable")
    return {
        "type": "scatter",
        "x": np.append(b.states[order, 0], b.x0[order[-1], 0]),
        "y": np.append(b.states[order, 1], b.x0[order[-1], 1]),
        "mode": "lines+markers",
        "name": "ODE baseline: path → its sample",
        "line": {"color": C_BASELINE, "width": 2, "dash": "dash"},
        "marker": {"size": [0] * len(order) + [13], "symbol": "diamond", "color": C_BASELINE,
                   "line": {"color": "white", "width": 1}},
        "hoverinfo": "skip",
    }


def _returned(rows: PathSets, reward_name: str) -> list[dict]:
    cands = rows.cands
    path = np.asarray(rows.returned)
    last = path[-1]
    end = cands.x0[last] if rows.step is None else cands.states[last]
    return [
        {"type": "scatter", "x": np.append(cands.states[path, 0], end[0]),
         "y": np.append(cands.states[path, 1], end[1]), "mode": "lines", "name": "lineage of the returned sample",
         "line": {"color": C_RETURNED, "width": 3.5}, "hoverinfo": "skip"},
        {"type": "scatter", "x": [cands.x0[last, 0]], "y": [cands.x0[last, 1]], "mode": "markers",
         "name": "returned sample x̂0" if rows.step is None else "its ancestor's x̂0 at this step",
         "hoverinfo": "text",
         "marker": {"symbol": "star", "size": 19, "color": C_RETURNED, "line": {"color": "#1f2937", "width": 1.5}},
         "text": [f"{reward_name} = {cands.rewards[last]:.4g}"]},
    ]


def _reward_geometry(geometry: dict[str, Any], reward_name: str) -> tuple[list[dict], list[dict]]:
    data, shapes = [], []
    if "point" in geometry:
        data.append({"type": "scatter", "x": [geometry["point"][0]], "y": [geometry["point"][1]], "mode": "markers",
                     "name": f"reward target ({reward_name})", "hoverinfo": "name",
                     "marker": {"symbol": "circle-open-dot", "size": 17, "color": C_TARGET, "line": {"width": 2.5}}})
    if "region" in geometry:
        x0, y0, x1, y1 = geometry["region"]
        shapes.append({"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                       "line": {"color": C_TARGET, "width": 2, "dash": "dot"}})
        data.append({"type": "scatter", "x": [None], "y": [None], "mode": "lines",
                     "name": f"reward region ({reward_name})", "line": {"color": C_TARGET, "width": 2, "dash": "dot"}})
    return data, shapes


def paths_2d_figure(
    trace: Trace,
    background: dict[str, Any] | None,
    baseline: Trace | None,
    layers: Sequence[str] = DEFAULT_LAYERS,
    step: int | None = None,
) -> go.Figure:
    cfg = trace.config
    reward_name = cfg.get("reward") or "reward"
    images, data = _background_layers(background, layers) if background is not None else ([], [])
    rows = split_paths(trace, step)
    if len(rows.cands):
        data += _particles(rows, layers, reward_name, trace.finished)
    if "baseline" in layers and baseline is not None and len(baseline.candidates):
        data.append(_baseline(baseline))
    if rows.returned:
        data += _returned(rows, reward_name)
    geometry_data, shapes = _reward_geometry((background or {}).get("geometry") or {}, reward_name)
    data += geometry_data
    extent = background["extent"] if background is not None else None
    return paths_figure(
        data,
        trace,
        step,
        shapes=shapes,
        images=images,
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.13, "yanchor": "top", "itemsizing": "constant"},
        margin={"r": 16, "b": 40},
        xaxis=axis("x₁", range=extent, zeroline=False, constrain="domain"),
        yaxis=axis("x₂", range=extent, zeroline=False, scaleanchor="x", scaleratio=1, constrain="domain"),
    )
