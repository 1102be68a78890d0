"""NFE per denoising step, from the trace's ledger; where the method keeps a budget plan (RBF), its base
quota and rolled-over NFE per step, stacked. At a scrubbed step k, bar k is marked."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from flowscale.figures.style import C_METHOD, C_QUOTA, C_ROLLOVER, C_STEP, axis, empty_figure, figure, label
from flowscale.trace import Trace


def budget_figure(trace: Trace | None, step: int | None = None) -> go.Figure:
    cfg = trace.config if trace is not None else {}
    title = "NFE per denoising step" + (f" — {label(cfg.get('method'), cfg.get('process'))}" if cfg else "")
    spent = trace.nfe_per_step if trace is not None else []
    if not any(spent):
        return empty_figure(title, "Press Run to see how many evaluations each step receives.", height=400)
    grid = trace.grid
    steps = list(range(len(spent)))
    hover = [f"step {k}" + (f", t = {grid[k]:.3f}" if k < len(grid) else "") for k in steps]
    data: list[dict[str, Any]] = []
    quota = trace.plan.get("quota_per_step")
    rollover = trace.plan.get("rollover_per_step")
    if quota is not None:
        data.append({"type": "bar", "x": steps, "y": quota, "name": "planned base quota",
                     "marker": {"color": C_QUOTA}, "offsetgroup": "plan", "hovertext": hover})
    if rollover is not None:
        data.append({"type": "bar", "x": steps, "y": rollover, "base": quota, "name": "rolled over",
                     "marker": {"color": C_ROLLOVER}, "offsetgroup": "plan", "hovertext": hover})
    data.append({"type": "bar", "x": steps, "y": spent, "name": "NFE spent", "marker": {"color": C_METHOD},
                 "offsetgroup": "spent", "hovertext": hover})
    budget = cfg.get("nfe")
    if budget and quota is None:
        even = budget / len(spent)
        data.append({"type": "scatter", "x": [-0.5, len(spent) - 0.5], "y": [even, even], "mode": "lines",
                     "name": "even split", "line": {"color": "#6b7280", "dash": "dash", "width": 1.5}})
    shapes, annotations = [], []
    if step is not None and 0 <= step < len(spent):
        shapes.append({"type": "rect", "x0": step - 0.5, "x1": step + 0.5, "xref": "x", "y0": 0, "y1": 1,
                       "yref": "paper", "line": {"color": C_STEP, "width": 2}, "fillcolor": "rgba(17,24,39,0.06)"})
        annotations.append({"text": f"step {step}: {spent[step]} NFE", "x": step, "y": 1.0, "xref": "x",
                            "yref": "paper", "yanchor": "bottom", "showarrow": False,
                            "font": {"size": 12, "color": C_STEP}})
    subtitle = f"{sum(spent)} of {budget} NFE spent over {len(spent)} steps" if budget else f"{sum(spent)} NFE"
    return figure(
        data,
        title,
        subtitle,
        height=400,
        barmode="group",
        bargap=0.18,
        bargroupgap=0.04,
        shapes=shapes,
        annotations=annotations,
        legend={"orientation": "h", "x": 0, "y": -0.24, "yanchor": "top"},
        margin={"b": 40},
        xaxis=axis("denoising step k (t: 1 → 0)", dtick=max(1, len(spent) // 12), range=[-0.6, len(spent) - 0.4]),
        yaxis=axis("model evaluations (NFE)", rangemode="tozero"),
        uirevision="budget",
    )
