"""Particle paths in image worlds: each candidate's given reward along its path (top) and a fixed 2-D
projection of the latent states x_t (bottom). At a scrubbed step k the run is drawn as it stood then,
with step k's candidates ringed and a line at k on the reward panel."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from flowscale.figures.particles import MAX_MARKERS, edges, markers, paths_figure, split_paths
from flowscale.figures.style import C_METHOD, C_PATH, C_PRUNED, C_RETURNED, C_STEP, axis, subplot_title
from flowscale.trace import Trace


def image_paths_figure(trace: Trace, step: int | None = None) -> go.Figure:
    cfg = trace.config
    reward_name = cfg.get("reward") or "reward"
    rows = split_paths(trace, step)
    cands = rows.cands
    data: list[dict[str, Any]] = []
    if len(cands):
        by_reward = np.stack([cands.steps.astype(np.float64), cands.rewards], axis=1)
        live = np.concatenate([rows.continued, rows.current])
        for coords, axes in ((by_reward, ("x", "y")), (cands.states, ("x2", "y2"))):
            common = {"type": "scatter", "xaxis": axes[0], "yaxis": axes[1], "showlegend": axes[0] == "x"}
            xs, ys = edges(cands, coords, live)
            data.append(dict(common, x=xs, y=ys, mode="lines", line={"color": C_PATH, "width": 1},
                             hoverinfo="skip", name="particle paths", legendgroup="paths"))
            if len(rows.pruned):
                data.append(markers(cands, coords, rows.pruned[-MAX_MARKERS:], "pruned / rejected candidates",
                                    {"symbol": "x", "size": 6, "color": C_PRUNED}, reward_name, **common,
                                    legendgroup="pruned"))
            if step is not None:
                data.append(markers(cands, coords, rows.current, f"candidates of step {step}",
                                    {"size": 12, "color": "rgba(0,0,0,0)", "line": {"color": C_STEP, "width": 2.5}},
                                    reward_name, **common, legendgroup="step"))
            name = "final particles" if trace.finished and step is None else "current particles"
            data.append(markers(cands, coords, rows.current, name, {"size": 7, "color": C_METHOD}, reward_name,
                                **common, legendgroup="current"))
            if rows.returned:
                path = np.asarray(rows.returned)
                data.append(dict(common, x=coords[path, 0], y=coords[path, 1], mode="lines+markers",
                                 line={"color": C_RETURNED, "width": 3}, marker={"size": 6},
                                 name="lineage of the returned sample", legendgroup="returned"))
    shapes = []
    if step is not None:
        shapes.append({"type": "line", "x0": step, "x1": step, "xref": "x", "y0": 0.58, "y1": 1.0, "yref": "paper",
                       "line": {"color": C_STEP, "width": 1.5, "dash": "dot"}})
    titles = [
        subplot_title("given reward of each candidate's x̂0, along its path", 0.5, 1.0),
        subplot_title("2-D projection of the latent states x_t", 0.5, 0.42),
    ]
    return paths_figure(
        data,
        trace,
        step,
        annotations=titles,
        shapes=shapes,
        legend={"orientation": "h", "x": 0, "y": -0.1, "yanchor": "top"},
        margin={"t": 110, "b": 40},
        xaxis=axis("denoising step k (t: 1 → 0)", anchor="y"),
        yaxis=axis(reward_name, anchor="x", domain=[0.58, 1.0]),
        xaxis2=axis("projection 1", anchor="y2"),
        yaxis2=axis("projection 2", anchor="x2", domain=[0.0, 0.4]),
    )
