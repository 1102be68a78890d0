"""The Blocks layout and its wiring. Handlers live in handlers.py, figures in views.py.

`build()` returns the gr.Blocks; components are collected in a namespace `ui` that the handlers receive
(bound with functools.partial), and `ui.names` maps each input component to its setting name.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import gradio as gr

from flowscale.grids import GRID_KINDS
from flowscale.processes import G_SCHEDULES
from flowscale.search import SEARCH_METHODS
from flowscale.ui import handlers as h
from flowscale.ui import texts, views

THEME = gr.themes.Soft(primary_hue="blue", secondary_hue="orange", neutral_hue="slate")
CSS = """
.gradio-container { max-width: 1680px !important; margin: 0 auto !important; }
#title h1 { margin-bottom: 0.1em; }
#status { min-height: 2.6em; }
#status p { font-size: 0.98em; }
#previews img, #image-baseline img, #image-method img { image-rendering: pixelated; }
#side-by-side table { font-size: 0.92em; }
.plot-caption p { font-size: 0.86em; color: var(--body-text-color-subdued); margin: 0 0.4em 0.6em; }
"""
LAYER_CHOICES = [
    ("data density", "density"),
    ("reward-tilted target", "tilted"),
    ("pruned candidates", "pruned"),
    ("x̂0 predictions", "x0"),
    ("ODE baseline path", "baseline"),
]


def build() -> gr.Blocks:
    ui = SimpleNamespace(names={})
    with gr.Blocks(
        title="flowscale · inference-time scaling for flow models", delete_cache=(3600, 7200), fill_width=True
    ) as demo:
        ui.state = gr.State({})
        gr.Markdown("# flowscale · inference-time scaling for flow models", elem_id="title")
        gr.Markdown(texts.INTRO)
        with gr.Tabs(elem_id="tabs") as ui.tabs:
            with gr.Tab("Run", id="run"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=340, elem_id="controls"):
                        _controls(ui)
                    with gr.Column(scale=10, min_width=640):
                        _results(ui)
                _examples(ui)
            with gr.Tab("Compare methods", id="compare"):
                _compare_tab(ui)
            with gr.Tab("Replay a record", id="record"):
                _record_tab(ui)
            with gr.Tab("API", id="api"):
                gr.Markdown(texts.API)
        _wire(ui, demo)
    return demo


def _named(ui: SimpleNamespace, name: str, component: Any) -> Any:
    ui.names[component] = name
    setattr(ui, name.replace(".", "_"), component)
    return component


def _controls(ui: SimpleNamespace) -> None:
    model = h.DEFAULTS["model"]
    ui.world = gr.Radio(list(h.WORLDS), value=h.world_of(model), label="World", elem_id="world")
    _named(ui, "model", gr.Dropdown(list(h.MODEL_NAMES), value=model, label="Model", elem_id="model"))
    ui.model_status = gr.Markdown(h.status_markdown(model), elem_id="model-status")
    with gr.Group(visible=True) as ui.toy_controls:
        presets = list(h.mixture_presets())
        _named(
            ui,
            "preset",
            gr.Dropdown(
                [*presets, "custom"],
                value=presets[0],
                label="Mixture (data distribution)",
                info="a preset, or edit the table: one Gaussian per row",
                elem_id="preset",
            ),
        )
        _named(
            ui,
            "mixture",
            gr.Dataframe(
                value=h.preset_rows(presets[0]),
                headers=["x", "y", "std", "weight"],
                datatype="number",
                type="array",
                column_count=4,
                interactive=True,
                show_label=False,
                elem_id="mixture",
                max_height=220,
            ),
        )
    with gr.Group(visible=False) as ui.image_controls:
        _named(
            ui,
            "prompt",
            gr.Textbox(
                label="Prompt",
                lines=2,
                max_length=300,
                elem_id="prompt",
                placeholder="e.g. 3 red circles and 2 blue squares",
            ),
        )
    given, held = h.world_rewards(model)
    with gr.Row():
        _named(
            ui,
            "reward",
            gr.Dropdown(
                list(given),
                value=given[0],
                allow_custom_value=True,
                label="Given reward",
                info=h.TOY2D_REWARD_INFO,
                elem_id="reward",
            ),
        )
        _named(
            ui,
            "heldout",
            gr.Dropdown(
                list(held),
                value=held[0],
                allow_custom_value=True,
                label="Held-out reward",
                info="scored, never searched",
                elem_id="heldout",
            ),
        )
    _named(ui, "process", gr.Radio(list(h.PROCESSES), value=h.DEFAULTS["process"], label="Process", elem_id="process"))
    _named(ui, "method", gr.Radio(list(h.METHOD_CHOICES), value=h.DEFAULTS["method"], label="Method", elem_id="method"))
    _named(
        ui,
        "nfe",
        gr.Slider(
            10,
            5000,
            value=h.DEFAULTS["nfe"],
            step=10,
            label="NFE budget",
            info="model evaluations the method may spend",
            elem_id="nfe",
        ),
    )
    with gr.Row():
        _named(ui, "steps", gr.Slider(2, 200, value=25, step=1, label="Steps M", elem_id="steps"))
        _named(ui, "seed", gr.Number(value=h.DEFAULTS["seed"], precision=0, minimum=0, label="Seed", elem_id="seed"))
    _named(
        ui,
        "with_bon",
        gr.Checkbox(
            value=True, label="Also run Best-of-N at the same budget (for the reward plot)", elem_id="with-bon"
        ),
    )
    with gr.Row():
        ui.run = gr.Button("▶ Run", variant="primary", elem_id="run", scale=3)
        ui.stop = gr.Button("■ Stop", variant="stop", elem_id="stop", scale=1)
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
        ui.method_groups = {}
        for method in SEARCH_METHODS:
            with gr.Group(visible=method == h.DEFAULTS["method"]) as group:
                gr.Markdown(f"**{views.METHOD_LABELS[method]} settings**")
                settings = h.method_settings(method)
                for i in range(0, len(settings), 2):
                    with gr.Row():
                        for s in settings[i : i + 2]:
                            _named(ui, s.key, _setting_widget(s))
            ui.method_groups[method] = group
        gr.Markdown("**Process and time grid**")
        with gr.Row():
            _named(ui, "g_schedule", gr.Dropdown(list(G_SCHEDULES), value="square", label="g(t) schedule (SDEs)"))
            _named(ui, "g_norm", gr.Number(value=3.0, label="g norm (paper: 3, g = 3t²)"))
        with gr.Row():
            _named(ui, "beta_min", gr.Number(value=0.1, label="β_min (VP)"))
            _named(ui, "beta_max", gr.Number(value=20.0, label="β_max (VP)"))
        _named(
            ui,
            "grid",
            gr.Dropdown(
                ["default", *GRID_KINDS],
                value="default",
                label="time grid",
                info="default: the model's own; exp: the paper's grid for few-step models",
            ),
        )
    ui.help = gr.Markdown(texts.explain(h.DEFAULTS["method"], h.DEFAULTS["process"]), elem_id="method-help")


def _setting_widget(s: h.Setting) -> Any:
    text = texts.SETTING_LABELS.get(s.key, s.key)
    value = 0 if s.default is None else s.default
    if s.choices:
        return gr.Dropdown(list(s.choices), value=value, label=text, elem_id=f"set-{s.key.replace('.', '-')}")
    if s.kind is int:
        return gr.Number(value=value, precision=0, minimum=0, label=text, elem_id=f"set-{s.key.replace('.', '-')}")
    return gr.Number(value=value, label=text, elem_id=f"set-{s.key.replace('.', '-')}")


def _results(ui: SimpleNamespace) -> None:
    ui.status = gr.Markdown("Press **▶ Run** to start.", elem_id="status")
    ui.side_by_side = gr.Markdown(views.side_by_side_markdown([]), elem_id="side-by-side")
    with gr.Row(visible=False) as ui.image_results:
        ui.image_baseline = gr.Image(
            label="ODE baseline sample",
            height=256,
            type="numpy",
            format="png",
            elem_id="image-baseline",
            interactive=False,
        )
        ui.image_method = gr.Image(
            label="scaled result", height=256, type="numpy", format="png", elem_id="image-method", interactive=False
        )
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=480):
            ui.plot_paths = gr.Plot(views.trajectories_figure([]), show_label=False, elem_id="plot-trajectories")
            ui.layers = _named(
                ui,
                "layers",
                gr.CheckboxGroup(
                    LAYER_CHOICES, value=list(views.DEFAULT_LAYERS), label="Show on the paths plot", elem_id="layers"
                ),
            )
            ui.paths_caption = gr.Markdown(texts.PLOTS["trajectories"], elem_classes="plot-caption")
        with gr.Column(scale=4, min_width=380):
            ui.plot_reward = gr.Plot(views.reward_figure([]), show_label=False, elem_id="plot-reward")
            gr.Markdown(texts.PLOTS["reward"], elem_classes="plot-caption")
            ui.plot_budget = gr.Plot(views.budget_figure([]), show_label=False, elem_id="plot-budget")
            gr.Markdown(texts.PLOTS["budget"], elem_classes="plot-caption")
    ui.previews = gr.Gallery(
        label="x̂0 preview of the best candidate at each step",
        columns=8,
        height=330,
        format="png",
        visible=False,
        elem_id="previews",
        object_fit="contain",
    )
    ui.record_file = gr.DownloadButton("↓ Download the run record (JSON)", visible=False, elem_id="record-file")


def _examples(ui: SimpleNamespace) -> None:
    toy = [ui.world, ui.model, ui.preset, ui.reward, ui.heldout, ui.method, ui.process, ui.nfe, ui.steps, ui.seed]
    gr.Examples(
        [
            ["2-D playground", "toy2d", "imbalanced4", "point:-2,2", "logp", "rbf", "vp-sde", 200, 25, 0],
            ["2-D playground", "toy2d", "imbalanced4", "point:-2,2", "logp", "smc", "linear-sde", 500, 25, 0],
            ["2-D playground", "toy2d", "ring8", "point:3,0", "logp", "svdd", "linear-sde", 300, 25, 1],
            ["2-D playground", "toy2d", "rare", "point:0,3", "logp", "bon", "linear-ode", 500, 25, 0],
            ["2-D playground", "toy2d", "imbalanced4", "region:-3,1,-1,3", "logp", "code", "linear-sde", 400, 25, 2],
            ["2-D playground", "toy2d", "imbalanced4", "point:-2,2", "logp", "sop", "linear-ode", 500, 25, 0],
        ],
        toy,
        label="2-D playground examples (fill the controls, then press Run)",
        cache_examples=False,
        example_labels=[
            "RBF · VP-SDE · 200 NFE (default)",
            "SMC · Linear-SDE · 500 NFE",
            "SVDD on a ring",
            "BoN on the rare mode",
            "CoDe into a region",
            "SoP · Linear-ODE",
        ],
    )
    image = [ui.world, ui.model, ui.prompt, ui.reward, ui.heldout, ui.method, ui.process, ui.nfe, ui.steps, ui.seed]
    shapes = ("Shapes", "shapes")
    shown = [0, 1, 2, 5, 6, 7, 8, 9]  # the rewards are the world's defaults; a toy2d dropdown cannot show them
    gr.Examples(
        [
            [*shapes, "3 red circles and 2 blue squares", "count", "verifier", "rbf", "vp-sde", 100, 10, 0],
            [*shapes, "2 yellow triangles and 1 green square", "count", "verifier", "svdd", "linear-sde", 100, 10, 0],
            [*shapes, "4 blue circles", "compose", "verifier", "smc", "linear-sde", 100, 10, 1],
        ],
        image,
        label="Shapes examples",
        cache_examples=False,
        visible_columns=shown,
    )
    prompt = "a photo of three apples and a red book on a wooden table"
    gr.Examples(
        [["Text-to-image", "flux-schnell", prompt, "clip", "aesthetic", "rbf", "vp-sde", 100, 10, 0]],
        image,
        label="Text-to-image examples (need the model weights)",
        cache_examples=False,
        visible_columns=shown,
    )


def _compare_tab(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "Run **every method** (and the ODE baseline) at the **same NFE budget and seed**, using the world, "
        "process, steps and advanced settings of the Run tab. A method that cannot fit the budget gets a "
        "note instead of a result."
    )
    with gr.Row():
        ui.compare = gr.Button("▶ Compare all methods", variant="primary", elem_id="compare", scale=3)
        ui.compare_stop = gr.Button("■ Stop", variant="stop", elem_id="compare-stop", scale=1)
    ui.compare_status = gr.Markdown("", elem_id="compare-status")
    ui.compare_table = gr.Dataframe(
        headers=views.COMPARE_HEADERS,
        interactive=False,
        elem_id="compare-table",
        wrap=True,
        column_count=len(views.COMPARE_HEADERS),
    )
    ui.plot_compare = gr.Plot(views.compare_figure([]), show_label=False, elem_id="plot-compare")


def _record_tab(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "Upload a **run record** (the JSON from *Download the run record*, or `record.json` from the CLI). "
        "**Replay** runs its config again and checks that the new record is identical; **Redraw** draws "
        "the plots from the recorded events without running anything. JSON only, at most 5 MB."
    )
    ui.upload = gr.File(label="run record (.json)", file_types=[".json"], type="filepath", elem_id="record-upload")
    with gr.Row():
        ui.replay = gr.Button("↻ Replay (run the config again)", variant="primary", elem_id="replay")
        ui.redraw = gr.Button("Redraw from the recorded events", elem_id="redraw")
    ui.replay_status = gr.Markdown("", elem_id="replay-status")


def _wire(ui: SimpleNamespace, demo: gr.Blocks) -> None:
    inputs = set(ui.names)
    run_outputs = [
        ui.plot_paths,
        ui.plot_budget,
        ui.plot_reward,
        ui.status,
        ui.side_by_side,
        ui.previews,
        ui.state,
        ui.record_file,
        ui.image_baseline,
        ui.image_method,
    ]
    run_event = ui.run.click(
        partial(h.run_ui, ui), inputs, run_outputs, show_progress_on=[ui.status], api_visibility="private"
    )

    compare_outputs = [ui.compare_status, ui.compare_table, ui.plot_compare]
    compare_event = ui.compare.click(
        partial(h.compare_ui, ui),
        inputs,
        compare_outputs,
        show_progress_on=[ui.compare_status],
        api_visibility="private",
    )
    ui.compare_stop.click(None, None, None, cancels=[compare_event], api_visibility="private").then(
        h.stopped, None, ui.compare_status, api_visibility="private"
    )

    replay_event = ui.replay.click(
        partial(h.replay_ui, ui),
        [ui.upload, ui.layers],
        [*run_outputs, ui.tabs, ui.replay_status],
        show_progress_on=[ui.status],
        api_visibility="private",
    )
    # Stop cancels the streaming generator at its next yield (within a step), then says so in the status line.
    ui.stop.click(None, None, None, cancels=[run_event, replay_event], api_visibility="private").then(
        h.stopped, None, ui.status, api_visibility="private"
    )
    ui.redraw.click(
        partial(h.redraw_ui, ui),
        [ui.upload, ui.layers],
        [
            ui.tabs,
            ui.plot_paths,
            ui.plot_budget,
            ui.plot_reward,
            ui.state,
            ui.side_by_side,
            ui.status,
            ui.replay_status,
        ],
        api_visibility="private",
    )

    ui.layers.change(
        partial(h.relayer, ui), [ui.state, ui.layers], ui.plot_paths, api_visibility="private", show_progress="hidden"
    )
    model_outputs = [ui.model, ui.world, ui.reward, ui.heldout, ui.steps, ui.nfe, ui.prompt]
    ui.world.input(partial(h.on_world, ui), ui.world, model_outputs, api_visibility="private")
    ui.model.input(partial(h.on_model_input, ui), ui.model, model_outputs, api_visibility="private")
    ui.model.change(
        partial(h.on_model, ui),
        [ui.model, ui.reward, ui.heldout],
        [
            ui.toy_controls,
            ui.image_controls,
            ui.image_results,
            ui.previews,
            ui.layers,
            ui.model_status,
            ui.reward,
            ui.heldout,
            ui.paths_caption,
        ],
        api_visibility="private",
    )
    ui.preset.change(partial(h.on_preset, ui), ui.preset, ui.mixture, api_visibility="private")
    ui.preset.input(h.preset_reward_or_skip, ui.preset, ui.reward, api_visibility="private")
    ui.mixture.input(h.on_mixture_edit, None, ui.preset, api_visibility="private")
    ui.method.change(
        lambda m: {g: gr.update(visible=k == m) for k, g in ui.method_groups.items()},
        ui.method,
        list(ui.method_groups.values()),
        api_visibility="private",
    )
    for trigger in (ui.method, ui.process):
        trigger.change(h.explain, [ui.method, ui.process], ui.help, api_visibility="private")

    gr.api(h.api_run, api_name="run")
