"""Every method at one budget and seed: the table rows and the bars of given and held-out reward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from flowscale.figures.style import (
    C_BASELINE,
    C_METHOD,
    METHOD_LABELS,
    PROCESS_LABELS,
    axis,
    empty_figure,
    figure,
    subplot_title,
)
from flowscale.trace import Trace

COMPARE_HEADERS = [
    "method",
    "process",
    "given reward",
    "held-out reward",
    "NFE spent",
    "budget",
    "wall time (s)",
    "note",
]


def compare_row(run: Trace | dict[str, Any] | None, method: str, process: str, note: str = "") -> list[Any]:
    """One table row from a finished trace or its saved record (Compare's runs come back from worker processes
    as records); a run that failed (None) keeps its note."""
    record = run.record.to_dict() if isinstance(run, Trace) and run.record is not None else run
    if not isinstance(record, dict):
        return [
            METHOD_LABELS.get(method, method),
            PROCESS_LABELS.get(process, process),
            None,
            None,
            None,
            None,
            None,
            note,
        ]
    cfg = record.get("config", {})
    return [
        METHOD_LABELS.get(method, method),
        PROCESS_LABELS.get(cfg.get("process"), cfg.get("process")),
        _significant(record.get("final_reward")),
        _significant(record.get("heldout_reward")),
        record.get("nfe_used"),
        record.get("nfe_budget"),
        None if record.get("wall_time_s") is None else round(float(record["wall_time_s"]), 2),
        note,
    ]


def _significant(value: Any, digits: int = 4) -> float | None:
    return None if value is None else float(f"{float(value):.{digits}g}")


def compare_figure(
    rows: Sequence[Sequence[Any]], reward_name: str = "reward", heldout_name: str = "held-out"
) -> go.Figure:
    """Bars: given and held-out reward of every method at one budget and seed."""
    done = [r for r in rows if r[2] is not None]
    title = "All methods at the same budget and seed"
    if not done:
        return empty_figure(title, "Press “Compare all methods”.", height=460)
    names = [r[0] for r in done]
    colours = [C_BASELINE if r[0] == METHOD_LABELS["ode"] else C_METHOD for r in done]
    held = [r[3] for r in done]
    data = [
        {
            "type": "bar",
            "x": names,
            "y": [r[2] for r in done],
            "marker": {"color": colours},
            "name": "given",
            "xaxis": "x",
            "yaxis": "y",
            "text": [f"{r[2]:.3g}" for r in done],
            "textposition": "outside",
            "cliponaxis": False,
        },
        {
            "type": "bar",
            "x": names,
            "y": held,
            "marker": {"color": "#0d9488"},
            "name": "held-out",
            "xaxis": "x2",
            "yaxis": "y2",
            "text": [f"{v:.3g}" if v is not None else "" for v in held],
            "textposition": "outside",
            "cliponaxis": False,
        },
    ]
    budget = next((r[5] for r in done if r[0] != METHOD_LABELS["ode"]), None)
    given_range, held_range = _padded([r[2] for r in done]), _padded([v for v in held if v is not None])
    titles = [
        subplot_title(f"given reward: {reward_name}", 0.22, 1.0),
        subplot_title(f"held-out reward: {heldout_name}", 0.78, 1.0),
    ]
    return figure(
        data,
        title,
        f"{budget} NFE each (the ODE baseline is one trajectory) · higher is better",
        height=460,
        showlegend=False,
        annotations=titles,
        margin={"t": 110},
        xaxis=axis("", domain=[0, 0.44], anchor="y"),
        yaxis=axis("reward of the returned sample", anchor="x", range=given_range),
        xaxis2=axis("", domain=[0.56, 1.0], anchor="y2"),
        yaxis2=axis("held-out reward", anchor="x2", range=held_range),
    )


def _padded(values: Sequence[float]) -> list[float] | None:
    """A value range from 0 that leaves room for the bars' labels on either side."""
    if not values:
        return None
    lo, hi = min(0.0, *values), max(0.0, *values)
    pad = 0.14 * ((hi - lo) or 1.0)
    return [lo - (pad if lo < 0 else 0), hi + (pad if hi > 0 else 0)]


