"""Which models exist, which world runs each, and how worlds are grouped for people. No imports of worlds.

One place for these facts: the engine builds worlds from WORLD_MODULES, the CLI lists MODEL_NAMES, the
trace and the app ask `is_image_model`, and the app groups models by WORLD_GROUPS.
"""

from __future__ import annotations

# model name -> module implementing its world
WORLD_MODULES = {
    "toy2d": "flowscale.worlds.toy2d",
    "shapes": "flowscale.worlds.shapes.world",
    "flux-schnell": "flowscale.worlds.t2i.world",
    "flux-dev": "flowscale.worlds.t2i.world",
    "sd3.5": "flowscale.worlds.t2i.world",
    "sd3": "flowscale.worlds.t2i.world",
}
MODEL_NAMES = tuple(WORLD_MODULES)
WORLD_GROUPS: dict[str, tuple[str, ...]] = {
    "2-D playground": ("toy2d",),
    "Shapes": ("shapes",),
    "Text-to-image": tuple(m for m in MODEL_NAMES if m not in ("toy2d", "shapes")),
}


def needs_gpu(model: str) -> bool:
    """Whether a model is meant for a GPU (the text-to-image world; the 2-D and Shapes worlds run on any CPU)."""
    return model in WORLD_GROUPS["Text-to-image"]


def is_image_model(model: str) -> bool:
    """Whether a model's samples are images (every world but the 2-D playground)."""
    return model != "toy2d"


def world_group(model: str) -> str:
    """The group a model belongs to (an unknown name counts as text-to-image, where free names go)."""
    return next((group for group, models in WORLD_GROUPS.items() if model in models), "Text-to-image")
