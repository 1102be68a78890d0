"""The Compare tab: every method (and the ODE baseline) at the same budget and seed, from one world."""

from __future__ import annotations

import contextlib
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
from flowscale.ui import workers
from flowscale.ui.run_tab import RunTab

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
    """Every method at the same budget and seed (plus the ODE baseline): a table and bars, a row as each run
    finishes. The CPU worlds' runs go to the worker processes, as many at once as there are workers (a long
    comparison on two cores takes about half the time); each run's record is the one it makes alone."""
    v = {run_tab.controls.names[c]: val for c, val in values.items() if c in run_tab.controls.names}
    try:
        base_cfg = build_config(v)
        configs = {m: build_config(v, method=m) for m in METHODS}
        # The world is built once for all the methods, from the ODE run, which fits any budget (the Run tab's
        # method may not: it then gets a note in its row like any other)
        ready: dict[str, Any] = {"ode": prepare(configs["ode"])}
        world = ready["ode"][1]
        for method in METHODS[1:]:
            try:
                ready[method] = prepare(configs[method], world)
            except ConfigError as exc:  # e.g. a budget too small for this method: a row, not a failed comparison
                ready[method] = exc
        estimates = [(p[0], estimate_run(p)) for p in ready.values() if not isinstance(p, ConfigError)]
        check_request(estimates, *cost.caps())
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        yield {tab.status: failed()}
        raise as_gr_error(exc) from None
    names = (world.reward.name, world.heldout.name if world.heldout is not None else "held-out")
    runnable = [m for m in METHODS if not isinstance(ready[m], ConfigError)]
    rows = {m: figures.compare_row(None, m, base_cfg.process, note=str(ready[m])) for m in METHODS if m not in runnable}
    jobs = [(configs[m], ready[m]) for m in runnable]
    yield {tab.status: f"**Running** · {len(runnable)} runs…"}
    with contextlib.closing(workers.run_all(jobs)) as results:  # Stop closes this generator, and so the runs
        for done, (i, result) in enumerate(results, start=1):
            method = runnable[i]
            progress((done, len(runnable)), desc=f"{figures.label(method, base_cfg.process)} done", unit="methods")
            if isinstance(result, ConfigError):  # found only as it ran: a row, not a failed comparison
                rows[method] = figures.compare_row(None, method, base_cfg.process, note=str(result))
            elif isinstance(result, Exception):
                yield {tab.status: failed()}
                raise as_gr_error(result) from None
            else:
                rows[method] = figures.compare_row(result, method, base_cfg.process)
            table = [rows[m] for m in METHODS if m in rows]  # in the methods' order, whichever finished first
            yield {tab.status: f"**Running** · {done} of {len(runnable)} runs done…", tab.table: table,
                   tab.plot: figures.compare_figure(table, *names)}
    yield {tab.status: f"**Done** · compared {len(METHODS)} runs at {base_cfg.nfe} NFE, seed {base_cfg.seed}.",
           tab.table: [rows[m] for m in METHODS], tab.plot: figures.compare_figure([rows[m] for m in METHODS], *names)}


def wire_compare_tab(tab: CompareTab, run_tab: RunTab) -> None:
    event = tab.button.click(partial(compare_ui, tab, run_tab), set(run_tab.controls.names),
                             [tab.status, tab.table, tab.plot], show_progress_on=[tab.status],
                             api_visibility="private")
    tab.stop.click(None, None, None, cancels=[event], api_visibility="private").then(
        stopped, None, tab.status, api_visibility="private")
