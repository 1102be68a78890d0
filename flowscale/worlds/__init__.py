"""The worlds a run can happen in, built lazily so the 2-D playground never imports diffusers.

Each world module exposes `build_world(cfg: RunConfig) -> World` and `LIMITS`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from flowscale.worlds.base import Reward, RewardError, World, WorldDefaults

if TYPE_CHECKING:
    from flowscale.config import Limits, RunConfig

# model name -> module implementing it
WORLD_MODULES = {
    "toy2d": "flowscale.worlds.toy2d",
    "shapes": "flowscale.worlds.shapes.world",
    "flux-schnell": "flowscale.worlds.t2i.world",
    "flux-dev": "flowscale.worlds.t2i.world",
    "sd3.5": "flowscale.worlds.t2i.world",
    "sd3": "flowscale.worlds.t2i.world",
}
MODEL_NAMES = tuple(WORLD_MODULES)


def world_module(model: str):  # noqa: ANN201 - a module object
    from flowscale.config import ConfigError

    if model not in WORLD_MODULES:
        raise ConfigError("model", f"must be one of {', '.join(MODEL_NAMES)}; got {model!r}")
    try:
        return importlib.import_module(WORLD_MODULES[model])
    except ModuleNotFoundError as exc:
        raise ConfigError("model", f"{model} is not available in this installation ({exc})") from exc


def world_limits(model: str) -> Limits:
    return world_module(model).LIMITS


def build_world(cfg: RunConfig) -> World:
    return world_module(cfg.model).build_world(cfg)


__all__ = ["MODEL_NAMES", "Reward", "RewardError", "World", "WorldDefaults", "build_world", "world_limits"]
