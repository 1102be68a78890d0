"""The Compare tab: every method (and the ODE baseline) at the same budget and seed, from one world."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from flowscale import cost, figures
from flowscale.config import ConfigError
from flowscale.cost import check_request
from flowscale.run import estimate_run, prepare
from flowscale.search import SEARCH_METHODS
from flowscale.ui.controls import build_config
from flowscale.ui.errors import as_gr_error, failed, stopped
from flowscale.ui.run_tab import RunTab
from flowscale.ui.session import Phase, run_phase

METHODS = ("ode", *SEARCH_METHODS)


@dataclass
class CompareTab:
    button: Any
    stop: Any
    status: Any
    table: Any
    plot: Any


def build_compare_tab() -> CompareTab:
    gr.Markdown(
        "Run **every method** (and the ODE baseline) at the **same NFE budget and seed**, using the world, "
        "process, steps and advanced settings of the Run tab. A method that cannot fit the budget gets a "
        "note instead of a result."
    )
    with gr.Row():
        button = gr.Button("▶ Compare all methods", variant="primary", elem_id="compare", scale=3)
        stop = gr.Button("■ Stop", variant="stop", elem_id="compare-stop", scale=1)
    status = gr.Markdown("", elem_id="compare-status")
    table = gr.Dataframe(headers=figures.COMPARE_HEADERS, interactive=False, elem_id="compare-table", wrap=True,
                         column_count=len(figures.COMPARE_HEADERS))
    plot = gr.Plot(figures.compare_figure([]), show_label=False, elem_id="plot-compare")
    return CompareTab(button, stop, status, table, plot)


def compare_ui(tab: CompareTab, run_tab: RunTab, values: dict[Any, Any],
               progress: gr.Progress = gr.Progress()) -> Iterator[dict[Any, Any]]:  # noqa: B008
    """Every method at the same budget and seed (plus the ODE baseline): a table and bars."""
    v = {run_tab.controls.names[c]: val for c, val in values.items() if c in run_tab.controls.names}
    rows: list[list[Any]] = []
    try:
        base_cfg = build_config(v)
        _, world, _ = prepare(base_cfg)  # the world is built once for all the methods
        ready = {}
        for method in METHODS:
            try:
                ready[method] = prepare(build_config(v, method=method), world)
            except ConfigError as exc:  # e.g. a budget too small for this method: a row, not a failed comparison
                ready[method] = exc
        check_request([(p[0], estimate_run(p)) for p in ready.values() if not isinstance(p, ConfigError)],
                      *cost.caps())
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        yield {tab.status: failed()}
        raise as_gr_error(exc) from None
    names = (world.reward.name, world.heldout.name if world.heldout is not None else "held-out")
    for i, method in enumerate(METHODS):
        label = figures.label(method, base_cfg.process)
        progress((i, len(METHODS)), desc=f"running {label}", unit="methods")
        yield {tab.status: f"**Running** · {label} ({i + 1} of {len(METHODS)})…"}
        try:
            if isinstance(ready[method], ConfigError):
                raise ready[method]
            phase = Phase("method", ready[method][0])
            for _ in run_phase(phase, world, ready[method]):
                pass
            rows.append(figures.compare_row(phase.trace, method, phase.cfg.process))
        except ConfigError as exc:  # e.g. a budget too small for this method: a row, not a failed comparison
            rows.append(figures.compare_row(None, method, base_cfg.process, note=str(exc)))
        except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
            yield {tab.status: failed()}
            raise as_gr_error(exc) from None
        yield {tab.table: rows, tab.plot: figures.compare_figure(rows, *names)}
    yield {tab.status: f"**Done** · compared {len(METHODS)} runs at {base_cfg.nfe} NFE, seed {base_cfg.seed}."}


def wire_compare_tab(tab: CompareTab, run_tab: RunTab) -> None:
    event = tab.button.click(partial(compare_ui, tab, run_tab), set(run_tab.controls.names),
                             [tab.status, tab.table, tab.plot], show_progress_on=[tab.status],
                             api_visibility="private")
    tab.stop.click(None, None, None, cancels=[event], api_visibility="private").then(
        stopped, None, tab.status, api_visibility="private")
