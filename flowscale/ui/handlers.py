"""Event handlers: UI values -> RunConfig -> `flowscale.run.stream` -> view outputs. No sampling maths here.

The core (`session`) is a generator of `Snapshot`s with no gradio in it: it runs the deterministic ODE
baseline, the chosen method and Best-of-N at the same budget, one after the other, from one world. The
gradio handlers below turn snapshots into component updates, at most every `RENDER_EVERY_S` seconds,
so the default run streams smoothly and a Stop lands within one step. Every error becomes a gr.Error
naming the field; nothing is kept at module level except read-only caches.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
import tempfile
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from flowscale.config import ConfigError, RunConfig
from flowscale.run import RunOutput, prepare, stream
from flowscale.search import METHODS, SEARCH_METHODS
from flowscale.trace import Event, RunRecord
from flowscale.ui import texts, views
from flowscale.worlds import MODEL_NAMES, World
from flowscale.worlds import world_module as _world_module

WORLDS: dict[str, tuple[str, ...]] = {
    "2-D playground": ("toy2d",),
    "Shapes": ("shapes",),
    "Text-to-image": tuple(m for m in MODEL_NAMES if m not in ("toy2d", "shapes")),
}
PROCESSES = (("Linear-ODE", "linear-ode"), ("Linear-SDE", "linear-sde"), ("VP-SDE", "vp-sde"))
METHOD_CHOICES = tuple((views.METHOD_LABELS[m], m) for m in SEARCH_METHODS)
DEFAULTS = {"model": "toy2d", "method": "rbf", "process": "vp-sde", "nfe": 200, "seed": 0}
TOY2D_REWARDS = ("point:-2,2", "point:2,-2", "point:0,3", "point:3,0", "region:-3,1,-1,3", "region:1,-3,3,-1", "logp")
TOY2D_HELDOUT = ("logp", "none", "point:-2,2", "point:2,2")
TOY2D_REWARD_INFO = "point:X,Y · region:X0,Y0,X1,Y1 · logp"
T2I_PROMPT = "a photo of three apples and a red book on a wooden table"
RENDER_EVERY_S = 0.3  # UI redraw period while streaming (three plotly figures per redraw)
EVENTS_PER_S = 1500  # ... at least one second between redraws per this many recorded events
HEARTBEAT_S = 0.1  # between redraws, an empty update this often: Gradio can only cancel a generator at a yield
API_EVERY_S = 0.1  # API progress period
MAX_RECORD_BYTES = 5 * 1024 * 1024
TIMING_KEYS = ("wall_time_s", "model_time_s", "reward_time_s")
RECORD_DIR = Path(tempfile.gettempdir()) / "flowscale-records"
# Settings that exist on a params dataclass but are not free choices in the app.
HIDDEN_SETTINGS = {"svdd.block"}


# --------------------------------------------------------------------------------------------------
# Worlds and models
# --------------------------------------------------------------------------------------------------
def world_of(model: str) -> str:
    return next((w for w, models in WORLDS.items() if model in models), "Text-to-image")


def is_image_world(model: str) -> bool:
    return model != "toy2d"


def model_status(model: str) -> str | None:
    """None if the model can run here; otherwise a one-line reason (never raises).

    A world module may define `availability(model) -> str | None`. Without one: the 2-D world only needs
    to import; a small world (shapes) is built once with its defaults; a text-to-image model is looked
    up in the local Hugging Face cache and on the hub, without loading any weights.
    """
    try:
        _probe(model)
    except ConfigError as exc:
        return str(exc).split(": ", 1)[-1]
    except Exception as exc:  # noqa: BLE001 - a half-built or broken world must not take the app down
        return f"{type(exc).__name__}: {exc}"
    return None


@functools.cache
def _probe(model: str) -> bool:
    """Raises when the model cannot run. Only successes are cached (lru_cache keeps no exceptions), so a
    model whose weights appear later becomes available without a restart."""
    module = _world_module(model)
    check = getattr(module, "availability", None)
    if callable(check):
        reason = check(model)
        if reason:
            raise ConfigError("model", reason)
    elif model == "shapes":  # small: build it (the held-out reward is checked when a run asks for it)
        module.build_world(RunConfig(model=model, heldout="none"))
    elif model in getattr(module, "MODELS", {}):
        _check_hub_weights(model)
    return True


def _check_hub_weights(model: str) -> None:
    """Text-to-image weights: in the local Hugging Face cache, or downloadable from a reachable hub."""
    from flowscale.worlds.t2i import availability

    repo = availability.HUB_IDS[model]
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo, "model_index.json")
    except Exception:  # noqa: BLE001 - an unusual cache layout: ask the hub instead
        cached = None
    if isinstance(cached, str):
        return
    if availability.hub_offline():
        raise ConfigError("model", f"{repo} is not in the local Hugging Face cache and the hub is switched off")
    if not availability.network_reachable():
        raise ConfigError("model", f"{repo} is not in the local Hugging Face cache and the hub cannot be reached")


def model_settings(model: str) -> Any:
    """The model's defaults (steps, nfe, reward, heldout) when its world can be imported, else None."""
    try:
        module = _world_module(model)
    except Exception:  # noqa: BLE001 - a world that cannot be imported has no defaults
        return None
    return getattr(module, "DEFAULTS", None) or getattr(module, "MODELS", {}).get(model)


def world_rewards(model: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Given and held-out reward specs offered in the dropdowns (free text is accepted as well)."""
    if model == "toy2d":
        return TOY2D_REWARDS, TOY2D_HELDOUT
    try:
        module = _world_module(model)
        names = getattr(module, "REWARD_SPECS", None) or getattr(module, "REWARDS", None)
        if names is None:
            from flowscale.rewards import REWARD_NAMES as names
    except Exception:  # noqa: BLE001 - a world that cannot be imported has no defaults
        return (), ("none",)
    names = tuple(names)
    defaults = model_settings(model)
    given = _first(getattr(defaults, "reward", None), names)
    held = _first(getattr(defaults, "heldout", None), names)
    return given, (*held, "none")


def _first(value: str | None, names: tuple[str, ...]) -> tuple[str, ...]:
    return names if not value else (value, *(n for n in names if n != value))


def status_markdown(model: str, limit: int = 260) -> str:
    """Whether the model can run here, and why not; a world with several models lists them all."""
    lines = []
    names = WORLDS[world_of(model)]
    for name in names if model in names else (model,):
        reason = model_status(name)
        shown = f"**{name}**" if name == model else name
        if reason is None:
            lines.append(f"✓ {shown} is available.")
        else:
            if len(reason) > limit:
                reason = reason[:limit].rsplit(" ", 1)[0] + " …"
            lines.append(f"⚠ {shown} is not available here: {reason}")
    return "  \n".join(lines)


# --------------------------------------------------------------------------------------------------
# Settings: UI values -> RunConfig
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One method setting, derived from the method's params dataclass (0 means "automatic" for optional ints)."""

    key: str  # "rbf.variant"
    kind: type
    default: Any
    optional: bool
    choices: tuple[str, ...] = ()


def _choices(key: str) -> tuple[str, ...]:
    from flowscale.search.rbf import VARIANTS
    from flowscale.search.smc import RESAMPLERS

    return {"rbf.variant": VARIANTS, "smc.resampling": RESAMPLERS}.get(key, ())


def method_settings(method: str) -> list[Setting]:
    cls = METHODS[method][0]
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        key = f"{method}.{f.name}"
        if key in HIDDEN_SETTINGS:
            continue
        options = typing.get_args(hints[f.name]) or (hints[f.name],)
        kind = next(k for k in (bool, int, float, str) if k in options)
        out.append(Setting(key, kind, f.default, type(None) in options, _choices(key)))
    return out


def all_settings() -> list[Setting]:
    return [s for m in SEARCH_METHODS for s in method_settings(m)]


def _number(values: dict[str, Any], key: str, kind: type = int) -> Any:
    value = values.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(key, "is required")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be a number; got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(key, f"must be a finite number; got {value!r}")
    if kind is int:
        if not number.is_integer():
            raise ConfigError(key, f"must be a whole number; got {value!r}")
        return int(number)
    return number


def params_for(method: str, values: dict[str, Any]) -> dict[str, Any]:
    """The method's settings that differ from its defaults, as RunConfig.params keys ("rbf.variant")."""
    params: dict[str, Any] = {}
    for s in method_settings(method):
        if s.key not in values:
            continue
        if s.kind in (int, float):
            value = _number(values, s.key, s.kind)
            if s.optional and value == 0:
                value = None
        else:
            value = values[s.key]
        if value != s.default:
            params[s.key] = value
    return params


def mixture_from_table(table: Any, preset: str) -> tuple[str | None, dict | None]:
    """(preset, None) when the table still shows that preset, else (None, mixture dict)."""
    rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
    parsed = []
    for i, row in enumerate(rows, start=1):
        cells = [c for c in list(row)[:4]]
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        try:
            parsed.append([float(c) for c in cells])
        except (TypeError, ValueError):
            raise ConfigError("mixture", f"row {i}: x, y, std and weight must all be numbers; got {cells}") from None
        if len(parsed[-1]) != 4:
            raise ConfigError("mixture", f"row {i}: needs 4 values (x, y, std, weight)")
    if not parsed:
        raise ConfigError("mixture", "the table needs at least one row (x, y, std, weight)")
    if preset in mixture_presets() and _same_rows(parsed, preset_rows(preset)):
        return preset, None
    mixture = {
        "means": [[r[0], r[1]] for r in parsed],
        "stds": [r[2] for r in parsed],
        "weights": [r[3] for r in parsed],
    }
    return None, mixture


def _same_rows(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(
        abs(x - y) < 1e-3 for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=False)
    )


def mixture_presets() -> tuple[str, ...]:
    from flowscale.worlds.toy2d import PRESETS

    return tuple(PRESETS)


def preset_rows(preset: str) -> list[list[float]]:
    from flowscale.worlds.toy2d import PRESETS

    p = PRESETS[preset]
    return [[round(m[0], 4), round(m[1], 4), s, w] for m, s, w in zip(p["means"], p["stds"], p["weights"], strict=True)]


def preset_reward(preset: str) -> str:
    from flowscale.worlds.toy2d import PRESET_TARGETS

    x, y = PRESET_TARGETS.get(preset, (0.0, 0.0))
    return f"point:{x:g},{y:g}"


def build_config(values: dict[str, Any], method: str | None = None) -> RunConfig:
    """A RunConfig from the app's named values; `method` overrides the selected one (compare view)."""
    model = values.get("model") or DEFAULTS["model"]
    method = method or values.get("method") or DEFAULTS["method"]
    if model not in MODEL_NAMES:
        raise ConfigError("model", f"must be one of {', '.join(MODEL_NAMES)}; got {model!r}")
    preset = mixture = prompt = None
    if model == "toy2d":
        preset, mixture = mixture_from_table(values.get("mixture"), values.get("preset") or "")
    else:
        prompt = (values.get("prompt") or "").strip() or None
    grid = values.get("grid") or "default"
    return RunConfig(
        model=model,
        method=method,
        process=values.get("process") or DEFAULTS["process"],
        nfe=_number(values, "nfe"),
        steps=_number(values, "steps"),
        seed=_number(values, "seed"),
        reward=(values.get("reward") or "").strip() or None,
        heldout=(values.get("heldout") or "").strip() or None,
        preset=preset,
        mixture=mixture,
        prompt=prompt,
        grid=None if grid == "default" else grid,
        g_schedule=values.get("g_schedule") or "square",
        g_norm=_number(values, "g_norm", float),
        beta_min=_number(values, "beta_min", float),
        beta_max=_number(values, "beta_max", float),
        params=params_for(method, values) if method in SEARCH_METHODS else {},
    )


# --------------------------------------------------------------------------------------------------
# The session core (no gradio): baseline, method, BoN at the same budget
# --------------------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str  # "baseline" | "method" | "bon"
    cfg: RunConfig
    events: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None
    output: RunOutput | None = None


@dataclass
class Snapshot:
    """Where a session stands: its phases so far, the active one, and the method's x̂0 previews per step."""

    world: World
    phases: dict[str, Phase]
    active: str
    nfe_done: int  # across phases
    nfe_total: int
    previews: dict[int, tuple[Any, float, float]] = field(default_factory=dict)
    phase_ended: bool = False

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.phases[name].events if name in self.phases else []

    def record(self, name: str) -> dict[str, Any] | None:
        return self.phases[name].record if name in self.phases else None


def record_dict(record: RunRecord) -> dict[str, Any]:
    """The record exactly as record.json stores it (plain JSON, finite floats)."""
    data = record.comparable()
    data.update({k: getattr(record, k) for k in TIMING_KEYS})
    return json.loads(json.dumps(data))


def _note_previews(event: Event, previews: dict[int, tuple[Any, float, float]]) -> None:
    """Keep the best-reward x̂0 preview of each step (image worlds stream them with candidates)."""
    images = event.data.get("_previews")
    if images is None:
        return
    rewards, ts = event.data["rewards"], event.data["t"]
    if len(images) != len(rewards):
        return
    for i, reward in enumerate(rewards):
        step = event.step
        if step not in previews or reward > previews[step][2]:
            previews[step] = (images[i], float(ts[i]), float(reward))


def run_phase(phase: Phase, world: World) -> Iterator[Event]:
    """Stream one run into `phase` (events collected as `run()` does), yielding its events."""
    for event in stream(phase.cfg, world):
        if event.kind == "done":
            phase.output = event.data["_output"]
            phase.output.record.events = phase.events
            phase.record = record_dict(phase.output.record)
        else:
            phase.events.append(event.to_dict())
        yield event


def session(cfg: RunConfig, *, baseline: bool = True, bon: bool = True) -> Iterator[Snapshot]:
    """Baseline (ODE, same seed), the method, then BoN at the same budget; a snapshot after every event."""
    resolved, world, _ = prepare(cfg)  # validates everything (ConfigError) before anything runs
    phases = []
    if baseline:
        phases.append(Phase("baseline", dataclasses.replace(cfg, method="ode", params={})))
    phases.append(Phase("method", cfg))
    if bon and cfg.method != "bon":
        phases.append(Phase("bon", dataclasses.replace(cfg, method="bon", params={})))
    total = sum(resolved.steps if p.name == "baseline" else resolved.nfe for p in phases)
    snap = Snapshot(world, {}, phases[0].name, 0, total)
    done = 0
    for phase in phases:
        snap.phases[phase.name] = phase
        snap.active = phase.name
        snap.phase_ended = False
        for event in run_phase(phase, world):
            if phase.name == "method":
                _note_previews(event, snap.previews)
            snap.nfe_done = done + event.nfe_total
            snap.phase_ended = event.kind == "done"
            yield snap
        done += phase.record["nfe_used"] if phase.record else 0


# --------------------------------------------------------------------------------------------------
# Rendering snapshots
# --------------------------------------------------------------------------------------------------
def background_for(record_or_start: dict[str, Any] | None) -> dict | None:
    """The density background of a 2-D run, from its start event or record (None for image worlds)."""
    if not record_or_start:
        return None
    cfg = record_or_start.get("config") or {}
    info = record_or_start.get("world") or {}
    if cfg.get("model") != "toy2d" or "mixture" not in info:
        return None
    lam = float((cfg.get("params") or {}).get("smc.lam", 1.0)) if cfg.get("method") == "smc" else 1.0
    return views.density_background(info, cfg.get("reward") or "logp", lam)


def figures(state: dict[str, Any], layers: list[str] | None = None) -> tuple[Any, Any, Any]:
    """The three plots from session state {"events", "record", "baseline", ...}."""
    events, record = state.get("events") or [], state.get("record")
    image = bool(state.get("image_world"))
    paths = views.trajectories_figure(
        events,
        record,
        background=state.get("background"),
        baseline_events=state.get("baseline_events"),
        layers=views.DEFAULT_LAYERS if layers is None else layers,
        image_world=image,
    )
    budget = views.budget_figure(events, record)
    reward = views.reward_figure(
        events, record, baseline=state.get("baseline"), bon=state.get("bon"), bon_events=state.get("bon_events")
    )
    return paths, budget, reward


def state_from(snap: Snapshot, background: dict | None) -> dict[str, Any]:
    return {
        "events": snap.events("method"),
        "record": snap.record("method"),
        "baseline": snap.record("baseline"),
        "baseline_events": snap.events("baseline"),
        "bon": snap.record("bon"),
        "bon_events": snap.events("bon"),
        "background": background,
        "image_world": snap.world.name != "toy2d",
    }


def side_by_side(state: dict[str, Any]) -> str:
    method_cfg = (state.get("record") or {}).get("config") or {}
    name = views.label(method_cfg.get("method"), method_cfg.get("process")) if method_cfg else "method"
    return views.side_by_side_markdown(
        [("ODE baseline", state.get("baseline")), (name, state.get("record")), ("BoN, same budget", state.get("bon"))]
    )


def sample_image(phase: Phase | None, world: World) -> Any:
    """The returned sample of an image run, as an array the app can show."""
    if phase is None or phase.output is None:
        return None
    decoded = phase.output.decoded[:1]
    image = world.previews(decoded)[0] if world.previews is not None else decoded[0]
    return views.to_uint8_image(image, size=256)


def save_record(record: dict[str, Any]) -> str:
    """Write a record to a fresh per-run file (old ones are pruned after an hour)."""
    RECORD_DIR.mkdir(parents=True, exist_ok=True)
    for old in RECORD_DIR.glob("*.json"):
        if time.time() - old.stat().st_mtime > 3600:
            old.unlink(missing_ok=True)
    cfg = record.get("config") or {}
    fd, path = tempfile.mkstemp(
        prefix=f"flowscale-{cfg.get('model')}-{cfg.get('method')}-seed{cfg.get('seed')}-",
        suffix=".json",
        dir=RECORD_DIR,
    )
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1, allow_nan=False)
    return path


def progress_text(snap: Snapshot) -> str:
    phase = snap.phases[snap.active]
    what = {
        "baseline": "ODE baseline",
        "method": views.label(phase.cfg.method, phase.cfg.process),
        "bon": "BoN at the same budget",
    }[snap.active]
    return f"{what}: {snap.nfe_done} / {snap.nfe_total} NFE in total"


def as_gr_error(exc: Exception) -> gr.Error:
    """A readable message for the UI and API; never a traceback."""
    if isinstance(exc, ConfigError):
        field_name, _, message = str(exc).partition(": ")
        return gr.Error(f"Setting “{field_name}”: {message}", title="Invalid setting")
    if isinstance(exc, gr.Error):
        return exc
    return gr.Error(f"{type(exc).__name__}: {exc}", title="The run failed")


# --------------------------------------------------------------------------------------------------
# Gradio handlers. `ui` is the layout's component registry (a SimpleNamespace); `values` maps
# components to their values (inputs given as a set).
# --------------------------------------------------------------------------------------------------
def named(ui: Any, values: dict[Any, Any]) -> dict[str, Any]:
    return {ui.names[c]: v for c, v in values.items() if c in ui.names}


def run_ui(
    ui: Any,
    values: dict[Any, Any],
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio injects one)
) -> Iterator[dict[Any, Any]]:
    """The Run button: stream baseline, method and BoN into the three plots, then the record file."""
    v = named(ui, values)
    try:
        cfg = build_config(v)
        yield from _stream_session(ui, cfg, v.get("layers"), progress, with_bon=bool(v.get("with_bon", True)))
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        yield {ui.status: failed()}
        raise as_gr_error(exc) from None


def _stream_session(
    ui: Any,
    cfg: RunConfig,
    layers: list[str] | None,
    progress: gr.Progress,
    *,
    with_bon: bool = True,
    verdict: Any = None,
) -> Iterator[dict[Any, Any]]:
    image_world = is_image_world(cfg.model)
    background = None
    due = 0.0  # redraw no sooner than RENDER_EVERY_S, nor sooner than twice the last redraw's cost
    yield {ui.status: "**Running** · preparing the world…", ui.record_file: gr.update(value=None, visible=False)}
    last_yield = time.perf_counter()
    for snap in session(cfg, bon=with_bon):
        if background is None and not image_world and snap.events("baseline"):
            background = background_for(snap.events("baseline")[0])
        start = time.perf_counter()
        if not snap.phase_ended and start < due:
            if start - last_yield > HEARTBEAT_S:  # an empty update: a Stop takes effect here, within a step
                last_yield = start
                yield {ui.status: gr.skip()}
            continue
        progress((snap.nfe_done, snap.nfe_total), desc=progress_text(snap), unit="NFE")
        state = state_from(snap, background)
        paths, budget, reward = figures(state, layers)
        update = {
            ui.plot_paths: paths,
            ui.plot_budget: budget,
            ui.plot_reward: reward,
            ui.status: "**Running** · " + progress_text(snap),
            ui.side_by_side: side_by_side(state),
        }
        if image_world and snap.previews:
            update[ui.previews] = views.preview_strip(snap.previews)
        now = time.perf_counter()
        # Big traces cost the browser more to redraw than the server to build: slow down as they grow.
        due = now + max(RENDER_EVERY_S, 2 * (now - start), len(state["events"]) / EVENTS_PER_S)
        last_yield = now
        yield update
    method = snap.phases["method"]
    path = save_record(method.record)
    final = {
        # The finished figures again: a client that missed a streamed update (a busy browser can drop
        # one) still ends on the finished plots.
        ui.plot_paths: paths,
        ui.plot_budget: budget,
        ui.plot_reward: reward,
        ui.state: state,
        ui.record_file: gr.update(value=path, visible=True),
        ui.status: "**Done** · " + _summary(method.record) + ("" if verdict is None else f"  \n{verdict(method)}"),
    }
    if image_world:
        final[ui.image_baseline] = sample_image(snap.phases.get("baseline"), snap.world)
        final[ui.image_method] = sample_image(method, snap.world)
    yield final


def _summary(record: dict[str, Any]) -> str:
    cfg = record["config"]
    held = record.get("heldout_reward")
    return (
        f"{views.label(cfg['method'], cfg['process'])}: given reward {record['final_reward']:.4g}"
        + ("" if held is None else f", held-out {held:.4g}")
        + f", {record['nfe_used']} / {record['nfe_budget']} NFE, "
        f"{record['wall_time_s']:.2f} s."
    )


def relayer(ui: Any, state: dict[str, Any] | None, layers: list[str]) -> Any:
    """Redraw the paths plot with other layers, from the session state (no computation)."""
    if not state or not state.get("events"):
        return gr.skip()
    return figures(state, layers)[0]


def stopped() -> str:
    return "**Stopped** · the plots show the run up to its last drawn step."


def failed() -> str:
    return "**Failed** · the message in the corner says why."


def compare_ui(
    ui: Any,
    values: dict[Any, Any],
    progress: gr.Progress = gr.Progress(),  # noqa: B008
) -> Iterator[dict[Any, Any]]:
    """Every method at the same budget and seed (plus the ODE baseline): a table and bars."""
    v = named(ui, values)
    methods = ("ode", *SEARCH_METHODS)
    rows: list[list[Any]] = []
    try:
        base_cfg = build_config(v)
        prepare(base_cfg)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        yield {ui.compare_status: failed()}
        raise as_gr_error(exc) from None
    names = (base_cfg.reward or "reward", base_cfg.heldout or "held-out")
    for i, method in enumerate(methods):
        label = views.label(method, base_cfg.process)
        progress((i, len(methods)), desc=f"running {label}", unit="methods")
        yield {ui.compare_status: f"**Running** · {label} ({i + 1} of {len(methods)})…"}
        try:
            cfg = build_config(v, method=method)
            phase = Phase("method", cfg)
            for _ in run_phase(phase, None):
                pass
            rows.append(views.compare_row(phase.record, method, cfg.process))
            names = (phase.record["config"]["reward"], phase.record["config"]["heldout"])
        except ConfigError as exc:  # e.g. a budget too small for this method: a row, not a failed comparison
            rows.append(views.compare_row(None, method, base_cfg.process, note=str(exc)))
        except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
            yield {ui.compare_status: failed()}
            raise as_gr_error(exc) from None
        yield {ui.compare_table: rows, ui.plot_compare: views.compare_figure(rows, *names)}
    yield {ui.compare_status: f"**Done** · compared {len(methods)} runs at {base_cfg.nfe} NFE, seed {base_cfg.seed}."}


def read_upload(path: str | None) -> dict[str, Any]:
    """An uploaded record: size-capped JSON object with a valid config; nothing in it is executed."""
    if not path:
        raise ConfigError("record", "upload a record JSON file first")
    file = Path(path)
    if file.suffix.lower() != ".json":
        raise ConfigError("record", "must be a .json file")
    if file.stat().st_size > MAX_RECORD_BYTES:
        raise ConfigError("record", f"is larger than {MAX_RECORD_BYTES // (1024 * 1024)} MB")
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("record", f"is not valid JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ConfigError("record", 'must be a JSON object with a "config" object (a flowscale record.json)')
    cfg = RunConfig.from_dict(record["config"])
    if cfg.model_path is not None:
        raise ConfigError("model_path", "records that name a local model folder cannot be replayed in the app")
    if not isinstance(record.get("events", []), list) or not all(isinstance(e, dict) for e in record.get("events", [])):
        raise ConfigError("events", "must be a list of event objects")
    return record


def replay_verdict(uploaded: dict[str, Any]) -> Any:
    expected = {k: v for k, v in uploaded.items() if k not in TIMING_KEYS}

    def verdict(phase: Phase) -> str:
        again = phase.output.record.comparable()
        if again == expected:
            return "✓ **Replay identical**: the re-run record matches the uploaded one exactly (timings aside)."
        keys = sorted(k for k in set(again) | set(expected) if again.get(k) != expected.get(k))
        versions = "" if again.get("versions") == expected.get("versions") else " (the versions differ)"
        return f"≠ **Replay differs** in: {', '.join(keys)}{versions}."

    return verdict


def replay_ui(
    ui: Any,
    path: str | None,
    layers: list[str],
    progress: gr.Progress = gr.Progress(),  # noqa: B008
) -> Iterator[dict]:
    """Re-run an uploaded record's config (no baseline/BoN) and say whether the new record is identical."""
    try:
        uploaded = read_upload(path)
        cfg = RunConfig.from_dict(uploaded["config"])
        verdict = replay_verdict(uploaded)
        yield {ui.tabs: gr.Tabs(selected="run"), ui.replay_status: "**Running** · replaying…"}
        last = None
        for update in _stream_session(ui, cfg, layers, progress, with_bon=False, verdict=verdict):
            last = update
            yield update
        yield {ui.replay_status: last[ui.status] if last else ""}
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        yield {ui.status: failed(), ui.replay_status: failed()}
        raise as_gr_error(exc) from None


def redraw_ui(ui: Any, path: str | None, layers: list[str]) -> dict[Any, Any]:
    """Draw an uploaded record from its recorded events, without running anything."""
    try:
        record = read_upload(path)
        events = record.get("events") or []
        start = next((e for e in events if e.get("kind") == "start"), None)
        state = {
            "events": events,
            "record": record,
            "image_world": record["config"].get("model") != "toy2d",
            "background": background_for(start or record),
        }
        paths, budget, reward = figures(state, layers)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        error = exc if isinstance(exc, ConfigError) else ConfigError("record", f"cannot be drawn: {exc}")
        raise as_gr_error(error) from None
    message = "**Redrawn** from the recorded events (nothing was run) · " + _summary(record)
    return {
        ui.tabs: gr.Tabs(selected="run"),
        ui.plot_paths: paths,
        ui.plot_budget: budget,
        ui.plot_reward: reward,
        ui.state: state,
        ui.side_by_side: views.side_by_side_markdown([("recorded run", record)]),
        ui.status: message,
        ui.replay_status: message,
    }


# --------------------------------------------------------------------------------------------------
# Control updates
# --------------------------------------------------------------------------------------------------
def on_world(ui: Any, world: str) -> dict[Any, Any]:
    """The user picked a world: select its first model and that model's defaults."""
    model = WORLDS[world][0]
    return {ui.model: gr.update(value=model), **model_defaults(ui, model)}


def on_model_input(ui: Any, model: str) -> dict[Any, Any]:
    return {ui.world: world_of(model), **model_defaults(ui, model)}


def model_defaults(ui: Any, model: str) -> dict[Any, Any]:
    """Rewards, steps, budget and prompt of a newly picked model (its world's defaults)."""
    given, held = world_rewards(model)
    out: dict[Any, Any] = {ui.reward: gr.update(value=given[0] if given else ""), ui.heldout: gr.update(value=held[0])}
    defaults = model_settings(model)
    prompt = _default_prompt(model)
    if prompt:
        out[ui.prompt] = prompt
    if model == "toy2d":
        out[ui.steps] = gr.update(value=25)
        out[ui.nfe] = gr.update(value=DEFAULTS["nfe"])
    elif defaults is not None:
        out[ui.steps] = gr.update(value=defaults.steps)
        out[ui.nfe] = gr.update(value=min(defaults.nfe, 100))  # a CPU-friendly start; the slider goes higher
    return out


def _default_prompt(model: str) -> str | None:
    try:
        prompt = getattr(_world_module(model), "DEFAULT_PROMPT", None)
    except Exception:  # noqa: BLE001 - a world that cannot be imported has no defaults
        prompt = None
    return prompt or (T2I_PROMPT if world_of(model) == "Text-to-image" else None)


def on_model(ui: Any, model: str, reward: str | None, heldout: str | None) -> dict[Any, Any]:
    """Any model change (user or example): show the matching controls and the model's availability, and
    replace rewards that belong to another world with this world's defaults."""
    image = is_image_world(model)
    given, held = world_rewards(model)
    reward = reward if fits(model, reward, given) else (given[0] if given else "")
    heldout = heldout if fits(model, heldout, held) else held[0]
    return {
        ui.toy_controls: gr.update(visible=not image),
        ui.image_controls: gr.update(visible=image),
        ui.image_results: gr.update(visible=image),
        ui.previews: gr.update(visible=image),
        ui.layers: gr.update(visible=not image),
        ui.paths_caption: texts.PLOTS["trajectories_image" if image else "trajectories"],
        ui.model_status: status_markdown(model),
        ui.reward: gr.update(
            choices=list(given), value=reward, info=TOY2D_REWARD_INFO if not image else " · ".join(given)
        ),
        ui.heldout: gr.update(choices=list(held), value=heldout),
    }


def fits(model: str, spec: str | None, offered: tuple[str, ...]) -> bool:
    """Whether a reward spec could belong to this model's world (the world itself checks it fully)."""
    if not spec or spec in offered or spec == "none":
        return bool(spec)
    if model == "toy2d":
        return spec == "logp" or spec.startswith(("point:", "region:"))
    return not offered  # free text only where the world offers no list


def on_preset(ui: Any, preset: str) -> Any:
    """A preset fills the mixture table ("custom" keeps the table as edited)."""
    return preset_rows(preset) if preset in mixture_presets() else gr.skip()


def preset_reward_or_skip(preset: str) -> Any:
    """The user picked a preset: aim the given reward at its rarest mode."""
    return preset_reward(preset) if preset in mixture_presets() else gr.skip()


def on_mixture_edit() -> str:
    return "custom"


def explain(method: str, process: str) -> str:
    return texts.explain(method, process)


# --------------------------------------------------------------------------------------------------
# The API endpoint /run (gr.api derives its schema from this signature)
# --------------------------------------------------------------------------------------------------
def api_run(
    model: str = DEFAULTS["model"],
    method: str = DEFAULTS["method"],
    process: str = DEFAULTS["process"],
    nfe: int = DEFAULTS["nfe"],
    seed: int = DEFAULTS["seed"],
    steps: int | None = None,
    prompt: str | None = None,
    preset: str | None = None,
    reward: str | None = None,
    heldout: str | None = None,
    params: dict | None = None,
) -> tuple[dict, dict | None]:  # per update (a generator): gradio reads the output schema from this
    """Run flowscale once and stream progress; the last update carries the run record (record.json).

    Names and values are the CLI's: model toy2d | shapes | flux-schnell ..., method bon | sop | smc |
    code | svdd | rbf | ode, process linear-ode | linear-sde | vp-sde, params {"rbf.variant": "code", ...}.
    Settings left out keep the model's defaults.
    """
    try:
        cfg = RunConfig(
            model=model,
            method=method,
            process=process,
            nfe=nfe,
            seed=seed,
            steps=steps,
            prompt=prompt,
            preset=preset,
            reward=reward,
            heldout=heldout,
            params=dict(params or {}),
        )
        phase = Phase("method", cfg)
        yield {"status": "started", "nfe_spent": 0, "nfe_budget": nfe}, None
        last, best, mark = time.perf_counter(), -math.inf, 0
        for event in run_phase(phase, None):
            if event.kind != "candidates":
                continue
            best = max([best, *event.data["rewards"]])
            budget = phase.events[0]["config"]["nfe"]
            now = time.perf_counter()
            if now - last >= API_EVERY_S or event.nfe_total >= mark:  # every 0.1 s and every tenth of the budget
                last, mark = now, event.nfe_total + max(1, budget // 10)
                yield (
                    {
                        "status": "running",
                        "step": event.step,
                        "nfe_spent": event.nfe_total,
                        "nfe_budget": budget,
                        "best_reward": best,
                    },
                    None,
                )
        record = phase.record
        yield (
            {
                "status": "done",
                "nfe_spent": record["nfe_used"],
                "nfe_budget": record["nfe_budget"],
                "final_reward": record["final_reward"],
            },
            record,
        )
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        raise as_gr_error(exc) from None


# gradio reads the endpoint's outputs from the return annotation; resolve it (this module postpones annotations)
api_run.__signature__ = inspect.signature(api_run, eval_str=True)
