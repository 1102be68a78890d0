"""Best given reward against NFE spent: the method, the ODE baseline and Best-of-N at the same budget,
each from its trace's ledger; SMC adds its effective sample size per step. At a scrubbed step k the
method's curve is cut at the NFE spent by the end of step k."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from flowscale.figures.style import (
    C_BASELINE,
    C_BON,
    C_METHOD,
    C_STEP,
    PROCESS_LABELS,
    axis,
    empty_figure,
    figure,
    label,
    subplot_title,
)
from flowscale.trace import Trace


def _curve(trace: Trace | None, until_nfe: int | None = None) -> list[tuple[int, float]]:
    if trace is None:
        return []
    curve = [(int(n), float(r)) for n, r in trace.best_reward_by_nfe]
    return curve if until_nfe is None else [(n, r) for n, r in curve if n <= until_nfe]


def _lines(name: str, curve: list[tuple[int, float]], trace: Trace, colour: str, dash: str, *, is_baseline: bool,
           max_nfe: int, show_final: bool) -> list[dict[str, Any]]:
    xs, ys = zip(*curve, strict=True)
    data = [{"type": "scatter", "x": [0, *xs], "y": [ys[0], *ys], "mode": "lines", "name": name, "legendgroup": name,
             "line": {"color": colour, "width": 2.5, "dash": dash, "shape": "hv"},
             "hovertemplate": "%{x} NFE: best %{y:.4g}<extra>" + name + "</extra>"}]
    record = trace.record
    if record is None or not show_final:
        return data
    used = int(record.nfe_used or xs[-1])
    data.append({"type": "scatter", "x": [used], "y": [record.final_reward], "mode": "markers", "legendgroup": name,
                 "showlegend": False,
                 "hovertemplate": f"{name}<br>returned sample: %{{y:.4g}} at %{{x}} NFE<extra></extra>",
                 "marker": {"symbol": "star", "size": 15, "color": colour, "line": {"color": "#1f2937", "width": 1}}})
    if is_baseline:  # carry the baseline across the whole budget for comparison
        data.append({"type": "scatter", "x": [used, max_nfe], "y": [record.final_reward] * 2, "mode": "lines",
                     "showlegend": False, "legendgroup": name, "hoverinfo": "skip",
                     "line": {"color": colour, "width": 1.5, "dash": "dot"}})
    return data


def reward_figure(
    trace: Trace | None,
    *,
    baseline: Trace | None = None,
    bon: Trace | None = None,
    step: int | None = None,
) -> go.Figure:
    cfg = trace.config if trace is not None else {}
    reward_name = cfg.get("reward") or "reward"
    method = cfg.get("method")
    cut = trace.nfe_at_step(step) if trace is not None and step is not None else None
    curves = [(label(method, cfg.get("process")) if cfg else "method", _curve(trace, cut), trace, C_METHOD, "solid")]
    if method != "bon" and bon is not None:
        process = bon.config.get("process")
        curves.append((f"BoN, same budget · {PROCESS_LABELS.get(process, process)}", _curve(bon), bon, C_BON, "solid"))
    if baseline is not None:
        curves.append(("ODE baseline", _curve(baseline), baseline, C_BASELINE, "dash"))
    if not any(c for _, c, _, _, _ in curves):
        return empty_figure("Best reward vs. NFE spent", "Press Run to watch the best reward grow.", height=420)
    max_nfe = max([cfg.get("nfe") or 0] + [c[-1][0] for _, c, _, _, _ in curves if c])
    data: list[dict[str, Any]] = []
    for name, curve, tr, colour, dash in curves:
        if curve:
            data += _lines(name, curve, tr, colour, dash, is_baseline=tr is baseline, max_nfe=max_nfe,
                           show_final=not (tr is trace and cut is not None))
    layout: dict[str, Any] = {
        "xaxis": axis("NFE spent (model evaluations)", rangemode="tozero", anchor="y", range=[0, max_nfe * 1.02]),
        "yaxis": axis(f"best {reward_name} so far", anchor="x"),
    }
    shapes, annotations = [], []
    if cut is not None:
        shapes.append({"type": "line", "x0": cut, "x1": cut, "xref": "x", "y0": 0, "y1": 1, "yref": "paper",
                       "line": {"color": C_STEP, "width": 1.5, "dash": "dot"}})
        annotations.append({"text": f"step {step}: {cut} NFE", "x": cut, "y": 1.0, "xref": "x", "yref": "paper",
                            "yanchor": "bottom", "showarrow": False, "font": {"size": 12, "color": C_STEP}})
    smc = method == "smc" and trace is not None
    if smc:
        traces, note = _ess_traces(trace, step)
        data += traces
        layout["yaxis"]["domain"] = [0.56, 1.0]
        layout["xaxis2"] = axis("denoising step k", anchor="y2", domain=[0, 1])
        layout["yaxis2"] = axis("ESS", anchor="x2", domain=[0, 0.26], rangemode="tozero")
        annotations.append(subplot_title("SMC: effective sample size per step", 0.5, 0.31, note))
    return figure(
        data,
        "Best reward vs. NFE spent",
        "running best over all x̂0 evaluated · ★ the sample each run returned",
        height=640 if smc else 430,
        annotations=annotations,
        shapes=shapes,
        margin={"b": 40},
        legend={"orientation": "h", "x": 0, "y": -0.13 if smc else -0.2, "yanchor": "top"},
        uirevision="reward",
        **layout,
    )


def _ess_traces(trace: Trace, step: int | None) -> tuple[list[dict], str]:
    """ESS after each reweighting (the method's select events), the resampling threshold and the count."""
    threshold = float(trace.method_params.get("smc.ess_threshold", (trace.config.get("params") or {}).get(
        "smc.ess_threshold", 1.0)))
    first = next((e for e in trace.events if e["kind"] == "candidates"), None)
    n = int(first.get("n", len(first["ids"]))) if first else 0
    reweights = [e for e in trace.events if e["kind"] == "select" and e.get("mode") == "reweight"]
    steps, ess = [int(e["step"]) for e in reweights], [float(e["ess"]) for e in reweights]
    resampled = sum(1 for e in trace.events if e["kind"] == "resample")
    colours = ["#0f766e" if s == step else "#14b8a6" for s in steps]
    data = [{"type": "bar", "x": steps, "y": ess, "xaxis": "x2", "yaxis": "y2", "marker": {"color": colours},
             "showlegend": False, "name": "ESS after reweighting",
             "hovertemplate": "step %{x}: ESS %{y:.2f}<extra></extra>"}]
    if n:
        data.append({"type": "scatter", "x": [0.5, max(steps or [1]) + 0.5], "y": [threshold * n] * 2, "mode": "lines",
                     "xaxis": "x2", "yaxis": "y2", "showlegend": False, "hoverinfo": "skip",
                     "line": {"color": "#6b7280", "dash": "dash"}})
    note = f"after reweighting · dashed: resample below {threshold:g}·N = {threshold * n:g} · {resampled} resamplings"
    return data, note
