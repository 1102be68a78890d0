"""The Run tab's controls column: world, model, rewards, process, method, budget and advanced settings.

`build_controls()` lays them out and returns `Controls`, whose `names` maps every input component to its
setting name (the CLI's), which `controls.build_config` turns into a RunConfig. The control-update
handlers here change only controls; results are the results panel's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from flowscale.catalog import MODEL_NAMES, WORLD_GROUPS, is_image_model, world_group
from flowscale.config import G_SCHEDULES, GRID_KINDS
from flowscale.figures import METHOD_LABELS
from flowscale.search import SEARCH_METHODS, Setting, method_settings
from flowscale.ui import models, texts
from flowscale.ui.controls import CONFIG_DEFAULTS, PROCESSES, preset_reward, preset_rows
from flowscale.worlds.toy2d import PRESETS

METHOD_CHOICES = tuple((METHOD_LABELS[m], m) for m in SEARCH_METHODS)
D = models.APP_DEFAULTS
SHAPES_PROMPT = models.default_prompt("shapes") or ""


@dataclass
class Controls:
    """The input components, by name; `names` maps each to its setting name."""

    names: dict[Any, str] = field(default_factory=dict)
    c: dict[str, Any] = field(default_factory=dict)  # setting name -> component
    world: Any = None
    model_status: Any = None
    toy_controls: Any = None
    image_controls: Any = None
    method_groups: dict[str, Any] = field(default_factory=dict)
    run: Any = None
    stop: Any = None
    help: Any = None

    def add(self, name: str, component: Any) -> Any:
        self.names[component] = name
        self.c[name] = component
        return component

    def __getitem__(self, name: str) -> Any:
        return self.c[name]


def _setting_widget(s: Setting) -> Any:
    text = texts.SETTING_LABELS.get(s.key, s.key)
    value = 0 if s.default is None else s.default
    elem_id = f"set-{s.key.replace('.', '-')}"
    if s.choices:
        return gr.Dropdown(list(s.choices), value=value, label=text, elem_id=elem_id)
    if s.kind is int:
        return gr.Number(value=value, precision=0, minimum=0, label=text, elem_id=elem_id)
    return gr.Number(value=value, label=text, elem_id=elem_id)


def build_controls() -> Controls:
    ui = Controls()
    model = D["model"]
    ui.world = gr.Radio(list(WORLD_GROUPS), value=world_group(model), label="World", elem_id="world")
    ui.add("model", gr.Dropdown(list(MODEL_NAMES), value=model, label="Model", elem_id="model"))
    ui.model_status = gr.Markdown(models.status_markdown(model), elem_id="model-status")
    with gr.Group(visible=True) as ui.toy_controls:
        presets = list(PRESETS)
        ui.add("preset", gr.Dropdown([*presets, "custom"], value=presets[0], label="Mixture (data distribution)",
                                     info="a preset, or edit the table: one Gaussian per row", elem_id="preset"))
        ui.add("mixture", gr.Dataframe(value=preset_rows(presets[0]), headers=["x", "y", "std", "weight"],
                                       datatype="number", type="array", column_count=4, interactive=True,
                                       show_label=False, elem_id="mixture", max_height=220))
    with gr.Group(visible=False) as ui.image_controls:
        ui.add("prompt", gr.Textbox(label="Prompt", lines=2, max_length=300, elem_id="prompt",
                                    placeholder=f"e.g. {SHAPES_PROMPT}"))
    given, held = models.world_rewards(model)
    with gr.Row():
        ui.add("reward", gr.Dropdown(list(given), value=given[0], allow_custom_value=True, label="Given reward",
                                     info=models.TOY2D_REWARD_INFO, elem_id="reward"))
        ui.add("heldout", gr.Dropdown(list(held), value=held[0], allow_custom_value=True, label="Held-out reward",
                                      info="scored, never searched", elem_id="heldout"))
    ui.add("process", gr.Radio(list(PROCESSES), value=D["process"], label="Process", elem_id="process"))
    ui.add("method", gr.Radio(list(METHOD_CHOICES), value=D["method"], label="Method", elem_id="method"))
    ui.add("nfe", gr.Slider(10, 5000, value=D["nfe"], step=10, label="NFE budget",
                            info="model evaluations the method may spend", elem_id="nfe"))
    with gr.Row():
        ui.add("steps", gr.Slider(2, 200, value=models.TOY2D_STEPS, step=1, label="Steps M", elem_id="steps"))
        ui.add("seed", gr.Number(value=D["seed"], precision=0, minimum=0, label="Seed", elem_id="seed"))
    ui.add("with_bon", gr.Checkbox(value=True, label="Also run Best-of-N at the same budget (for the reward plot)",
                                   elem_id="with-bon"))
    with gr.Row():
        ui.run = gr.Button("▶ Run", variant="primary", elem_id="run", scale=3)
        ui.stop = gr.Button("■ Stop", variant="stop", elem_id="stop", scale=1)
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
        for method in SEARCH_METHODS:
            with gr.Group(visible=method == D["method"]) as group:
                gr.Markdown(f"**{METHOD_LABELS[method]} settings**")
                settings = method_settings(method)
                for i in range(0, len(settings), 2):
                    with gr.Row():
                        for s in settings[i : i + 2]:
                            ui.add(s.key, _setting_widget(s))
            ui.method_groups[method] = group
        gr.Markdown("**Process and time grid**")
        with gr.Row():
            ui.add("g_schedule", gr.Dropdown(list(G_SCHEDULES), value=CONFIG_DEFAULTS.g_schedule,
                                             label="g(t) schedule (SDEs)"))
            ui.add("g_norm", gr.Number(value=CONFIG_DEFAULTS.g_norm, label="g norm (paper: 3, g = 3t²)"))
        with gr.Row():
            ui.add("dps", gr.Number(value=CONFIG_DEFAULTS.dps, minimum=0, label="reward guidance (DPS) scale",
                                    info="0 = off. SDE processes only, with a differentiable reward: adds "
                                         "scale · ∇r(x̂0) to the score in the drift (paper App. E.1)",
                                    elem_id="dps"))
        with gr.Row():
            ui.add("beta_min", gr.Number(value=CONFIG_DEFAULTS.beta_min, label="β_min (VP)"))
            ui.add("beta_max", gr.Number(value=CONFIG_DEFAULTS.beta_max, label="β_max (VP)"))
        ui.add("grid", gr.Dropdown(["default", *GRID_KINDS], value="default", label="time grid",
                                   info="default: the model's own; exp: the paper's grid for few-step models"))
        ui.add("paper", gr.Checkbox(value=False, label="the paper's released setting (--paper)",
                                    info="RBF's released variant, SMC λ 0.5, SoP 10 steps per solve; FLUX.1-schnell "
                                         "at 1024², T5 length 512, bf16 states. Settings you change above still win.",
                                    elem_id="paper"))
    ui.help = gr.Markdown(texts.explain(D["method"], D["process"]), elem_id="method-help")
    return ui


def build_examples(ui: Controls) -> None:
    toy = [ui.world, *(ui[k] for k in ("model", "preset", "reward", "heldout", "method", "process", "nfe", "steps",
                                       "seed"))]
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
        example_labels=["RBF · VP-SDE · 200 NFE (default)", "SMC · Linear-SDE · 500 NFE", "SVDD on a ring",
                        "BoN on the rare mode", "CoDe into a region", "SoP · Linear-ODE"],
    )
    image = [ui.world, *(ui[k] for k in ("model", "prompt", "reward", "heldout", "method", "process", "nfe", "steps",
                                         "seed"))]
    shapes = ("Shapes", "shapes")
    shown = [0, 1, 2, 5, 6, 7, 8, 9]  # the rewards are the world's defaults; a toy2d dropdown cannot show them
    gr.Examples(
        [
            [*shapes, SHAPES_PROMPT, "count", "verifier", "rbf", "vp-sde", 100, 10, 0],
            [*shapes, "2 yellow triangles and 1 green square", "count", "verifier", "svdd", "linear-sde", 100, 10, 0],
            [*shapes, "4 blue circles", "compose", "verifier", "smc", "linear-sde", 100, 10, 1],
        ],
        image, label="Shapes examples", cache_examples=False, visible_columns=shown,
    )
    t2i_prompt = models.default_prompt("flux-schnell") or ""
    gr.Examples(
        [["Text-to-image", "flux-schnell", t2i_prompt, "clip", "aesthetic", "rbf", "vp-sde", 100, 10, 0]],
        image, label="Text-to-image examples (need the model weights)", cache_examples=False, visible_columns=shown,
    )


def start_updates(ui: Controls, model: str) -> dict[Any, Any]:
    """The controls a newly picked model starts with (its world's defaults)."""
    start = models.start_values(model)
    out: dict[Any, Any] = {ui["reward"]: gr.update(value=start["reward"]),
                           ui["heldout"]: gr.update(value=start["heldout"])}
    if start.get("prompt"):
        out[ui["prompt"]] = start["prompt"]
    for key in ("steps", "nfe", "rbf.batch"):
        if key in start:
            out[ui[key]] = gr.update(value=start[key])
    return out


def on_model(ui: Controls, model: str, reward: str | None, heldout: str | None) -> dict[Any, Any]:
    """Any model change (user or example): show the matching controls and the model's availability, and
    replace rewards that belong to another world with this world's defaults."""
    image = is_image_model(model)
    given, held = models.world_rewards(model)
    reward = reward if models.fits(model, reward, given) else (given[0] if given else "")
    heldout = heldout if models.fits(model, heldout, held) else held[0]
    return {
        ui.toy_controls: gr.update(visible=not image),
        ui.image_controls: gr.update(visible=image),
        ui.model_status: models.status_markdown(model),
        ui["reward"]: gr.update(choices=list(given), value=reward,
                                info=models.TOY2D_REWARD_INFO if not image else " · ".join(given)),
        ui["heldout"]: gr.update(choices=list(held), value=heldout),
        ui["rbf.batch"]: gr.update(value=models.start_values(model)["rbf.batch"]),  # the world's measured best
    }


def wire_controls(ui: Controls) -> None:
    """Control-to-control updates (the results panel wires its own reactions to a model change)."""
    model_outputs = [ui["model"], ui.world, ui["reward"], ui["heldout"], ui["steps"], ui["nfe"], ui["prompt"],
                     ui["rbf.batch"]]
    ui.world.input(lambda w: {ui["model"]: gr.update(value=WORLD_GROUPS[w][0]),
                              **start_updates(ui, WORLD_GROUPS[w][0])},
                   ui.world, model_outputs, api_visibility="private")
    ui["model"].input(lambda m: {ui.world: world_group(m), **start_updates(ui, m)}, ui["model"],
                      model_outputs, api_visibility="private")
    ui["model"].change(lambda m, r, h: on_model(ui, m, r, h), [ui["model"], ui["reward"], ui["heldout"]],
                       [ui.toy_controls, ui.image_controls, ui.model_status, ui["reward"], ui["heldout"],
                        ui["rbf.batch"]],
                       api_visibility="private")
    ui["preset"].change(lambda p: preset_rows(p) if p in PRESETS else gr.skip(), ui["preset"], ui["mixture"],
                        api_visibility="private")
    ui["preset"].input(lambda p: preset_reward(p) if p in PRESETS else gr.skip(), ui["preset"], ui["reward"],
                       api_visibility="private")
    ui["mixture"].input(lambda: "custom", None, ui["preset"], api_visibility="private")
    ui["method"].change(lambda m: {g: gr.update(visible=k == m) for k, g in ui.method_groups.items()},
                        ui["method"], list(ui.method_groups.values()), api_visibility="private")
    for trigger in (ui["method"], ui["process"]):
        trigger.change(texts.explain, [ui["method"], ui["process"]], ui.help, api_visibility="private")
