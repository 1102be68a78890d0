"""The worlds a run can happen in, built lazily so the 2-D playground never imports diffusers.

Each world module exposes `build_world(cfg: RunConfig) -> World` and `LIMITS`.
"""

from __future__ import annotations

import importlib
from typing import Any

from flowscale.catalog import MODEL_NAMES, WORLD_MODULES
from flowscale.config import ConfigError, Limits, RunConfig
from flowscale.cost_model import CostModel
from flowscale.worlds.base import Reward, RewardError, World, WorldDefaults


def world_module(model: str):  # noqa: ANN201 - a module object
    if not isinstance(model, str) or model not in WORLD_MODULES:
        raise ConfigError("model", f"must be one of {', '.join(MODEL_NAMES)}; got {model!r}")
    try:
        return importlib.import_module(WORLD_MODULES[model])
    except ModuleNotFoundError as exc:
        raise ConfigError("model", f"{model} is not available in this installation ({exc})") from exc


def world_limits(model: str) -> Limits:
    return world_module(model).LIMITS


def build_world(cfg: RunConfig) -> World:
    return world_module(cfg.model).build_world(cfg)


def world_cost(model: str) -> CostModel:
    """The model's measured cost (its world's COSTS[model] or COST); a conservative guess if it declares none."""
    module = world_module(model)
    return getattr(module, "COSTS", {}).get(model) or getattr(module, "COST", None) or CostModel(0.05, 0.05)


def background_for(model: str, info: dict[str, Any], reward_spec: str, lam: float) -> dict[str, Any] | None:
    """The picture a world draws under its 2-D paths plot (see toy2d.background), or None."""
    module = world_module(model)
    draw = getattr(module, "background", None)
    return draw(info, reward_spec, lam) if callable(draw) else None


def target_distance_for(model: str, info: dict[str, Any], reward_spec: str, lam: float,
                        samples: Any) -> dict[str, Any] | None:
    """How far a run's final samples are from its exact reward-tilted target p0 exp(r / lam), in worlds that
    know it (the 2-D world's ORACLE module: occupancy error and energy distance), else None."""
    oracle = getattr(world_module(model), "ORACLE", None)
    return importlib.import_module(oracle).target_distance(info, reward_spec, lam, samples) if oracle else None


__all__ = ["MODEL_NAMES", "Reward", "RewardError", "World", "WorldDefaults", "background_for", "build_world",
           "target_distance_for", "world_cost", "world_limits"]
