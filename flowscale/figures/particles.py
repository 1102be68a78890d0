"""Which candidates a paths figure draws, and how: continued, pruned, current, the returned lineage.

A candidate that later has children was continued; one without children was pruned (rejected by RBF,
resampled away by SMC, not chosen by SVDD/CoDe/SoP). At a scrubbed step k the figure shows the run as it
stood when step k was done: the candidates evaluated up to that NFE, with those of step k as "current".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from flowscale.figures.style import figure, label, segments
from flowscale.trace import Candidates, Trace

MAX_MARKERS = 1200  # pruned crosses drawn individually (the newest ones); their edges are always all drawn


@dataclass
class PathSets:
    """Candidates to draw (`cands`) and row indices into them: continued, pruned, current, returned lineage."""

    cands: Candidates
    continued: np.ndarray
    pruned: np.ndarray
    current: np.ndarray
    returned: list[int]
    step: int | None  # the scrubbed step, if any


def split_paths(trace: Trace, step: int | None = None) -> PathSets:
    """Continued = has children; current = leaves of the newest batch (of the last step once finished, of
    step k when scrubbed); pruned = every other leaf."""
    cands = trace.candidates
    returned = trace.lineage(trace.returned_id) if trace.finished else []
    if step is not None and len(cands):
        shown = trace.batch_nfe()[cands.batch] <= trace.nfe_at_step(step)
        keep = set(np.flatnonzero(shown).tolist())
        cands = cands.subset(shown)
        old_to_new = np.cumsum(shown) - 1
        returned = [int(old_to_new[r]) for r in returned if r in keep and trace.candidates.steps[r] <= step]
    rows = np.arange(len(cands))
    if len(cands) == 0:
        return PathSets(cands, rows, rows, rows, [], step)
    leaf = ~cands.has_children()
    if step is not None:
        newest = cands.steps == step
    elif trace.finished:
        newest = cands.steps == cands.steps.max()
    else:
        newest = cands.batch == cands.batch.max()
    current = rows[leaf & newest] if step is None else rows[newest]
    continued = rows[~leaf & ~np.isin(rows, current)]
    return PathSets(cands, continued, rows[leaf & ~newest], current, returned, step)


def edges(cands: Candidates, coords: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lines from each row's parent to the row, in the given coordinates (rows without a parent skipped)."""
    index = cands.index_of()
    keep = [r for r in np.asarray(rows).tolist() if int(cands.parents[r]) in index]
    if not keep:
        return np.zeros(0), np.zeros(0)
    parent_rows = np.asarray([index[int(cands.parents[r])] for r in keep])
    return segments(coords[parent_rows], coords[np.asarray(keep)])


def hover(cands: Candidates, rows: np.ndarray, reward_name: str) -> list[str]:
    return [
        f"candidate {int(cands.ids[r])} (parent {int(cands.parents[r])})<br>step {int(cands.steps[r])}, "
        f"t = {cands.t[r]:.3f}<br>{reward_name} = {cands.rewards[r]:.4g}"
        for r in np.asarray(rows).tolist()
    ]


def markers(cands: Candidates, coords: np.ndarray, idx: Any, name: str, marker: dict[str, Any], reward_name: str,
            **extra: Any) -> dict[str, Any]:
    """A scatter of the rows `idx` at `coords`, hovering each particle's step, reward and lineage."""
    return {
        "type": "scatter",
        "x": coords[idx, 0],
        "y": coords[idx, 1],
        "mode": "markers",
        "name": name,
        "marker": marker,
        "text": hover(cands, idx, reward_name),
        "hoverinfo": "text",
        **extra,
    }


def status_line(trace: Trace, step: int | None = None) -> str:
    """The figure subtitle: how far the run is (or which step is shown)."""
    cands = trace.candidates
    if len(cands) == 0:
        return "waiting for the first evaluation…"
    budget = trace.config.get("nfe")
    if step is not None:
        spent = trace.nfe_at_step(step)
        t = trace.grid[step] if step < len(trace.grid) else float("nan")
        where = f"{spent} / {budget} NFE" if budget else f"{spent} NFE"
        return f"step {step} (t = {t:.2f}) · {where} by the end of this step"
    spent = trace.nfe_used
    where = f"{spent} / {budget} NFE" if budget else f"{spent} NFE"
    if trace.finished:
        return f"{len(cands)} candidates evaluated · {where} · finished"
    newest = cands.batch == cands.batch.max()
    t_now = float(cands.t[newest].min())
    return f"{len(cands)} candidates evaluated · {where} · running, step {int(cands.steps.max())} (t = {t_now:.2f})"


def paths_figure(data: list[Any], trace: Trace, step: int | None, **layout: Any) -> go.Figure:
    """The particle-paths figure of either world: its title (the run's method and process), the status line of
    the step shown, one height and one uirevision, so a redraw keeps the visitor's zoom."""
    cfg = trace.config
    method = label(cfg.get("method"), cfg.get("process")) if cfg else "run"
    return figure(data, f"Particle paths — {method}", status_line(trace, step), height=720, uirevision="paths",
                  **layout)
