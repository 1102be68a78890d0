"""The Run tab: controls on the left, the three live plots, the step scrubber and its story on the right.

The Run button streams `session.session` (baseline, method, BoN) into a `panels.View` kept in gr.State
and redraws at most every RENDER_EVERY_S seconds, so the default run streams smoothly and a Stop lands
within one step. The step scrubber (#step-scrubber) moves all three plots to step k of the method's
trace, during a run, after it, and for a redrawn record; Play walks through the steps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from flowscale import cost, figures
from flowscale.catalog import is_image_model
from flowscale.config import RunConfig
from flowscale.ui import panels, texts
from flowscale.ui.controls import build_config
from flowscale.ui.errors import as_gr_error, failed, stopped
from flowscale.ui.panels import View
from flowscale.ui.records import save_record
from flowscale.ui.run_controls import Controls, build_controls, build_examples, wire_controls
from flowscale.ui.session import Phase, Snapshot
from flowscale.ui.zerogpu import session_for

RENDER_EVERY_S = 0.3  # UI redraw period while streaming (three plotly figures per redraw)
EVENTS_PER_S = 1500  # ... at least one second between redraws per this many recorded events
HEARTBEAT_S = 0.1  # between redraws, an empty update this often: Gradio can only cancel a generator at a yield
PLAY_STEP_S = 0.7  # pause between steps when Play walks through a run
LAYER_CHOICES = [
    ("data density", "density"),
    ("reward-tilted target", "tilted"),
    ("pruned candidates", "pruned"),
    ("x̂0 predictions", "x0"),
    ("ODE baseline path", "baseline"),
]


@dataclass
class Results:
    """The results panel's components."""

    state: Any
    status: Any
    side_by_side: Any
    image_results: Any
    image_baseline: Any
    image_method: Any
    counts: Any
    plot_paths: Any
    layers: Any
    paths_caption: Any
    plot_reward: Any
    plot_budget: Any
    scrubber: Any
    play: Any
    latest: Any
    story: Any
    previews: Any
    record_file: Any

    @property
    def plots(self) -> list[Any]:
        return [self.plot_paths, self.plot_budget, self.plot_reward]

    @property
    def outputs(self) -> list[Any]:
        """Everything a run may update."""
        return [*self.plots, self.status, self.side_by_side, self.previews, self.state, self.record_file,
                self.image_baseline, self.image_method, self.counts, self.scrubber, self.story]


@dataclass
class RunTab:
    controls: Controls
    results: Results


def build_results() -> Results:
    status = gr.Markdown("Press **▶ Run** to start.", elem_id="status")
    side = gr.Markdown(figures.side_by_side_markdown([]), elem_id="side-by-side")
    with gr.Row(visible=False) as image_results:
        image_baseline = gr.Image(label="ODE baseline sample", height=256, type="numpy", format="png",
                                  elem_id="image-baseline", interactive=False)
        image_method = gr.Image(label="scaled result", height=256, type="numpy", format="png",
                                elem_id="image-method", interactive=False)
        counts = gr.Markdown("", elem_id="image-counts")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=480):
            plot_paths = gr.Plot(figures.trajectories_figure(None), show_label=False, elem_id="plot-trajectories")
            layers = gr.CheckboxGroup(LAYER_CHOICES, value=list(figures.DEFAULT_LAYERS),
                                      label="Show on the paths plot", elem_id="layers")
            caption = gr.Markdown(texts.PLOTS["trajectories"], elem_classes="plot-caption")
        with gr.Column(scale=4, min_width=380):
            plot_reward = gr.Plot(figures.reward_figure(None), show_label=False, elem_id="plot-reward")
            gr.Markdown(texts.PLOTS["reward"], elem_classes="plot-caption")
            plot_budget = gr.Plot(figures.budget_figure(None), show_label=False, elem_id="plot-budget")
            gr.Markdown(texts.PLOTS["budget"], elem_classes="plot-caption")
    with gr.Group(elem_id="replay-steps"):
        with gr.Row(equal_height=True):
            play = gr.Button("▶ Play steps", elem_id="step-play", scale=1, min_width=120)
            latest = gr.Button("» Latest", elem_id="step-latest", scale=1, min_width=100)
            scrubber = gr.Slider(0, 1, value=0, step=1, label="Step k (scrub through the run)",
                                 interactive=False, elem_id="step-scrubber", scale=8)
        story = gr.Markdown(figures.step_story(None, None), elem_id="step-story")
    previews = gr.Gallery(label="x̂0 preview of the best candidate at each step", columns=8, height=330,
                          format="png", visible=False, elem_id="previews", object_fit="contain")
    record_file = gr.DownloadButton("↓ Download the run record (JSON)", visible=False, elem_id="record-file")
    return Results(gr.State(None), status, side, image_results, image_baseline, image_method, counts, plot_paths,
                   layers, caption, plot_reward, plot_budget, scrubber, play, latest, story, previews, record_file)


def build_run_tab() -> RunTab:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=340, elem_id="controls"):
            controls = build_controls()
        with gr.Column(scale=10, min_width=640):
            results = build_results()
    build_examples(controls)
    return RunTab(controls, results)


# --------------------------------------------------------------------------------------------------
# Drawing a view
# --------------------------------------------------------------------------------------------------
def draw(r: Results, view: View, layers: list[str] | None, step: int | None) -> dict[Any, Any]:
    """The three plots and the story of a view at `step` (None: the live end of the run)."""
    paths, budget, reward = panels.plots(view, layers, step)
    shown = step if step is not None else (view.steps[-1] if view.steps else None)
    out = {r.plot_paths: paths, r.plot_budget: budget, r.plot_reward: reward, r.story: panels.story(view, shown)}
    if view.method is not None and view.method.image_world and view.method.previews:
        out[r.previews] = figures.preview_strip(view.method.previews, until=step)
    return out


def scrubber_update(view: View, value: int | None = None, *, live: bool = False) -> Any:
    """The scrubber's range over the run's steps; at `value` (default: the newest step). While a run streams
    (`live`) only the range changes: setting the value under a visitor's hand would race their choice."""
    steps = view.steps
    if not steps:
        return gr.update(interactive=False)
    last = len(view.method.grid) - 2 if len(view.method.grid) >= 2 else steps[-1]
    if live:
        return gr.update(minimum=0, maximum=max(last, 1), interactive=True)
    shown = steps[-1] if value is None else value
    return gr.update(minimum=0, maximum=max(last, 1), value=shown, interactive=True)


def sample_image(phase: Phase | None) -> Any:
    """The returned sample of an image run, crisp (nearest-neighbour upscaled), as an array the app shows."""
    if phase is None or phase.output is None:
        return None
    world = phase.output.world
    decoded = phase.output.decoded[:1]
    image = world.previews(decoded)[0] if world.previews is not None else decoded[0]
    return figures.to_uint8_image(image, size=256)


def counts_markdown(snap: Snapshot) -> str:
    lines = []
    for name, title in (("baseline", "ODE baseline"), ("method", "scaled result")):
        trace = snap.trace(name)
        caption = figures.counts_caption(trace.record.details) if trace is not None and trace.record else ""
        if caption:
            lines.append(f"**{title}**: {caption}")
    return "  \n".join(lines)


# --------------------------------------------------------------------------------------------------
# Streaming a session
# --------------------------------------------------------------------------------------------------
def stream_session(tab: RunTab, cfg: RunConfig, layers: list[str] | None, progress: Any, *, with_bon: bool = True,
                   verdict: Any = None) -> Iterator[dict[Any, Any]]:
    """Stream baseline, method and BoN into the plots; then the record file. `verdict(record) -> str`
    (a replay's check) is appended to the final status."""
    r = tab.results
    view = View()
    due = 0.0  # redraw no sooner than RENDER_EVERY_S, nor sooner than twice the last redraw's cost
    yield {r.status: "**Running** · preparing the world…", r.record_file: gr.update(value=None, visible=False),
           r.state: view}
    last_yield = time.perf_counter()
    snap = None
    for snap in session_for(cfg)(cfg, bon=with_bon, caps=cost.caps()):  # a GPU request on ZeroGPU Spaces
        view.method, view.baseline, view.bon = snap.trace("method"), snap.trace("baseline"), snap.trace("bon")
        view.background = snap.background
        start = time.perf_counter()
        if not snap.phase_ended and start < due:
            if start - last_yield > HEARTBEAT_S:  # an empty update: a Stop takes effect here, within a step
                last_yield = start
                yield {r.status: gr.skip()}
            continue
        progress((snap.nfe_done, snap.nfe_total), desc=snap.progress_text(), unit="NFE")
        update = draw(r, view, layers, view.pinned)
        update.update({r.status: "**Running** · " + snap.progress_text(), r.side_by_side: panels.side_by_side(view),
                       r.state: view})
        update[r.scrubber] = scrubber_update(view, live=True)
        now = time.perf_counter()
        # Big traces cost the browser more to redraw than the server to build: slow down as they grow.
        due = now + max(RENDER_EVERY_S, 2 * (now - start), len(view.method.events) / EVENTS_PER_S)
        last_yield = now
        yield update
    method = snap.phases["method"]
    final = draw(r, view, layers, view.pinned)  # again: a client that missed an update ends on the finished plots
    status = "**Done** · " + panels.summary(method.trace)
    final.update({
        r.state: view,
        r.side_by_side: panels.side_by_side(view),
        r.record_file: gr.update(value=save_record(method.trace.record), visible=True),
        r.status: status + ("" if verdict is None else f"  \n{verdict(method.trace.record)}"),
        r.scrubber: scrubber_update(view, view.pinned),
    })
    if method.trace.image_world:
        final[r.image_baseline] = sample_image(snap.phases.get("baseline"))
        final[r.image_method] = sample_image(method)
        final[r.counts] = counts_markdown(snap)
    yield final


def run_ui(tab: RunTab, values: dict[Any, Any], progress: gr.Progress = gr.Progress()) -> Iterator[dict]:  # noqa: B008
    """The Run button."""
    v = {tab.controls.names[c]: val for c, val in values.items() if c in tab.controls.names}
    r = tab.results
    try:
        cfg = build_config(v)
        yield from stream_session(tab, cfg, v.get("layers"), progress, with_bon=bool(v.get("with_bon", True)))
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        yield {r.status: failed()}
        raise as_gr_error(exc) from None


# --------------------------------------------------------------------------------------------------
# Scrubbing, playing, layers, and a change of world
# --------------------------------------------------------------------------------------------------
def scrub(r: Results, view: View | None, step: Any, layers: list[str]) -> dict[Any, Any]:
    """The user moved the step scrubber: pin the view at that step and redraw."""
    if view is None or not view.steps:
        return {r.story: figures.step_story(None, None)}
    view.play_token += 1  # a Play under way stops: the visitor's step wins
    view.pinned = view.clamp(step)
    return draw(r, view, layers, view.pinned)


def play(r: Results, view: View | None, step: Any, layers: list[str]) -> Iterator[dict[Any, Any]]:
    """Walk through the run's steps from the scrubber's position (from 0 when it is at the end)."""
    if view is None or not view.steps:
        yield {r.story: figures.step_story(None, None)}
        return
    steps = view.steps
    first = view.clamp(step)
    start = 0 if first is None or first >= steps[-1] else first
    view.play_token += 1
    token = view.play_token
    for k in [s for s in steps if s >= start]:
        frame = {**draw(r, view, layers, k), r.scrubber: gr.update(value=k)}
        # Latest (or a scrub) moved the token on while this frame was drawn or slept: it must not be drawn over.
        # Gradio's cancel alone stops the walk only at its next yield, which may land after Latest's figure.
        if view.play_token != token:
            return
        view.pinned = k
        yield frame
        time.sleep(PLAY_STEP_S)


def latest(r: Results, view: View | None, layers: list[str]) -> dict[Any, Any]:
    """Unpin: follow the run again (or show the finished run whole)."""
    if view is None:
        return {}
    view.play_token += 1  # a Play under way stops before its next frame
    view.pinned = None
    return {**draw(r, view, layers, None), r.scrubber: scrubber_update(view)}


def relayer(r: Results, view: View | None, layers: list[str]) -> Any:
    """Redraw the paths plot with other layers, from the session state (no computation)."""
    if view is None or view.method is None:
        return gr.skip()
    return panels.plots(view, layers, view.pinned)[0]


def clear_for_model(tab: RunTab, view: View | None, model: str) -> dict[Any, Any]:
    """A different model was picked: clear results that belong to another world and switch the panels."""
    r = tab.results
    image = is_image_model(model)
    out: dict[Any, Any] = {
        r.image_results: gr.update(visible=image),
        r.previews: gr.update(visible=image),
        r.layers: gr.update(visible=not image),
        r.paths_caption: texts.PLOTS["trajectories_image" if image else "trajectories"],
    }
    if view is not None and view.method is not None and view.method.config.get("model") != model:
        empty = View()
        out.update(draw(r, empty, None, None))
        out.update({
            r.state: None, r.status: "Press **▶ Run** to start.", r.side_by_side: panels.side_by_side(empty),
            r.record_file: gr.update(value=None, visible=False), r.image_baseline: None, r.image_method: None,
            r.counts: "", r.previews: gr.update(value=None, visible=image),
            r.scrubber: gr.update(value=0, maximum=1, interactive=False),
        })
    return out


def wire_run_tab(tab: RunTab) -> Any:
    """Wire the Run tab; returns the run event (the replay tab's stop cancels it too)."""
    ui, r = tab.controls, tab.results
    wire_controls(ui)
    inputs = set(ui.names) | {r.layers}
    names = dict(ui.names)
    names[r.layers] = "layers"
    tab.controls.names = names
    run_event = ui.run.click(partial(run_ui, tab), inputs, r.outputs,
                             show_progress_on=[r.status], api_visibility="private")
    views = {"concurrency_id": "views", "concurrency_limit": 8, "api_visibility": "private", "show_progress": "hidden"}
    scrub_inputs = [r.state, r.scrubber, r.layers]
    r.scrubber.input(partial(scrub, r), scrub_inputs,
                     [*r.plots, r.story, r.previews], trigger_mode="always_last", **views)
    play_event = r.play.click(partial(play, r), scrub_inputs,
                              [*r.plots, r.story, r.previews, r.scrubber], **views)
    r.latest.click(partial(latest, r), [r.state, r.layers],
                   [*r.plots, r.story, r.previews, r.scrubber], cancels=[play_event], **views)
    r.layers.change(partial(relayer, r), [r.state, r.layers], r.plot_paths, **views)
    ui["model"].change(partial(clear_for_model, tab), [r.state, ui["model"]],
                       [r.image_results, r.previews, r.layers, r.paths_caption, *r.outputs], api_visibility="private")
    # Stop cancels the streaming generator at its next yield (within a step), then says so in the status line.
    ui.stop.click(None, None, None, cancels=[run_event, play_event], api_visibility="private").then(
        stopped, None, r.status, api_visibility="private")
    return run_event
