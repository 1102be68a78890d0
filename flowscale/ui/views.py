"""Pure views: run trace -> plotly figures, tables and preview images. No gradio here.

Every function takes saved event dicts (`Event.to_dict()`, the form a RunRecord stores) and record dicts
(`RunRecord.to_dict()`), so the same code draws a live run, a finished run and an uploaded record.
A partial event list (a run still streaming) is always a valid input.

Reading the trace: a "candidates" event evaluates particles; each has an id, the id of the particle it
was proposed from (`parents`, -1 for a fresh noise), its state and x0 prediction projected to 2-D and
its reward. A candidate that later has children was continued; one without children was pruned
(rejected by RBF, resampled away by SMC, not chosen by SVDD/CoDe/SoP). Time runs from t = 1 (noise) to 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
FONT = {"family": "IBM Plex Sans, Inter, Arial, sans-serif", "size": 13, "color": "#1f2937"}


def label(method: str | None, process: str | None = None) -> str:
    name = METHOD_LABELS.get(method or "", method or "?")
    if process is None or method == "ode":
        return name
    return f"{name} · {PROCESS_LABELS.get(process, process)}"


# --------------------------------------------------------------------------------------------------
# Reading a trace
# --------------------------------------------------------------------------------------------------
@dataclass
class Trace:
    """All candidates of a (possibly partial) run as flat arrays, in evaluation order."""

    config: dict[str, Any] = field(default_factory=dict)
    grid: list[float] = field(default_factory=list)
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    parents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    states: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    x0: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    rewards: np.ndarray = field(default_factory=lambda: np.zeros(0))
    batch: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # which event
    curve: list[tuple[int, float]] = field(default_factory=list)  # (NFE spent, best reward so far)
    n_batches: int = 0
    nfe_by_step: dict[int, int] = field(default_factory=dict)  # every evaluation, traced or not

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def method(self) -> str | None:
        return self.config.get("method")

    def index_of(self) -> dict[int, int]:
        return {int(i): k for k, i in enumerate(self.ids)}

    def has_children(self) -> np.ndarray:
        return np.isin(self.ids, self.parents[self.parents >= 0])


def read_trace(events: Iterable[dict[str, Any]]) -> Trace:
    """Flatten the candidates events of a run; steps are grid indices (per particle)."""
    trace = Trace()
    cols: dict[str, list] = {k: [] for k in ("ids", "parents", "steps", "t", "states", "x0", "rewards", "batch")}
    t_index: dict[float, int] = {}
    best = -math.inf
    for event in events:
        kind = event.get("kind")
        if kind == "start":
            trace.config = dict(event.get("config") or {})
            trace.grid = list(event.get("grid") or [])
            t_index = {}
            for k, t in enumerate(trace.grid):
                t_index.setdefault(float(t), k)
            continue
        if kind != "candidates":
            continue
        ts = [float(v) for v in event["t"]]
        n = len(ts)
        if len(set(ts)) <= 1:
            steps = [int(event["step"])] * n
        else:  # chains at different times in one batch (RBF): look each time up in the grid
            steps = [t_index.get(v, int(event["step"])) for v in ts]
        # Large batches trace only their first particles; "n" counts them all (untraced ones at the event's step).
        for k in steps + [int(event["step"])] * (int(event.get("n", n)) - n):
            trace.nfe_by_step[k] = trace.nfe_by_step.get(k, 0) + 1
        cols["ids"] += list(event["ids"])
        cols["parents"] += list(event["parents"])
        cols["steps"] += steps
        cols["t"] += ts
        cols["states"] += [list(s)[:2] for s in event["states"]]
        cols["x0"] += [list(s)[:2] for s in event["x0"]]
        cols["rewards"] += list(event["rewards"])
        cols["batch"] += [trace.n_batches] * n
        trace.n_batches += 1
        best = max([best, float(event.get("reward_max", max(event["rewards"], default=-math.inf)))])
        trace.curve.append((int(event["nfe_total"]), best))
    if cols["ids"]:
        trace.ids = np.asarray(cols["ids"], dtype=np.int64)
        trace.parents = np.asarray(cols["parents"], dtype=np.int64)
        trace.steps = np.asarray(cols["steps"], dtype=np.int64)
        trace.t = np.asarray(cols["t"], dtype=np.float64)
        trace.states = _points(cols["states"])
        trace.x0 = _points(cols["x0"])
        trace.rewards = np.asarray(cols["rewards"], dtype=np.float64)
        trace.batch = np.asarray(cols["batch"], dtype=np.int64)
    return trace


def _points(rows: list[list[float]]) -> np.ndarray:
    """[n, 2] float array; 1-D projections get a zero second coordinate."""
    out = np.zeros((len(rows), 2))
    for i, row in enumerate(rows):
        out[i, : len(row)] = row[:2]
    return out


def returned_id(trace: Trace, record: dict[str, Any] | None) -> int | None:
    """The id of the candidate a finished run returned: its reward (and x0) match the record's first sample."""
    if record is None or len(trace) == 0 or record.get("final_reward") is None:
        return None
    matches = np.flatnonzero(trace.rewards == float(record["final_reward"]))
    if len(matches) == 0:
        return None
    samples = record.get("samples_2d") or []
    if len(matches) > 1 and samples:
        distance = np.abs(trace.x0[matches] - _points([samples[0]])[0]).sum(1)
        matches = matches[np.argsort(distance, kind="stable")]
    return int(trace.ids[matches[0]])


def lineage(trace: Trace, leaf: int | None) -> list[int]:
    """Row indices from the first noise down to `leaf` (following parents)."""
    if leaf is None:
        return []
    index = trace.index_of()
    rows: list[int] = []
    node = leaf
    while node >= 0 and node in index and len(rows) <= len(trace):
        rows.append(index[node])
        node = int(trace.parents[index[node]])
    return rows[::-1]


def nfe_per_step(events: Iterable[dict[str, Any]], record: dict[str, Any] | None = None) -> list[int]:
    """NFE spent at each evaluation time: the record's ledger when finished, else counted from events."""
    if record is not None and record.get("nfe_per_step") is not None:
        return [int(v) for v in record["nfe_per_step"]]
    trace = read_trace(events)
    size = max([len(trace.grid) - 1, *(k + 1 for k in trace.nfe_by_step)])
    return [trace.nfe_by_step.get(k, 0) for k in range(max(size, 0))]


def method_result(record: dict[str, Any] | None, key: str) -> Any:
    """A method's own result field (quota_per_step, ess_per_step, ...): top level, or under "method_result"."""
    if not record:
        return None
    return record.get(key, (record.get("method_result") or {}).get(key))


# --------------------------------------------------------------------------------------------------
# Figure helpers. Figures are built as plain dicts and validated once by go.Figure(spec): plotly's
# incremental update_* API costs ~50 ms per call, too slow to redraw three plots at every step.
# --------------------------------------------------------------------------------------------------
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


def _axis(title: str, **kwargs: Any) -> dict[str, Any]:
    return {**AXIS_STYLE, **kwargs, "title": {"text": title, "font": {"size": 13}}}


def _figure(
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


def _subplot_title(text: str, x: float, y: float, note: str = "") -> dict[str, Any]:
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
    return _figure([], title, height=height, annotations=[note], xaxis={"visible": False}, yaxis={"visible": False})


def _segments(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y arrays drawing one line per row a[i] -> b[i], separated by NaN gaps (one trace, many lines)."""
    n = a.shape[0]
    xs = np.full(3 * n, np.nan)
    ys = np.full(3 * n, np.nan)
    xs[0::3], xs[1::3] = a[:, 0], b[:, 0]
    ys[0::3], ys[1::3] = a[:, 1], b[:, 1]
    return xs, ys


def _edges(trace: Trace, coords: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lines from each row's parent to the row, in the given coordinates (rows without a parent skipped)."""
    index = trace.index_of()
    keep = [r for r in np.asarray(rows).tolist() if int(trace.parents[r]) in index]
    if not keep:
        return np.zeros(0), np.zeros(0)
    parent_rows = np.asarray([index[int(trace.parents[r])] for r in keep])
    return _segments(coords[parent_rows], coords[np.asarray(keep)])


def _hover(trace: Trace, rows: np.ndarray, reward_name: str) -> list[str]:
    return [
        f"candidate {int(trace.ids[r])} (parent {int(trace.parents[r])})<br>step {int(trace.steps[r])}, "
        f"t = {trace.t[r]:.3f}<br>{reward_name} = {trace.rewards[r]:.4g}"
        for r in np.asarray(rows).tolist()
    ]


@dataclass
class PathSets:
    """Row indices of a trace split for drawing: continued, pruned, current, and the returned lineage."""

    continued: np.ndarray
    pruned: np.ndarray
    current: np.ndarray
    returned: list[int]


MAX_MARKERS = 1200  # pruned crosses drawn individually (the newest ones); their edges are always all drawn


def _particle_markers(
    trace: Trace, coords: np.ndarray, idx: Any, name: str, marker: dict[str, Any], reward_name: str, **extra: Any
) -> dict[str, Any]:
    """A scatter of the trace rows `idx` at `coords`, hovering each particle's step, reward and lineage."""
    return {
        "type": "scatter",
        "x": coords[idx, 0],
        "y": coords[idx, 1],
        "mode": "markers",
        "name": name,
        "marker": marker,
        "text": _hover(trace, idx, reward_name),
        "hoverinfo": "text",
        **extra,
    }


def split_paths(trace: Trace, record: dict[str, Any] | None) -> PathSets:
    """Continued = has children; current = leaves of the newest batch (of the last step once finished);
    pruned = every other leaf."""
    rows = np.arange(len(trace))
    if len(trace) == 0:
        return PathSets(rows, rows, rows, [])
    leaf = ~trace.has_children()
    newest = trace.steps == trace.steps.max() if record is not None else trace.batch == trace.batch.max()
    returned = lineage(trace, returned_id(trace, record))
    return PathSets(rows[~leaf], rows[leaf & ~newest], rows[leaf & newest], returned)


# --------------------------------------------------------------------------------------------------
# Trajectories
# --------------------------------------------------------------------------------------------------
def density_background(world_info: dict[str, Any], reward_spec: str, lam: float = 1.0, n: int = 72) -> dict | None:
    """Data density and reward-tilted target on a square grid, for the 2-D world (None elsewhere)."""
    mixture = (world_info or {}).get("mixture")
    if mixture is None:
        return None
    from flowscale.worlds.toy2d import GaussianMixture, make_reward, tilted_density

    gm = GaussianMixture.from_dict(mixture)
    lo, hi = plot_extent(gm.means.tolist(), gm.stds.tolist(), reward_spec)
    data = tilted_density(gm, make_reward(reward_spec, gm), lam, lo, hi, n)
    density = np.sqrt(np.asarray(data["density"]))  # square root: a 5 % mode stays visible
    tilted = np.asarray(data["tilted"])
    return {
        "axis": np.asarray(data["axis"]).round(4),
        "density": (density / density.max()).round(4),
        "tilted": (tilted / tilted.max()).round(4),
        "lam": lam,
        "reward": reward_spec,
        "extent": [lo, hi],
    }


def background_png(background: dict[str, Any], density: bool = True, tilted: bool = True, size: int = 300) -> str:
    """The density (blue) and the tilted target (orange) as one PNG data URI, drawn under the particles.

    A picture instead of contour traces: the browser redraws the paths plot at every step, and
    re-tracing two filled contours each time is what made the live view stutter.
    """
    import base64
    import io

    from PIL import Image

    rgba = np.zeros(np.shape(background["density"]) + (4,))
    layers = []
    if density:
        layers.append((np.asarray(background["density"]), (126, 166, 216), 0.85))
    if tilted:
        layers.append((np.sqrt(np.asarray(background["tilted"])), (234, 88, 12), 0.6))
    for value, colour, strength in layers:  # "over" compositing, straight alpha
        alpha = np.clip(value, 0, 1)[..., None] * strength
        out_a = alpha + rgba[..., 3:] * (1 - alpha)
        rgba[..., :3] = np.where(
            out_a > 0,
            (np.asarray(colour) * alpha + rgba[..., :3] * rgba[..., 3:] * (1 - alpha)) / np.maximum(out_a, 1e-12),
            0,
        )
        rgba[..., 3:] = out_a
    white = np.ones(3) * 255
    rgb = rgba[..., :3] * rgba[..., 3:] + white * (1 - rgba[..., 3:])  # onto the white plot background
    pixels = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)[::-1]  # image row 0 is the top (largest y)
    image = Image.fromarray(pixels, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.quantize(96).save(buffer, format="PNG")  # a palette keeps it ~20 kB
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_extent(means: Sequence[Sequence[float]], stds: Sequence[float], reward_spec: str) -> tuple[float, float]:
    """A square window holding every mode (3 std), the reward's target and most of the N(0, I) noise."""
    values = [3.2, -3.2]
    for (mx, my), s in zip(means, stds, strict=True):
        values += [mx + 3 * s, mx - 3 * s, my + 3 * s, my - 3 * s]
    values += list(reward_geometry(reward_spec).get("values", []))
    lo, hi = min(values), max(values)
    pad = 0.04 * (hi - lo)
    return round(lo - pad, 3), round(hi + pad, 3)


def reward_geometry(spec: str) -> dict[str, Any]:
    """What a 2-D reward looks like: a target point or a rectangle (nothing for logp)."""
    kind, _, body = (spec or "").partition(":")
    try:
        values = [float(v) for v in body.split(",")] if body else []
    except ValueError:
        return {}
    if kind == "point" and len(values) == 2:
        return {"point": values, "values": values}
    if kind == "region" and len(values) == 4:
        return {"region": values, "values": values}
    return {}


def trajectories_figure(
    events: Sequence[dict[str, Any]],
    record: dict[str, Any] | None = None,
    *,
    background: dict[str, Any] | None = None,
    baseline_events: Sequence[dict[str, Any]] | None = None,
    layers: Sequence[str] = DEFAULT_LAYERS,
    image_world: bool = False,
) -> go.Figure:
    """Particle paths: over the 2-D density in the playground; reward and latent paths in image worlds."""
    trace = read_trace(events)
    if len(trace) == 0 and background is None:
        return empty_figure(
            "Particle paths", "Press Run to watch the particles move from noise (t = 1) to data (t = 0).", height=720
        )
    if image_world:
        return image_paths_figure(trace, record)
    return paths_2d_figure(trace, record, background, read_trace(baseline_events or []), layers)


def _status_line(trace: Trace, record: dict[str, Any] | None) -> str:
    if len(trace) == 0:
        return "waiting for the first evaluation…"
    spent = trace.curve[-1][0]
    budget = trace.config.get("nfe")
    where = f"{spent} / {budget} NFE" if budget else f"{spent} NFE"
    if record is not None:
        return f"{len(trace)} candidates evaluated · {where} · finished"
    t_now = float(trace.t[trace.batch == trace.batch.max()].min())
    return f"{len(trace)} candidates evaluated · {where} · running, step {int(trace.steps.max())} (t = {t_now:.2f})"


def paths_2d_figure(
    trace: Trace,
    record: dict[str, Any] | None,
    background: dict[str, Any] | None,
    baseline: Trace,
    layers: Sequence[str] = DEFAULT_LAYERS,
) -> go.Figure:
    cfg = trace.config
    reward_name = cfg.get("reward") or "reward"
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    if background is not None and ("density" in layers or "tilted" in layers):
        lo, hi = background["extent"]
        images.append(
            {
                "source": background_png(background, "density" in layers, "tilted" in layers),
                "xref": "x",
                "yref": "y",
                "x": lo,
                "y": hi,
                "sizex": hi - lo,
                "sizey": hi - lo,
                "sizing": "stretch",
                "layer": "below",
                "opacity": 1.0,
            }
        )
        tilted_name = f"reward-tilted target p(x)·e^(r/λ), λ = {background['lam']:g}"
        for key, name, colour in (("density", "data density p(x)", "#7ea6d8"), ("tilted", tilted_name, C_TILTED)):
            if key in layers:  # legend entries for the picture
                data.append(
                    {
                        "type": "scatter",
                        "x": [None],
                        "y": [None],
                        "mode": "markers",
                        "name": name,
                        "marker": {"symbol": "square", "size": 12, "color": colour, "opacity": 0.7},
                    }
                )
    rows = split_paths(trace, record)
    if len(trace):
        xs, ys = _edges(trace, trace.states, np.concatenate([rows.continued, rows.current]))
        data.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "mode": "lines",
                "line": {"color": C_PATH, "width": 1},
                "name": "particle paths x_t (t: 1 → 0)",
                "hoverinfo": "skip",
            }
        )
        if "pruned" in layers and len(rows.pruned):
            ex, ey = _edges(trace, trace.states, rows.pruned)
            data.append(
                {
                    "type": "scatter",
                    "x": ex,
                    "y": ey,
                    "mode": "lines",
                    "line": {"color": C_PRUNED_EDGE, "width": 1},
                    "hoverinfo": "skip",
                    "showlegend": False,
                }
            )
            shown = rows.pruned[-MAX_MARKERS:]  # thousands of SVG markers redrawn every step would stall the browser
            more = f" (newest {MAX_MARKERS} of {len(rows.pruned)})" if len(rows.pruned) > MAX_MARKERS else ""
            data.append(
                _particle_markers(
                    trace,
                    trace.states,
                    shown,
                    "pruned / rejected candidates" + more,
                    {"symbol": "x", "size": 6, "color": C_PRUNED},
                    reward_name,
                )
            )
        if "x0" in layers:
            data.append(
                {
                    "type": "scatter",
                    "x": trace.x0[:, 0],
                    "y": trace.x0[:, 1],
                    "mode": "markers",
                    "name": "x̂0 predictions (what the reward scores)",
                    "marker": {"size": 4, "color": C_X0},
                    "hoverinfo": "skip",
                }
            )
        data.append(
            _particle_markers(
                trace,
                trace.states,
                rows.current,
                "final particles" if record is not None else "current particles",
                {"size": 7, "color": C_METHOD, "line": {"color": "white", "width": 1}},
                reward_name,
            )
        )
    if "baseline" in layers and len(baseline):
        order = np.argsort(baseline.steps, kind="stable")
        data.append(
            {
                "type": "scatter",
                "x": np.append(baseline.states[order, 0], baseline.x0[order[-1], 0]),
                "y": np.append(baseline.states[order, 1], baseline.x0[order[-1], 1]),
                "mode": "lines+markers",
                "name": "ODE baseline: path → its sample",
                "line": {"color": C_BASELINE, "width": 2, "dash": "dash"},
                "marker": {
                    "size": [0] * len(order) + [13],
                    "symbol": "diamond",
                    "color": C_BASELINE,
                    "line": {"color": "white", "width": 1},
                },
                "hoverinfo": "skip",
            }
        )
    if rows.returned:
        path = np.asarray(rows.returned)
        last = path[-1]
        data.append(
            {
                "type": "scatter",
                "x": np.append(trace.states[path, 0], trace.x0[last, 0]),
                "y": np.append(trace.states[path, 1], trace.x0[last, 1]),
                "mode": "lines",
                "name": "lineage of the returned sample",
                "line": {"color": C_RETURNED, "width": 3.5},
                "hoverinfo": "skip",
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": [trace.x0[last, 0]],
                "y": [trace.x0[last, 1]],
                "mode": "markers",
                "name": "returned sample x̂0",
                "hoverinfo": "text",
                "marker": {
                    "symbol": "star",
                    "size": 19,
                    "color": C_RETURNED,
                    "line": {"color": "#1f2937", "width": 1.5},
                },
                "text": [f"returned sample<br>{reward_name} = {trace.rewards[last]:.4g}"],
            }
        )
    geometry = reward_geometry(reward_name)
    if "point" in geometry:
        data.append(
            {
                "type": "scatter",
                "x": [geometry["point"][0]],
                "y": [geometry["point"][1]],
                "mode": "markers",
                "name": f"reward target ({reward_name})",
                "hoverinfo": "name",
                "marker": {"symbol": "circle-open-dot", "size": 17, "color": C_TARGET, "line": {"width": 2.5}},
            }
        )
    if "region" in geometry:
        x0, y0, x1, y1 = geometry["region"]
        shapes.append(
            {
                "type": "rect",
                "x0": x0,
                "y0": y0,
                "x1": x1,
                "y1": y1,
                "line": {"color": C_TARGET, "width": 2, "dash": "dot"},
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": [None],
                "y": [None],
                "mode": "lines",
                "name": f"reward region ({reward_name})",
                "line": {"color": C_TARGET, "width": 2, "dash": "dot"},
            }
        )
    extent = background["extent"] if background is not None else None
    method = label(cfg.get("method"), cfg.get("process")) if cfg else "run"
    return _figure(
        data,
        f"Particle paths — {method}",
        _status_line(trace, record),
        height=720,
        shapes=shapes,
        images=images,
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.13, "yanchor": "top", "itemsizing": "constant"},
        margin={"r": 16, "b": 40},
        xaxis=_axis("x₁", range=extent, zeroline=False, constrain="domain"),
        yaxis=_axis("x₂", range=extent, zeroline=False, scaleanchor="x", scaleratio=1, constrain="domain"),
        uirevision="paths",
    )


def image_paths_figure(trace: Trace, record: dict[str, Any] | None) -> go.Figure:
    """Image worlds: each candidate's reward along its path, and a 2-D projection of the latent paths."""
    cfg = trace.config
    reward_name = cfg.get("reward") or "reward"
    rows = split_paths(trace, record)
    data: list[dict[str, Any]] = []
    if len(trace):
        by_reward = np.stack([trace.steps.astype(np.float64), trace.rewards], axis=1)
        live = np.concatenate([rows.continued, rows.current])
        for coords, axes in ((by_reward, ("x", "y")), (trace.states, ("x2", "y2"))):
            first = axes[0] == "x"
            common = {"type": "scatter", "xaxis": axes[0], "yaxis": axes[1], "showlegend": first}
            xs, ys = _edges(trace, coords, live)
            data.append(
                dict(
                    common,
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"color": C_PATH, "width": 1},
                    hoverinfo="skip",
                    name="particle paths",
                    legendgroup="paths",
                )
            )
            if len(rows.pruned):
                shown = rows.pruned[-MAX_MARKERS:]
                data.append(
                    _particle_markers(
                        trace,
                        coords,
                        shown,
                        "pruned / rejected candidates",
                        {"symbol": "x", "size": 6, "color": C_PRUNED},
                        reward_name,
                        **common,
                        legendgroup="pruned",
                    )
                )
            data.append(
                _particle_markers(
                    trace,
                    coords,
                    rows.current,
                    "final particles" if record is not None else "current particles",
                    {"size": 7, "color": C_METHOD},
                    reward_name,
                    **common,
                    legendgroup="current",
                )
            )
            if rows.returned:
                path = np.asarray(rows.returned)
                data.append(
                    dict(
                        common,
                        x=coords[path, 0],
                        y=coords[path, 1],
                        mode="lines+markers",
                        line={"color": C_RETURNED, "width": 3},
                        marker={"size": 6},
                        name="lineage of the returned sample",
                        legendgroup="returned",
                    )
                )
    method = label(cfg.get("method"), cfg.get("process")) if cfg else "run"
    titles = [
        _subplot_title("given reward of each candidate's x̂0, along its path", 0.5, 1.0),
        _subplot_title("2-D projection of the latent states x_t", 0.5, 0.42),
    ]
    return _figure(
        data,
        f"Particle paths — {method}",
        _status_line(trace, record),
        height=720,
        annotations=titles,
        legend={"orientation": "h", "x": 0, "y": -0.1, "yanchor": "top"},
        margin={"t": 110, "b": 40},
        xaxis=_axis("denoising step k (t: 1 → 0)", anchor="y"),
        yaxis=_axis(reward_name, anchor="x", domain=[0.58, 1.0]),
        xaxis2=_axis("projection 1", anchor="y2"),
        yaxis2=_axis("projection 2", anchor="x2", domain=[0.0, 0.4]),
        uirevision="paths",
    )


# --------------------------------------------------------------------------------------------------
# Budget
# --------------------------------------------------------------------------------------------------
def budget_figure(events: Sequence[dict[str, Any]], record: dict[str, Any] | None = None) -> go.Figure:
    """NFE spent per denoising step; for RBF the planned base quota and the rolled-over NFE, stacked."""
    trace = read_trace(events)
    cfg = trace.config or (record or {}).get("config", {})
    title = "NFE per denoising step" + (f" — {label(cfg.get('method'), cfg.get('process'))}" if cfg else "")
    spent = nfe_per_step(events, record)
    if not any(spent):
        return empty_figure(title, "Press Run to see how many evaluations each step receives.", height=400)
    grid = (record or {}).get("grid") or trace.grid
    steps = list(range(len(spent)))
    hover = [f"step {k}" + (f", t = {grid[k]:.3f}" if k < len(grid) else "") for k in steps]
    data: list[dict[str, Any]] = []
    method = cfg.get("method")
    if method == "rbf":
        quota = method_result(record, "quota_per_step")
        rollover = method_result(record, "rollover_per_step") or _live_rollover(events, len(spent))
        if quota is not None:
            data.append(
                {
                    "type": "bar",
                    "x": steps,
                    "y": quota,
                    "name": "planned base quota",
                    "marker": {"color": C_QUOTA},
                    "offsetgroup": "plan",
                    "hovertext": hover,
                }
            )
        data.append(
            {
                "type": "bar",
                "x": steps,
                "y": rollover,
                "base": quota,
                "name": "rolled over",
                "marker": {"color": C_ROLLOVER},
                "offsetgroup": "plan",
                "hovertext": hover,
            }
        )
    data.append(
        {
            "type": "bar",
            "x": steps,
            "y": spent,
            "name": "NFE spent",
            "marker": {"color": C_METHOD},
            "offsetgroup": "spent",
            "hovertext": hover,
        }
    )
    budget = cfg.get("nfe")
    if budget and method != "rbf":
        even = budget / len(spent)
        data.append(
            {
                "type": "scatter",
                "x": [-0.5, len(spent) - 0.5],
                "y": [even, even],
                "mode": "lines",
                "name": "even split",
                "line": {"color": "#6b7280", "dash": "dash", "width": 1.5},
            }
        )
    subtitle = f"{sum(spent)} of {budget} NFE spent over {len(spent)} steps" if budget else f"{sum(spent)} NFE"
    return _figure(
        data,
        title,
        subtitle,
        height=400,
        barmode="group",
        bargap=0.18,
        bargroupgap=0.04,
        legend={"orientation": "h", "x": 0, "y": -0.24, "yanchor": "top"},
        margin={"b": 40},
        xaxis=_axis("denoising step k (t: 1 → 0)", dtick=max(1, len(spent) // 12)),
        yaxis=_axis("model evaluations (NFE)", rangemode="tozero"),
        uirevision="budget",
    )


def _live_rollover(events: Sequence[dict[str, Any]], size: int) -> list[int]:
    """Rolled-over NFE per step from RBF budget events (an accept at step k carries into step k + 1)."""
    out = [0] * size
    for e in events:
        if e.get("kind") == "budget" and e.get("rollover"):
            k = int(e["step"]) + 1
            if 0 <= k < size:
                out[k] += int(e["rollover"])
    return out


# --------------------------------------------------------------------------------------------------
# Reward against compute
# --------------------------------------------------------------------------------------------------
def _curve(record: dict[str, Any] | None, events: Sequence[dict[str, Any]] | None) -> list[tuple[int, float]]:
    if record is not None and record.get("best_reward_by_nfe"):
        return [(int(n), float(r)) for n, r in record["best_reward_by_nfe"]]
    return read_trace(events or []).curve


def reward_figure(
    events: Sequence[dict[str, Any]],
    record: dict[str, Any] | None = None,
    *,
    baseline: dict[str, Any] | None = None,
    bon: dict[str, Any] | None = None,
    bon_events: Sequence[dict[str, Any]] | None = None,
) -> go.Figure:
    """Best given reward against NFE spent: the method, the ODE baseline and BoN at the same budget; SMC adds ESS."""
    trace = read_trace(events)
    cfg = trace.config or (record or {}).get("config", {})
    reward_name = cfg.get("reward") or "reward"
    method = cfg.get("method")
    smc = method == "smc"
    name = label(method, cfg.get("process")) if cfg else "method"
    curves = [(name, _curve(record, events), record, C_METHOD, "solid")]
    if method != "bon" and (bon is not None or bon_events):
        process = ((bon or {}).get("config") or read_trace(bon_events or []).config).get("process")
        bon_name = f"BoN, same budget · {PROCESS_LABELS.get(process, process)}"
        curves.append((bon_name, _curve(bon, bon_events), bon, C_BON, "solid"))
    if baseline is not None:
        curves.append(("ODE baseline", _curve(baseline, None), baseline, C_BASELINE, "dash"))
    if not any(c for _, c, _, _, _ in curves):
        return empty_figure("Best reward vs. NFE spent", "Press Run to watch the best reward grow.", height=420)
    max_nfe = max([cfg.get("nfe") or 0] + [c[-1][0] for _, c, _, _, _ in curves if c])
    data: list[dict[str, Any]] = []
    for name, curve, rec, colour, dash in curves:
        if not curve:
            continue
        xs, ys = zip(*curve, strict=True)
        data.append(
            {
                "type": "scatter",
                "x": [0, *xs],
                "y": [ys[0], *ys],
                "mode": "lines",
                "name": name,
                "legendgroup": name,
                "line": {"color": colour, "width": 2.5, "dash": dash, "shape": "hv"},
                "hovertemplate": "%{x} NFE: best %{y:.4g}<extra>" + name + "</extra>",
            }
        )
        if rec is not None and rec.get("final_reward") is not None:
            used = int(rec.get("nfe_used") or xs[-1])
            data.append(
                {
                    "type": "scatter",
                    "x": [used],
                    "y": [rec["final_reward"]],
                    "mode": "markers",
                    "legendgroup": name,
                    "showlegend": False,
                    "hovertemplate": f"{name}<br>returned sample: %{{y:.4g}} at %{{x}} NFE<extra></extra>",
                    "marker": {"symbol": "star", "size": 15, "color": colour, "line": {"color": "#1f2937", "width": 1}},
                }
            )
            if rec is baseline:  # carry the baseline across the whole budget for comparison
                data.append(
                    {
                        "type": "scatter",
                        "x": [used, max_nfe],
                        "y": [rec["final_reward"]] * 2,
                        "mode": "lines",
                        "showlegend": False,
                        "legendgroup": name,
                        "hoverinfo": "skip",
                        "line": {"color": colour, "width": 1.5, "dash": "dot"},
                    }
                )
    layout: dict[str, Any] = {
        "xaxis": _axis("NFE spent (model evaluations)", rangemode="tozero", anchor="y"),
        "yaxis": _axis(f"best {reward_name} so far", anchor="x"),
    }
    annotations = []
    if smc:
        traces, note = _ess_traces(events, record)
        data += traces
        layout["yaxis"]["domain"] = [0.56, 1.0]
        layout["xaxis2"] = _axis("denoising step k", anchor="y2", domain=[0, 1])
        layout["yaxis2"] = _axis("ESS", anchor="x2", domain=[0, 0.26], rangemode="tozero")
        annotations.append(_subplot_title("SMC: effective sample size per step", 0.5, 0.31, note))
    return _figure(
        data,
        "Best reward vs. NFE spent",
        "running best over all x̂0 evaluated · ★ the sample each run returned",
        height=640 if smc else 430,
        annotations=annotations,
        margin={"b": 40},
        legend={"orientation": "h", "x": 0, "y": -0.13 if smc else -0.2, "yanchor": "top"},
        uirevision="reward",
        **layout,
    )


def _ess_traces(events: Sequence[dict[str, Any]], record: dict[str, Any] | None) -> tuple[list[dict], str]:
    from flowscale.search.smc import SmcParams

    cfg = read_trace(events).config or (record or {}).get("config", {})
    threshold = float((cfg.get("params") or {}).get("smc.ess_threshold", SmcParams.ess_threshold))
    steps, ess, n, resampled = [], [], 0, 0
    for e in events:
        if e.get("kind") == "candidates":
            n = max(n, int(e.get("n", len(e.get("ids", [])))))
        elif e.get("kind") == "select" and e.get("mode") == "reweight":
            steps.append(int(e["step"]))
            ess.append(float(e["ess"]))
        elif e.get("kind") == "resample":
            resampled += 1
    data = [
        {
            "type": "bar",
            "x": steps,
            "y": ess,
            "xaxis": "x2",
            "yaxis": "y2",
            "marker": {"color": "#14b8a6"},
            "showlegend": False,
            "name": "ESS after reweighting",
            "hovertemplate": "step %{x}: ESS %{y:.2f}<extra></extra>",
        }
    ]
    if n:
        data.append(
            {
                "type": "scatter",
                "x": [0.5, max(steps or [1]) + 0.5],
                "y": [threshold * n] * 2,
                "mode": "lines",
                "xaxis": "x2",
                "yaxis": "y2",
                "showlegend": False,
                "hoverinfo": "skip",
                "line": {"color": "#6b7280", "dash": "dash"},
            }
        )
    note = f"after reweighting · dashed: resample below {threshold:g}·N = {threshold * n:g}"
    note += f" · {resampled} resamplings"
    return data, note


# --------------------------------------------------------------------------------------------------
# Comparing methods
# --------------------------------------------------------------------------------------------------
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


def compare_row(record: dict[str, Any] | None, method: str, process: str, note: str = "") -> list[Any]:
    """One table row; a run that failed (record None) keeps its note."""
    if record is None:
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
        _subplot_title(f"given reward: {reward_name}", 0.22, 1.0),
        _subplot_title(f"held-out reward: {heldout_name}", 0.78, 1.0),
    ]
    return _figure(
        data,
        title,
        f"{budget} NFE each (the ODE baseline is one trajectory) · higher is better",
        height=460,
        showlegend=False,
        annotations=titles,
        margin={"t": 110},
        xaxis=_axis("", domain=[0, 0.44], anchor="y"),
        yaxis=_axis("reward of the returned sample", anchor="x", range=given_range),
        xaxis2=_axis("", domain=[0.56, 1.0], anchor="y2"),
        yaxis2=_axis("held-out reward", anchor="x2", range=held_range),
    )


def _padded(values: Sequence[float]) -> list[float] | None:
    """A value range from 0 that leaves room for the bars' labels on either side."""
    if not values:
        return None
    lo, hi = min(0.0, *values), max(0.0, *values)
    pad = 0.14 * ((hi - lo) or 1.0)
    return [lo - (pad if lo < 0 else 0), hi + (pad if hi > 0 else 0)]


# --------------------------------------------------------------------------------------------------
# Side by side and previews
# --------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    return "—" if value is None else f"{float(value):.4g}"


def side_by_side_markdown(runs: Sequence[tuple[str, dict[str, Any] | None]]) -> str:
    """A table: given reward, held-out reward and NFE of the ODE baseline, the method and BoN."""
    runs = [(name, rec) for name, rec in runs if rec is not None]
    if not runs:
        return "_Press **Run** to compare the scaled sampler with the deterministic ODE baseline._"
    cfg = runs[0][1].get("config", {})
    given, held = cfg.get("reward", "reward"), cfg.get("heldout", "held-out")
    header = "| | " + " | ".join(f"**{name}**" for name, _ in runs) + " |"
    rule = "|---|" + "---:|" * len(runs)
    lines = [
        header,
        rule,
        f"| given reward `{given}` | " + " | ".join(_fmt(r.get("final_reward")) for _, r in runs) + " |",
        f"| held-out reward `{held}` | " + " | ".join(_fmt(r.get("heldout_reward")) for _, r in runs) + " |",
        "| NFE spent / budget | " + " | ".join(f"{r.get('nfe_used')} / {r.get('nfe_budget')}" for _, r in runs) + " |",
    ]
    if any(r.get("accuracy") is not None for _, r in runs):
        lines.append("| accuracy | " + " | ".join(_fmt(r.get("accuracy")) for _, r in runs) + " |")
    return "\n".join(lines)


def to_uint8_image(value: Any, size: int = 192) -> np.ndarray | None:
    """One preview (tensor/array [C,H,W] or [H,W,C] in [-1,1], [0,1] or uint8, or a PIL image) as HWC uint8,
    upscaled with nearest neighbours to about `size` pixels (small images stay crisp)."""
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach().to("cpu").numpy()
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3:
        return None
    if arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if arr.min() < 0:
            arr = (arr + 1) / 2
        if arr.max() <= 1.0 + 1e-6:
            arr = arr * 255
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    scale = max(1, size // max(arr.shape[0], arr.shape[1]))
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    return arr


def preview_strip(previews_by_step: dict[int, tuple[Any, float, float]]) -> list[tuple[np.ndarray, str]]:
    """Gallery items: the best x̂0 preview of each step, captioned with step, t and reward."""
    items = []
    for step in sorted(previews_by_step):
        image, _t, reward = previews_by_step[step]
        arr = to_uint8_image(image)
        if arr is not None:
            items.append((arr, f"step {step}: r={reward:.3g}"))
    return items
