"""The engine entry point: a run config in, a stream of trace events out, a filled Trace at the end.

    trace = Trace()
    for event in stream(RunConfig(method="rbf", process="vp-sde", nfe=200), trace=trace):
        ...                       # trace holds everything so far; at "done", trace.record is the record

The app, the CLI and the benchmark all call `stream` (or `run`, which drains it) and read the Trace.
Stopping the iteration stops the run within one step: nothing runs ahead of the consumer.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from flowscale.config import ConfigError, RunConfig, validate, validate_types
from flowscale.cost import Estimate, calls_of, estimate
from flowscale.grids import GridSpec, make_grid
from flowscale.models import CountedModel, ModelOutOfMemoryError
from flowscale.processes import Process, make_process
from flowscale.recipes import apply_recipe
from flowscale.sampler import FlowSampler
from flowscale.search import (
    METHODS,
    SearchContext,
    SearchResult,
    check_method,
    check_param_keys,
    method_params,
    params_dict,
    without_method_params,
)
from flowscale.search.context import TRACED, trace_width
from flowscale.trace import Event, RunRecord, Trace
from flowscale.worlds import RewardError, World, build_world, world_cost, world_limits, world_module

__version__ = "0.1.0"


class RunFailed(RuntimeError):
    """A run that stopped on a fault (a reward that raised or returned NaN, the model out of memory).

    `events` holds the trace up to the failing step, so nothing already computed is lost.
    """

    def __init__(self, message: str, events: list[dict[str, Any]], config: dict[str, Any]) -> None:
        super().__init__(message)
        self.events = events
        self.config = config


@dataclass
class RunOutput:
    """What a finished run leaves: its record, the final samples (model space) and decoded samples."""

    record: RunRecord
    samples: torch.Tensor
    decoded: torch.Tensor
    world: World
    trace: Trace


def sizes(cfg: RunConfig, defaults: Any) -> dict[str, Any]:
    """steps, particles and nfe of a run from a world's (or model's) defaults: what a run's size is made of.
    `ode` is one particle; `ode` and `base` spend particles x steps."""
    steps = cfg.steps or defaults.steps
    if cfg.method in ("ode", "base"):
        particles = 1 if cfg.method == "ode" else cfg.particles or defaults.particles
        return {"steps": steps, "particles": particles, "nfe": particles * steps}
    return {"steps": steps, "particles": None, "nfe": cfg.nfe or defaults.nfe}


def resolve(cfg: RunConfig, world: World) -> RunConfig:
    """Fill every None with the world's default; `ode` always runs the Linear-ODE with one particle."""
    d = world.defaults
    updates: dict[str, Any] = {
        **sizes(cfg, d),
        "grid": cfg.grid or d.grid,
        "grid_space": cfg.grid_space or d.grid_space,
        "shift": cfg.shift if cfg.shift is not None else d.shift,
        "max_batch": cfg.max_batch or d.max_batch,
        "reward": world.reward.name,
        "heldout": world.heldout.name if world.heldout is not None else "none",
        "params": {**{k: v for k, v in d.method_params.items() if k.startswith(cfg.method + ".")}, **cfg.params},
    }
    if cfg.method == "ode":
        updates.update(process="linear-ode")
    return dataclasses.replace(cfg, **updates)


def ode_baseline(cfg: RunConfig) -> RunConfig:
    """The deterministic baseline of a run: the same world, seed and world settings, method `ode` (one particle
    on the Linear-ODE) and no reward guidance. The app's baseline phase, Compare's ODE row and bench's ode jobs."""
    return dataclasses.replace(cfg, method="ode", params=without_method_params(cfg.params), dps=0.0)


def versions() -> dict[str, str]:
    return {"flowscale": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


Prepared = tuple[RunConfig, World, Any]  # what `prepare` returns: resolved config, world, method params


def prepare(cfg: RunConfig, world: World | None = None) -> Prepared:
    """Validate a config, build its world and method params; every error is a ConfigError.

    Everything a config can get wrong is checked before the world is built (which may load weights):
    static ranges, setting keys and every method setting against its declared range.
    """
    validate_types(cfg)
    cfg = apply_recipe(cfg)  # a named setting fills what the config leaves unset; the record lists it all
    check_method(cfg.method)
    limits = world_limits(cfg.model)
    validate(cfg, limits)
    module = world_module(cfg.model)
    for name in getattr(module, "UNUSED", ()):
        if getattr(cfg, name) is not None:
            raise ConfigError(name, f"{cfg.model} does not use {name}; leave it out")
    if cfg.particles is not None and cfg.method not in ("ode", "base"):
        raise ConfigError("particles", f"sizes base runs only; {cfg.method} sizes itself from nfe "
                          f"(or its own setting, e.g. {cfg.method}.n)")
    check_param_keys(cfg.method, cfg.params, getattr(module, "PARAM_PREFIXES", ()))
    early = _sized_early(cfg, module)
    if world is None and early is not None:  # sized from the world's declared defaults first: a budget the
        validate(early[0], limits)  # method cannot fit is refused before the world is built (may load weights)
        calls_of(*early)
    if world is None:
        world = build_world(cfg)
    cfg = resolve(cfg, world)
    validate(cfg, limits)
    if cfg.dps and not world.reward.differentiable:
        usable = ", ".join(getattr(module, "DIFFERENTIABLE", ())) or "none in this world"
        raise ConfigError("dps", f"reward '{world.reward.name}' is not differentiable, so it cannot guide the SDE; "
                          f"differentiable rewards of {cfg.model}: {usable}")
    params = _sized_params(cfg)  # with the world's defaults for the method
    calls_of(cfg, params)  # the method's own sizing: a budget it cannot fit is refused here, not mid-run
    return cfg, world, params


def _sized_early(cfg: RunConfig, module: Any) -> tuple[RunConfig, Any] | None:
    """The config sized from its world's declared defaults (DEFAULTS, or MODELS[model]) and its method params,
    without building the world; None for a world that declares none."""
    defaults = getattr(module, "DEFAULTS", None) or getattr(module, "MODELS", {}).get(cfg.model)
    if defaults is None:
        return None
    sized = dataclasses.replace(cfg, **sizes(cfg, defaults))
    return sized, _sized_params(sized)


def _sized_params(cfg: RunConfig) -> Any:
    """A sized config's method params; `ode` and `base` carry the config's particle count."""
    params = method_params(cfg.method, cfg.params)
    if cfg.method in ("ode", "base"):
        params = dataclasses.replace(params, particles=cfg.particles)
    return params


def estimate_config(cfg: RunConfig) -> Estimate:
    """What a config will cost, from its world's declared defaults alone: nothing is built or loaded (a host
    sizes a GPU-time request with it before the weights are on the GPU). Settings are checked as in prepare."""
    validate_types(cfg)
    cfg = apply_recipe(cfg)
    check_method(cfg.method)
    module = world_module(cfg.model)
    early = _sized_early(cfg, module)
    if early is None:
        raise ConfigError("model", f"{cfg.model} declares no defaults to size a run from")
    sized, params = early
    validate(sized, world_limits(cfg.model))
    return estimate(sized, params, world_cost(cfg.model))


def estimate_run(prepared: Prepared) -> Estimate:
    """What a prepared run will cost (calls, NFE, seconds, record bytes) in its world: see flowscale.cost."""
    cfg, _, params = prepared
    return estimate(cfg, params, world_cost(cfg.model))


def sampling_setup(cfg: RunConfig) -> tuple[Process, torch.Tensor, torch.dtype | None]:
    """The process, the evaluation grid (float64) and the state dtype (None: the model's own) of a prepared config."""
    process = make_process(cfg.process, cfg.g_schedule, cfg.g_norm, cfg.beta_min, cfg.beta_max)
    try:
        grid = make_grid(GridSpec(cfg.grid, cfg.steps, cfg.grid_space, cfg.shift), process)
    except ValueError as exc:
        raise ConfigError("grid", str(exc)) from None
    state_dtype = None if cfg.state_dtype is None else getattr(torch, cfg.state_dtype)
    if state_dtype is not None:  # the grid's times are held in the state's dtype too (the released code's bf16)
        grid = grid.to(state_dtype).to(torch.float64)
    return process, grid, state_dtype


def stream(cfg: RunConfig, world: World | None = None, *, trace: Trace | None = None,
           prepared: Prepared | None = None, previews: bool = True) -> Iterator[Event]:
    """Run a config, yielding trace events as `trace` (a fresh one if None) takes them in.

    `prepared` (from `prepare(cfg)`) skips preparing again. The final event ("done") carries `_output`
    (a RunOutput, whose `trace` is the filled trace). previews=False makes no preview images (the app's
    strip of each step's best candidate; never part of the record): for consumers that show none.
    """
    trace = Trace() if trace is None else trace
    cfg, world, params = prepare(cfg, world) if prepared is None else prepared
    process, grid, state_dtype = sampling_setup(cfg)
    model = CountedModel(world.model, max_batch=cfg.max_batch, nfe_limit=cfg.nfe)
    ctx = SearchContext(
        FlowSampler(model, process, world.cond, state_dtype),
        grid,
        world.reward,
        world.decode,
        world.project,
        torch.Generator().manual_seed(cfg.seed),
        cfg.nfe,
        previews=world.previews if previews else None,
        latent_previews=world.latent_previews if previews else None,
        width=trace_width(calls_of(cfg, params)),
        guidance=cfg.dps,
    )
    start = {"config": cfg.to_dict(), "method_params": params_dict(cfg.method, params), "grid": grid.tolist(),
             "world": world.info}
    yield _emit(trace, Event("start", -1, 0, start), ctx)
    # Wall time counts only the time spent inside the engine, not model loading and not the time a
    # consumer (the app drawing plots) holds each event before asking for the next.
    busy, mark = 0.0, time.perf_counter()
    steps = METHODS[cfg.method][1](ctx, params)
    try:
        while True:
            event = _emit(trace, next(steps), ctx)
            busy += time.perf_counter() - mark
            yield event
            mark = time.perf_counter()
    except StopIteration as stop:  # (a method that finds its settings infeasible raises ConfigError first)
        result: SearchResult = stop.value
    busy += time.perf_counter() - mark
    output = _finish(cfg, world, ctx, model, result, busy, trace)
    yield Event("done", -1, ctx.ledger.used, {"_output": output, "final_reward": output.record.final_reward})


def _emit(trace: Trace, event: Event, ctx: SearchContext) -> Event:
    """Hand an event to the trace together with the engine's books as they stood when it was made."""
    trace.append(event)
    books = event.data.get("_books") or ctx.books()
    trace.sync(ctx.grid_list, books["nfe_per_step"], ctx.ledger.best_reward_by_nfe, books["curve"], books["plan"])
    return event


def _finish(cfg: RunConfig, world: World, ctx: SearchContext, model: CountedModel, result: SearchResult,
            wall: float, trace: Trace) -> RunOutput:
    if model.nfe != ctx.ledger.used:  # the two counters are independent; they must agree
        raise RuntimeError(f"NFE mismatch: model counted {model.nfe}, ledger {ctx.ledger.used}")
    decoded = world.decode(result.samples)
    heldout = world.heldout(decoded) if world.heldout is not None else None
    accuracy = world.reward.accuracy(decoded)
    record = RunRecord(
        config=cfg.to_dict(),
        versions=versions(),
        grid=ctx.grid.tolist(),
        events=trace.events,
        nfe_budget=cfg.nfe,
        nfe_used=ctx.ledger.used,
        nfe_per_step=list(ctx.ledger.nfe_per_step),
        best_reward_by_nfe=ctx.ledger.best_reward_by_nfe,
        final_reward=float(result.rewards[0]),
        heldout_reward=None if heldout is None else float(heldout[0]),
        accuracy=None if accuracy is None else float(accuracy[0]),
        rewards=result.rewards.tolist(),
        heldout_rewards=None if heldout is None else heldout.tolist(),
        samples_2d=world.project(result.samples).tolist(),
        details=world.reward.details(decoded[:1]),
        wall_time_s=wall,
        model_time_s=model.model_time_s,
        reward_time_s=ctx.reward_time_s,
        extra={**result.extra, **_unspent(cfg, ctx), **_detail(ctx), **_guidance(cfg, model),
               "returned_id": result.returned_id, **_preview_time(ctx),
               "world": world.info, "threads": torch.get_num_threads()},
    )
    trace.finish(record, result.returned_id)
    return RunOutput(record, result.samples, decoded, world, trace)


def _detail(ctx: SearchContext) -> dict[str, Any]:
    """Say so in the record when the trace holds less than every candidate in full."""
    if not (ctx.summarised or (ctx.narrowed and ctx.width < TRACED)):
        return {}
    return {"trace_detail": {"traced_per_event": ctx.width, "events_narrowed": ctx.narrowed,
                             "detail_rows": ctx.detail_rows, "events_summarised": ctx.summarised}}


def _preview_time(ctx: SearchContext) -> dict[str, float]:
    """Seconds spent making the streamed previews (worlds that stream them)."""
    return {"preview_time_s": ctx.preview_time_s} if ctx.previews is not None else {}


def _guidance(cfg: RunConfig, model: CountedModel) -> dict[str, int]:
    """Backward passes of a guided run, counted apart from the forward NFE (the ledger's)."""
    return {"grad_evals": model.grad_evals} if cfg.dps else {}


def _unspent(cfg: RunConfig, ctx: SearchContext) -> dict[str, int]:
    """Budget left unspent, read from the ledger (search methods; ode/base spend exactly what they plan)."""
    return {} if cfg.method in ("ode", "base") else {"nfe_unspent": ctx.ledger.left}


def run(cfg: RunConfig, world: World | None = None, on_event: Any = None, trace: Trace | None = None,
        prepared: Prepared | None = None, previews: bool = True) -> RunOutput:
    """Drain a run into its trace (passing each event to on_event if given); the record holds its events.
    previews as for `stream`."""
    trace = Trace() if trace is None else trace
    output: RunOutput | None = None
    try:
        for event in stream(cfg, world, trace=trace, prepared=prepared, previews=previews):
            if on_event is not None:
                on_event(event)
            if event.kind == "done":
                output = event.data["_output"]
    except (RewardError, ModelOutOfMemoryError) as exc:
        raise RunFailed(str(exc), trace.events, trace.config or cfg.to_dict()) from exc
    assert output is not None, "a run stream always ends with a done event"
    return output


def replay(record: dict[str, Any]) -> RunOutput:
    """Run the config stored in a record again; with the same versions the record is identical."""
    return run(RunConfig.from_dict(record["config"]))
