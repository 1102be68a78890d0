"""Plotly report of a benchmark: reward (and accuracy) against NFE per process, one line per method."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

METHOD_COLOURS = {"ode": "#444444", "base": "#888888", "bon": "#1f77b4", "sop": "#9467bd", "smc": "#2ca02c",
                  "code": "#ff7f0e", "svdd": "#17becf", "rbf": "#d62728"}


def bench_figure(rows: list[dict[str, Any]], title: str) -> go.Figure:
    processes = sorted({r["process"] for r in rows if r["method"] != "ode"}) or ["linear-ode"]
    metrics = [("reward_mean", "given reward (mean ± s.e.m.)")]
    if any(r["accuracy_mean"] is not None for r in rows):
        metrics.append(("accuracy_mean", "exact accuracy"))
    fig = make_subplots(rows=len(metrics), cols=len(processes), shared_yaxes="rows",
                        subplot_titles=[p for p in processes] + [""] * (len(metrics) - 1) * len(processes),
                        vertical_spacing=0.12, horizontal_spacing=0.04)
    ode = [r for r in rows if r["method"] == "ode"]
    shown: set[str] = set()
    for i, (key, label) in enumerate(metrics, start=1):
        for j, process in enumerate(processes, start=1):
            for method in METHOD_COLOURS:
                pts = sorted((r for r in rows if r["method"] == method and r["process"] == process),
                             key=lambda r: r["nfe"])
                if not pts or method == "ode":
                    continue
                fig.add_trace(go.Scatter(
                    x=[r["nfe"] for r in pts], y=[r[key] for r in pts], mode="lines+markers", name=method,
                    legendgroup=method, showlegend=method not in shown, line={"color": METHOD_COLOURS[method]},
                    error_y={"type": "data", "array": [r["reward_sem"] for r in pts], "visible": key == "reward_mean"},
                ), row=i, col=j)
                shown.add(method)
            for r in ode:
                if r[key] is not None:
                    fig.add_hline(y=r[key], line_dash="dot", line_color=METHOD_COLOURS["ode"], row=i, col=j,
                                  annotation_text="ODE, 1 sample" if j == 1 else None)
            fig.update_xaxes(type="log", title_text="NFE budget" if i == len(metrics) else None, row=i, col=j)
        fig.update_yaxes(title_text=label, row=i, col=1)
    fig.update_layout(title=title, height=380 * len(metrics) + 80, template="plotly_white",
                      legend_title_text="method")
    return fig


def bench_report_html(rows: list[dict[str, Any]], title: str) -> str:
    return bench_figure(rows, title).to_html(include_plotlyjs=True, full_html=True)
