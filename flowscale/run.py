"""The engine entry point: a run config in, a stream of trace events out, a RunRecord at the end.

    for event in stream(RunConfig(method="rbf", process="vp-sde", nfe=200)):
        ...                       # the last event has kind "done" and carries the record

The app, the CLI and the benchmark all call `stream` (or `run`, which drains it). Stopping the
iteration stops the run within one step: nothing runs ahead of the consumer.
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

from flowscale.config import ConfigError, RunConfig, validate
from flowscale.grids import GridSpec, make_grid
from flowscale.models import CountedModel, ModelOutOfMemoryError
from flowscale.processes import make_process
from flowscale.sampler import FlowSampler
from flowscale.search import METHODS, SearchContext, SearchResult, method_params
from flowscale.trace import Event, RunRecord
from flowscale.worlds import RewardError, World, build_world, world_limits

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


def resolve(cfg: RunConfig, world: World) -> RunConfig:
    """Fill every None with the world's default; `ode` always runs the Linear-ODE with one particle."""
    d = world.defaults
    updates: dict[str, Any] = {
        "steps": cfg.steps or d.steps,
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
    if cfg.method in ("ode", "base"):
        particles = 1 if cfg.method == "ode" else cfg.particles or d.particles
        updates.update(particles=particles, nfe=particles * updates["steps"])
    else:
        updates.update(nfe=cfg.nfe or d.nfe, particles=None)
    return dataclasses.replace(cfg, **updates)


def versions() -> dict[str, str]:
    return {"flowscale": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def prepare(cfg: RunConfig, world: World | None = None) -> tuple[RunConfig, World, Any]:
    """Validate a config, build its world and method params; every error is a ConfigError."""
    if world is None:
        limits = world_limits(cfg.model)
        validate(cfg, limits)
        world = build_world(cfg)
    cfg = resolve(cfg, world)
    validate(cfg, world_limits(cfg.model))
    try:
        params = method_params(cfg.method, cfg.params)
    except ValueError as exc:
        raise ConfigError("params", str(exc)) from None
    if cfg.method in ("ode", "base"):
        params = dataclasses.replace(params, particles=cfg.particles)
    return cfg, world, params


def stream(cfg: RunConfig, world: World | None = None) -> Iterator[Event]:
    """Run a config, yielding trace events; the final event ("done") carries `_output` (a RunOutput)."""
    cfg, world, params = prepare(cfg, world)
    process = make_process(cfg.process, cfg.g_schedule, cfg.g_norm, cfg.beta_min, cfg.beta_max)
    try:
        grid = make_grid(GridSpec(cfg.grid, cfg.steps, cfg.grid_space, cfg.shift), process)
    except ValueError as exc:
        raise ConfigError("grid", str(exc)) from None
    model = CountedModel(world.model, max_batch=cfg.max_batch, nfe_limit=cfg.nfe)
    ctx = SearchContext(
        FlowSampler(model, process, world.cond),
        grid,
        world.reward,
        world.decode,
        world.project,
        torch.Generator().manual_seed(cfg.seed),
        cfg.nfe,
        previews=world.previews,
    )
    yield Event("start", -1, 0, {"config": cfg.to_dict(), "grid": grid.tolist(), "world": world.info})
    # Wall time counts only the time spent inside the engine, not model loading and not the time a
    # consumer (the app drawing plots) holds each event before asking for the next.
    busy, mark = 0.0, time.perf_counter()
    steps = METHODS[cfg.method][1](ctx, params)
    try:
        while True:
            event = next(steps)
            busy += time.perf_counter() - mark
            yield event
            mark = time.perf_counter()
    except StopIteration as stop:
        result: SearchResult = stop.value
    except ValueError as exc:  # a method found the budget/settings infeasible before spending
        raise ConfigError("nfe" if "nfe" in str(exc) else "params", str(exc)) from None
    busy += time.perf_counter() - mark
    output = _finish(cfg, world, ctx, model, result, busy)
    yield Event("done", -1, ctx.ledger.used, {"_output": output, "final_reward": output.record.final_reward})


def _finish(cfg: RunConfig, world: World, ctx: SearchContext, model: CountedModel, result: SearchResult,
            wall: float) -> RunOutput:
    if model.nfe != ctx.ledger.used:  # the two counters are independent; they must agree
        raise RuntimeError(f"NFE mismatch: model counted {model.nfe}, ledger {ctx.ledger.used}")
    decoded = world.decode(result.samples)
    heldout = world.heldout(decoded) if world.heldout is not None else None
    accuracy = world.reward.accuracy(decoded)
    record = RunRecord(
        config=cfg.to_dict(),
        versions=versions(),
        grid=ctx.grid.tolist(),
        events=[],
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
        extra={**result.extra, "world": world.info},
    )
    return RunOutput(record, result.samples, decoded, world)


def run(cfg: RunConfig, world: World | None = None, on_event: Any = None) -> RunOutput:
    """Drain a run; every event is also saved into the record (and passed to on_event if given)."""
    events: list[dict[str, Any]] = []
    output: RunOutput | None = None
    try:
        for event in stream(cfg, world):
            if on_event is not None:
                on_event(event)
            if event.kind == "done":
                output = event.data["_output"]
            else:
                events.append(event.to_dict())
    except (RewardError, ModelOutOfMemoryError) as exc:
        raise RunFailed(str(exc), events, events[0]["config"] if events else cfg.to_dict()) from exc
    assert output is not None, "a run stream always ends with a done event"
    output.record.events = events
    return output


def replay(record: dict[str, Any]) -> RunOutput:
    """Run the config stored in a record again; with the same versions the record is identical."""
    return run(RunConfig.from_dict(record["config"]))
